"""TypeDB servers (kind `typedb`): `health`, `dbs`, `create-db`, `delete-db`, `schema`,
and the helpers
the other TypeDB verb modules share.

Source: seeds/typedb-http-api.txt. A TypeDB server is one environment named
after its provider, so bindings, protection and approvals work as for
GrapheneDB environments; each verb is a `prepare` (resolve, pick the role, pin
what will run in the plan) and the decorated function (call the API from the
plan alone). Queries and transactions are in commands/verbs/queries.py.

Users are in commands/verbs/typedb_users.py.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import Field

from clients.errors import ApiError
from commands.adapters.typedb import typedb_client
from commands.context import Context
from commands.grammar import parse
from commands.options import NoOptions
from commands.plan import Plan
from commands.registry import verb
from commands.targets import (
    TYPEDB,
    databases_in,
    db_plan,
    find,
    prepare_read,
    scopes,
    single_scope,
    target_of,
)
from commands.typeql import count_types
from core.errors import UserError
from core.reply import Attachment, Reply, Table
from permissions.roles import Role

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,63}$")


class ServerOption(NoOptions):
    """`env=`: the TypeDB server (its provider name)."""

    env: str | None = Field(default=None, description="the TypeDB server (provider name)")


def subcommand(ctx: Context) -> str:
    """The literal word after the verb (`user add`, `tx commit`).

    The registry checks it against the verb's patterns but does not return it.
    """
    return parse(ctx.invocation.text, ctx.services.slash_command).args[0].lower()


def check_name(name: str, what: str) -> str:
    """`name` if it is a valid TypeDB database or user name; UserError saying what is."""
    if not _NAME.match(name):
        raise UserError(
            f"{name!r} is not a valid {what}: use 1-64 letters, digits, `_` and `-`, "
            "starting with a letter or `_`"
        )
    return name


@verb(
    "health",
    role=Role.VIEWER,
    prepare=prepare_read,
    kinds=TYPEDB,
    options=ServerOption,
    aliases=("version",),
    example="health",
    group="TypeDB",
)
async def health(ctx: Context, plan: Plan) -> Reply:
    """Health and version of the TypeDB servers this channel may view

    `/health` and `/v1/version` of each TypeDB server the channel may view.
    """
    table = Table(columns=["Provider", "Healthy", "Distribution", "Version"])
    seen: set[str] = set()
    for scope in await scopes(ctx, TYPEDB, Role.VIEWER, plan.params.get("env")):
        name = scope.provider.name
        if name in seen:
            continue
        seen.add(name)
        api = typedb_client(ctx, name)
        try:
            await api.health()
            healthy = "yes"
        except ApiError as exc:
            healthy = f"no: {exc.describe()}"
        try:
            version = await api.version()
            distribution, number = version.distribution or "?", version.version or "?"
        except ApiError:
            distribution, number = "?", "?"
        table.rows.append([name, healthy, distribution, number])
    return Reply(title="TypeDB servers", tables=[table])


@verb(
    "dbs",
    role=Role.VIEWER,
    prepare=prepare_read,
    kinds=TYPEDB,
    options=ServerOption,
    example="dbs",
    group="TypeDB",
)
async def dbs(ctx: Context, plan: Plan) -> Reply:
    """List the databases of the TypeDB servers this channel may view

    The databases of every TypeDB server the channel may view.
    """
    table = Table(columns=["Database", "Server"])
    for scope in await scopes(ctx, TYPEDB, Role.VIEWER, plan.params.get("env")):
        for db in await databases_in(ctx, scope):
            table.rows.append([db.name, scope.provider.name])
    if not table.rows:
        table.note = "no databases"
    return Reply(title="TypeDB databases", tables=[table])


async def prepare_create_db(ctx: Context, values: dict[str, Any]) -> Plan:
    """The new database's name and the one server meant (operator)."""
    name = check_name(values["name"], "database name")
    scope = await single_scope(ctx, TYPEDB, Role.OPERATOR, values.get("env"))
    return Plan(
        verb="create-db",
        provider=scope.provider.name,
        targets=[target_of(scope)],
        params={"database_id": name, "database_name": name, "environment_id": scope.provider.name},
        summary=f"create database {name} on {scope.provider.name}",
    )


@verb(
    "create-db",
    "<name>",
    role=Role.OPERATOR,
    prepare=prepare_create_db,
    kinds=TYPEDB,
    options=ServerOption,
    example="create-db inventory2 env=graph",
    group="TypeDB",
)
async def create_db(ctx: Context, plan: Plan) -> Reply:
    """Create a TypeDB database"""
    name = plan.params["database_name"]
    await typedb_client(ctx, plan.provider).create_database(name)
    ctx.services.resolver.invalidate(plan.provider)
    return Reply(title=f"Created database {name}", text=f"On {plan.provider}.")


async def prepare_delete_db(ctx: Context, values: dict[str, Any]) -> Plan:
    """The database to delete (admin); the approver must type its name."""
    found = await find(ctx, TYPEDB, Role.ADMIN, values["name"], values.get("env"))
    name = found.database.name
    plan = db_plan(
        "delete-db", found, f"delete database {name} on {found.scope.provider.name} and its data"
    )
    plan.destructive = True
    plan.confirm_name = name
    plan.details = [("Server", found.scope.provider.name)]
    return plan


@verb(
    "delete-db",
    "<name>",
    role=Role.ADMIN,
    prepare=prepare_delete_db,
    kinds=TYPEDB,
    options=ServerOption,
    destructive=True,
    example="delete-db inventory2",
    group="TypeDB",
)
async def delete_db(ctx: Context, plan: Plan) -> Reply:
    """Delete a TypeDB database and its data (the approver types its name)"""
    name = plan.params["database_name"]
    await typedb_client(ctx, plan.provider).delete_database(name)
    ctx.services.resolver.invalidate(plan.provider)
    return Reply(title=f"Deleted database {name}", text=f"On {plan.provider}.")


async def prepare_schema(ctx: Context, values: dict[str, Any]) -> Plan:
    """The database whose schema to send (viewer); `types` alone may follow."""
    which = values.get("which")
    if which is not None and which.lower() != "types":
        raise UserError(f"after the database only the word `types` may follow, not {which!r}")
    found = await find(ctx, TYPEDB, Role.VIEWER, values["db"], values.get("env"))
    return db_plan(
        "schema", found, f"schema of {found.database.name}", types_only=which is not None
    )


@verb(
    "schema",
    "<db> [<which>]",
    role=Role.VIEWER,
    prepare=prepare_schema,
    kinds=TYPEDB,
    options=ServerOption,
    example="schema social types",
    group="TypeDB",
)
async def schema(ctx: Context, plan: Plan) -> Reply:
    """A database's schema as a file (`types`: types only, no functions)

    The schema as an attachment, with its size and type counts in the reply.
    """
    name = plan.params["database_name"]
    api = typedb_client(ctx, plan.provider)
    types_only = bool(plan.params.get("types_only"))
    text = await (api.type_schema(name) if types_only else api.schema(name))
    title = f"{'Type schema' if types_only else 'Schema'} of {name}"
    if not text.strip():
        return Reply(title=title, text="No schema is defined yet.")
    counts = count_types(text)
    parts = [
        f"{counts[kind]} {kind} type{'' if counts[kind] == 1 else 's'}"
        for kind in ("entity", "relation", "attribute")
    ]
    if not types_only:
        parts.append(f"{counts['function']} function{'' if counts['function'] == 1 else 's'}")
    lines = len(text.splitlines())
    return Reply(
        title=title,
        text=f"{lines} lines: {', '.join(parts)}. The text is attached.",
        attachment=Attachment(filename=f"{name}-schema.tql", content=text, title=title),
    )
