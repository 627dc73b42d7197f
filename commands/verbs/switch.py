"""Connection switches: `switch`, `switch-back`, and disaster recovery (`dr`).

Source: seeds/graphenedb-console-api.txt (connection switch, clone). The
safety nets (commands/safety.py): a snapshot before the switch where policy
asks, a pre-flight of the target when planned and again just before, and a
"Switch back" button (itself an approval) for a while after, usable once.
Each request that changes something is a step of approved work
(commands/safety.py `console_step`): a restarted bot resumes it, never twice.
"""

from __future__ import annotations

import secrets
from typing import Any

from pydantic import Field

from clients.errors import ApiError
from clients.graphenedb import Started
from commands.adapters.console import console_client
from commands.context import Context
from commands.execution import step_key
from commands.options import EnvOption
from commands.plan import Plan
from commands.registry import verb
from commands.safety import (
    announce_stop,
    console_step,
    ended_text,
    offer_switch_back,
    preflight,
    safety_snapshot,
    wait_for,
    wait_until_running,
    wants_safety_snapshot,
    with_safety,
)
from commands.targets import (
    CONSOLE,
    database_named,
    db_plan,
    find,
    free_database_name,
    started_reply,
    target_of,
)
from core.errors import UserError
from core.kinds import ProviderKind
from core.reply import Reply
from permissions.audit import iso_time
from permissions.policy import Target
from permissions.roles import Role


class SwitchOptions(EnvOption):
    """`switch`: `env=` of the database, `target-env=` of the target."""

    target_env: str | None = None


class DrOptions(EnvOption):
    """`dr`: `name=` of the clone."""

    name: str | None = Field(default=None, description="name of the clone")


async def prepare_switch(ctx: Context, values: dict[str, Any]) -> Plan:
    """Both databases (admin, same provider); the target must pass the pre-flight now."""
    source = await find(ctx, CONSOLE, Role.ADMIN, values["db"], values.get("env"))
    target = await find(ctx, CONSOLE, Role.ADMIN, values["target_db"], values.get("target_env"))
    if source.scope.provider.name != target.scope.provider.name:
        raise UserError("both databases must belong to the same provider")
    if source.database.id == target.database.id:
        raise UserError("a database cannot be switched to itself")
    plan = db_plan(
        "switch",
        source,
        f"switch the connection URL of {source.database.name} in {source.scope.label} "
        f"to {target.database.name} in {target.scope.label}",
        target_id=target.database.id,
        target_name=target.database.name,
    )
    if target.scope.environment.id != source.scope.environment.id:
        plan.targets.append(target_of(target.scope))
    await preflight(
        console_client(ctx, target.scope.provider.name), target.database.id, target.database.name
    )
    plan.destructive = True
    plan.details = [("Connection URL", source.database.domain_name or "?")]
    plan.params["snapshot_first"] = wants_safety_snapshot(ctx, source.scope)
    plan.params["preflight_target"] = True
    plan.params["production"] = target_of(source.scope).production
    plan.params["environment_name"] = source.scope.environment.name
    return plan


async def _switch(ctx: Context, plan: Plan) -> Reply:
    """Safety snapshot if planned, the pre-flight again, then the switch; offers a way back."""
    p = plan.params
    api = console_client(ctx, plan.provider)
    safety = await safety_snapshot(ctx, plan)

    async def checked_switch() -> Started:
        await preflight(api, p["target_id"], p["target_name"])
        return await api.switch_connection(p["database_id"], p["target_id"])

    started = await console_step(
        ctx, "switch", p["database_id"], "switch", checked_switch, provider=plan.provider
    )
    reply = started_reply(
        ctx, plan, f"Switching {p['database_name']}'s connection URL to {p['target_name']}", started
    )
    offer_switch_back(
        ctx, plan, reply, p["database_id"], p["database_name"], p["target_id"], p["target_name"]
    )
    return with_safety(reply, safety)


@verb(
    "switch",
    "<db> to <target-db>",
    role=Role.ADMIN,
    prepare=prepare_switch,
    options=SwitchOptions,
    destructive=True,
    example="switch orders-db to orders-replica",
    group="Databases",
)
async def switch(ctx: Context, plan: Plan) -> Reply:
    """Point a database's connection URL at another database

    `POST .../switch` (seeds: connection switch); the answer carries a
    "Switch back" button for `switch_back_minutes` (commands/safety.py).
    """
    return await _switch(ctx, plan)


def _closed_window() -> UserError:
    return UserError(
        "the window to switch back has closed; use `switch` to point the connection URL "
        "again (it needs an approval)"
    )


def _already_used(used_at: float | None) -> UserError:
    when = iso_time(used_at) if used_at is not None else "before"
    return UserError(
        f'this switch was already switched back (at {when}); a "Switch back" button works '
        "once. Use `switch` to point the connection URL again (it needs an approval)"
    )


def waiting_switch_back(ctx: Context, record_id: str) -> str | None:
    """The id of a switch-back of switch `record_id` that waits for an approval (not
    expired), or None: a switch is switched back once, so a second request would only
    end "already switched back" after its approval."""
    approvals = ctx.services.approvals
    now = approvals.now()
    for approval in approvals.pending():
        params = approval.args.get("params") or {}
        if (
            approval.verb == "switch-back"
            and params.get("switch_back_id") == record_id
            and approval.expires_at > now
        ):
            return approval.id
    return None


async def prepare_switch_back(ctx: Context, values: dict[str, Any]) -> Plan:
    """The recorded switch (same channel, within its window, not used yet), reversed."""
    store = ctx.services.switch_backs
    record = store.get(values["id"]) if store else None
    if store is None or record is None:
        raise UserError(f"no switch to undo with id {values['id']!r}")
    if record.channel != ctx.invocation.channel:
        raise UserError("that switch was made from another channel; switch it back there")
    if record.used_at is not None:
        raise _already_used(record.used_at)
    if store.expired(record):
        raise _closed_window()
    waiting = waiting_switch_back(ctx, record.id)
    if waiting is not None:
        raise UserError(
            f"a switch-back of this switch already waits for an approval ({waiting}); "
            "approve or deny that one (`pending` lists it)"
        )
    target = Target(
        record.provider, record.environment_id, record.environment_name, record.production
    )
    # The URL now belongs to the former target: move it back to the origin.
    await preflight(console_client(ctx, record.provider), record.origin_id, record.origin_name)
    return Plan(
        verb="switch-back",
        provider=record.provider,
        targets=[target],
        params={
            "database_id": record.target_id,
            "database_name": record.target_name,
            "environment_id": record.environment_id,
            "kind": ProviderKind.GRAPHENEDB,
            "target_id": record.origin_id,
            "target_name": record.origin_name,
            "switch_back_id": record.id,
            "preflight_target": True,
            "production": record.production,
            "environment_name": record.environment_name,
        },
        summary=f"switch the connection URL back from {record.target_name} to "
        f"{record.origin_name} in {record.environment_name}/{record.provider}",
        destructive=True,
    )


@verb(
    "switch-back",
    "<id>",
    role=Role.ADMIN,
    prepare=prepare_switch_back,
    destructive=True,
    example="switch-back 7Hk2mQ9x",
    group="Databases",
)
async def switch_back(ctx: Context, plan: Plan) -> Reply:
    """Undo a connection switch within its window, once (approval)

    The same steps as `switch`, from the former target back to the origin. The
    switch's record is marked used first (atomic: of two approved switch-backs of one
    switch, one runs; a resumed run keeps its mark); a switch-back that provably did
    nothing (refused by the pre-flight or the API) frees it again.
    """
    store = ctx.services.switch_backs
    record_id = plan.params["switch_back_id"]
    if store is None or ctx.dry_run:
        return await _switch(ctx, plan)
    by = step_key(ctx) or f"command:{secrets.token_urlsafe(6)}"
    use = store.use(record_id, by)
    if use == "already_used":
        record = store.get(record_id)
        raise _already_used(record.used_at if record else None)
    if use == "expired":
        raise _closed_window()
    if use == "unknown":
        raise UserError(f"no switch to undo with id {record_id!r}")
    try:
        return await _switch(ctx, plan)
    except UserError:
        store.release(record_id, by)  # refused before the switch: nothing was done
        raise
    except ApiError as exc:
        if exc.outcome == "not done":
            store.release(record_id, by)
        raise


async def prepare_dr(ctx: Context, values: dict[str, Any]) -> Plan:
    """The database to recover (admin) and the name of its clone (`<db>-dr` by default)."""
    found = await find(ctx, CONSOLE, Role.ADMIN, values["db"], values.get("env"))
    clone_name = values.get("name") or f"{found.database.name}-dr"
    await free_database_name(ctx, found.scope, clone_name, "name=<another-name>")
    plan = db_plan(
        "dr",
        found,
        f"disaster recovery of {found.database.name} in {found.scope.label}: clone it as "
        f"{clone_name}, then switch its connection URL to the clone",
        clone_name=clone_name,
    )
    plan.destructive = True
    return plan


@verb(
    "dr",
    "<db>",
    role=Role.ADMIN,
    prepare=prepare_dr,
    options=DrOptions,
    destructive=True,
    example="dr orders-db env=production",
    group="Databases",
)
async def dr(ctx: Context, plan: Plan) -> Reply:
    """Disaster recovery: clone, then switch the connection URL to the clone

    Clones the database, waits until the clone's operation ends and the clone
    is running (each wait within the `[operations]` limits: it ends, never
    hangs), checks it (pre-flight), then switches the connection URL to it.
    The clone is the database the answer names, else the one of that name in
    the environment. The clone and the switch are steps of approved work: a
    restarted bot finds out whether each reached the API before sending it again.
    If a step fails or a wait gives up, it stops, says how far it got and what is
    known, tells the incident channel, and the original is never switched to a
    clone that is not ready.
    """
    p = plan.params
    api = console_client(ctx, plan.provider)
    steps: list[str] = []
    try:
        clone = await console_step(
            ctx,
            "clone",
            p["database_id"],
            "clone",
            lambda: api.clone(p["database_id"], p["clone_name"], p["environment_id"]),
            provider=plan.provider,
            new_database=(p["environment_id"], p["clone_name"]),
        )
        steps.append(f"clone started ({clone.operation_id or 'no operation to follow'})")
        await ctx.report(f"Cloning {p['database_name']} to {p['clone_name']}…")
        if clone.operation_id:
            what = f"clone of {p['database_name']}"
            outcome = await wait_for(ctx, plan, p["database_id"], clone.operation_id, "clone", what)
            if outcome.status != "finished":
                raise UserError(
                    ended_text(f"the clone of {p['database_name']}", outcome, p["database_name"])
                )
        clone_db = clone.database or await database_named(
            ctx, plan.provider, p["environment_id"], p["clone_name"]
        )
        if clone_db is None:
            raise UserError(
                f"the API did not say which database the clone is, and no database called "
                f"{p['clone_name']} is listed in the environment"
            )
        await ctx.report(f"Waiting for {clone_db.name} to be running…")
        running, why = await wait_until_running(ctx, plan, clone_db.id, clone_db.name)
        if not running:
            raise UserError(why)
        steps.append(f"clone {clone_db.name} is ready")
        await ctx.report(f"{clone_db.name} is ready; switching the connection URL to it…")
        new = clone_db

        async def checked_switch() -> Started:
            await preflight(api, new.id, new.name)
            return await api.switch_connection(p["database_id"], new.id)

        switch = await console_step(
            ctx, "switch", p["database_id"], "switch", checked_switch, provider=plan.provider
        )
        steps.append(f"connection switch started ({switch.operation_id})")
    except (ApiError, UserError) as exc:
        ctx.services.resolver.invalidate(plan.provider)
        done = "; ".join(steps) or "nothing was started"
        text = exc.describe() if isinstance(exc, ApiError) else str(exc)
        text = f"{text}\nState so far: {done}. The original database was not switched."
        title = f"Disaster recovery of {p['database_name']} stopped"
        if steps:
            announce_stop(ctx, plan, title, text)
        return Reply(status="error", title=title, text=text)
    reply = started_reply(ctx, plan, f"Disaster recovery of {p['database_name']}", switch)
    reply.text = "; ".join(steps) + ". " + reply.text
    offer_switch_back(
        ctx,
        plan,
        reply,
        p["database_id"],
        p["database_name"],
        clone_db.id,
        clone_db.name,
    )
    return reply
