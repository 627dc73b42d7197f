"""Replies in the project's words (issue 18, case 6): what was wrong and what works,
never a library's wording, an empty title, a bare `*`, a raw epoch or "1 answers".

Each test runs commands through the bot on the demo's three simulators (Console
`console`, v1 `legacy`, TypeDB `graph`) as @alice in #dev-db.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import pytest

from bot.demo import Demo, start_demo
from bot.text import render
from core.invocation import Invocation
from core.reply import Reply
from operations.tracker import Tracker
from permissions.roles import Role
from tests.support import RecordingNotifier

ALICE, ADMIN = "U0ALICE", "U0ADMIN"
DEV = "C0DEV"
LIBRARY_WORDS = ("Input should", "Field required", "Value error", "Extra inputs", "(top level)")
UTC_DATE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d UTC$")


@pytest.fixture
async def demo() -> AsyncIterator[Demo]:
    started = await start_demo(step_seconds=0.01)
    try:
        yield started
    finally:
        await started.aclose()


async def run(demo: Demo, line: str, user: str = ALICE, channel: str = DEV) -> Reply:
    return await demo.bot.run(Invocation(user=user, channel=channel, text=line))


def everything(reply: Reply) -> str:
    cells = [cell for table in reply.tables for row in table.rows for cell in row]
    notes = [table.note or "" for table in reply.tables]
    fields = [value for _, value in reply.fields]
    return "\n".join([reply.title or "", reply.text, *fields, *cells, *notes])


# -- option values ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("restart sandbox-db reset=maybe", "reset= takes true or false, not 'maybe'"),
        ("ops sandbox-db limit=abc", "limit= takes a whole number from 1 to 50, not 'abc'"),
        ("ops sandbox-db limit=0", "limit= takes a whole number from 1 to 50, not 0"),
        ("schedule-extend 1 hours=99", "hours= takes a whole number from 1 to 12, not 99"),
        (
            "query social 'match $p isa person;' limit=1000",
            "limit= takes a whole number from 1 to 200, not 1000",
        ),
        ("list staging colour=red", "unknown option colour=: list takes no options"),
        ("show sandbox-db colour=red", "unknown option colour= (options: env=)"),
    ],
)
async def test_a_bad_option_says_what_was_wrong_and_what_works(demo: Demo, line: str, expected):
    reply = await run(demo, line)
    assert reply.status == "error" and reply.title == f"Usage of {line.split()[0]}"
    assert expected in reply.text, reply.text
    assert "Usage:" in reply.text and "Example:" in reply.text
    assert not any(words in reply.text for words in LIBRARY_WORDS), reply.text


async def test_a_missing_plan_is_asked_for_in_words(demo: Demo):
    """A missing option with a finite set of values is asked for (a menu, issue 20), and
    the question says what is missing in the same words as a usage error would."""
    reply = await run(demo, "create fresh-db version=5.24.0")
    assert reply.status == "info" and reply.title == "Which plan for create?", everything(reply)
    assert reply.choice is not None and all("plan=" in o.command for o in reply.choice.options)
    assert not any(words in everything(reply) for words in LIBRARY_WORDS), everything(reply)


async def test_an_unclosed_quote_says_so(demo: Demo):
    reply = await run(demo, "query social 'match $p isa person;")
    assert reply.title == "Cannot read that command"
    assert reply.text.startswith("a quote is not closed: close the quote")
    assert "No closing quotation" not in reply.text


# -- titles ------------------------------------------------------------------------------


async def test_no_reply_has_an_empty_title(demo: Demo):
    """Errors, refusals and notes all have a title; the shell never prints a bare mark."""
    lines = [
        "watch sandbox-db",
        "watch sandbox-db",  # already watching
        "unwatch orders-db",
        "unwatch orders-db",  # was not watching
        "approve NOSUCHID",
        "tx commit",
        "plan",
        "grant console staging viewer",  # not a bot admin
        "schedule-skip 42",
        "show nosuch-db",
        "restart sandbox-db reset=maybe",
    ]
    for line in lines:
        reply = await run(demo, line)
        assert reply.title, f"{line!r} has no title: {reply}"
        first = render(reply).splitlines()[0]
        assert not re.match(r"^\W*\(only you see this\)$", first.strip("✔ℹ⏳⛔✖ ")), first
    shown = render(Reply(status="error", text="one line\nanother", visibility="ephemeral"))
    assert shown.splitlines()[0] == "✖ one line  (only you see this)"


async def test_an_already_decided_approval_heads_its_reply_with_when_in_utc(demo: Demo):
    card = await run(demo, "terminate sandbox-db")
    approve = next(a.command for a in card.actions if a.label == "Approve")
    assert (await run(demo, approve)).status == "ok"
    again = await run(demo, approve)
    head = render(again, {"U0ALICE": "alice"}).splitlines()[0]
    assert re.fullmatch(
        r"ℹ already approved by @alice at \d{4}-\d\d-\d\d \d\d:\d\d UTC \(executed\)"
        r"  \(only you see this\)",
        head,
    ), head


# -- environments ------------------------------------------------------------------------


async def test_a_binding_on_every_environment_is_said_in_words(demo: Demo):
    wrong_env = await run(demo, "list nowhere")
    assert "all environments of legacy" in wrong_env.text
    assert "*" not in wrong_env.text, wrong_env.text
    access = await run(demo, "access")
    environments = [row[1] for row in access.tables[0].rows]
    assert "all environments" in environments and "*" not in environments
    granted = await run(demo, "grant graph * viewer channel=C0NEW", user=ADMIN)
    assert granted.text.endswith("is now viewer on all environments of graph."), granted.text
    pause = await run(demo, "pause orders-db", channel="C0NEW")
    assert pause.status == "denied" and "*" not in pause.text, pause.text


# -- times -------------------------------------------------------------------------------


async def test_times_are_dates_in_utc(demo: Demo):
    console = demo.simulators.console
    sandbox = next(db for db in console.databases if db.name == "sandbox-db")
    console.add_snapshot(sandbox.id)
    assert (await run(demo, "restart sandbox-db")).status == "ok"
    backup = await run(demo, "backup legacy-orders")
    tracker = Tracker(demo.bot.db, demo.bot.services.providers, RecordingNotifier())
    await tracker.track(backup.operations[0], channel=DEV, thread_ts="1.0", user=ALICE)
    ops = await run(demo, "ops sandbox-db")
    started = [row[-1] for row in ops.tables[0].rows]
    assert started and all(UTC_DATE.match(cell) for cell in started), started
    v1_ops = await run(demo, "ops legacy-orders")
    assert v1_ops.tables[0].rows and all(UTC_DATE.match(r[-1]) for r in v1_ops.tables[0].rows)
    snapshots = await run(demo, "snapshots sandbox-db")
    assert all(UTC_DATE.match(row[1]) for row in snapshots.tables[0].rows)
    show = await run(demo, "show sandbox-db")
    assert UTC_DATE.match(dict(show.fields)["Created"])
    backups = await run(demo, "backups legacy-orders")
    assert all(UTC_DATE.match(row[3]) for row in backups.tables[0].rows)


# -- counts ------------------------------------------------------------------------------


async def test_a_cut_answer_says_how_many_in_words(demo: Demo):
    query = "query social 'match $p isa person, has name $n;'"
    one = await run(demo, f"{query} limit=1")
    note = one.tables[0].note or ""
    assert note.startswith("showing only the first answer; there are more: add limit=N"), note
    two = await run(demo, f"{query} limit=2")
    assert (two.tables[0].note or "").startswith("showing the first 2 answers; there are more")
    assert "1 answers" not in everything(one) + everything(two)
    assert one.text == "1 answer" and two.text == "2 answers"


# -- commands ----------------------------------------------------------------------------


@pytest.mark.parametrize("line", ["/GDB list", "/Gdb LIST", "LIST", "/gdb Ls"])
async def test_commands_and_the_slash_are_case_insensitive(demo: Demo, line: str):
    reply = await run(demo, line)
    assert reply.status == "ok" and reply.title == "Databases", reply


async def test_an_unknown_command_after_a_capital_slash_is_named(demo: Demo):
    reply = await run(demo, "/GDB lsit")
    assert reply.title == "Unknown command"
    assert reply.text.startswith("There is no command `lsit`. Did you mean `list`")


# -- providers ---------------------------------------------------------------------------


async def test_a_catalog_of_another_kind_of_provider_names_its_kind(demo: Demo):
    reply = await run(demo, "plans provider=graph")
    assert reply.status == "error"
    assert reply.text == "plans works on graphenedb and graphenedb-v1 providers; " + (
        "graph is a typedb provider"
    )


async def test_a_catalog_of_an_unknown_provider_lists_the_providers(demo: Demo):
    reply = await run(demo, "versions provider=nosuch")
    assert reply.status == "error"
    assert reply.text == "no provider called 'nosuch' (providers: console, legacy)"
    assert (await run(demo, "regions provider=legacy")).status == "ok"


async def test_a_catalog_of_an_unbound_provider_says_so(demo: Demo):
    demo.bot.services.permissions.grant("C0ONLYTDB", "graph", "*", demo_role("viewer"))
    demo.bot.services.permissions.grant("C0ONLYTDB", "console", "staging", demo_role("viewer"))
    reply = await run(demo, "plans provider=legacy", channel="C0ONLYTDB")
    assert reply.text.startswith("this channel has no binding on provider legacy")


def demo_role(label: str):  # type: ignore[no-untyped-def]
    from permissions.roles import Role

    return Role.parse(label)


@pytest.mark.parametrize(
    ("provider", "line", "path", "source"),
    [
        ("console", "ops sandbox-db", r"/operations", "console (graphenedb): Server error (500)"),
        ("v1", "backups legacy-orders", r"/backups", "legacy (graphenedb-v1): Server error (500)"),
        ("typedb", "dbs", r"^/v1/databases$", "graph (typedb): Server error (500)"),
    ],
)
async def test_a_provider_error_names_the_providers_name_and_kind(
    demo: Demo, provider: str, line: str, path: str, source: str
):
    simulator = getattr(demo.simulators, provider)
    simulator.faults.fail_next("GET", path, status=500, times=10, text="disk on fire")
    reply = await run(demo, line)
    assert reply.status == "error" and reply.title == "The API call failed"
    assert reply.text.startswith(source), reply.text
    assert "disk on fire" in reply.text


async def test_a_grant_on_an_unknown_provider_lists_the_providers(demo: Demo):
    reply = await run(demo, "grant nosuch staging viewer", user=ADMIN)
    said = "no provider called 'nosuch' (providers: console, legacy, graph); nothing was changed"
    assert reply.text == said


@pytest.mark.parametrize(
    "line",
    [
        "protect consol staging on",
        "incident-channel consol * C0INCIDENT",
        "protect console stagng on",
        "incident-channel console prodution C0INCIDENT",
    ],
)
async def test_protect_and_incident_channel_refuse_what_names_nothing(demo: Demo, line: str):
    """A typo would protect (or announce) nothing while saying it did."""
    before = demo.bot.services.permissions.bindings()
    protections = demo.bot.db.execute("SELECT COUNT(*) FROM protected_environments").fetchone()
    reply = await run(demo, line, user=ADMIN)
    assert reply.status == "error" and "nothing was changed" in reply.text, reply.text
    assert demo.bot.services.permissions.bindings() == before
    after = demo.bot.db.execute("SELECT COUNT(*) FROM protected_environments").fetchone()
    assert after == protections


async def test_a_fallback_without_users_is_refused(demo: Demo):
    reply = await run(demo, "grant C0DEV console staging viewer fallback=admin", user=ADMIN)
    assert reply.status == "error" and "without users= the whole channel" in reply.text


@pytest.mark.parametrize(
    ("provider", "path", "line"),
    [
        ("typedb", r"/v1/signin$", "query social 'match $p isa person;'"),
        ("v1", r"/databases", "backups legacy-orders"),
        ("v1", r"/databases", "list legacy"),
    ],
)
async def test_a_provider_refusing_every_look_up_is_an_error_not_an_empty_answer(
    demo: Demo, provider: str, path: str, line: str
):
    """Wrong credentials (401 on every look-up) answer with the provider's error, never
    a success with nothing in it, nor "no database called ...: no environment"."""
    simulator = getattr(demo.simulators, provider)
    simulator.faults.fail_next("*", path, status=401, times=50, text="bad credentials")
    reply = await run(demo, line)
    assert reply.status == "error", everything(reply)
    assert "(401)" in reply.text and "no environment" not in reply.text, reply.text


async def test_a_version_menu_has_one_line_per_command(demo: Demo):
    """Two editions of one version are one menu line (both named), not two lines that
    run the same `version=` under different labels."""
    reply = await run(demo, "create fresh-db plan=ds1 env=development")
    assert reply.choice is not None and reply.title == "Which version for create?"
    commands = [o.command for o in reply.choice.options]
    assert len(commands) == len(set(commands)), commands
    [line] = [o.label for o in reply.choice.options if o.value == "5.24.0"]
    assert "enterprise" in line and "community" in line, line


async def test_revoke_takes_the_channel_where_grant_does(demo: Demo):
    """`revoke #prod-oncall console production` (as `grant` is typed), not a usage error."""
    granted = await run(demo, "grant C0OTHER console staging viewer", user=ADMIN)
    assert granted.status == "ok", granted.text
    reply = await run(demo, "revoke C0OTHER console staging", user=ADMIN)
    assert reply.status == "ok", reply.text
    assert "no longer has access to staging (console)" in reply.text
    again = await run(demo, "revoke C0OTHER console staging", user=ADMIN)
    assert again.status == "error" and "had no binding" in again.text


async def test_a_grant_on_an_environment_that_does_not_exist_is_refused(demo: Demo):
    reply = await run(demo, "grant C0OTHER console nosuchenv admin", user=ADMIN)
    assert reply.status == "error", reply.text
    assert "console has no environment called 'nosuchenv'" in reply.text
    assert "development" in reply.text and "nothing was changed" in reply.text
    assert not [b for b in demo.bot.services.permissions.bindings("C0OTHER")]
    assert (await run(demo, "grant C0OTHER console Staging viewer", user=ADMIN)).status == "ok"


async def test_a_failing_provider_of_another_kind_does_not_answer_for_the_one_asked(demo: Demo):
    """`show` of a name not found looks among the other kinds too, for a better message;
    a TypeDB server refusing that look-up must not become the answer."""
    demo.simulators.typedb.faults.fail_next("*", r"/v1/signin$", status=401, times=50)
    reply = await run(demo, "show nowhere-db")
    assert reply.status == "error" and "no database called 'nowhere-db'" in reply.text
    assert "typedb" not in reply.text, reply.text


@pytest.mark.parametrize(
    "line",
    [
        "Hunter2Pass!word9",  # a password pasted as the whole command
        "help Xq7pLm2Zr9Kw!",
        "list tz=Xq7pLm2Zr9Kw",  # the value of an option the verb does not take
        "restart sandbox-db Xq7pLm2Zr9Kw",  # an extra word
    ],
)
async def test_a_password_typed_by_mistake_is_neither_repeated_nor_kept(demo: Demo, line: str):
    import json

    secret = re.search(r"(Hunter2Pass!word9|Xq7pLm2Zr9Kw!?)", line)
    assert secret is not None
    reply = await run(demo, line)
    kept = json.dumps(demo.bot.services.audit.query(limit=1000), default=str)
    # as stored: `graphops audit` in another process does not know what this one redacts
    stored = json.dumps(demo.bot.db.execute("SELECT * FROM audit").fetchall(), default=str)
    assert "help" not in line or "help" in stored  # the row is there
    for place, text in (("reply", reply.model_dump_json()), ("audit", kept), ("file", stored)):
        assert secret.group(1).lower() not in text.lower(), place


async def test_an_approval_id_is_kept_as_typed(demo: Demo):
    """`approve <id>` is read back after a restart: its id is not taken for a password."""
    await run(demo, "approve 7Hk2mQ9x")
    rows = demo.bot.services.audit.query(kind="command", limit=10)
    assert any("approve 7Hk2mQ9x" in str(row) for row in rows)


async def test_a_known_name_is_never_taken_for_a_password(demo: Demo):
    """`Prod-EU1` looks like a password (mixed case, a digit) but names an environment:
    typed in a line that fits no command, it stays readable in every later answer."""
    env = demo.simulators.console.add_environment("Prod-EU1", "red")
    demo.simulators.console.add_database(env.id, "eu-orders")
    demo.bot.services.permissions.grant("C0DEV", "console", "Prod-EU1", Role.VIEWER)
    demo.bot.services.resolver.invalidate("console")
    assert "Prod-EU1" in render(await run(demo, "list"))  # the name cache knows it
    await run(demo, "list Prod-EU1 and more words")  # fits no command
    assert "Prod-EU1" in render(await run(demo, "list"))


async def test_an_approval_id_in_a_line_that_does_not_fit_stays_readable(demo: Demo):
    """`approve 7Hk2mQ9x now` fits no form; its id looks like a password, but taking it
    for one would blank it on its card and its buttons."""
    from core.redaction import redact

    await run(demo, "approve 7Hk2mQ9x now")
    assert redact("approve 7Hk2mQ9x") == "approve 7Hk2mQ9x"
