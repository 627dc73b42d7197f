"""TypeDB verbs end to end: command line -> permission -> TypeDB simulator over HTTP -> Reply."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import SecretStr

from bot.config import BotSettings, Config, TypeDBProvider
from bot.wiring import Bot, build_bot
from clients.typedb import QueryAnswer
from commands.typeql import classify, count_types
from commands.verbs.queries import DEFAULT_LIMIT, MAX_LIMIT, render_answer
from core.invocation import Invocation
from core.reply import Reply
from permissions.roles import Role
from permissions.store import PermissionStore
from simulators.base import ManualClock
from simulators.typedb import SOCIAL_FUNCTIONS, SOCIAL_TYPES, TypeDBSimulator

ALICE, BOB, ADMIN = "U0ALICE", "U0BOB", "U0ADMIN"
VIEW, OPS, ADM = "C0TDBVIEW", "C0TDBOPS", "C0TDBADM"
TDB_PASSWORD = "sentinel-typedb-admin-pw-51c2"
USER_PASSWORD = "sentinel-new-user-pw-8e4d"
READ = "match $p isa person, has name $name, has age $age;"
INSERT = 'insert $p isa person, has name "Dan", has age 40;'
DEFINE = "define entity company, owns name;"


# -- fixtures -----------------------------------------------------------------------


@pytest.fixture
async def tdb_sim(clock: ManualClock) -> AsyncIterator[TypeDBSimulator]:
    sim = TypeDBSimulator(username="admin", password=TDB_PASSWORD)
    sim.clock = clock
    await sim.start("127.0.0.1", 0)
    try:
        yield sim
    finally:
        await sim.stop()


@pytest.fixture
async def tbot(tdb_sim: TypeDBSimulator, clock: ManualClock, tmp_path: Path) -> AsyncIterator[Bot]:
    """A bot with one TypeDB provider `graph`: #view viewer, #ops operator, #adm admin."""
    config = Config(
        bot=BotSettings(admins=(ADMIN,), database=str(tmp_path / "tdb.sqlite3")),
        providers=(
            TypeDBProvider(
                name="graph",
                kind="typedb",
                base_url=tdb_sim.base_url,
                username_env="T_TDB_USER",
                password_env="T_TDB_PASS",
            ),
        ),
    )
    bot = build_bot(config, environ={"T_TDB_USER": "admin", "T_TDB_PASS": TDB_PASSWORD})
    permissions = bot.services.permissions
    permissions.grant(VIEW, "graph", "graph", Role.VIEWER)
    permissions.grant(OPS, "graph", "graph", Role.OPERATOR)
    permissions.grant(ADM, "graph", "graph", Role.ADMIN)
    bot.services.transactions.clock = clock
    try:
        yield bot
    finally:
        await bot.aclose()


async def run(
    bot: Bot, line: str, channel: str = OPS, user: str = ALICE, secret: str | None = None
) -> Reply:
    return await bot.run(
        Invocation(
            user=user,
            channel=channel,
            text=line,
            secret=SecretStr(secret) if secret is not None else None,
        )
    )


def text_of(reply: Reply) -> str:
    parts = [reply.title or "", reply.text, *(f"{a}: {b}" for a, b in reply.fields)]
    for table in reply.tables:
        parts.extend(" | ".join(row) for row in table.rows)
    return "\n".join(parts)


def approve_line(reply: Reply) -> str:
    (action,) = [a for a in reply.actions if a.action_id == "approval.approve"]
    return action.command


def query_posts(sim: TypeDBSimulator) -> list[object]:
    return sim.requests_to("POST", r"^/v1/(query|transactions)")


# -- server verbs ----------------------------------------------------------------------


async def test_health_and_version(tbot, tdb_sim):
    for verb in ("health", "version"):
        reply = await run(tbot, verb, channel=VIEW)
        assert reply.status == "ok", reply.text
        assert reply.tables[0].columns == ["Provider", "Healthy", "Distribution", "Version"]
        assert reply.tables[0].rows == [["graph", "yes", "TypeDB", "3.2.0"]]


async def test_health_reports_an_unhealthy_server(tbot, tdb_sim):
    tdb_sim.faults.fail_next("GET", "^/health$", status=503, times=10)  # GETs are retried
    reply = await run(tbot, "health", channel=VIEW)
    (row,) = reply.tables[0].rows
    assert row[1].startswith("no") and "503" in row[1]


async def test_dbs_lists_the_servers_databases(tbot):
    reply = await run(tbot, "dbs", channel=VIEW)
    assert reply.tables[0].rows == [["social", "graph"], ["inventory", "graph"]]


async def test_unbound_channel_is_refused_without_requests(tbot, tdb_sim):
    for line in ("dbs", "health", f"query social '{READ}'", "tx open social read"):
        reply = await run(tbot, line, channel="C0NOWHERE")
        assert reply.status == "denied", line
    assert tdb_sim.requests == []


async def test_create_and_delete_db(tbot, tdb_sim):
    denied = await run(tbot, "create-db scratch", channel=VIEW)
    assert denied.status == "denied" and "needs operator" in denied.text
    bad = await run(tbot, "create-db 9lives")
    assert bad.status == "error" and "not a valid database name" in bad.text
    assert tdb_sim.mutating_requests() == []

    created = await run(tbot, "create-db scratch")
    assert created.status == "ok" and created.title == "Created database scratch"
    assert tdb_sim.database("scratch").name == "scratch"
    listing = await run(tbot, "dbs", channel=VIEW)  # the name cache was dropped
    assert ["scratch", "graph"] in listing.tables[0].rows

    refused = await run(tbot, "delete-db scratch")  # operator
    assert refused.status == "denied" and "needs admin" in refused.text
    card = await run(tbot, "delete-db scratch", channel=ADM)
    assert card.status == "pending"
    assert approve_line(card).endswith("confirm=scratch")
    assert tdb_sim.requests_to("DELETE") == []
    untyped = await run(tbot, approve_line(card).split(" confirm=")[0], channel=ADM, user=BOB)
    assert untyped.status == "error" and "type the database name" in untyped.text
    done = await run(tbot, approve_line(card), channel=ADM, user=BOB)
    assert done.status == "ok" and "Deleted database scratch" in (done.title or "")
    assert "scratch" not in [db["name"] for db in tdb_sim.state_dump()["databases"]]
    assert len(tdb_sim.requests_to("DELETE", r"^/v1/databases/scratch$")) == 1


async def test_delete_of_an_unknown_database(tbot, tdb_sim):
    reply = await run(tbot, "delete-db nothing-here", channel=ADM)
    assert reply.status == "error" and "no database called 'nothing-here'" in reply.text
    assert tdb_sim.mutating_requests() == []


# -- schema ------------------------------------------------------------------------------


async def test_schema_is_an_attachment_with_a_summary(tbot, tdb_sim):
    reply = await run(tbot, "schema social", channel=VIEW)
    assert reply.status == "ok"
    assert reply.attachment is not None
    assert reply.attachment.filename == "social-schema.tql"
    assert reply.attachment.content == "define\n" + SOCIAL_TYPES + SOCIAL_FUNCTIONS
    assert "1 entity type, 1 relation type, 2 attribute types, 1 function" in reply.text
    assert "attribute name" not in reply.text

    types = await run(tbot, "schema social types", channel=VIEW)
    assert types.attachment is not None and "fun adults" not in types.attachment.content
    assert types.title == "Type schema of social"
    assert tdb_sim.requests_to("GET", r"/type-schema$")

    empty = await run(tbot, "schema inventory", channel=VIEW)
    assert empty.attachment is None and "No schema" in empty.text
    wrong = await run(tbot, "schema social everything", channel=VIEW)
    assert wrong.status == "error" and "`types`" in wrong.text


async def test_a_long_schema_never_lands_in_the_text(tbot, tdb_sim):
    types = "".join(f"  entity thing{i}, owns name;\n" for i in range(60))
    tdb_sim.add_database("big", types=types)
    reply = await run(tbot, "schema big", channel=VIEW)
    assert reply.attachment is not None and reply.attachment.content.count("\n") == 61
    assert "61 lines" in reply.text and "60 entity types" in reply.text
    assert len(reply.text.splitlines()) < 5 and "thing1" not in reply.text


# -- users and secrets ---------------------------------------------------------------------


async def test_users_needs_admin(tbot, tdb_sim):
    refused = await run(tbot, "users", channel=OPS)
    assert refused.status == "denied" and "needs admin" in refused.text
    assert tdb_sim.requests == []
    reply = await run(tbot, "users", channel=ADM)
    assert reply.tables[0].rows == [["admin"]]


async def test_user_add_asks_for_the_password_privately(tbot, tdb_sim, caplog):
    caplog.set_level(logging.DEBUG)
    line = "/gdb user add carol"
    prompt = await run(tbot, line, channel=ADM)
    assert prompt.secret_prompt is not None
    assert prompt.secret_prompt.label == "Password for carol"
    assert prompt.secret_prompt.command == line
    assert prompt.visibility == "ephemeral"
    assert tdb_sim.requests_to(None, r"^/v1/users") == []  # nothing sent yet

    added = await run(tbot, line, channel=ADM, secret=USER_PASSWORD)
    assert added.status == "ok" and added.title == "Added user carol"
    assert "carol" in tdb_sim.usernames
    assert tdb_sim._users["carol"] == USER_PASSWORD

    changed_prompt = await run(tbot, "user passwd carol", channel=ADM)
    assert changed_prompt.secret_prompt is not None
    assert changed_prompt.secret_prompt.label == "Password for carol"
    changed = await run(tbot, "user passwd carol", channel=ADM, secret=USER_PASSWORD + "2")
    assert changed.status == "ok" and tdb_sim._users["carol"] == USER_PASSWORD + "2"

    replies = [prompt, added, changed_prompt, changed]
    for reply in replies:
        assert USER_PASSWORD not in reply.model_dump_json()
    audit = json.dumps(tbot.services.audit.query(limit=10000), default=str)
    assert "user add carol" in audit  # the commands are there, the password is not
    assert USER_PASSWORD not in audit and TDB_PASSWORD not in audit
    assert USER_PASSWORD not in caplog.text and TDB_PASSWORD not in caplog.text
    assert USER_PASSWORD not in json.dumps([r.body for r in tdb_sim.requests], default=str)


async def test_user_add_is_checked_before_the_prompt(tbot, tdb_sim):
    reply = await run(tbot, "user add carol", channel=OPS)
    assert reply.status == "denied" and reply.secret_prompt is None
    assert tdb_sim.requests == []


async def test_a_typed_password_is_refused_and_nothing_sent(tbot, tdb_sim):
    typed = "hunter2-sentinel-77"
    for line in (f"user add dave password={typed}", f"user passwd admin pwd={typed}"):
        reply = await run(tbot, line, channel=ADM)
        assert reply.status == "error"
        assert "never typed in the channel" in reply.text
        assert typed not in reply.model_dump_json()
    assert tdb_sim.requests == []
    assert typed not in json.dumps(tbot.services.audit.query(limit=10000), default=str)


async def test_user_delete_needs_an_approval(tbot, tdb_sim):
    tdb_sim.add_user("erin", "x-password")
    card = await run(tbot, "user delete erin", channel=ADM)
    assert card.status == "pending" and "delete user erin" in (card.title or "")
    assert tdb_sim.requests_to("DELETE") == []
    done = await run(tbot, approve_line(card), channel=ADM, user=BOB)
    assert done.status == "ok" and "erin" not in tdb_sim.usernames
    bad = await run(tbot, "user rename erin", channel=ADM)
    assert bad.status == "error" and "Usage of user" in (bad.title or "")


# -- queries -----------------------------------------------------------------------------


async def test_read_query_as_viewer(tbot, tdb_sim):
    reply = await run(tbot, f"query social '{READ}'", channel=VIEW)
    assert reply.status == "ok", reply.text
    (table,) = reply.tables
    assert table.columns == ["p", "name", "age"]
    assert [row[1:] for row in table.rows] == [["Alice", "34"], ["Bob", "27"], ["Carol", "17"]]
    assert table.rows[0][0].startswith("person:0x")
    (post,) = tdb_sim.requests_to("POST", r"^/v1/query$")
    assert post.body["transactionType"] == "read" and post.body["query"] == READ
    assert post.body["queryOptions"]["answerCountLimit"] == DEFAULT_LIMIT + 1
    assert "commit" not in post.body


async def test_fetch_query_renders_json(tbot):
    reply = await run(tbot, "query social 'match $p isa person; fetch { \"n\": $p.name };'")
    assert reply.status == "ok" and reply.tables == []
    assert '"n": "Alice"' in reply.text and reply.text.count("```") == 2


async def test_unquoted_query_gets_the_usage(tbot, tdb_sim):
    reply = await run(tbot, "query social match $p isa person;", channel=VIEW)
    assert reply.status == "error" and "unexpected extra words" in reply.text
    assert "query social 'match" in reply.text  # the example shows the quoting
    assert tdb_sim.requests == []


async def test_viewer_cannot_write_and_nothing_is_sent(tbot, tdb_sim):
    for query in (INSERT, "match $p isa person; delete $p;", DEFINE, "frobnicate everything"):
        reply = await run(tbot, f"query social '{query}'", channel=VIEW)
        assert reply.status == "denied", query
        assert "query needs" in reply.text and "is viewer on graph" in reply.text
    assert tdb_sim.requests == []  # not even a sign-in, let alone a query
    decisions = tbot.services.audit.query(kind="decision", limit=100)
    assert [row["outcome"] for row in decisions] == ["denied"] * 4


async def test_write_query_as_operator(tbot, tdb_sim):
    reply = await run(tbot, f"query social '{INSERT}'")
    assert reply.status == "ok", reply.text
    assert reply.tables[0].columns == ["p"] and reply.title == "Write query on social"
    assert tdb_sim.database("social").writes == [INSERT]
    (post,) = tdb_sim.requests_to("POST", r"^/v1/query$")
    assert post.body["transactionType"] == "write" and post.body["commit"] is True


async def test_schema_query_needs_admin(tbot, tdb_sim):
    refused = await run(tbot, f"query social '{DEFINE}'")
    assert refused.status == "denied" and "needs admin" in refused.text
    assert query_posts(tdb_sim) == []
    done = await run(tbot, f"query social '{DEFINE}'", channel=ADM)
    assert done.status == "ok", done.text
    assert "entity company, owns name;" in tdb_sim.database("social").schema()
    (post,) = tdb_sim.requests_to("POST", r"^/v1/query$")
    assert post.body["transactionType"] == "schema" and post.body["commit"] is True


async def test_protected_write_waits_for_approval_showing_the_exact_query(tbot, tdb_sim):
    tbot.services.permissions.set_protected("graph", "graph", True)
    read = await run(tbot, f"query social '{READ}'", channel=VIEW)
    assert read.status == "ok"  # reads need no approval
    card = await run(tbot, f"query social '{INSERT}'")
    assert card.status == "pending" and "write query on social" in (card.title or "")
    assert ("Query", f"```\n{INSERT}\n```") in card.fields
    (read_post,) = query_posts(tdb_sim)  # the read only: the write waits
    assert read_post.body["transactionType"] == "read"

    own = await run(tbot, approve_line(card))
    assert own.status == "denied"  # protected: not by the requester
    assert tdb_sim.database("social").writes == []
    done = await run(tbot, approve_line(card), user=ADMIN)
    assert done.status == "ok", done.text
    again = await run(tbot, approve_line(card), user=ADMIN)
    assert again.status == "info" and "already approved" in again.text
    assert tdb_sim.database("social").writes == [INSERT]
    assert len(tdb_sim.requests_to("POST", r"^/v1/query$")) == 2  # the read, the write once


async def test_row_limit_and_truncation_note(tbot, tdb_sim):
    rows = [
        {"data": {"n": {"kind": "value", "value": i, "valueType": "integer"}}} for i in range(30)
    ]
    tdb_sim.add_database("numbers", rows=rows)
    reply = await run(tbot, "query numbers 'match $n isa thing;'", channel=VIEW)
    (table,) = reply.tables
    assert len(table.rows) == DEFAULT_LIMIT
    assert table.note and f"first {DEFAULT_LIMIT} answers" in table.note
    five = await run(tbot, "query numbers 'match $n isa thing;' limit=5", channel=VIEW)
    assert [row[0] for row in five.tables[0].rows] == ["0", "1", "2", "3", "4"]
    posts = tdb_sim.requests_to("POST", r"^/v1/query$")
    assert posts[-1].body["queryOptions"]["answerCountLimit"] == 6
    everything = await run(tbot, "query numbers 'match $n isa thing;' limit=30", channel=VIEW)
    assert len(everything.tables[0].rows) == 30 and everything.tables[0].note is None
    too_many = await run(tbot, f"query numbers 'match $n;' limit={MAX_LIMIT + 1}", channel=VIEW)
    assert too_many.status == "error" and "limit=" in too_many.text


async def test_long_answers_go_into_attachments(tbot, tdb_sim):
    long_rows = [
        {"data": {"t": {"kind": "value", "value": "x" * 80 + str(i), "valueType": "string"}}}
        for i in range(40)
    ]
    docs = [{"name": f"person {i}", "age": i} for i in range(40)]
    tdb_sim.add_database("wide", rows=long_rows, documents=docs)
    rows = await run(tbot, "query wide 'match $t isa text;' limit=40", channel=VIEW)
    assert rows.attachment is not None and rows.attachment.filename == "wide-answers.tsv"
    assert rows.attachment.content.count("\n") == 41
    assert len(rows.tables[0].rows) == 10 and "attached" in (rows.tables[0].note or "")
    fetched = await run(tbot, "query wide 'match $p isa person; fetch { };' limit=40", channel=VIEW)
    assert fetched.attachment is not None and fetched.attachment.filename == "wide-answers.json"
    assert json.loads(fetched.attachment.content) == docs
    assert "```" not in fetched.text and "40 answers" in fetched.text


def test_a_server_warning_is_shown():
    answer = QueryAnswer.model_validate(
        {"answerType": "conceptRows", "answers": [{"data": {}}], "warning": "careful"}
    )
    reply = render_answer("Read query on x", answer, 5, "x-answers")
    assert reply.tables[0].note == "the server warned: careful"


async def test_query_errors_are_described(tbot):
    reply = await run(tbot, "query nowhere 'match $x;'", channel=VIEW)
    assert reply.status == "error" and "no database called 'nowhere'" in reply.text
    reply = await run(tbot, "query social 'match $x' ", channel=VIEW)
    assert reply.status == "error" and "QRY1" in reply.text  # the simulator parses it
    reply = await run(tbot, "query social 'match $c isa compnay;'", channel=VIEW)
    assert reply.status == "error" and "no type 'compnay'" in reply.text
    reply = await run(tbot, "query social 'hello world'", channel=OPS)  # unknown -> write
    assert reply.status == "error" and "QRY1" in reply.text


# -- multi-step transactions -----------------------------------------------------------


async def test_transaction_lifecycle(tbot, tdb_sim):
    assert (await run(tbot, "tx commit")).status == "error"
    opened = await run(tbot, "tx open social write")
    assert opened.status == "ok", opened.text
    (open_post,) = tdb_sim.requests_to("POST", r"^/v1/transactions/open$")
    assert open_post.body["transactionOptions"]["transactionTimeoutMillis"] == 300_000
    again = await run(tbot, "tx open social read")
    assert again.status == "error" and "already have an open write transaction" in again.text

    inserted = await run(tbot, f"tx query '{INSERT}'")
    assert inserted.status == "ok" and inserted.tables[0].columns == ["p"]
    read = await run(tbot, f"tx query '{READ}'")
    assert len(read.tables[0].rows) == 4  # the transaction sees its own insert
    schema = await run(tbot, f"tx query '{DEFINE}'")
    assert schema.status == "error" and "write transaction cannot run it" in schema.text
    assert tdb_sim.database("social").writes == []  # not committed yet

    # someone else in the channel has no transaction of their own
    other = await run(tbot, f"tx query '{READ}'", user=BOB)
    assert other.status == "error" and "no open transaction" in other.text

    committed = await run(tbot, "tx commit")
    assert committed.status == "ok" and "2 queries kept" in committed.text
    assert tdb_sim.database("social").writes == [INSERT]
    assert tdb_sim.transactions == []
    assert (await run(tbot, "tx commit")).status == "error"


async def test_transaction_rollback_and_close(tbot, tdb_sim):
    await run(tbot, "tx open social write")
    await run(tbot, f"tx query '{INSERT}'")
    rolled = await run(tbot, "tx rollback")
    assert rolled.status == "ok" and "stays open" in rolled.text
    await run(tbot, "tx commit")
    assert tdb_sim.database("social").writes == []
    await run(tbot, "tx open social read", channel=VIEW)
    refused = await run(tbot, "tx commit", channel=VIEW)
    assert refused.status == "error" and "nothing to commit" in refused.text
    closed = await run(tbot, "tx close", channel=VIEW)
    assert closed.status == "ok" and tdb_sim.transactions == []
    assert (await run(tbot, "tx close", channel=VIEW)).status == "error"


async def test_transaction_rights(tbot, tdb_sim):
    viewer = await run(tbot, "tx open social write", channel=VIEW)
    assert viewer.status == "denied" and "needs operator" in viewer.text
    operator = await run(tbot, "tx open social schema")
    assert operator.status == "denied" and "needs admin" in operator.text
    assert query_posts(tdb_sim) == []
    bad = await run(tbot, "tx open social maybe")
    assert bad.status == "error" and "read, write or schema" in bad.text
    admin = await run(tbot, "tx open social schema", channel=ADM)
    assert admin.status == "ok"
    defined = await run(tbot, f"tx query '{DEFINE}'", channel=ADM)
    assert defined.status == "ok"
    await run(tbot, "tx commit", channel=ADM)
    assert "entity company" in tdb_sim.database("social").schema()


async def test_multi_step_writes_are_refused_in_protected_environments(tbot, tdb_sim):
    tbot.services.permissions.set_protected("graph", "graph", True)
    reply = await run(tbot, "tx open social write")
    assert reply.status == "denied" and "protected" in reply.text
    assert "query social '<TypeQL>'" in reply.text
    assert query_posts(tdb_sim) == []
    read = await run(tbot, "tx open social read", channel=VIEW)
    assert read.status == "ok"


def other_process(bot: Bot) -> PermissionStore:
    """The permission store as another process sees it (`graphops access ...` on the file)."""
    from bot.store import open_database

    return PermissionStore(open_database(bot.config.bot.database))


async def test_protection_switched_on_mid_transaction_refuses_the_next_write(tbot, tdb_sim):
    # issue 15, case 8: `tx open ... write`, then `graphops access protect graph graph on`
    assert (await run(tbot, "tx open social write")).status == "ok"
    assert (await run(tbot, f"tx query '{INSERT}'")).status == "ok"
    cli = other_process(tbot)
    cli.set_protected("graph", "graph", True)
    cli.db.close()
    sent = len(query_posts(tdb_sim))
    write = await run(tbot, f"tx query '{INSERT}'")
    assert write.status == "denied", write.text
    assert "protected" in write.text and "after this transaction was opened" in write.text
    assert "query social '<TypeQL>'" in write.text
    commit = await run(tbot, "tx commit")
    assert commit.status == "denied" and "protected" in commit.text
    assert len(query_posts(tdb_sim)) == sent  # neither the write nor the commit was sent
    assert tdb_sim.database("social").writes == []
    denied = [r for r in tbot.services.audit.query(kind="decision") if r["outcome"] == "denied"]
    assert len(denied) == 2
    read = await run(tbot, f"tx query '{READ}'")  # reads change nothing: still answered
    assert read.status == "ok"
    closed = await run(tbot, "tx close")  # and the transaction can still be dropped
    assert closed.status == "ok" and tdb_sim.transactions == []


async def test_a_revoked_binding_refuses_the_open_transaction(tbot, tdb_sim):
    assert (await run(tbot, "tx open social write")).status == "ok"
    cli = other_process(tbot)
    cli.revoke(OPS, "graph", "graph")
    cli.db.close()
    sent = len(query_posts(tdb_sim))
    for line in (f"tx query '{INSERT}'", f"tx query '{READ}'", "tx commit"):
        reply = await run(tbot, line)
        assert reply.status == "denied", (line, reply.text)
    assert len(query_posts(tdb_sim)) == sent
    assert tdb_sim.database("social").writes == []


async def test_a_lowered_role_refuses_writes_in_the_open_transaction(tbot, tdb_sim):
    assert (await run(tbot, "tx open social write")).status == "ok"
    cli = other_process(tbot)
    cli.grant(OPS, "graph", "graph", Role.VIEWER)
    cli.db.close()
    sent = len(query_posts(tdb_sim))
    write = await run(tbot, f"tx query '{INSERT}'")
    assert write.status == "denied" and "needs operator" in write.text, write.text
    commit = await run(tbot, "tx commit")
    assert commit.status == "denied" and "needs operator" in commit.text, commit.text
    assert len(query_posts(tdb_sim)) == sent


async def test_transaction_timeout(tbot, tdb_sim, clock):
    await run(tbot, "tx open social write")
    clock.advance(301)
    assert tdb_sim.transactions == []  # closed server-side
    posts = len(query_posts(tdb_sim))
    reply = await run(tbot, f"tx query '{INSERT}'")
    assert reply.status == "error" and "timed out" in reply.text
    assert len(query_posts(tdb_sim)) == posts  # forgotten here too: nothing sent
    assert (await run(tbot, "tx open social write")).status == "ok"


async def test_transaction_gone_on_the_server_is_forgotten(tbot, tdb_sim, clock):
    tbot.services.transactions.clock = ManualClock()  # the bot's clock lags
    await run(tbot, "tx open social write")
    clock.advance(301)
    reply = await run(tbot, f"tx query '{INSERT}'")
    assert reply.status == "error" and "408" in reply.text
    again = await run(tbot, f"tx query '{INSERT}'")
    assert "no open transaction" in again.text


async def test_open_transactions_belong_to_one_bot(tbot, tmp_path):
    assert (await run(tbot, "tx open social read", channel=VIEW)).status == "ok"
    settings = tbot.config.bot.model_copy(update={"database": str(tmp_path / "other.sqlite3")})
    other = build_bot(
        tbot.config.model_copy(update={"bot": settings}),
        environ={"T_TDB_USER": "admin", "T_TDB_PASS": TDB_PASSWORD},
    )
    try:
        other.services.permissions.grant(VIEW, "graph", "graph", Role.VIEWER)
        assert len(tbot.services.transactions) == 1 and len(other.services.transactions) == 0
        reply = await run(other, "tx close", channel=VIEW)
        assert reply.status == "error" and "no open transaction" in reply.text
    finally:
        await other.aclose()


# -- other kinds, help -------------------------------------------------------------------------


async def test_a_graphenedb_verb_on_a_typedb_bot_names_the_kind(tbot, tdb_sim):
    reply = await run(tbot, "pause social", channel=ADM)
    assert reply.status == "error"
    assert "typedb" in reply.text and "graphenedb" in reply.text
    assert tdb_sim.requests == []


async def test_help_lists_the_typedb_verbs(tbot):
    reply = await run(tbot, "help", channel=VIEW)
    (table,) = [t for t in reply.tables if t.columns[0] == "TypeDB"]
    forms = [row[0] for row in table.rows]
    assert "query <db> <query> (read)" in forms and "tx open <db> write" in forms
    one = await run(tbot, "help tx", channel=VIEW)
    assert "tx open <db> <type>" in dict(one.fields)["Usage"]


# -- the classifier ----------------------------------------------------------------------------

CASES = [
    ("match $p isa person;", "read"),
    ("match $p isa person; fetch { 'name': $p.name };", "read"),
    ("fetch { 'n': 1 };", "read"),
    ("match $p isa person; reduce $c = count;", "read"),
    ("match $p isa person; select $p; sort $p; limit 5;", "read"),
    ("with fun f() -> integer: match $x isa t; return count; match $y isa t;", "read"),
    ('match $p isa person, has name "insert delete";', "read"),  # words inside a string
    ("match $p isa person; # delete them all later\n", "read"),  # words in a comment
    ("match $insert isa person;", "read"),  # a variable is not a keyword
    ("MATCH $p isa person;", "read"),
    ('insert $p isa person, has name "A";', "write"),
    ("match $p isa person; insert $q isa person;", "write"),
    ("match $p isa person; delete $p;", "write"),
    ("match $p isa person, has age $a; update $p has age 3;", "write"),
    ("put $p isa person, has name 'x';", "write"),
    ("match $p isa delete-request;", "read"),  # a label with a dash is one word
    ("define entity company;", "schema"),
    ("  undefine owns name from person;", "schema"),
    ("redefine entity person @abstract;", "schema"),
    ("match $x isa t; define entity y;", "schema"),  # the highest kind wins
    ("", "write"),
    ("   ", "write"),
    ("hello world", "write"),  # unknown: the safe side
    ('match $p has name "unterminated;', "write"),
    ("$x isa person;", "write"),
]


@pytest.mark.parametrize(("query", "kind"), CASES)
def test_classify(query, kind):
    assert classify(query) == kind


@given(st.text())
def test_classify_never_raises(query):
    assert classify(query) in ("read", "write", "schema")


def test_count_types():
    counts = count_types("define\n" + SOCIAL_TYPES + SOCIAL_FUNCTIONS)
    assert counts == {"entity": 1, "relation": 1, "attribute": 2, "function": 1}
    assert count_types("define person sub entity; name sub attribute;")["attribute"] == 1


async def test_mixed_bot_names_the_kind_a_verb_does_not_work_on(console_sim, tdb_sim, tmp_path):
    from bot.config import ConsoleProvider
    from tests.support import ENVIRON

    config = Config(
        bot=BotSettings(admins=(ADMIN,), database=str(tmp_path / "mixed.sqlite3")),
        providers=(
            ConsoleProvider(
                name="console",
                kind="graphenedb",
                base_url=console_sim.base_url,
                client_id_env="T_CLIENT_ID",
                client_secret_env="T_CLIENT_SECRET",
            ),
            TypeDBProvider(
                name="graph",
                kind="typedb",
                base_url=tdb_sim.base_url,
                username_env="T_TDB_USER",
                password_env="T_TDB_PASS",
            ),
        ),
    )
    environ = {**ENVIRON, "T_TDB_USER": "admin", "T_TDB_PASS": TDB_PASSWORD}
    bot = build_bot(config, environ=environ)
    try:
        bot.services.permissions.grant(ADM, "graph", "graph", Role.ADMIN)
        only_typedb = await run(bot, "pause social", channel=ADM)
        assert only_typedb.status == "denied" and "graph (typedb)" in only_typedb.text
        bot.services.permissions.grant(ADM, "console", "*", Role.ADMIN)
        both = await run(bot, "pause social", channel=ADM)
        assert both.status == "error" and "kind typedb" in both.text
        assert console_sim.mutating_requests() == [] and tdb_sim.mutating_requests() == []
    finally:
        await bot.aclose()


async def test_abandoned_transactions_are_swept(tbot, clock):
    await run(tbot, "tx open social read", channel=VIEW, user=BOB)
    transactions = tbot.services.transactions
    assert len(transactions) == 1
    clock.advance(2 * transactions.timeout_seconds + 1)
    await run(tbot, "tx open social read", channel=VIEW)
    assert len(transactions) == 1  # Alice's; Bob's abandoned one is gone


async def test_a_database_on_two_bound_servers_is_ambiguous_for_every_query(tdb_sim, tmp_path):
    # issue 15, case 7: operator on one server, viewer on the other, same database name
    second = TypeDBSimulator(username="admin", password=TDB_PASSWORD)
    await second.start("127.0.0.1", 0)
    servers = [("graph", tdb_sim), ("graph2", second)]
    config = Config(
        bot=BotSettings(admins=(ADMIN,), database=str(tmp_path / "two.sqlite3")),
        providers=tuple(
            TypeDBProvider(
                name=name,
                kind="typedb",
                base_url=sim.base_url,
                username_env="T_TDB_USER",
                password_env="T_TDB_PASS",
            )
            for name, sim in servers
        ),
    )
    bot = build_bot(config, environ={"T_TDB_USER": "admin", "T_TDB_PASS": TDB_PASSWORD})
    try:
        bot.services.permissions.grant(OPS, "graph", "graph", Role.OPERATOR)
        bot.services.permissions.grant(OPS, "graph2", "graph2", Role.VIEWER)
        for line in (f"query social '{INSERT}'", f"query social '{READ}'", "tx open social write"):
            reply = await run(bot, line)
            assert reply.status == "error", (line, reply.text)
            assert "ambiguous" in reply.text and "graph2" in reply.text and "env=" in reply.text
        assert query_posts(tdb_sim) == [] and query_posts(second) == []
        there = await run(bot, f"query social '{INSERT}' env=graph")
        assert there.status == "ok", there.text
        viewed = await run(bot, f"query social '{INSERT}' env=graph2")
        assert viewed.status == "denied" and "graph2" in viewed.text and "viewer" in viewed.text
        assert second.database("social").writes == []
    finally:
        await bot.aclose()
        await second.stop()


def test_an_unknown_outcome_on_a_typedb_server_names_typedb_verbs() -> None:
    """After an unknown outcome, the answer says what to look at: on a TypeDB server its
    databases and users, never the Console's `ops` (which it does not have)."""
    from commands.targets import how_to_check
    from core.kinds import ProviderKind
    from core.provider import Provider

    providers = {
        "tdb": Provider("tdb", ProviderKind.TYPEDB, client=None),  # type: ignore[arg-type]
        "console": Provider("console", ProviderKind.GRAPHENEDB, client=None),  # type: ignore[arg-type]
    }
    assert "`dbs`" in how_to_check(providers, "tdb") and "`ops`" not in how_to_check(
        providers, "tdb"
    )
    assert "`ops`" in how_to_check(providers, "console")
    assert "`ops`" in how_to_check(providers, None)  # not known: the usual verbs
    assert "`ops`" in how_to_check(providers, "gone")
