"""GrapheneDB API v1 only: backups, the backup schedule, exports and `empty`.

Source: seeds/graphenedb-v1-api.txt (`/v1/databases/{id}/backups`, schedule,
export, empty). One-time links (export, backup download) go to the requester
alone, as `Reply.private_text`: never to the channel or the audit log.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import Field

from commands.adapters.v1 import size_text, v1_client
from commands.context import Context
from commands.options import NoOptions
from commands.plan import Plan
from commands.registry import Rights, verb
from commands.resolve import Found
from commands.targets import V1, db_plan, find, one_by_id, require_id_prefix, started_reply
from core.errors import UserError
from core.reply import Reply, Table
from core.words import utc_text
from permissions.roles import Role

_TIME = re.compile(r"^([01]?\d|2[0-3]):[0-5]\d:[0-5]\d$")


class BackupScheduleOptions(NoOptions):
    """`backup-schedule`: `time=` the new daily backup time (H:MM:SS, UTC)."""

    time: str | None = Field(default=None, description="daily backup time, H:MM:SS UTC")


async def _find(ctx: Context, role: Role, name: str) -> Found:
    return await find(ctx, V1, role, name)


async def prepare_backups(ctx: Context, values: dict[str, Any]) -> Plan:
    """The v1 database whose backups to list (viewer)."""
    found = await _find(ctx, Role.VIEWER, values["db"])
    return db_plan("backups", found, f"backups of {found.database.name}")


@verb(
    "backups",
    "<db>",
    role=Role.VIEWER,
    prepare=prepare_backups,
    kinds=V1,
    example="backups legacy-orders",
    group="Backups (v1)",
)
async def backups(ctx: Context, plan: Plan) -> Reply:
    """List a v1 database's backups"""
    backups = await v1_client(ctx, plan.provider).backups(plan.params["database_id"])
    table = Table(columns=["Backup", "Origin", "State", "Finished", "Size", "Downloadable"])
    for b in backups:
        table.rows.append(
            [
                b.id,
                b.origin or "?",
                b.state or "?",
                utc_text(b.timestamp),
                size_text(b.size),
                "yes" if b.downloadable else "no",
            ]
        )
    if not backups:
        table.note = "no backups"
    return Reply(title=f"Backups of {plan.params['database_name']}", tables=[table])


async def prepare_backup(ctx: Context, values: dict[str, Any]) -> Plan:
    """The v1 database to back up (operator)."""
    found = await _find(ctx, Role.OPERATOR, values["db"])
    return db_plan("backup", found, f"back up {found.database.name} ({found.scope.label})")


@verb(
    "backup",
    "<db>",
    role=Role.OPERATOR,
    prepare=prepare_backup,
    kinds=V1,
    example="backup legacy-orders",
    group="Backups (v1)",
)
async def backup(ctx: Context, plan: Plan) -> Reply:
    """Take a manual backup (snapshot) of a v1 database"""
    accepted = await v1_client(ctx, plan.provider).take_backup(plan.params["database_id"])
    reply = started_reply(ctx, plan, f"Backing up {plan.params['database_name']}", accepted)
    if accepted.backup_id:
        reply.fields.append(("Backup", accepted.backup_id))
    return reply


async def _find_backup(ctx: Context, provider: str, database_id: str, wanted: str) -> str:
    require_id_prefix(wanted, "backup")
    ids = [b.id for b in await v1_client(ctx, provider).backups(database_id)]
    return one_by_id(ids, str, wanted, "backup", "of that database")


async def prepare_restore_backup(ctx: Context, values: dict[str, Any]) -> Plan:
    """The v1 database (admin) and its backup, by id or a prefix of 6+ characters."""
    found = await _find(ctx, Role.ADMIN, values["db"])
    backup_id = await _find_backup(
        ctx, found.scope.provider.name, found.database.id, values["backup"]
    )
    plan = db_plan(
        "restore-backup",
        found,
        f"restore backup {backup_id[:12]} into {found.database.name} ({found.scope.label}), "
        "replacing its data",
        backup_id=backup_id,
    )
    plan.destructive = True
    plan.details = [("Backup", backup_id)]
    return plan


@verb(
    "restore-backup",
    "<db> <backup>",
    role=Role.ADMIN,
    prepare=prepare_restore_backup,
    kinds=V1,
    destructive=True,
    example="restore-backup legacy-orders 4be1c2",
    group="Backups (v1)",
)
async def restore_backup(ctx: Context, plan: Plan) -> Reply:
    """Restore a backup into a v1 database, replacing its data"""
    accepted = await v1_client(ctx, plan.provider).restore_backup(
        plan.params["database_id"], plan.params["backup_id"]
    )
    return started_reply(
        ctx, plan, f"Restoring a backup into {plan.params['database_name']}", accepted
    )


async def prepare_empty(ctx: Context, values: dict[str, Any]) -> Plan:
    """The v1 database to empty (admin); the approver must type its name."""
    found = await _find(ctx, Role.ADMIN, values["db"])
    plan = db_plan(
        "empty", found, f"empty {found.database.name} ({found.scope.label}): delete all its data"
    )
    plan.destructive = True
    plan.confirm_name = found.database.name
    return plan


@verb(
    "empty",
    "<db>",
    role=Role.ADMIN,
    prepare=prepare_empty,
    kinds=V1,
    destructive=True,
    example="empty legacy-sandbox",
    group="Backups (v1)",
)
async def empty(ctx: Context, plan: Plan) -> Reply:
    """Delete all data of a v1 database (the approver types its name)"""
    accepted = await v1_client(ctx, plan.provider).empty(plan.params["database_id"])
    return started_reply(ctx, plan, f"Emptying {plan.params['database_name']}", accepted)


async def prepare_schedule(ctx: Context, values: dict[str, Any]) -> Plan:
    """Read the backup time (viewer), or set it with `time=` (operator)."""
    wanted = values.get("time")
    if wanted is not None and not _TIME.match(wanted):
        raise UserError(f"time= takes H:MM:SS in UTC, e.g. time=3:30:00 (not {wanted!r})")
    found = await _find(ctx, Role.OPERATOR if wanted else Role.VIEWER, values["db"])
    summary = (
        f"set the daily backup of {found.database.name} to {wanted} UTC"
        if wanted
        else f"backup schedule of {found.database.name}"
    )
    plan = db_plan("backup-schedule", found, summary, time=wanted)
    plan.role = Role.OPERATOR if wanted else Role.VIEWER
    return plan


@verb(
    "backup-schedule",
    "<db>",
    role=Role.VIEWER,
    prepare=prepare_schedule,
    kinds=V1,
    options=BackupScheduleOptions,
    example="backup-schedule legacy-orders time=3:30:00",
    group="Backups (v1)",
    rights=(
        Rights(form="<db>", when="to show", role=Role.VIEWER),
        Rights(form="<db> time=", when="to set", role=Role.OPERATOR),
    ),
)
async def backup_schedule(ctx: Context, plan: Plan) -> Reply:
    """Show or set (time=H:MM:SS UTC) the daily backup time"""
    api = v1_client(ctx, plan.provider)
    wanted = plan.params.get("time")
    if wanted:
        schedule = await api.set_backup_schedule(plan.params["database_id"], wanted)
        title = f"Backup schedule of {plan.params['database_name']} changed"
    else:
        schedule = await api.backup_schedule(plan.params["database_id"])
        title = f"Backup schedule of {plan.params['database_name']}"
    return Reply(
        title=title,
        fields=[
            ("Time", f"{schedule.time or '?'} {schedule.timezone or 'UTC'}"),
            ("Frequency", schedule.frequency or "daily"),
        ],
    )


async def prepare_export(ctx: Context, values: dict[str, Any]) -> Plan:
    """The v1 database to export (operator)."""
    found = await _find(ctx, Role.OPERATOR, values["db"])
    return db_plan("export", found, f"export {found.database.name}")


@verb(
    "export",
    "<db>",
    role=Role.OPERATOR,
    prepare=prepare_export,
    kinds=V1,
    example="export legacy-orders",
    group="Backups (v1)",
)
async def export(ctx: Context, plan: Plan) -> Reply:
    """Export a v1 database; the one-time link is sent to you only"""
    export = await v1_client(ctx, plan.provider).export(plan.params["database_id"])
    return Reply(
        title=f"Export of {plan.params['database_name']} is ready ({size_text(export.size)})",
        text="The one-time download link was sent to the requester privately.",
        private_text=f"One-time link to the export of {plan.params['database_name']}: "
        f"{export.url.get_secret_value()}",
    )


async def prepare_backup_link(ctx: Context, values: dict[str, Any]) -> Plan:
    """The v1 database and its backup whose link to send (operator)."""
    found = await _find(ctx, Role.OPERATOR, values["db"])
    backup_id = await _find_backup(
        ctx, found.scope.provider.name, found.database.id, values["backup"]
    )
    return db_plan(
        "backup-link",
        found,
        f"download link of a backup of {found.database.name}",
        backup_id=backup_id,
    )


@verb(
    "backup-link",
    "<db> <backup>",
    role=Role.OPERATOR,
    prepare=prepare_backup_link,
    kinds=V1,
    example="backup-link legacy-orders 4be1c2",
    group="Backups (v1)",
)
async def backup_link(ctx: Context, plan: Plan) -> Reply:
    """A one-time download link of a backup, sent to you only"""
    package = await v1_client(ctx, plan.provider).backup_package(
        plan.params["database_id"], plan.params["backup_id"]
    )
    return Reply(
        title=f"Download link for backup {plan.params['backup_id'][:12]} is ready",
        text="The one-time link was sent to the requester privately.",
        private_text=f"One-time link to backup {plan.params['backup_id']}: "
        f"{package.backup_url.get_secret_value()}",
    )
