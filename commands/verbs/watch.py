"""`watch`, `unwatch` and `watches`: state changes of a database posted to the channel.

The watches are rows of operations/watch.py's `WatchStore`; its `Watcher`
polls them and posts each change (and incidents) through the outbox.
"""

from __future__ import annotations

from typing import Any

from commands.context import Context
from commands.options import EnvOption
from commands.plan import Plan
from commands.registry import Rights, verb
from commands.targets import GRAPHENEDB, db_plan, find, target_of
from core.errors import UserError
from core.refs import UserRef
from core.reply import Reply, Table
from core.words import plural
from operations.watch import WatchStore
from permissions.roles import Role


def _store(ctx: Context) -> WatchStore:
    if ctx.services.watches is None:
        raise UserError("watching is not available in this bot")
    return ctx.services.watches


async def prepare_watch(ctx: Context, values: dict[str, Any]) -> Plan:
    """The database to watch or unwatch (viewer), with its environment's name."""
    found = await find(ctx, GRAPHENEDB, Role.VIEWER, values["db"], values.get("env"))
    plan = db_plan("watch", found, f"watch {found.database.name} in {found.scope.label}")
    target = target_of(found.scope)
    plan.params["environment_name"] = target.environment_name
    return plan


@verb(
    "watch",
    "<db>",
    role=Role.VIEWER,
    prepare=prepare_watch,
    kinds=GRAPHENEDB,
    options=EnvOption,
    example="watch orders-db env=staging",
    group="Watching",
)
async def watch(ctx: Context, plan: Plan) -> Reply:
    """Post this database's state changes and incidents here until unwatch

    Records the watch (nothing in a dry run); "already watches" when it does.
    """
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
            title=f"Already watching {p['database_name']}",
            text=f"This channel already watches {p['database_name']}.",
            visibility="ephemeral",
        )
    return Reply(
        title=f"Watching {p['database_name']}",
        text="Changes of its state, and incidents, will be posted here until "
        f"`{ctx.services.slash_command} unwatch {p['database_name']}`.",
    )


@verb(
    "unwatch",
    "<db>",
    role=Role.VIEWER,
    prepare=prepare_watch,
    kinds=GRAPHENEDB,
    options=EnvOption,
    example="unwatch orders-db env=staging",
    group="Watching",
)
async def unwatch(ctx: Context, plan: Plan) -> Reply:
    """Stop posting a database's state changes here"""
    p = plan.params
    if ctx.dry_run:
        return Reply(title=f"Would stop watching {p['database_name']}")
    if not _store(ctx).remove(ctx.invocation.channel, plan.provider, p["database_id"]):
        return Reply(
            status="info",
            title=f"Not watching {p['database_name']}",
            text=f"This channel was not watching {p['database_name']}.",
            visibility="ephemeral",
        )
    return Reply(title=f"No longer watching {p['database_name']}")


@verb(
    "watches",
    kinds=GRAPHENEDB,
    example="watches",
    group="Watching",
    rights=(Rights(who="anyone"),),
)
async def watches(ctx: Context, values: dict[str, Any]) -> Reply:
    """The databases this channel watches

    Database, environment, last state seen, number of changes, who started it.
    """
    table = Table(columns=["Database", "Environment", "Last state", "Since", "By"])
    for each in _store(ctx).active(ctx.invocation.channel):
        state = (each.last_state or {}).get("state", "not looked at yet")
        table.rows.append(
            [
                each.database_name,
                f"{each.environment_name}/{each.provider}",
                state,
                plural(each.changes, "change"),
                str(UserRef(each.created_by)),
            ]
        )
    if not table.rows:
        table.note = "this channel watches nothing; `watch <db>` starts"
    return Reply(status="info", title="Watched databases", tables=[table], visibility="ephemeral")
