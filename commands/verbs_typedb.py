"""Verbs for TypeDB servers (kind `typedb`).

A TypeDB server is one environment named after its provider, so bindings,
protection and approvals work as for GrapheneDB environments. Like the Console
verbs, each verb is a `prepare` (resolve, pick the role, pin what will run in
the plan) and an `execute` (call the API from the plan alone).

How a query is typed: the TypeQL is ONE shell-quoted argument, e.g.
`query social 'match $p isa person, has name "Alice";'`. Unquoted words are
refused with the usage: shell splitting would silently drop the quotes of
TypeQL strings. A quoted query is never mistaken for a `key=value` option
because no TypeQL query starts with `word=`.

Rights of a query follow `commands.typeql.classify`: read -> viewer, write ->
operator, schema -> admin; in a protected environment write and schema queries
wait for an approval whose card shows the exact query. A channel without the
needed role is refused before any request is sent.

Multi-step transactions (`tx open|query|commit|rollback|close`): one open
transaction per (user, channel), kept in memory by `Transactions`. They do not
survive a bot restart (TypeDB closes them server-side after their timeout
anyway), and are forgotten after `TX_TIMEOUT_SECONDS`, the
`transactionTimeoutMillis` they are opened with. Write and schema
transactions are refused in protected environments: a commit cannot wait for
an approval longer than the transaction lives, so changes there go through a
single approved `query`.

Passwords (`user add`, `user passwd`) are never typed in the channel: the verb
answers with a `SecretPrompt`, the transport collects the password privately
and runs the same line again with `Invocation.secret` set.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, cast

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

from clients.errors import ApiError
from clients.typedb import TRANSACTION_TYPES, QueryAnswer, TransactionType, TypeDBClient
from clients.typedb import rows_to_table as concept_rows
from commands.context import Context, RoleTooLow
from commands.grammar import parse
from commands.plan import Plan
from commands.registry import Registry, UsageError, Verb
from commands.targets import TYPEDB, client_of, db_plan, find, scopes, single_scope, target_of
from commands.transactions import Key, OpenTransaction
from commands.typeql import QueryKind, classify, count_types
from core.errors import UserError
from core.refs import ChannelRef
from core.reply import Attachment, Reply, SecretPrompt, Table, denied, error
from permissions.policy import Target, effective_binding, is_protected
from permissions.roles import Role

DEFAULT_LIMIT = 20  # answers shown when no limit= is given
MAX_LIMIT = 200  # the most answers one reply may carry
INLINE_LINES = 30  # longer answers go into an attachment
LONG_TABLE_CHARS = 2500  # a table longer than this goes into an attachment
ATTACHED_TABLE_PREVIEW = 10  # rows still shown in the reply when the table is attached

QUERY_ROLE: dict[str, Role] = {"read": Role.VIEWER, "write": Role.OPERATOR, "schema": Role.ADMIN}
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,63}$")
_SECRET_OPTIONS = frozenset({"password", "passwd", "pwd", "pass", "secret"})


# -- options ------------------------------------------------------------------


class _Options(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EnvOption(_Options):
    env: str | None = Field(default=None, description="the TypeDB server (provider name)")


class QueryOptions(EnvOption):
    limit: int = Field(default=DEFAULT_LIMIT, ge=1, le=MAX_LIMIT)


class UserOptions(EnvOption):
    """Options of `user`; a password typed as an option is refused before anything runs."""

    @model_validator(mode="before")
    @classmethod
    def _no_typed_password(cls, data: Any) -> Any:
        if isinstance(data, dict) and _SECRET_OPTIONS & {str(k).lower() for k in data}:
            raise PydanticCustomError(
                "typed_password",
                "a password is never typed in the channel (nothing was sent; if others "
                "saw it, choose another one). Run the command without it and enter the "
                "password in the private prompt",
            )
        return data


@dataclass(frozen=True)
class _UserVerb(Verb):
    """`user`: words after the name of `add`/`passwd` may be a password typed by mistake,
    so they are refused without being repeated back."""

    def bind(self, args: tuple[str, ...], options: dict[str, str]) -> dict[str, Any]:
        if len(args) > 2 and args[0].lower() in ("add", "passwd"):
            raise UsageError(
                f"unexpected words after the user name ({len(args) - 2} not shown: a password "
                "is never typed in the channel; if others saw it, choose another one). "
                f"Usage: {self.usage}"
            )
        return super().bind(args, options)


# -- helpers ------------------------------------------------------------------


def client(ctx: Context, provider: str) -> TypeDBClient:
    """The TypeDB client of a provider."""
    value: TypeDBClient = client_of(ctx, provider, TypeDBClient)
    return value


def _subcommand(ctx: Context) -> str:
    """The literal word after the verb (`user add`, `tx commit`).

    The registry checks it against the verb's patterns but does not return it.
    """
    return parse(ctx.invocation.text, ctx.services.slash_command).args[0].lower()


def _check_name(name: str, what: str) -> str:
    if not _NAME.match(name):
        raise UserError(
            f"{name!r} is not a valid {what}: use 1-64 letters, digits, `_` and `-`, "
            "starting with a letter or `_`"
        )
    return name


def _protected(ctx: Context, targets: list[Target]) -> bool:
    policy = ctx.services.permissions.policy_for(ctx.invocation.channel)
    return any(is_protected(policy, target) for target in targets)


def _code(text: str) -> str:
    return f"```\n{text}\n```"


async def _plan_on_db(
    ctx: Context, verb: str, role: Role, name: str, env: str | None, summary: str, what: str
) -> Plan:
    """A plan on database `name`, needing `role` (`what` names the action in a refusal).

    When the channel holds `role` on no TypeDB server it may see, it is refused
    (RoleTooLow, audited as a denial) before any request, even a look-up.
    """
    visible = await scopes(ctx, TYPEDB, Role.VIEWER, env)
    policy = ctx.services.permissions.policy_for(ctx.invocation.channel)
    able, held = [], []
    for scope in visible:
        binding = effective_binding(policy, target_of(scope))
        if binding is not None and binding.role >= role:
            able.append(scope)
        elif binding is not None:
            held.append(f"{binding.role.label} on {scope.label}")
    if not able:
        channel = str(ChannelRef(ctx.invocation.channel))
        where = ", ".join(held) or "no role on a TypeDB server"
        raise RoleTooLow(f"{what} needs {role.label}; {channel} is {where}")
    found = await ctx.services.resolver.find_database(able, name)
    plan = db_plan(verb, found, summary.format(db=found.database.name))
    plan.role = role
    return plan


# -- rendering answers --------------------------------------------------------------


def _limit_note(total: int, limit: int, warning: str | None) -> str | None:
    """The note under an answer cut at `limit` (we ask the server for `limit + 1`)."""
    if total > limit:
        return (
            f"showing the first {limit} answers; there are more "
            f"(add limit=N, at most {MAX_LIMIT}, or narrow the query)"
        )
    if warning:
        return f"the server warned: {warning}"
    return None


def render_answer(title: str, answer: QueryAnswer, limit: int, stem: str) -> Reply:
    """A query answer as a table (concept rows) or pretty JSON (documents), capped at `limit`.

    Long answers go into an attachment named after `stem`.
    """
    note = _limit_note(len(answer.answers), limit, answer.warning)
    shown = answer.answers[:limit]
    if answer.answer_type == "conceptRows":
        columns, rows = concept_rows(shown)
        table = Table(columns=columns or ["answer"], rows=rows, note=note)
        if not rows:
            table.note = note or "no answers"
        reply = Reply(title=title, text=_count(len(rows)), tables=[table])
        size = sum(len(cell) + 3 for row in [table.columns, *rows] for cell in row)
        if size > LONG_TABLE_CHARS:
            lines = ["\t".join(table.columns), *("\t".join(row) for row in rows)]
            reply.attachment = Attachment(
                filename=f"{stem}.tsv", content="\n".join(lines) + "\n", title=title
            )
            table.rows = rows[:ATTACHED_TABLE_PREVIEW]
            table.note = f"first {len(table.rows)} rows; all {len(rows)} in the attached file" + (
                f"; {note}" if note else ""
            )
        return reply
    if answer.answer_type == "conceptDocuments":
        body = json.dumps(shown, indent=2, ensure_ascii=False, sort_keys=True)
        text = _count(len(shown)) + (f" ({note})" if note else "")
        reply = Reply(title=title, text=text)
        if len(body.splitlines()) > INLINE_LINES:
            reply.attachment = Attachment(filename=f"{stem}.json", content=body + "\n", title=title)
        else:
            reply.text += "\n" + _code(body)
        return reply
    text = "Done." + (f" ({note})" if note else "")
    return Reply(title=title, text=text)


def _count(n: int) -> str:
    return f"{n} answer{'' if n == 1 else 's'}"


# -- server verbs ------------------------------------------------------------------


async def prepare_read(ctx: Context, values: dict[str, Any]) -> Plan:
    """Read verbs over every server the channel may view: no single target."""
    return Plan(verb="read", provider="", targets=[], params=values, summary="read")


async def execute_health(ctx: Context, plan: Plan) -> Reply:
    """`/health` and `/v1/version` of each TypeDB server the channel may view."""
    table = Table(columns=["Provider", "Healthy", "Distribution", "Version"])
    seen: set[str] = set()
    for scope in await scopes(ctx, TYPEDB, Role.VIEWER, plan.params.get("env")):
        name = scope.provider.name
        if name in seen:
            continue
        seen.add(name)
        api = client(ctx, name)
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


async def execute_dbs(ctx: Context, plan: Plan) -> Reply:
    """The databases of every TypeDB server the channel may view."""
    table = Table(columns=["Database", "Server"])
    for scope in await scopes(ctx, TYPEDB, Role.VIEWER, plan.params.get("env")):
        for db in await ctx.services.resolver.databases(scope.provider, scope.environment.id):
            table.rows.append([db.name, scope.provider.name])
    if not table.rows:
        table.note = "no databases"
    return Reply(title="TypeDB databases", tables=[table])


# -- databases -------------------------------------------------------------------------


async def prepare_create_db(ctx: Context, values: dict[str, Any]) -> Plan:
    name = _check_name(values["name"], "database name")
    scope = await single_scope(ctx, TYPEDB, Role.OPERATOR, values.get("env"))
    return Plan(
        verb="create-db",
        provider=scope.provider.name,
        targets=[target_of(scope)],
        params={"database_id": name, "database_name": name, "environment_id": scope.provider.name},
        summary=f"create database {name} on {scope.provider.name}",
    )


async def execute_create_db(ctx: Context, plan: Plan) -> Reply:
    name = plan.params["database_name"]
    await client(ctx, plan.provider).create_database(name)
    ctx.services.resolver.invalidate(plan.provider)
    return Reply(title=f"Created database {name}", text=f"On {plan.provider}.")


async def prepare_delete_db(ctx: Context, values: dict[str, Any]) -> Plan:
    found = await find(ctx, TYPEDB, Role.ADMIN, values["name"], values.get("env"))
    name = found.database.name
    plan = db_plan(
        "delete-db", found, f"delete database {name} on {found.scope.provider.name} and its data"
    )
    plan.destructive = True
    plan.confirm_name = name
    plan.details = [("Server", found.scope.provider.name)]
    return plan


async def execute_delete_db(ctx: Context, plan: Plan) -> Reply:
    name = plan.params["database_name"]
    await client(ctx, plan.provider).delete_database(name)
    ctx.services.resolver.invalidate(plan.provider)
    return Reply(title=f"Deleted database {name}", text=f"On {plan.provider}.")


async def prepare_schema(ctx: Context, values: dict[str, Any]) -> Plan:
    which = values.get("which")
    if which is not None and which.lower() != "types":
        raise UserError(f"after the database only the word `types` may follow, not {which!r}")
    found = await find(ctx, TYPEDB, Role.VIEWER, values["db"], values.get("env"))
    return db_plan(
        "schema", found, f"schema of {found.database.name}", types_only=which is not None
    )


async def execute_schema(ctx: Context, plan: Plan) -> Reply:
    """The schema as an attachment, with its size and type counts in the reply."""
    name = plan.params["database_name"]
    api = client(ctx, plan.provider)
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


# -- users --------------------------------------------------------------------------------


async def _server_plan(ctx: Context, verb: str, env: str | None, summary: str) -> Plan:
    scope = await single_scope(ctx, TYPEDB, Role.ADMIN, env)
    return Plan(
        verb=verb,
        provider=scope.provider.name,
        targets=[target_of(scope)],
        params={"environment_id": scope.provider.name},
        summary=summary.format(server=scope.provider.name),
    )


async def prepare_users(ctx: Context, values: dict[str, Any]) -> Plan:
    return await _server_plan(ctx, "users", values.get("env"), "list the users of {server}")


async def execute_users(ctx: Context, plan: Plan) -> Reply:
    users = await client(ctx, plan.provider).users()
    table = Table(columns=["User"], rows=[[user.username] for user in users])
    return Reply(title=f"Users of {plan.provider}", tables=[table])


_USER_ACTIONS = {
    "add": "add user",
    "passwd": "change the password of user",
    "delete": "delete user",
}


async def prepare_user(ctx: Context, values: dict[str, Any]) -> Plan:
    action = _subcommand(ctx)
    name = _check_name(values["name"], "username")
    plan = await _server_plan(
        ctx, "user", values.get("env"), f"{_USER_ACTIONS[action]} {name} on {{server}}"
    )
    plan.params.update(action=action, username=name)
    if action == "delete":
        plan.destructive = True
        plan.details = [("User", name)]
    return plan


async def execute_user(ctx: Context, plan: Plan) -> Reply:
    """Add, re-password or delete a user; the password comes only from `Invocation.secret`."""
    action, name = plan.params["action"], plan.params["username"]
    api = client(ctx, plan.provider)
    if action == "delete":
        await api.delete_user(name)
        return Reply(title=f"Deleted user {name}", text=f"On {plan.provider}.")
    secret = ctx.invocation.secret
    if secret is None:
        return Reply(
            status="info",
            title=f"Password for {name}",
            text="Enter the password in the private prompt; it is never typed in the channel.",
            visibility="ephemeral",
            secret_prompt=SecretPrompt(label=f"Password for {name}", command=ctx.invocation.text),
        )
    if not secret.get_secret_value():
        return error("The password is empty; nothing was sent.")
    if action == "add":
        await api.create_user(name, secret)
        return Reply(title=f"Added user {name}", text=f"On {plan.provider}.")
    await api.update_password(name, secret)
    return Reply(title=f"Changed the password of {name}", text=f"On {plan.provider}.")


# -- queries ---------------------------------------------------------------------------


def _query_text(text: str) -> str:
    query = text.strip()
    if not query:
        raise UserError("the query is empty")
    return query


async def prepare_query(ctx: Context, values: dict[str, Any]) -> Plan:
    """Classify the query to pick the role; protected write/schema queries need approval."""
    query = _query_text(values["query"])
    kind = classify(query)
    plan = await _plan_on_db(
        ctx,
        "query",
        QUERY_ROLE[kind],
        values["db"],
        values.get("env"),
        f"{kind} query on {{db}}",
        f"a {kind} query",
    )
    plan.params.update(query=query, kind=kind, limit=values["limit"])
    plan.details = [("Query", _code(query))]
    if kind != "read" and _protected(ctx, plan.targets):
        plan.destructive = True
    return plan


async def execute_query(ctx: Context, plan: Plan) -> Reply:
    """Run the query once in a one-shot transaction of its kind (committed unless read)."""
    p = plan.params
    kind: QueryKind = p["kind"]
    db, limit = p["database_name"], int(p["limit"])
    answer = await client(ctx, plan.provider).one_shot_query(
        db,
        p["query"],
        kind,
        commit=None if kind == "read" else True,
        answer_count_limit=limit + 1,
    )
    return render_answer(f"{kind.capitalize()} query on {db}", answer, limit, f"{db}-answers")


# -- multi-step transactions ------------------------------------------------------------------


async def prepare_tx(ctx: Context, values: dict[str, Any]) -> Plan:
    """Plan one `tx` step; the role follows the transaction type."""
    txs = ctx.services.transactions
    txs.sweep()
    action = _subcommand(ctx)
    key = (ctx.invocation.user, ctx.invocation.channel)
    if action == "open":
        held = txs.held(key)
        if held is not None:
            raise UserError(
                f"you already have an open {held.type} transaction on {held.database}; "
                "`tx commit`, `tx rollback` or `tx close` it first"
            )
        tx_type = values["type"].lower()
        if tx_type not in TRANSACTION_TYPES:
            raise UserError(f"the transaction type is read, write or schema, not {tx_type!r}")
        plan = await _plan_on_db(
            ctx,
            "tx",
            QUERY_ROLE[tx_type],
            values["db"],
            values.get("env"),
            f"open a {tx_type} transaction on {{db}}",
            f"a {tx_type} transaction",
        )
        plan.params.update(action="open", tx_type=tx_type, protected=_protected(ctx, plan.targets))
        return plan
    tx = txs.current(key)
    plan = Plan(
        verb="tx",
        provider=tx.provider,
        targets=[tx.target],
        params={"action": action, "database_name": tx.database, "tx_type": tx.type},
        summary=f"tx {action} on {tx.database} ({tx.type})",
        role=QUERY_ROLE[tx.type] if action in ("query", "commit") else Role.VIEWER,
    )
    if action == "query":
        query = _query_text(values["query"])
        kind = classify(query)
        if QUERY_ROLE[kind] > QUERY_ROLE[tx.type]:
            raise UserError(
                f"that is a {kind} query; a {tx.type} transaction cannot run it "
                f"(close this one and open a {kind} transaction)"
            )
        plan.params.update(query=query, limit=values["limit"])
    if action == "commit" and tx.type == "read":
        raise UserError("a read transaction has nothing to commit; `tx close` ends it")
    return plan


async def execute_tx(ctx: Context, plan: Plan) -> Reply:
    """Run one `tx` step for the requester of this very command."""
    p = plan.params
    txs = ctx.services.transactions
    key = (ctx.invocation.user, ctx.invocation.channel)
    api = client(ctx, plan.provider)
    db, action = p["database_name"], p["action"]
    if action == "open":
        return await _open_tx(ctx, plan, key)
    tx = txs.current(key)
    try:
        if action == "query":
            limit = int(p["limit"])
            answer = await api.query(tx.id, p["query"], answer_count_limit=limit + 1)
            tx.queries.append(p["query"])
            title = f"Query {len(tx.queries)} in the {tx.type} transaction on {db}"
            return render_answer(title, answer, limit, f"{db}-answers")
        if action == "commit":
            await api.commit(tx.id)
            txs.forget(key)
            return Reply(
                title=f"Committed the transaction on {db}",
                text=f"{len(tx.queries)} quer{'y' if len(tx.queries) == 1 else 'ies'} kept.",
            )
        if action == "rollback":
            await api.rollback(tx.id)
            dropped = len(tx.queries)
            tx.queries.clear()
            return Reply(
                title=f"Rolled back the transaction on {db}",
                text=f"Dropped the changes of {dropped} queries; the transaction stays open.",
            )
        await api.close_transaction(tx.id)
        txs.forget(key)
        return Reply(title=f"Closed the transaction on {db}", text="Uncommitted changes dropped.")
    except ApiError as exc:
        if exc.status in (404, 408):  # gone or timed out on the server: forget it here too
            txs.forget(key)
        raise


async def _open_tx(ctx: Context, plan: Plan, key: Key) -> Reply:
    p = plan.params
    txs = ctx.services.transactions
    tx_type = cast(TransactionType, p["tx_type"])
    db = p["database_name"]
    if tx_type != "read" and p.get("protected"):
        return denied(
            f"{plan.targets[0].environment_name} is protected: multi-step {tx_type} "
            "transactions are not allowed there, because a commit could not wait for an "
            "approval longer than the transaction lives. Run each change with "
            f"`query {db} '<TypeQL>'`, which asks for an approval showing the exact query."
        )
    tx_id = await client(ctx, plan.provider).open_transaction(
        db, tx_type, transaction_timeout_ms=int(txs.timeout_seconds * 1000)
    )
    txs.open(
        key,
        OpenTransaction(
            provider=plan.provider,
            target=plan.targets[0],
            database=db,
            type=tx_type,
            id=tx_id,
            deadline=txs.clock() + txs.timeout_seconds,
        ),
    )
    minutes = txs.timeout_seconds / 60
    return Reply(
        title=f"Opened a {tx_type} transaction on {db}",
        text=(
            f"Run `tx query '<TypeQL>'`, then `tx commit` or `tx close`. It closes by "
            f"itself {minutes:g} min after opening, dropping what was not committed "
            "(also if the bot restarts)."
        ),
    )


# -- registration ---------------------------------------------------------------------------


def register(registry: Registry) -> None:
    """Add the TypeDB verbs to `registry`."""

    def add(verb: type[Verb] = Verb, **kwargs: Any) -> None:
        registry.add(verb(kinds=TYPEDB, group="TypeDB", **kwargs))

    add(
        name="health",
        summary="Health and version of the TypeDB servers this channel may view",
        pattern="",
        example="health",
        role=Role.VIEWER,
        options=EnvOption,
        prepare=prepare_read,
        execute=execute_health,
        aliases=("version",),
    )
    add(
        name="dbs",
        summary="List the databases of the TypeDB servers this channel may view",
        pattern="",
        example="dbs",
        role=Role.VIEWER,
        options=EnvOption,
        prepare=prepare_read,
        execute=execute_dbs,
    )
    add(
        name="create-db",
        summary="Create a TypeDB database",
        pattern="<name>",
        example="create-db inventory2 env=graph",
        role=Role.OPERATOR,
        options=EnvOption,
        prepare=prepare_create_db,
        execute=execute_create_db,
    )
    add(
        name="delete-db",
        summary="Delete a TypeDB database and its data (approval, typed name)",
        pattern="<name>",
        example="delete-db inventory2",
        role=Role.ADMIN,
        options=EnvOption,
        destructive=True,
        prepare=prepare_delete_db,
        execute=execute_delete_db,
    )
    add(
        name="schema",
        summary="A database's schema as a file (`types`: types only, no functions)",
        pattern="<db> [<which>]",
        example="schema social types",
        role=Role.VIEWER,
        options=EnvOption,
        prepare=prepare_schema,
        execute=execute_schema,
    )
    add(
        name="query",
        summary="Run one quoted TypeQL query: read (viewer), write (operator), schema (admin)",
        pattern="<db> <query>",
        example="query social 'match $p isa person, has name $n;' limit=5",
        role=Role.VIEWER,
        options=QueryOptions,
        prepare=prepare_query,
        execute=execute_query,
    )
    add(
        name="tx",
        summary="Multi-step transaction: open, query, commit, rollback, close",
        pattern="open <db> <type>",
        patterns=("open <db> <type>", "query <query>", "commit", "rollback", "close"),
        example="tx open social write",
        role=Role.VIEWER,
        options=QueryOptions,
        prepare=prepare_tx,
        execute=execute_tx,
    )
    add(
        name="users",
        summary="List the users of a TypeDB server",
        pattern="",
        example="users",
        role=Role.ADMIN,
        options=EnvOption,
        prepare=prepare_users,
        execute=execute_users,
    )
    add(
        _UserVerb,
        name="user",
        summary="Add a user, change a password (asked privately), or delete a user (approval)",
        pattern="add <name>",
        patterns=("add <name>", "passwd <name>", "delete <name>"),
        example="user add reporting",
        role=Role.ADMIN,
        options=UserOptions,
        prepare=prepare_user,
        execute=execute_user,
    )
