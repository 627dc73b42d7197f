"""TypeDB queries: `query`, one query in its own transaction, and how answers are shown.

Source: seeds/typedb-http-api.txt (one-shot query, transactions).

How a query is typed: the TypeQL is ONE shell-quoted argument, e.g.
`query social 'match $p isa person, has name "Alice";'`. Unquoted words are
refused with the usage: shell splitting would silently drop the quotes of
TypeQL strings. A quoted query is never mistaken for a `key=value` option
because no TypeQL query starts with `word=`.

Rights of a query follow `commands.typeql.classify`: read -> viewer, write ->
operator, schema -> admin; in a protected environment write and schema queries
wait for an approval whose card shows the exact query. A channel without the
needed role is refused before any request is sent.
Multi-step transactions (`tx`) are in commands/verbs/tx.py.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import Field

from clients.typedb import QueryAnswer
from clients.typedb import rows_to_table as concept_rows
from commands.adapters.typedb import typedb_client
from commands.context import Context, RoleTooLow
from commands.plan import Plan
from commands.registry import Rights, verb
from commands.targets import TYPEDB, db_plan, require_role, scopes, target_of
from commands.typeql import QueryKind, classify
from commands.verbs.typedb import ServerOption
from core.errors import UserError
from core.refs import ChannelRef
from core.reply import Attachment, Reply, Table
from core.words import plural
from permissions.policy import Target, effective_binding, is_protected
from permissions.roles import Role

DEFAULT_LIMIT = 20  # answers shown when no limit= is given
MAX_LIMIT = 200  # the most answers one reply may carry
INLINE_LINES = 30  # longer answers go into an attachment
LONG_TABLE_CHARS = 2500  # a table longer than this goes into an attachment
ATTACHED_TABLE_PREVIEW = 10  # rows still shown in the reply when the table is attached

PROTECTED = "in a protected environment"
QUERY_ROLE: dict[str, Role] = {"read": Role.VIEWER, "write": Role.OPERATOR, "schema": Role.ADMIN}


class QueryOptions(ServerOption):
    """`query` and `tx query`: `limit=` the answers shown (1-200)."""

    limit: int = Field(default=DEFAULT_LIMIT, ge=1, le=MAX_LIMIT)


def protected_here(ctx: Context, targets: list[Target]) -> bool:
    """Whether any of `targets` is protected for this channel (permissions/policy.py)."""
    policy = ctx.policy()
    return any(is_protected(policy, target) for target in targets)


def _code(text: str) -> str:
    return f"```\n{text}\n```"


async def plan_on_db(
    ctx: Context, verb: str, role: Role, name: str, env: str | None, summary: str, what: str
) -> Plan:
    """A plan on database `name`, needing `role` (`what` names the action in a refusal).

    When the channel holds `role` on no TypeDB server it may see, it is refused
    (RoleTooLow, audited as a denial) before any request, even a look-up.
    """
    visible = await scopes(ctx, TYPEDB, Role.VIEWER, env)
    policy = ctx.policy()
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
    # Looked up on every server the channel may see: a name on two is ambiguous for
    # every query, whatever the role on each (commands/targets.py `find`).
    found = await ctx.services.resolver.find_database(visible, name, ctx.unreachable)
    require_role(ctx, found.scope, role, found.database.name)
    plan = db_plan(verb, found, summary.format(db=found.database.name))
    plan.role = role
    return plan


def _limit_note(total: int, limit: int, warning: str | None) -> str | None:
    """The note under an answer cut at `limit` (we ask the server for `limit + 1`)."""
    if total > limit:
        first = "only the first answer" if limit == 1 else f"the first {limit} answers"
        return (
            f"showing {first}; there are more: add limit=N (at most {MAX_LIMIT}) "
            "or narrow the query"
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
    return plural(n, "answer")


def query_text(text: str) -> str:
    """The query without surrounding blanks; UserError when it is empty."""
    query = text.strip()
    if not query:
        raise UserError("the query is empty")
    return query


async def prepare_query(ctx: Context, values: dict[str, Any]) -> Plan:
    """Classify the query to pick the role; protected write/schema queries need approval."""
    query = query_text(values["query"])
    kind = classify(query)
    plan = await plan_on_db(
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
    if kind != "read" and protected_here(ctx, plan.targets):
        plan.destructive = True
    return plan


@verb(
    "query",
    "<db> <query>",
    role=Role.VIEWER,
    prepare=prepare_query,
    kinds=TYPEDB,
    options=QueryOptions,
    example="query social 'match $p isa person, has name $n;' limit=5",
    group="TypeDB",
    rights=(
        Rights(when="read", role=Role.VIEWER),
        Rights(when="write", role=Role.OPERATOR, approval=True, approval_if=PROTECTED),
        Rights(when="schema", role=Role.ADMIN, approval=True, approval_if=PROTECTED),
    ),
)
async def query(ctx: Context, plan: Plan) -> Reply:
    """Run one quoted TypeQL query; its kind (read, write, schema) sets the role

    Run the query once in a one-shot transaction of its kind (committed unless read).
    """
    p = plan.params
    kind: QueryKind = p["kind"]
    db, limit = p["database_name"], int(p["limit"])
    answer = await typedb_client(ctx, plan.provider).one_shot_query(
        db,
        p["query"],
        kind,
        commit=None if kind == "read" else True,
        answer_count_limit=limit + 1,
    )
    return render_answer(f"{kind.capitalize()} query on {db}", answer, limit, f"{db}-answers")
