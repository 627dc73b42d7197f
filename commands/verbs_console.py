"""Verbs for GrapheneDB Console API providers (kind `graphenedb`).

Each verb is a `prepare` (resolve names, say what will happen, pin ids in the
plan) and an `execute` (call the API from the plan alone), so an approved plan
runs exactly what the approval card showed.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from clients.errors import ApiError
from clients.graphenedb import Archive, ConsoleClient, Database, Operation
from commands import verbs_v1
from commands.context import Context, Plan, UserError
from commands.registry import Registry, Verb
from commands.reply import Reply, Table
from commands.resolve import Found, eligible_bindings
from commands.safety import (
    offer_switch_back,
    preflight,
    safety_snapshot,
    wants_safety_snapshot,
    with_safety,
)
from commands.targets import (
    CONSOLE,
    GRAPHENEDB,
    TYPEDB,
    V1,
    client_of,
    db_plan,
    find,
    providers_of,
    scopes,
    single_scope,
    started_reply,
    target_of,
)
from operations.follow import Backoff, follow, no_progress
from permissions.policy import Target, protection
from permissions.roles import Role

_NAME = re.compile(r"^[a-z][a-z0-9-]{2,39}$")
DR_POLL = Backoff(first=1.0, factor=1.2, cap=10.0)


class _Options(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EnvOption(_Options):
    env: str | None = Field(default=None, description="environment name or id")


class ProviderOption(_Options):
    provider: str | None = None


class CreateOptions(_Options):
    plan: str
    version: str
    edition: str = "community"
    extras: str = ""
    env: str | None = None
    region: str | None = Field(default=None, description="v1 only: AWS region")


class RestartOptions(EnvOption):
    reset: bool = True


class CloneOptions(_Options):
    env: str | None = Field(default=None, description="destination environment")
    source_env: str | None = None


class RestoreOptions(_Options):
    env: str | None = None
    source: str | None = Field(default=None, description="database the snapshot was taken of")


class OpsOptions(EnvOption):
    limit: int = Field(default=10, ge=1, le=50)


def _check_name(name: str) -> str:
    if not _NAME.match(name):
        raise UserError(
            f"{name!r} is not a valid database name: use 3-40 characters, lower-case letters, "
            "digits and dashes, starting with a letter (e.g. orders-copy)"
        )
    return name


# -- helpers ---------------------------------------------------------------


def client(ctx: Context, provider: str) -> ConsoleClient:
    """The Console client of a provider."""
    value: ConsoleClient = client_of(ctx, provider, ConsoleClient)
    return value


def _flags(db: Database) -> str:
    status = db.status
    flags = [
        name
        for name, on in (
            ("pending", status.is_pending),
            ("locked", status.is_locked),
            ("INCIDENT", status.under_incident),
            ("needs restart", status.needs_restart),
        )
        if on
    ]
    return ", ".join(flags)


# -- read verbs ---------------------------------------------------------------


async def prepare_read(ctx: Context, values: dict[str, Any]) -> Plan:
    """Read verbs without a single target: look only where the channel may view."""
    return Plan(verb="read", provider="", targets=[], params=values, summary="read")


async def execute_envs(ctx: Context, plan: Plan) -> Reply:
    policy = ctx.services.permissions.policy_for(ctx.invocation.channel)
    from permissions.policy import effective_binding

    table = Table(columns=["Environment", "Provider", "Type", "This channel", "Protected"])
    every_kind = frozenset(p.kind for p in ctx.services.providers.values())
    for scope in await scopes(ctx, every_kind, Role.VIEWER):
        target = target_of(scope)
        binding = effective_binding(policy, target)
        table.rows.append(
            [
                scope.environment.name,
                scope.provider.name,
                scope.environment.type or scope.provider.kind,
                binding.role.label if binding else "-",
                protection(policy, target).text,
            ]
        )
    return Reply(title="Environments", tables=[table])


async def execute_list(ctx: Context, plan: Plan) -> Reply:
    table = Table(columns=["Database", "Environment", "State", "Plan", "Version", "Flags"])
    for scope in await scopes(ctx, GRAPHENEDB, Role.VIEWER, plan.params.get("env")):
        for db in await ctx.services.resolver.databases(scope.provider, scope.environment.id):
            table.rows.append(
                [
                    db.name,
                    scope.label,
                    db.status.state,
                    db.plan or "",
                    str(db.version or ""),
                    _flags(db),
                ]
            )
    if not table.rows:
        table.note = "no databases"
    return Reply(title="Databases", tables=[table])


async def prepare_show(ctx: Context, values: dict[str, Any]) -> Plan:
    found = await find(ctx, GRAPHENEDB, Role.VIEWER, values["db"], values.get("env"))
    return db_plan("show", found, f"show {found.database.name}")


async def execute_show(ctx: Context, plan: Plan) -> Reply:
    if plan.params["kind"] in V1:
        return await verbs_v1.v1_show(ctx, plan)
    api = client(ctx, plan.provider)
    db = await api.database(plan.params["database_id"])
    status = db.status
    health = status.last_health_check
    return Reply(
        title=f"{db.name}",
        fields=[
            ("State", status.state),
            ("Flags", _flags(db) or "none"),
            ("Plan", db.plan or "?"),
            ("Version", str(db.version or "?")),
            ("Domain", db.domain_name or "?"),
            (
                "Health",
                f"{health.status} ({health.last_check_seconds_ago}s ago)" if health else "?",
            ),
            ("Id", db.id),
            ("Created", db.created_at or "?"),
        ],
    )


def _catalog_executor(method: str, title: str, columns: list[str]) -> Any:
    async def execute(ctx: Context, plan: Plan) -> Reply:
        policy = ctx.services.permissions.policy_for(ctx.invocation.channel)
        providers = providers_of(ctx, GRAPHENEDB)
        wanted = plan.params.get("provider")
        names = {b.provider for b in eligible_bindings(policy, Role.VIEWER, providers)}
        if wanted:
            if wanted not in names:
                raise UserError(f"this channel has no binding on provider {wanted!r}")
            names = {wanted}
        table = Table(columns=["Provider", *columns])
        for name in sorted(names):
            if ctx.provider(name).kind in V1:
                table.rows.extend(await verbs_v1.v1_catalog(ctx, name, method))
                continue
            for item in await getattr(client(ctx, name), method)():
                data = item.model_dump()
                table.rows.append([name, *(str(data.get(c.lower(), "")) for c in columns)])
        return Reply(title=title, tables=[table])

    return execute


async def prepare_db_read(ctx: Context, values: dict[str, Any]) -> Plan:
    found = await find(ctx, CONSOLE, Role.VIEWER, values["db"], values.get("env"))
    return db_plan("read", found, f"look at {found.database.name}", **values)


async def execute_snapshots(ctx: Context, plan: Plan) -> Reply:
    snaps = await client(ctx, plan.provider).snapshots(plan.params["database_id"])
    table = Table(columns=["Snapshot", "Created", "Status", "Size"])
    for snap in snaps:
        size = f"{snap.size_bytes / 1e6:.1f} MB" if snap.size_bytes else "?"
        table.rows.append([snap.id, snap.created_at or "?", snap.status or "?", size])
    if not snaps:
        table.note = "no manual snapshots"
    return Reply(title=f"Snapshots of {plan.params['database_name']}", tables=[table])


async def prepare_ops(ctx: Context, values: dict[str, Any]) -> Plan:
    found = await find(ctx, GRAPHENEDB, Role.VIEWER, values["db"], values.get("env"))
    return db_plan("ops", found, f"operations of {found.database.name}", limit=values["limit"])


async def execute_ops(ctx: Context, plan: Plan) -> Reply:
    if plan.params["kind"] in V1:
        return await verbs_v1.v1_ops(ctx, plan)
    ops = await client(ctx, plan.provider).operations(plan.params["database_id"])
    limit = int(plan.params.get("limit") or 10)
    table = Table(columns=["Operation", "Type", "Status", "Steps", "Started"])
    for op in ops[:limit]:
        table.rows.append(
            [op.id, op.operation_type or "?", op.status, _steps_text(op), str(op.started_at or "")]
        )
    if len(ops) > limit:
        table.note = f"showing {limit} of {len(ops)}; add limit=N for more"
    if not ops:
        table.note = "no operations"
    return Reply(title=f"Operations of {plan.params['database_name']}", tables=[table])


def _steps_text(op: Operation) -> str:
    return " > ".join(
        f"{s.name}{'' if s.status in (None, 'finished') else f' ({s.status})'}" for s in op.steps
    )


# -- simple mutating verbs ----------------------------------------------------------


def _simple(verb: str, method: str, title: str, kinds: frozenset[str] = CONSOLE) -> tuple[Any, Any]:
    async def prepare(ctx: Context, values: dict[str, Any]) -> Plan:
        found = await find(ctx, kinds, Role.OPERATOR, values["db"], values.get("env"))
        extra = {"reset": values["reset"]} if "reset" in values else {}
        if found.scope.provider.kind in V1:
            extra = {}  # v1 restarts have no reset flag
        return db_plan(verb, found, f"{verb} {found.database.name} in {found.scope.label}", **extra)

    async def execute(ctx: Context, plan: Plan) -> Reply:
        api = ctx.provider(plan.provider).client
        call = getattr(api, method)
        if "reset" in plan.params:
            started = await call(plan.params["database_id"], reset=plan.params["reset"])
        else:
            started = await call(plan.params["database_id"])
        return started_reply(ctx, plan, f"{title} {plan.params['database_name']}", started)

    return prepare, execute


async def prepare_create(ctx: Context, values: dict[str, Any]) -> Plan:
    name = _check_name(values["name"])
    scope = await single_scope(ctx, GRAPHENEDB, Role.OPERATOR, values.get("env"))
    extras = [e.strip() for e in values.get("extras", "").split(",") if e.strip()]
    kind_params = verbs_v1.v1_create_params(values) if scope.provider.kind in V1 else {}
    return Plan(
        verb="create",
        provider=scope.provider.name,
        targets=[target_of(scope)],
        params={
            "database_id": "",
            "database_name": name,
            "environment_id": scope.environment.id,
            "plan": values["plan"],
            "version": values["version"],
            "edition": values["edition"],
            "extras": extras,
            "kind": scope.provider.kind,
            **kind_params,
        },
        summary=f"create {name} in {scope.label}",
    )


async def execute_create(ctx: Context, plan: Plan) -> Reply:
    if plan.params["kind"] in V1:
        return await verbs_v1.v1_create(ctx, plan)
    p = plan.params
    started = await client(ctx, plan.provider).create_database(
        p["environment_id"],
        p["database_name"],
        p["plan"],
        p["version"],
        p["edition"],
        p["extras"],
    )
    if started.database:
        p["database_id"] = started.database.id
    return started_reply(ctx, plan, f"Creating {p['database_name']}", started)


async def prepare_clone(ctx: Context, values: dict[str, Any]) -> Plan:
    new_name = _check_name(values["new_name"])
    source = await find(ctx, CONSOLE, Role.OPERATOR, values["db"], values.get("source_env"))
    dest = (
        await single_scope(ctx, CONSOLE, Role.OPERATOR, values["env"])
        if values.get("env")
        else source.scope
    )
    if dest.provider.name != source.scope.provider.name:
        raise UserError("a clone stays within one provider; pick an environment of the same one")
    plan = db_plan(
        "clone",
        source,
        f"clone {source.database.name} in {source.scope.label} "
        f"as {new_name} in {dest.environment.name}",
        new_name=new_name,
        destination_environment_id=dest.environment.id,
    )
    if dest.environment.id != source.scope.environment.id:
        plan.targets.append(target_of(dest))
    return plan


async def execute_clone(ctx: Context, plan: Plan) -> Reply:
    p = plan.params
    started = await client(ctx, plan.provider).clone(
        p["database_id"], p["new_name"], p["destination_environment_id"]
    )
    return started_reply(ctx, plan, f"Cloning {p['database_name']} as {p['new_name']}", started)


# -- snapshots and restore ---------------------------------------------------------


async def _find_snapshot(
    ctx: Context, snapshot: str, source: str | None, env: str | None
) -> tuple[Found, Any]:
    """The snapshot whose id is or starts with `snapshot` (at least 6 characters)."""
    if len(snapshot) < 6:
        raise UserError("give at least the first 6 characters of the snapshot id")
    if source:
        candidates = [await find(ctx, CONSOLE, Role.VIEWER, source, env)]
    else:
        candidates = []
        for scope in await scopes(ctx, CONSOLE, Role.VIEWER, env):
            for db in await ctx.services.resolver.databases(scope.provider, scope.environment.id):
                candidates.append(Found(scope, db))
    matches = []
    for found in candidates:
        api = client(ctx, found.scope.provider.name)
        for snap in await api.snapshots(found.database.id):
            if snap.id == snapshot or snap.id.startswith(snapshot):
                matches.append((found, snap))
    if not matches:
        raise UserError(f"no snapshot {snapshot!r} found; `snapshots <db>` lists them")
    if len(matches) > 1:
        raise UserError(f"{snapshot!r} matches {len(matches)} snapshots; give more of the id")
    return matches[0]


async def prepare_restore(ctx: Context, values: dict[str, Any]) -> Plan:
    origin, snap = await _find_snapshot(ctx, values["snapshot"], values.get("source"), None)
    snapshot_env = snap.environment_id or origin.scope.environment.id
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
        plan.details = [("Data lost", f"current data of {target.database.name}")]
        plan.params["snapshot_first"] = wants_safety_snapshot(ctx, target.scope)
        return plan
    new_name = _check_name(values["new_name"])
    dest = (
        await single_scope(ctx, CONSOLE, Role.OPERATOR, values["env"])
        if values.get("env")
        else origin.scope
    )
    return Plan(
        verb="restore",
        provider=dest.provider.name,
        targets=[target_of(dest)],
        params={
            "database_id": origin.database.id,
            "database_name": new_name,
            "environment_id": dest.environment.id,
            "snapshot_id": snap.id,
            "snapshot_environment_id": snapshot_env,
            "mode": "as",
        },
        summary=f"restore snapshot {snap.id[:12]} of {origin.database.name} as new database "
        f"{new_name} in {dest.environment.name}",
        role=Role.OPERATOR,
    )


async def execute_restore(ctx: Context, plan: Plan) -> Reply:
    p = plan.params
    api = client(ctx, plan.provider)
    if p["mode"] == "into":
        safety = await safety_snapshot(ctx, plan)
        started = await api.restore_snapshot(
            p["database_id"], p["snapshot_id"], p["snapshot_environment_id"]
        )
        return with_safety(
            started_reply(ctx, plan, f"Restoring into {p['database_name']}", started), safety
        )
    started = await api.create_from_snapshot(
        p["snapshot_id"], p["snapshot_environment_id"], p["environment_id"], p["database_name"]
    )
    return started_reply(ctx, plan, f"Creating {p['database_name']} from a snapshot", started)


# -- destructive verbs -------------------------------------------------------------------


async def prepare_terminate(ctx: Context, values: dict[str, Any]) -> Plan:
    found = await find(ctx, GRAPHENEDB, Role.ADMIN, values["db"], values.get("env"))
    plan = db_plan("terminate", found, f"terminate {found.database.name} in {found.scope.label}")
    plan.destructive = True
    plan.confirm_name = found.database.name
    plan.details = [("Database id", found.database.id)]
    if found.scope.provider.kind in CONSOLE:
        plan.params["snapshot_first"] = wants_safety_snapshot(ctx, found.scope)
    return plan


async def execute_terminate(ctx: Context, plan: Plan) -> Reply:
    api = ctx.provider(plan.provider).client
    if plan.params["kind"] in V1:
        started = await api.delete_database(plan.params["database_id"])
        return started_reply(ctx, plan, f"Terminating {plan.params['database_name']}", started)
    safety = await safety_snapshot(ctx, plan)
    started = await api.terminate(plan.params["database_id"])
    reply = started_reply(ctx, plan, f"Terminating {plan.params['database_name']}", started)
    return with_safety(reply, safety)


async def prepare_switch(ctx: Context, values: dict[str, Any]) -> Plan:
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
        client(ctx, target.scope.provider.name), target.database.id, target.database.name
    )
    plan.destructive = True
    plan.details = [("Connection URL", source.database.domain_name or "?")]
    plan.params["snapshot_first"] = wants_safety_snapshot(ctx, source.scope)
    plan.params["preflight_target"] = True
    plan.params["production"] = target_of(source.scope).production
    plan.params["environment_name"] = source.scope.environment.name
    return plan


async def execute_switch(ctx: Context, plan: Plan) -> Reply:
    p = plan.params
    api = client(ctx, plan.provider)
    safety = await safety_snapshot(ctx, plan)
    await preflight(api, p["target_id"], p["target_name"])
    started = await api.switch_connection(p["database_id"], p["target_id"])
    reply = started_reply(
        ctx, plan, f"Switching {p['database_name']}'s connection URL to {p['target_name']}", started
    )
    offer_switch_back(
        ctx, plan, reply, p["database_id"], p["database_name"], p["target_id"], p["target_name"]
    )
    return with_safety(reply, safety)


async def prepare_switch_back(ctx: Context, values: dict[str, Any]) -> Plan:
    store = ctx.services.switch_backs
    record = store.get(values["id"]) if store else None
    if record is None:
        raise UserError(f"no switch to undo with id {values['id']!r}")
    if record.channel != ctx.invocation.channel:
        raise UserError("that switch was made from another channel; switch it back there")
    if store.expired(record):
        raise UserError(
            "the window to switch back has closed; use `switch` to point the connection URL "
            "again (it needs an approval)"
        )
    target = Target(
        record.provider, record.environment_id, record.environment_name, record.production
    )
    # The URL now belongs to the former target: move it back to the origin.
    await preflight(client(ctx, record.provider), record.origin_id, record.origin_name)
    return Plan(
        verb="switch-back",
        provider=record.provider,
        targets=[target],
        params={
            "database_id": record.target_id,
            "database_name": record.target_name,
            "environment_id": record.environment_id,
            "kind": "graphenedb",
            "target_id": record.origin_id,
            "target_name": record.origin_name,
            "preflight_target": True,
            "production": record.production,
            "environment_name": record.environment_name,
        },
        summary=f"switch the connection URL back from {record.target_name} to "
        f"{record.origin_name} in {record.environment_name}/{record.provider}",
        destructive=True,
    )


async def prepare_import(ctx: Context, values: dict[str, Any]) -> Plan:
    found = await find(ctx, GRAPHENEDB, Role.OPERATOR, values["db"], values.get("env"))
    if found.scope.provider.kind in V1:
        url = verbs_v1.v1_import_url(values["file"])
        plan = db_plan(
            "import",
            found,
            f"import {url} into {found.database.name} in {found.scope.label}, replacing its data",
            file=url,
        )
        plan.destructive = True
        return plan
    if ctx.services.open_file is None:
        raise UserError("this transport cannot read files for import")
    ctx.services.open_file(ctx.invocation, values["file"])  # fail now if unreadable
    plan = db_plan(
        "import",
        found,
        f"import {values['file']} into {found.database.name} "
        f"in {found.scope.label}, replacing its data",
        file=values["file"],
    )
    plan.destructive = True
    return plan


async def execute_import(ctx: Context, plan: Plan) -> Reply:
    if plan.params["kind"] in V1:
        return await verbs_v1.v1_import(ctx, plan)
    assert ctx.services.open_file is not None
    local = Path(plan.params["file"]).expanduser()
    if local.is_file():  # the size is known: stream the file itself
        archive: Archive | Path = local
    else:  # the size is not: spool to a temporary file first (never to memory)
        archive = await Archive.spool(*ctx.services.open_file(ctx.invocation, plan.params["file"]))
    started = await client(ctx, plan.provider).import_archive(plan.params["database_id"], archive)
    return started_reply(ctx, plan, f"Importing into {plan.params['database_name']}", started)


async def prepare_dr(ctx: Context, values: dict[str, Any]) -> Plan:
    found = await find(ctx, CONSOLE, Role.ADMIN, values["db"], values.get("env"))
    clone_name = values.get("name") or f"{found.database.name}-dr"
    _check_name(clone_name)
    plan = db_plan(
        "dr",
        found,
        f"disaster recovery of {found.database.name} in {found.scope.label}: clone it as "
        f"{clone_name}, then switch its connection URL to the clone",
        clone_name=clone_name,
    )
    plan.destructive = True
    return plan


async def execute_dr(ctx: Context, plan: Plan) -> Reply:
    p = plan.params
    api = client(ctx, plan.provider)
    steps: list[str] = []
    try:
        clone = await api.clone(p["database_id"], p["clone_name"], p["environment_id"])
        steps.append(f"clone started ({clone.operation_id})")
        if clone.operation_id:
            outcome = await follow(
                api, p["database_id"], clone.operation_id, no_progress, backoff=DR_POLL
            )
            if outcome.status != "finished":
                raise UserError(f"the clone {outcome.status}: {outcome.error or 'no reason given'}")
        if clone.database is None:
            raise UserError("the API did not say which database the clone is")
        steps.append(f"clone {clone.database.name} is ready")
        await preflight(api, clone.database.id, clone.database.name)
        switch = await api.switch_connection(p["database_id"], clone.database.id)
        steps.append(f"connection switch started ({switch.operation_id})")
    except (ApiError, UserError) as exc:
        ctx.services.resolver.invalidate(plan.provider)
        done = "; ".join(steps) or "nothing was started"
        text = exc.describe() if isinstance(exc, ApiError) else str(exc)
        return Reply(
            status="error",
            title=f"Disaster recovery of {p['database_name']} stopped",
            text=f"{text}\nState so far: {done}. The original database was not switched.",
        )
    reply = started_reply(ctx, plan, f"Disaster recovery of {p['database_name']}", switch)
    reply.text = "; ".join(steps) + ". " + reply.text
    offer_switch_back(
        ctx,
        plan,
        reply,
        p["database_id"],
        p["database_name"],
        clone.database.id,
        clone.database.name,
    )
    return reply


# -- registration --------------------------------------------------------------


class DbOptions(EnvOption):
    pass


class SwitchOptions(EnvOption):
    target_env: str | None = None


class DrOptions(EnvOption):
    name: str | None = Field(default=None, description="name of the clone")


class ImportOptions(EnvOption):
    pass


def register(registry: Registry) -> None:
    """Add the GrapheneDB verbs (Console, and those v1 shares) to `registry`."""

    def add(kinds: frozenset[str] = CONSOLE, **kwargs: Any) -> None:
        registry.add(Verb(kinds=kinds, **kwargs))

    add(
        kinds=GRAPHENEDB | TYPEDB,
        name="envs",
        summary="List the environments this channel may use, with its role",
        pattern="",
        example="envs",
        role=Role.VIEWER,
        prepare=prepare_read,
        execute=execute_envs,
        aliases=("environments",),
    )
    add(
        kinds=GRAPHENEDB,
        name="list",
        summary="List databases, in one environment or all this channel may see",
        pattern="[<env>]",
        example="list staging",
        role=Role.VIEWER,
        prepare=lambda ctx, v: prepare_read(ctx, v),
        execute=execute_list,
        aliases=("ls",),
    )
    add(
        kinds=GRAPHENEDB,
        name="show",
        summary="Show a database: state, flags, plan, version, domain",
        pattern="<db>",
        example="show orders-db env=staging",
        role=Role.VIEWER,
        options=DbOptions,
        prepare=prepare_show,
        execute=execute_show,
        aliases=("status",),
    )
    for name, columns in (
        ("versions", ["Number", "Edition", "Vendor"]),
        ("plans", ["Name", "MemoryGb", "StorageGb"]),
        ("regions", ["Id", "Label"]),
    ):
        add(
            kinds=GRAPHENEDB,
            name=name,
            summary=f"List the {name} the provider offers",
            pattern="",
            example=name,
            role=Role.VIEWER,
            options=ProviderOption,
            prepare=prepare_read,
            execute=_catalog_executor(name, name.capitalize(), columns),
            group="Catalogs",
        )
    add(
        kinds=GRAPHENEDB,
        name="create",
        summary="Create a database in an environment",
        pattern="<name>",
        example="create orders-copy plan=ds1 version=5.24.0 env=staging",
        role=Role.OPERATOR,
        options=CreateOptions,
        prepare=prepare_create,
        execute=execute_create,
    )
    for verb, method, title, summary in (
        ("pause", "pause", "Pausing", "Pause a running database (saves costs)"),
        ("resume", "resume", "Resuming", "Resume a paused database"),
    ):
        prepare, execute = _simple(verb, method, title)
        add(
            name=verb,
            summary=summary,
            pattern="<db>",
            example=f"{verb} catalog-db",
            role=Role.OPERATOR,
            options=DbOptions,
            prepare=prepare,
            execute=execute,
            aliases=("start",) if verb == "resume" else (),
        )
    prepare, execute = _simple("restart", "restart", "Restarting", GRAPHENEDB)
    add(
        kinds=GRAPHENEDB,
        name="restart",
        summary="Restart a database (reset=false keeps connections draining)",
        pattern="<db>",
        example="restart orders-db env=staging",
        role=Role.OPERATOR,
        options=RestartOptions,
        prepare=prepare,
        execute=execute,
    )
    add(
        name="clone",
        summary="Clone a database, into the same or another environment",
        pattern="<db> <new-name>",
        example="clone sandbox-db sandbox-copy env=development",
        role=Role.OPERATOR,
        options=CloneOptions,
        prepare=prepare_clone,
        execute=execute_clone,
    )
    add(
        name="snapshots",
        summary="List a database's manual snapshots",
        pattern="<db>",
        example="snapshots orders-db env=production",
        role=Role.VIEWER,
        options=DbOptions,
        prepare=prepare_db_read,
        execute=execute_snapshots,
        group="Snapshots",
    )
    prepare, execute = _simple("snapshot", "take_snapshot", "Taking a snapshot of")
    add(
        name="snapshot",
        summary="Take a manual snapshot of a database",
        pattern="<db>",
        example="snapshot sandbox-db",
        role=Role.OPERATOR,
        options=DbOptions,
        prepare=prepare,
        execute=execute,
        group="Snapshots",
    )
    add(
        name="restore",
        summary="Restore a snapshot into a database (approval) or as a new one",
        pattern="<snapshot> into <db>",
        patterns=("<snapshot> into <db>", "<snapshot> as <new-name>"),
        example="restore 3f9c2a into orders-db env=staging",
        role=Role.OPERATOR,
        options=RestoreOptions,
        prepare=prepare_restore,
        execute=execute_restore,
        group="Snapshots",
    )
    add(
        name="switch-back",
        summary="Undo a connection switch within its window (approval)",
        pattern="<id>",
        example="switch-back 7Hk2mQ9x",
        role=Role.ADMIN,
        destructive=True,
        prepare=prepare_switch_back,
        execute=execute_switch,
    )
    add(
        kinds=GRAPHENEDB,
        name="terminate",
        summary="Delete a database for good (approval, typed name)",
        pattern="<db>",
        example="terminate sandbox-db",
        role=Role.ADMIN,
        options=DbOptions,
        destructive=True,
        prepare=prepare_terminate,
        execute=execute_terminate,
        aliases=("delete",),
    )
    add(
        name="switch",
        summary="Point a database's connection URL at another database (approval)",
        pattern="<db> to <target-db>",
        example="switch orders-db to orders-replica",
        role=Role.ADMIN,
        options=SwitchOptions,
        destructive=True,
        prepare=prepare_switch,
        execute=execute_switch,
    )
    add(
        kinds=GRAPHENEDB,
        name="import",
        summary="Replace a database's data with an archive (approval)",
        pattern="<db> <file>",
        example="import sandbox-db ./graph.dump",
        role=Role.OPERATOR,
        options=ImportOptions,
        destructive=True,
        prepare=prepare_import,
        execute=execute_import,
    )
    add(
        kinds=GRAPHENEDB,
        name="ops",
        summary="List a database's recent operations and their steps",
        pattern="<db>",
        example="ops orders-db env=staging",
        role=Role.VIEWER,
        options=OpsOptions,
        prepare=prepare_ops,
        execute=execute_ops,
        aliases=("operations",),
    )
    add(
        name="dr",
        summary="Disaster recovery: clone, then switch the connection URL (approval)",
        pattern="<db>",
        example="dr orders-db env=production",
        role=Role.ADMIN,
        options=DrOptions,
        destructive=True,
        prepare=prepare_dr,
        execute=execute_dr,
    )
