"""`watch`, `unwatch` and `watches`: state changes of a database posted to the channel."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from commands.context import Context
from commands.plan import Plan
from commands.registry import Registry, Verb
from commands.targets import GRAPHENEDB, db_plan, find, target_of
from core.errors import UserError
from core.refs import UserRef
from core.reply import Reply, Table
from permissions.roles import Role


class EnvOption(BaseModel):
    model_config = ConfigDict(extra="forbid")
    env: str | None = None


def _store(ctx: Context) -> Any:
    if ctx.services.watches is None:
        raise UserError("watching is not available in this bot")
    return ctx.services.watches


async def prepare_watch(ctx: Context, values: dict[str, Any]) -> Plan:
    found = await find(ctx, GRAPHENEDB, Role.VIEWER, values["db"], values.get("env"))
    plan = db_plan("watch", found, f"watch {found.database.name} in {found.scope.label}")
    target = target_of(found.scope)
    plan.params["environment_name"] = target.environment_name
    return plan


async def execute_watch(ctx: Context, plan: Plan) -> Reply:
    p = plan.params
    if ctx.dry_run:
        return Reply(title=f"Would watch {p['database_name']}")
    added = _store(ctx).add(
        provider=plan.provider,
        environment_id=p["environment_id"],
        environment_name=p["environment_name"],
        database_id=p["database_id"],
        database_name=p["database_name"],
        channel=ctx.invocation.channel,
        user=ctx.invocation.user,
    )
    if not added:
        return Reply(
            status="info",
            text=f"This channel already watches {p['database_name']}.",
            visibility="ephemeral",
        )
    return Reply(
        title=f"Watching {p['database_name']}",
        text="Changes of its state, and incidents, will be posted here until "
        f"`{ctx.services.slash_command} unwatch {p['database_name']}`.",
    )


async def execute_unwatch(ctx: Context, plan: Plan) -> Reply:
    p = plan.params
    if ctx.dry_run:
        return Reply(title=f"Would stop watching {p['database_name']}")
    if not _store(ctx).remove(ctx.invocation.channel, plan.provider, p["database_id"]):
        return Reply(
            status="info",
            text=f"This channel was not watching {p['database_name']}.",
            visibility="ephemeral",
        )
    return Reply(title=f"No longer watching {p['database_name']}")


async def run_watches(ctx: Context, values: dict[str, Any]) -> Reply:
    table = Table(columns=["Database", "Environment", "Last state", "Since", "By"])
    for watch in _store(ctx).active(ctx.invocation.channel):
        state = (watch.last_state or {}).get("state", "not looked at yet")
        table.rows.append(
            [
                watch.database_name,
                f"{watch.environment_name}/{watch.provider}",
                state,
                f"{watch.changes} change(s)",
                str(UserRef(watch.created_by)),
            ]
        )
    if not table.rows:
        table.note = "this channel watches nothing; `watch <db>` starts"
    return Reply(status="info", title="Watched databases", tables=[table], visibility="ephemeral")


def register(registry: Registry) -> None:
    """Add the watch verbs."""
    common: dict[str, Any] = {"kinds": GRAPHENEDB, "group": "Watching", "options": EnvOption}
    registry.add(
        Verb(
            name="watch",
            summary="Post this database's state changes and incidents here until unwatch",
            pattern="<db>",
            example="watch orders-db env=staging",
            role=Role.VIEWER,
            prepare=prepare_watch,
            execute=execute_watch,
            **common,
        )
    )
    registry.add(
        Verb(
            name="unwatch",
            summary="Stop posting a database's state changes here",
            pattern="<db>",
            example="unwatch orders-db env=staging",
            role=Role.VIEWER,
            prepare=prepare_watch,
            execute=execute_unwatch,
            **common,
        )
    )
    registry.add(
        Verb(
            name="watches",
            summary="The databases this channel watches",
            pattern="",
            example="watches",
            role=None,
            direct=run_watches,
            kinds=GRAPHENEDB,
            group="Watching",
        )
    )
