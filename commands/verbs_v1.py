"""Verbs for GrapheneDB API v1 providers (kind `graphenedb-v1`).

A v1 account is one environment named after the provider. The verbs shared
with the Console API (list, show, create, restart, terminate, ops, versions,
plans, regions, import) live in verbs_console and call the `v1_*` functions
here for v1 databases; the v1-only ones (backups, export, schedule, empty) are
registered here. One-time links (export, backup download) go to the requester
alone, as `Reply.private_text`: never to the channel or the audit log.
"""

from __future__ import annotations

import re
import time
from typing import Any
from urllib.parse import urlparse

from pydantic import BaseModel, ConfigDict, Field

from clients.graphenedb_v1 import PLANS, REGIONS, V1Client
from commands.context import Context
from commands.plan import Plan
from commands.registry import Registry, Verb
from commands.targets import V1, client_of, db_plan, find, started_reply
from core.errors import UserError
from core.refs import UserRef
from core.reply import Reply, Table
from permissions.roles import Role

_TIME = re.compile(r"^([01]?\d|2[0-3]):[0-5]\d:[0-5]\d$")


def client(ctx: Context, provider: str) -> V1Client:
    """The v1 client of a provider."""
    value: V1Client = client_of(ctx, provider, V1Client)
    return value


def _size(size: int | None) -> str:
    return f"{size / 1e6:.1f} MB" if size else "?"


# -- the v1 side of shared verbs ------------------------------------------------------


async def v1_show(ctx: Context, plan: Plan) -> Reply:
    """`show` for a v1 database."""
    db = await client(ctx, plan.provider).database(plan.params["database_id"])
    counters = db.counters
    return Reply(
        title=db.name,
        fields=[
            ("State", db.status.state),
            ("Plan", db.plan or "?"),
            ("Version", db.version or "?"),
            ("Region", db.aws_region or "?"),
            ("Size", f"{_size(db.current_size)} of {_size(db.max_size)}"),
            (
                "Nodes / relationships",
                f"{counters.nodes} / {counters.relationships}" if counters else "?",
            ),
            ("Bolt host", db.domain_name or "?"),
            ("Id", db.id),
            ("Created", db.created_at or "?"),
        ],
    )


async def v1_catalog(ctx: Context, provider: str, which: str) -> list[list[str]]:
    """Rows for versions / plans / regions of a v1 provider."""
    api = client(ctx, provider)
    if which == "versions":
        return [[provider, v.version, v.description] for v in await api.versions()]
    values = PLANS if which == "plans" else REGIONS
    return [[provider, value, ""] for value in values]


def v1_create_params(values: dict[str, Any]) -> dict[str, Any]:
    """Validate create options for v1 (region, plan, version)."""
    region = values.get("region")
    if not region:
        raise UserError(f"a v1 database needs region= (one of: {', '.join(REGIONS)})")
    if region not in REGIONS:
        raise UserError(f"unknown region {region!r}; v1 regions: {', '.join(REGIONS)}")
    if values["plan"] not in PLANS or values["plan"] == "cluster":
        raise UserError(f"unknown plan {values['plan']!r}; v1 plans: {', '.join(PLANS)}")
    return {"region": region}


async def v1_create(ctx: Context, plan: Plan) -> Reply:
    """`create` on a v1 provider."""
    p = plan.params
    accepted = await client(ctx, plan.provider).create_database(
        p["database_name"], p["version"], p["region"], p["plan"]
    )
    return started_reply(ctx, plan, f"Creating {p['database_name']}", accepted)


async def v1_ops(ctx: Context, plan: Plan) -> Reply:
    """`ops` for v1: the API lists no operations, so show those graphops started."""
    history = ctx.services.history
    rows = history.for_database(plan.provider, plan.params["database_id"]) if history else []
    table = Table(columns=["Operation", "What", "State", "By", "Started"])
    for op in rows:
        started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(op.started_at))
        table.rows.append(
            [op.operation_id, op.label, op.state, str(UserRef(op.requester)), started]
        )
    table.note = "the v1 API lists no operations; these are the ones graphops started"
    return Reply(title=f"Operations of {plan.params['database_name']}", tables=[table])


def v1_import_url(reference: str) -> str:
    """The S3 URL a v1 import needs, or a UserError saying what would work."""
    parsed = urlparse(reference)
    if parsed.scheme != "https" or not parsed.netloc:
        raise UserError(
            "v1 imports from an https:// URL of an S3 object the API can read "
            "(e.g. https://my-bucket.s3.amazonaws.com/graphdb.zip), not a file upload"
        )
    return reference


async def v1_import(ctx: Context, plan: Plan) -> Reply:
    """`import` on v1: the API fetches the archive from S3 itself."""
    accepted = await client(ctx, plan.provider).import_url(
        plan.params["database_id"], plan.params["file"]
    )
    return started_reply(ctx, plan, f"Importing into {plan.params['database_name']}", accepted)


# -- v1-only verbs ---------------------------------------------------------------------


class _Options(BaseModel):
    model_config = ConfigDict(extra="forbid")


class BackupScheduleOptions(_Options):
    time: str | None = Field(default=None, description="daily backup time, H:MM:SS UTC")


async def _find(ctx: Context, role: Role, name: str) -> Any:
    return await find(ctx, V1, role, name)


async def prepare_backups(ctx: Context, values: dict[str, Any]) -> Plan:
    found = await _find(ctx, Role.VIEWER, values["db"])
    return db_plan("backups", found, f"backups of {found.database.name}")


async def execute_backups(ctx: Context, plan: Plan) -> Reply:
    backups = await client(ctx, plan.provider).backups(plan.params["database_id"])
    table = Table(columns=["Backup", "Origin", "State", "Finished", "Size", "Downloadable"])
    for b in backups:
        table.rows.append(
            [
                b.id,
                b.origin or "?",
                b.state or "?",
                b.timestamp or "?",
                _size(b.size),
                "yes" if b.downloadable else "no",
            ]
        )
    if not backups:
        table.note = "no backups"
    return Reply(title=f"Backups of {plan.params['database_name']}", tables=[table])


async def prepare_backup(ctx: Context, values: dict[str, Any]) -> Plan:
    found = await _find(ctx, Role.OPERATOR, values["db"])
    return db_plan("backup", found, f"back up {found.database.name} ({found.scope.label})")


async def execute_backup(ctx: Context, plan: Plan) -> Reply:
    accepted = await client(ctx, plan.provider).take_backup(plan.params["database_id"])
    reply = started_reply(ctx, plan, f"Backing up {plan.params['database_name']}", accepted)
    if accepted.backup_id:
        reply.fields.append(("Backup", accepted.backup_id))
    return reply


async def _find_backup(ctx: Context, provider: str, database_id: str, wanted: str) -> str:
    if len(wanted) < 6:
        raise UserError("give at least the first 6 characters of the backup id")
    ids = [b.id for b in await client(ctx, provider).backups(database_id)]
    matches = [i for i in ids if i == wanted or i.startswith(wanted)]
    if not matches:
        raise UserError(f"no backup {wanted!r} of that database; `backups <db>` lists them")
    if len(matches) > 1:
        raise UserError(f"{wanted!r} matches {len(matches)} backups; give more of the id")
    return matches[0]


async def prepare_restore_backup(ctx: Context, values: dict[str, Any]) -> Plan:
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


async def execute_restore_backup(ctx: Context, plan: Plan) -> Reply:
    accepted = await client(ctx, plan.provider).restore_backup(
        plan.params["database_id"], plan.params["backup_id"]
    )
    return started_reply(
        ctx, plan, f"Restoring a backup into {plan.params['database_name']}", accepted
    )


async def prepare_empty(ctx: Context, values: dict[str, Any]) -> Plan:
    found = await _find(ctx, Role.ADMIN, values["db"])
    plan = db_plan(
        "empty", found, f"empty {found.database.name} ({found.scope.label}): delete all its data"
    )
    plan.destructive = True
    plan.confirm_name = found.database.name
    return plan


async def execute_empty(ctx: Context, plan: Plan) -> Reply:
    accepted = await client(ctx, plan.provider).empty(plan.params["database_id"])
    return started_reply(ctx, plan, f"Emptying {plan.params['database_name']}", accepted)


async def prepare_schedule(ctx: Context, values: dict[str, Any]) -> Plan:
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


async def execute_schedule(ctx: Context, plan: Plan) -> Reply:
    api = client(ctx, plan.provider)
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
    found = await _find(ctx, Role.OPERATOR, values["db"])
    return db_plan("export", found, f"export {found.database.name}")


async def execute_export(ctx: Context, plan: Plan) -> Reply:
    export = await client(ctx, plan.provider).export(plan.params["database_id"])
    return Reply(
        title=f"Export of {plan.params['database_name']} is ready ({_size(export.size)})",
        text="The one-time download link was sent to the requester privately.",
        private_text=f"One-time link to the export of {plan.params['database_name']}: "
        f"{export.url.get_secret_value()}",
    )


async def prepare_backup_link(ctx: Context, values: dict[str, Any]) -> Plan:
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


async def execute_backup_link(ctx: Context, plan: Plan) -> Reply:
    package = await client(ctx, plan.provider).backup_package(
        plan.params["database_id"], plan.params["backup_id"]
    )
    return Reply(
        title=f"Download link for backup {plan.params['backup_id'][:12]} is ready",
        text="The one-time link was sent to the requester privately.",
        private_text=f"One-time link to backup {plan.params['backup_id']}: "
        f"{package.backup_url.get_secret_value()}",
    )


def register(registry: Registry) -> None:
    """Add the v1-only verbs to `registry`."""

    def add(**kwargs: Any) -> None:
        registry.add(Verb(kinds=V1, group="Backups (v1)", **kwargs))

    add(
        name="backups",
        summary="List a v1 database's backups",
        pattern="<db>",
        example="backups legacy-orders",
        role=Role.VIEWER,
        prepare=prepare_backups,
        execute=execute_backups,
    )
    add(
        name="backup",
        summary="Take a manual backup (snapshot) of a v1 database",
        pattern="<db>",
        example="backup legacy-orders",
        role=Role.OPERATOR,
        prepare=prepare_backup,
        execute=execute_backup,
    )
    add(
        name="restore-backup",
        summary="Restore a backup into a v1 database (approval)",
        pattern="<db> <backup>",
        example="restore-backup legacy-orders 4be1c2",
        role=Role.ADMIN,
        destructive=True,
        prepare=prepare_restore_backup,
        execute=execute_restore_backup,
    )
    add(
        name="backup-schedule",
        summary="Show or set (time=H:MM:SS UTC) the daily backup time",
        pattern="<db>",
        example="backup-schedule legacy-orders time=3:30:00",
        role=Role.VIEWER,
        options=BackupScheduleOptions,
        prepare=prepare_schedule,
        execute=execute_schedule,
    )
    add(
        name="backup-link",
        summary="A one-time download link of a backup, sent to you only",
        pattern="<db> <backup>",
        example="backup-link legacy-orders 4be1c2",
        role=Role.OPERATOR,
        prepare=prepare_backup_link,
        execute=execute_backup_link,
    )
    add(
        name="export",
        summary="Export a v1 database; the one-time link is sent to you only",
        pattern="<db>",
        example="export legacy-orders",
        role=Role.OPERATOR,
        prepare=prepare_export,
        execute=execute_export,
    )
    add(
        name="empty",
        summary="Delete all data of a v1 database (approval, typed name)",
        pattern="<db>",
        example="empty legacy-sandbox",
        role=Role.ADMIN,
        destructive=True,
        prepare=prepare_empty,
        execute=execute_empty,
    )
