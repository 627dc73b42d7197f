"""GrapheneDB databases, Console and v1: `show`, `create`, `pause`, `resume`, `restart`,
`clone`, `terminate`, `import`, `ops`.

Each verb is a `prepare` (resolve names within the channel's environments, say
what will happen, pin ids in the plan) and the decorated function, which calls
the API from the plan alone, so an approved plan runs exactly what the card
showed. Where Console and v1 differ, the function asks the kind's adapter
(commands/adapters/); Console-only verbs call `console_client` directly.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from commands.adapters import database_adapter
from commands.adapters.console import console_client
from commands.context import Context
from commands.offers import offered_actions, state_of
from commands.options import EnvOption, NoOptions
from commands.plan import Plan
from commands.registry import Rights, verb
from commands.targets import (
    CONSOLE,
    GRAPHENEDB,
    check_database_name,
    db_plan,
    find,
    free_database_name,
    single_scope,
    started_reply,
    target_of,
)
from core.errors import UserError
from core.reply import Reply
from permissions.policy import SOURCE_ROLE
from permissions.roles import Role


class CreateOptions(NoOptions):
    """`create`: plan, version (required), edition, extras; v1 also needs `region=`."""

    plan: str = Field(description="a plan name; `plans` lists them")
    version: str = Field(description="a version; `versions` lists them")
    edition: str = "community"
    extras: str = ""
    env: str | None = None
    region: str | None = Field(default=None, description="v1 only: AWS region")


class RestartOptions(EnvOption):
    """`restart`: `reset=false` lets connections drain (Console only)."""

    reset: bool = True


class CloneOptions(NoOptions):
    """`clone`: `env=` the destination environment, `source-env=` where the source is."""

    env: str | None = Field(default=None, description="destination environment")
    source_env: str | None = None


class OpsOptions(EnvOption):
    """`ops`: how many operations to show."""

    limit: int = Field(default=10, ge=1, le=50)


async def prepare_show(ctx: Context, values: dict[str, Any]) -> Plan:
    """The database to show, where the channel holds viewer."""
    found = await find(ctx, GRAPHENEDB, Role.VIEWER, values["db"], values.get("env"))
    return db_plan("show", found, f"show {found.database.name}")


@verb(
    "show",
    "<db>",
    role=Role.VIEWER,
    prepare=prepare_show,
    kinds=GRAPHENEDB,
    options=EnvOption,
    aliases=("status",),
    example="show orders-db env=staging",
    group="Databases",
)
async def show(ctx: Context, plan: Plan) -> Reply:
    """Show a database: state, flags, plan, version, domain, and what you may do with it

    The fields depend on the kind (adapter `show`); the buttons are the actions
    the person asking may take on it (commands/offers.py), each a command line
    run through the pipeline when clicked.
    """
    reply = await database_adapter(plan.params["kind"]).show(ctx, plan)
    if not ctx.dry_run:
        reply.actions.extend(offered_actions(ctx, plan, state_of(reply.fields)))
    return reply


async def prepare_create(ctx: Context, values: dict[str, Any]) -> Plan:
    """A new database in the one environment meant (`env=`, or the only one allowed)."""
    check_database_name(values["name"])
    scope = await single_scope(ctx, GRAPHENEDB, Role.OPERATOR, values.get("env"))
    name = await free_database_name(ctx, scope, values["name"], "create <another-name>")
    extras = [e.strip() for e in values.get("extras", "").split(",") if e.strip()]
    kind_params = database_adapter(scope.provider.kind).create_params(values)
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


@verb(
    "create",
    "<name>",
    role=Role.OPERATOR,
    prepare=prepare_create,
    kinds=GRAPHENEDB,
    options=CreateOptions,
    example="create orders-copy plan=ds1 version=5.24.0 env=staging",
    group="Databases",
)
async def create(ctx: Context, plan: Plan) -> Reply:
    """Create a database in an environment

    Started asynchronously; the tracker follows the operation in the thread.
    """
    return await database_adapter(plan.params["kind"]).create(ctx, plan)


async def prepare_operate(
    ctx: Context, values: dict[str, Any], verb_name: str, kinds: frozenset[Any] = CONSOLE
) -> Plan:
    """A plan to act on one database where the channel holds operator (pause, resume...)."""
    found = await find(ctx, kinds, Role.OPERATOR, values["db"], values.get("env"))
    extra = {}
    if verb_name == "restart":
        extra = database_adapter(found.scope.provider.kind).restart_params(values)
    summary = f"{verb_name} {found.database.name} in {found.scope.label}"
    return db_plan(verb_name, found, summary, **extra)


async def prepare_pause(ctx: Context, values: dict[str, Any]) -> Plan:
    """The running database to pause."""
    return await prepare_operate(ctx, values, "pause")


@verb(
    "pause",
    "<db>",
    role=Role.OPERATOR,
    prepare=prepare_pause,
    options=EnvOption,
    example="pause catalog-db",
    group="Databases",
)
async def pause(ctx: Context, plan: Plan) -> Reply:
    """Pause a running database (saves costs)

    Console `POST .../pause`; the tracker follows the operation.
    """
    started = await console_client(ctx, plan.provider).pause(plan.params["database_id"])
    return started_reply(ctx, plan, f"Pausing {plan.params['database_name']}", started)


async def prepare_resume(ctx: Context, values: dict[str, Any]) -> Plan:
    """The paused database to resume."""
    return await prepare_operate(ctx, values, "resume")


@verb(
    "resume",
    "<db>",
    role=Role.OPERATOR,
    prepare=prepare_resume,
    options=EnvOption,
    aliases=("start",),
    example="resume catalog-db",
    group="Databases",
)
async def resume(ctx: Context, plan: Plan) -> Reply:
    """Resume a paused database

    Console `POST .../start`; the tracker follows the operation.
    """
    started = await console_client(ctx, plan.provider).resume(plan.params["database_id"])
    return started_reply(ctx, plan, f"Resuming {plan.params['database_name']}", started)


async def prepare_restart(ctx: Context, values: dict[str, Any]) -> Plan:
    """The database to restart (Console or v1), with `reset` where the kind has it."""
    return await prepare_operate(ctx, values, "restart", GRAPHENEDB)


@verb(
    "restart",
    "<db>",
    role=Role.OPERATOR,
    prepare=prepare_restart,
    kinds=GRAPHENEDB,
    options=RestartOptions,
    example="restart orders-db env=staging",
    group="Databases",
)
async def restart(ctx: Context, plan: Plan) -> Reply:
    """Restart a database (reset=false keeps connections draining)"""
    return await database_adapter(plan.params["kind"]).restart(ctx, plan)


async def prepare_clone(ctx: Context, values: dict[str, Any]) -> Plan:
    """The destination environment (target, operator, same provider) and the source
    database, whose environment the data comes out of (source, at least operator:
    decided by the pipeline with `permissions.policy.decide_source`)."""
    new_name = check_database_name(values["new_name"])
    source = await find(ctx, CONSOLE, Role.VIEWER, values["db"], values.get("source_env"))
    dest = (
        await single_scope(ctx, CONSOLE, Role.OPERATOR, values["env"])
        if values.get("env")
        else source.scope
    )
    if dest.provider.name != source.scope.provider.name:
        raise UserError("a clone stays within one provider; pick an environment of the same one")
    await free_database_name(ctx, dest, new_name, "clone <db> <another-name>")
    plan = db_plan(
        "clone",
        source,
        f"clone {source.database.name} in {source.scope.label} "
        f"as {new_name} in {dest.environment.name}",
        new_name=new_name,
        destination_environment_id=dest.environment.id,
    )
    plan.targets = [target_of(dest)]
    plan.sources = [target_of(source.scope)]
    return plan


@verb(
    "clone",
    "<db> <new-name>",
    role=Role.OPERATOR,
    prepare=prepare_clone,
    options=CloneOptions,
    example="clone sandbox-db sandbox-copy env=development",
    group="Databases",
    rights=(Rights(role=Role.OPERATOR, source=SOURCE_ROLE),),
)
async def clone(ctx: Context, plan: Plan) -> Reply:
    """Clone a database, into the same or another environment"""
    p = plan.params
    started = await console_client(ctx, plan.provider).clone(
        p["database_id"], p["new_name"], p["destination_environment_id"]
    )
    return started_reply(ctx, plan, f"Cloning {p['database_name']} as {p['new_name']}", started)


async def prepare_terminate(ctx: Context, values: dict[str, Any]) -> Plan:
    """The database to delete (admin); the approver must type its name."""
    found = await find(ctx, GRAPHENEDB, Role.ADMIN, values["db"], values.get("env"))
    plan = db_plan("terminate", found, f"terminate {found.database.name} in {found.scope.label}")
    plan.destructive = True
    plan.confirm_name = found.database.name
    plan.details = [("Database id", found.database.id)]
    plan.params.update(database_adapter(found.scope.provider.kind).terminate_params(ctx, found))
    return plan


@verb(
    "terminate",
    "<db>",
    role=Role.ADMIN,
    prepare=prepare_terminate,
    kinds=GRAPHENEDB,
    options=EnvOption,
    destructive=True,
    aliases=("delete",),
    example="terminate sandbox-db",
    group="Databases",
)
async def terminate(ctx: Context, plan: Plan) -> Reply:
    """Delete a database for good (the approver types its name)

    On Console, a safety snapshot first when policy asks (commands/safety.py).
    """
    return await database_adapter(plan.params["kind"]).terminate(ctx, plan)


async def prepare_import(ctx: Context, values: dict[str, Any]) -> Plan:
    """The database (operator) and what its kind imports from (a file, or an S3 URL)."""
    found = await find(ctx, GRAPHENEDB, Role.OPERATOR, values["db"], values.get("env"))
    return await database_adapter(found.scope.provider.kind).plan_import(ctx, found, values)


@verb(
    "import",
    "<db> <file>",
    role=Role.OPERATOR,
    prepare=prepare_import,
    kinds=GRAPHENEDB,
    options=EnvOption,
    destructive=True,
    example="import sandbox-db https://files.example.com/exports/graph.dump",
    group="Databases",
)
async def import_data(ctx: Context, plan: Plan) -> Reply:
    """Replace a database's data with an archive (approval)

    Console: an https:// URL, downloaded when asked (its size and sha256 on
    the approval card), or a local file from the shell; uploaded with a
    Content-Length once approved (commands/archives.py). v1: an S3 https://
    URL the API fetches itself.
    """
    return await database_adapter(plan.params["kind"]).import_archive(ctx, plan)


async def prepare_ops(ctx: Context, values: dict[str, Any]) -> Plan:
    """The database whose operations to list (viewer)."""
    found = await find(ctx, GRAPHENEDB, Role.VIEWER, values["db"], values.get("env"))
    return db_plan("ops", found, f"operations of {found.database.name}", limit=values["limit"])


@verb(
    "ops",
    "<db>",
    role=Role.VIEWER,
    prepare=prepare_ops,
    kinds=GRAPHENEDB,
    options=OpsOptions,
    aliases=("operations",),
    example="ops orders-db env=staging",
    group="Databases",
)
async def ops(ctx: Context, plan: Plan) -> Reply:
    """List a database's recent operations and their steps"""
    return await database_adapter(plan.params["kind"]).operations(ctx, plan)
