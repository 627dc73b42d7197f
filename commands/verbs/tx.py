"""TypeDB multi-step transactions: `tx open|query|commit|rollback|close`.

Source: seeds/typedb-http-api.txt (transactions). One open transaction per
(user, channel), kept in memory by `commands.transactions.Transactions`. They
do not survive a bot restart (TypeDB closes them server-side after their
timeout anyway), and are forgotten after `TX_TIMEOUT_SECONDS`, the
`transactionTimeoutMillis` they are opened with. Write and schema
transactions are refused in protected environments: a commit cannot wait for
an approval longer than the transaction lives, so changes there go through a
single approved `query`.

Rights and protection are checked again at every step, not only at `tx open`:
each `tx query` and `tx commit` is decided by the pipeline on the transaction's
environment with the role of its kind (a revoked or lowered binding refuses),
and a write or schema query, or a commit, in an environment protected since the
transaction was opened is refused like the open would be (`Refused`, audited);
`tx rollback` and `tx close` stay possible.
"""

from __future__ import annotations

from typing import Any, cast

from clients.errors import ApiError
from clients.typedb import TRANSACTION_TYPES, TransactionType
from commands.adapters.typedb import typedb_client
from commands.context import Context, Refused
from commands.plan import Plan
from commands.registry import Rights, verb
from commands.targets import TYPEDB
from commands.transactions import Key, OpenTransaction
from commands.typeql import classify
from commands.verbs.queries import (
    QUERY_ROLE,
    QueryOptions,
    plan_on_db,
    protected_here,
    query_text,
    render_answer,
)
from commands.verbs.typedb import subcommand
from core.errors import UserError
from core.reply import Reply
from core.words import plural
from permissions.policy import Target
from permissions.roles import Role

NOT_PROTECTED = "not in a protected environment"


async def prepare_tx(ctx: Context, values: dict[str, Any]) -> Plan:
    """Plan one `tx` step; the role follows the transaction type."""
    txs = ctx.services.transactions
    txs.sweep()
    action = subcommand(ctx)
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
        plan = await plan_on_db(
            ctx,
            "tx",
            QUERY_ROLE[tx_type],
            values["db"],
            values.get("env"),
            f"open a {tx_type} transaction on {{db}}",
            f"a {tx_type} transaction",
        )
        _refuse_writes_if_protected(ctx, plan.targets, tx_type, db=plan.params["database_name"])
        plan.params.update(action="open", tx_type=tx_type)
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
        query = query_text(values["query"])
        kind = classify(query)
        if QUERY_ROLE[kind] > QUERY_ROLE[tx.type]:
            raise UserError(
                f"that is a {kind} query; a {tx.type} transaction cannot run it "
                f"(close this one and open a {kind} transaction)"
            )
        plan.params.update(query=query, limit=values["limit"])
        if kind != "read":
            _refuse_writes_if_protected(ctx, plan.targets, kind, db=tx.database, opened=True)
    if action == "commit":
        if tx.type == "read":
            raise UserError("a read transaction has nothing to commit; `tx close` ends it")
        _refuse_writes_if_protected(ctx, plan.targets, tx.type, db=tx.database, opened=True)
    return plan


def _refuse_writes_if_protected(
    ctx: Context, targets: list[Target], kind: str, *, db: str, opened: bool = False
) -> None:
    """Refused (audited as a denial) when a `kind` write or schema step would run in a
    protected environment (`permissions.policy.is_protected`, read now: protection
    switched on after `tx open` counts)."""
    if kind == "read" or not protected_here(ctx, targets):
        return
    env = targets[0].environment_name or targets[0].environment_id
    since = " (it became protected after this transaction was opened)" if opened else ""
    raise Refused(
        f"{env} is protected{since}: multi-step {kind} transactions are not allowed there, "
        "because a commit could not wait for an approval longer than the transaction lives. "
        f"`tx rollback` or `tx close` this one, and run each change with "
        f"`query {db} '<TypeQL>'`, which asks for an approval showing the exact query."
    )


@verb(
    "tx",
    "open <db> <type>",
    role=Role.VIEWER,
    prepare=prepare_tx,
    kinds=TYPEDB,
    options=QueryOptions,
    grammars=("open <db> <type>", "query <query>", "commit", "rollback", "close"),
    example="tx open social write",
    group="TypeDB",
    rights=(
        Rights(form="open <db> read", when="read", role=Role.VIEWER),
        Rights(form="open <db> write", when="write", role=Role.OPERATOR, note=NOT_PROTECTED),
        Rights(form="open <db> schema", when="schema", role=Role.ADMIN, note=NOT_PROTECTED),
        Rights(form="query|commit", who="as its `tx open`"),
        Rights(form="rollback|close", role=Role.VIEWER),
    ),
)
async def tx(ctx: Context, plan: Plan) -> Reply:
    """Multi-step transaction: open, query, commit, rollback, close

    Run one `tx` step for the requester of this very command.
    """
    p = plan.params
    txs = ctx.services.transactions
    key = (ctx.invocation.user, ctx.invocation.channel)
    api = typedb_client(ctx, plan.provider)
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
                text=f"{plural(len(tx.queries), 'query', 'queries')} kept.",
            )
        if action == "rollback":
            await api.rollback(tx.id)
            dropped = len(tx.queries)
            tx.queries.clear()
            return Reply(
                title=f"Rolled back the transaction on {db}",
                text=f"Dropped the changes of {plural(dropped, 'query', 'queries')}; "
                "the transaction stays open.",
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
    tx_id = await typedb_client(ctx, plan.provider).open_transaction(
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
