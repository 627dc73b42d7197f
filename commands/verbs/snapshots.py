"""GrapheneDB Console snapshots: `snapshots`, `snapshot`, `restore`.

Source: seeds/graphenedb-console-api.txt (snapshots, restore, create from
snapshot). A snapshot is named by its id or a prefix of at least 6
characters, looked up in the databases the channel may view.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from clients.errors import ApiError
from commands.adapters.console import console_client
from commands.context import Context
from commands.options import EnvOption, NoOptions
from commands.plan import Plan
from commands.registry import Rights, verb
from commands.resolve import Found
from commands.safety import console_step, safety_snapshot, wants_safety_snapshot, with_safety
from commands.targets import (
    CONSOLE,
    check_database_name,
    db_plan,
    find,
    free_database_name,
    listed,
    new_database_reply,
    not_searched,
    one_by_id,
    require_id_prefix,
    scopes,
    single_scope,
    started_reply,
    target_of,
)
from commands.verbs.databases import prepare_operate
from core.reply import Reply, Table
from core.words import utc_text
from permissions.policy import SOURCE_ROLE, Target
from permissions.roles import Role


class RestoreOptions(NoOptions):
    """`restore`: `env=` of the target or new database, `source=` the snapshot's database."""

    env: str | None = None
    source: str | None = Field(default=None, description="database the snapshot was taken of")


async def prepare_snapshots(ctx: Context, values: dict[str, Any]) -> Plan:
    """The database whose snapshots to list (viewer)."""
    found = await find(ctx, CONSOLE, Role.VIEWER, values["db"], values.get("env"))
    return db_plan("read", found, f"look at {found.database.name}", **values)


@verb(
    "snapshots",
    "<db>",
    role=Role.VIEWER,
    prepare=prepare_snapshots,
    options=EnvOption,
    example="snapshots orders-db env=production",
    group="Snapshots",
)
async def snapshots(ctx: Context, plan: Plan) -> Reply:
    """List a database's manual snapshots

    Id, creation time, status and size.
    """
    snaps = await console_client(ctx, plan.provider).snapshots(plan.params["database_id"])
    table = Table(columns=["Snapshot", "Created", "Status", "Size"])
    for snap in snaps:
        table.rows.append([snap.id, utc_text(snap.created_at), snap.status or "?", snap.size])
    if not snaps:
        table.note = "no manual snapshots"
    return Reply(title=f"Snapshots of {plan.params['database_name']}", tables=[table])


async def prepare_snapshot(ctx: Context, values: dict[str, Any]) -> Plan:
    """The database to snapshot (operator)."""
    return await prepare_operate(ctx, values, "snapshot")


@verb(
    "snapshot",
    "<db>",
    role=Role.OPERATOR,
    prepare=prepare_snapshot,
    options=EnvOption,
    example="snapshot sandbox-db",
    group="Snapshots",
)
async def snapshot(ctx: Context, plan: Plan) -> Reply:
    """Take a manual snapshot of a database

    `POST .../snapshot`; the tracker follows the operation.
    """
    started = await console_client(ctx, plan.provider).take_snapshot(plan.params["database_id"])
    return started_reply(ctx, plan, f"Taking a snapshot of {plan.params['database_name']}", started)


async def _find_snapshot(
    ctx: Context, snapshot: str, source: str | None, env: str | None
) -> tuple[Found, Any]:
    """The snapshot whose id is or starts with `snapshot` (at least 6 characters), and
    the database it was taken of.

    A look-up only (reads, in every environment the channel may view): restoring it
    copies data out of that database's environment, so `prepare_restore` puts that
    environment in the plan's `sources`, which the pipeline decides (at least
    operator there) before anything is sent.
    """
    require_id_prefix(snapshot, "snapshot")
    if source:
        candidates = [await find(ctx, CONSOLE, Role.VIEWER, source, env)]
    else:
        wanted = await scopes(ctx, CONSOLE, Role.VIEWER, env)
        found_in = await listed(ctx, wanted, fresh=False)
        candidates = [Found(scope, db) for scope, databases in found_in for db in databases]
    snapshots: list[tuple[Found, Any]] = []
    for found in candidates:
        api = console_client(ctx, found.scope.provider.name)
        try:
            snaps = await api.snapshots(found.database.id)
        except ApiError as exc:
            if source:
                raise
            where = f"snapshots of {found.database.name} ({found.scope.label})"
            ctx.unreachable[where] = exc
            continue
        snapshots.extend((found, snap) for snap in snaps)
    where = "found" + not_searched(ctx.unreachable)
    return one_by_id(snapshots, lambda pair: str(pair[1].id), snapshot, "snapshot", where)


async def source_targets(ctx: Context, origin: Found, snapshot_env: str) -> list[Target]:
    """The environments a restore copies data out of: the snapshot's database's, and the
    snapshot's own when the API names another one (GUESS: the seeds never show them
    differ; the stricter reading is kept)."""
    sources = [target_of(origin.scope)]
    if snapshot_env and snapshot_env != origin.scope.environment.id:
        provider = origin.scope.provider
        envs = await ctx.services.resolver.environments(provider)
        env = next((e for e in envs if e.id == snapshot_env), None)
        name = env.name if env is not None else snapshot_env
        production = bool(env.production) if env is not None else True
        sources.append(Target(provider.name, snapshot_env, name, production))
    return sources


async def prepare_restore(ctx: Context, values: dict[str, Any]) -> Plan:
    """`into <db>`: replace its data (admin, destructive, safety snapshot);
    `as <new-name>`: a new database from the snapshot (operator). Either way the
    snapshot's environment is a source (at least operator there)."""
    origin, snap = await _find_snapshot(ctx, values["snapshot"], values.get("source"), None)
    snapshot_env = snap.environment_id or origin.scope.environment.id
    sources = await source_targets(ctx, origin, snapshot_env)
    if values.get("db"):
        target = await find(ctx, CONSOLE, Role.ADMIN, values["db"], values.get("env"))
        plan = db_plan(
            "restore",
            target,
            f"restore snapshot {snap.id[:12]} of {origin.database.name} INTO "
            f"{target.database.name} in {target.scope.label}, replacing its data",
            snapshot_id=snap.id,
            snapshot_environment_id=snapshot_env,
            mode="into",
        )
        plan.destructive = True
        plan.role = Role.ADMIN
        plan.sources = sources
        plan.details = [("Data lost", f"current data of {target.database.name}")]
        plan.params["snapshot_first"] = wants_safety_snapshot(ctx, target.scope)
        return plan
    new_name = check_database_name(values["new_name"])
    dest = (
        await single_scope(ctx, CONSOLE, Role.OPERATOR, values["env"])
        if values.get("env")
        else origin.scope
    )
    await free_database_name(ctx, dest, new_name, "restore <snapshot> as <another-name>")
    return Plan(
        verb="restore",
        provider=dest.provider.name,
        targets=[target_of(dest)],
        params={
            "database_id": "",  # the new database's, once the API says it (see `restore`)
            "source_database_id": origin.database.id,
            "database_name": new_name,
            "environment_id": dest.environment.id,
            "snapshot_id": snap.id,
            "snapshot_environment_id": snapshot_env,
            "mode": "as",
        },
        summary=f"restore snapshot {snap.id[:12]} of {origin.database.name} as new database "
        f"{new_name} in {dest.environment.name}",
        role=Role.OPERATOR,
        sources=sources,
    )


@verb(
    "restore",
    "<snapshot> into <db>",
    grammars=("<snapshot> into <db>", "<snapshot> as <new-name>"),
    role=Role.OPERATOR,
    prepare=prepare_restore,
    options=RestoreOptions,
    example="restore 3f9c2a into orders-db env=staging",
    group="Snapshots",
    rights=(
        Rights(
            form="<snapshot> as <new-name>",
            role=Role.OPERATOR,
            source=SOURCE_ROLE,
        ),
        Rights(
            form="<snapshot> into <db>",
            role=Role.ADMIN,
            approval=True,
            source=SOURCE_ROLE,
        ),
    ),
)
async def restore(ctx: Context, plan: Plan) -> Reply:
    """Restore a snapshot as a new database, or into a database (replacing its data)

    Into: the safety snapshot first when planned, then `POST .../restore`;
    as: `POST` a new database from the snapshot, whose operation the tracker
    follows under the new database (its id from the answer, else found by
    name in the target environment).
    """
    p = plan.params
    api = console_client(ctx, plan.provider)
    if p["mode"] == "into":
        safety = await safety_snapshot(ctx, plan)
        started = await console_step(
            ctx,
            "restore",
            p["database_id"],
            "restore",
            lambda: api.restore_snapshot(
                p["database_id"], p["snapshot_id"], p["snapshot_environment_id"]
            ),
            provider=plan.provider,
        )
        return with_safety(
            started_reply(ctx, plan, f"Restoring into {p['database_name']}", started), safety
        )
    started = await api.create_from_snapshot(
        p["snapshot_id"], p["snapshot_environment_id"], p["environment_id"], p["database_name"]
    )
    # The operation runs on the new database: followed there, never under the source.
    return await new_database_reply(
        ctx, plan, f"Creating {p['database_name']} from a snapshot", started
    )
