"""Every verb end to end: command line -> permission -> simulator over HTTP -> Reply."""

from __future__ import annotations

import asyncio

import pytest

from core.invocation import Invocation
from core.refs import plain
from core.reply import Reply
from permissions.roles import Role

ALICE, BOB, ADMIN = "U0ALICE", "U0BOB", "U0ADMIN"
DEV, PROD, ONCALL = "C0DEV", "C0PROD", "C0ONCALL"


async def run(bot, line: str, user: str = ALICE, channel: str = DEV) -> Reply:
    return await bot.run(Invocation(user=user, channel=channel, text=line))


def text_of(reply: Reply) -> str:
    parts = [reply.title or "", reply.text, *(f"{a}: {b}" for a, b in reply.fields)]
    for table in reply.tables:
        parts.extend(" | ".join(row) for row in table.rows)
    return "\n".join(parts)


def approve_line(reply: Reply) -> str:
    (action,) = [a for a in reply.actions if a.action_id == "approval.approve"]
    return action.command


# -- rights are checked before any I/O -------------------------------------------


async def test_denied_verb_sends_no_request(bot, console_sim):
    reply = await run(bot, "/gdb pause orders-db", channel=PROD)
    assert reply.status == "denied" and reply.visibility == "ephemeral"
    assert "bound to production (console) as viewer; pause needs operator" in reply.text
    assert console_sim.requests == []  # not even a token request


async def test_default_deny_for_an_unbound_channel(bot, console_sim):
    reply = await run(bot, "list", channel="C0NOWHERE")
    assert reply.status == "denied"
    assert "not bound to any environment" in reply.text
    assert console_sim.requests == []


async def test_invalid_command_sends_no_request(bot, console_sim):
    # (`pause` alone is not invalid: it asks which database, tests/commands/test_cmd_choices.py)
    for line in ("pause a b", "pause x colour=red", "frobnicate", 'pause "x', "create"):
        reply = await run(bot, line)
        assert reply.status == "error", line
    assert console_sim.requests == []


async def test_names_resolve_only_where_the_role_suffices(bot):
    # orders-db exists in production and staging; #dev-db is operator only on staging.
    reply = await run(bot, "restart orders-db")
    assert reply.status == "ok"
    assert "staging" in reply.operations[0].label
    reply = await run(bot, "terminate billing-db")  # production only: not searched
    assert reply.status == "error" and "no database called 'billing-db'" in reply.text


async def test_ambiguous_name_asks_which(bot):
    bot.services.permissions.grant("C0ALL", "console", "*", Role.VIEWER)
    reply = await run(bot, "show orders-db", channel="C0ALL")
    assert reply.status == "error"
    assert "ambiguous" in reply.text and "production" in reply.text and "staging" in reply.text
    reply = await run(bot, "show orders-db env=production", channel="C0ALL")
    assert reply.status == "ok" and reply.title == "orders-db"


async def test_name_cache_saves_requests_and_survives_changes_of_state(bot, console_sim):
    # Ids are stable: pausing a database changes its state, not its id (the cache
    # and what drops it: tests/commands/test_cmd_resolve.py).
    await run(bot, "show sandbox-db")
    await run(bot, "show sandbox-db")
    assert len(console_sim.requests_to("GET", r"^/deployments/environments$")) == 1
    await run(bot, "pause sandbox-db")
    await run(bot, "show sandbox-db")
    assert len(console_sim.requests_to("GET", r"^/deployments/environments$")) == 1


# -- read verbs --------------------------------------------------------------------


async def test_read_verbs(bot):
    envs = await run(bot, "envs")
    assert [row[0] for row in envs.tables[0].rows] == ["staging", "development"]
    listing = await run(bot, "list")
    assert {row[0] for row in listing.tables[0].rows} == {"orders-db", "catalog-db", "sandbox-db"}
    only_dev = await run(bot, "list development")
    assert [row[0] for row in only_dev.tables[0].rows] == ["sandbox-db"]
    show = await run(bot, "show catalog-db")
    assert dict(show.fields)["State"] == "paused"
    for verb, expected in (("versions", "4.4.16"), ("plans", "ds3"), ("regions", "eu-west-1")):
        reply = await run(bot, verb)
        assert expected in text_of(reply), verb
    snaps = await run(bot, "snapshots orders-db env=production", channel=PROD)
    assert len(snaps.tables[0].rows) == 1
    ops = await run(bot, "ops sandbox-db")
    assert ops.tables[0].note == "no operations"


async def test_list_in_an_environment_the_channel_may_not_use(bot):
    reply = await run(bot, "list production")
    assert reply.status == "error" and "not one this channel may use" in reply.text


# -- operator verbs -------------------------------------------------------------------


async def test_create_pause_resume_restart_snapshot(bot, console_sim, clock):
    created = await run(bot, "create new-db plan=ds1 version=5.24.0 env=development")
    assert created.status == "ok" and created.operations
    assert console_sim.find_database("new-db").name == "new-db"
    bad = await run(bot, "create BadName plan=ds1 version=5.24.0 env=development")
    assert bad.status == "error" and "not a valid database name" in bad.text
    which = await run(bot, "create other-db plan=ds1 version=5.24.0")
    assert which.status == "info" and which.choice is not None  # asks which environment
    assert "say which environment" in which.text
    assert {o.value for o in which.choice.options} == {"development", "staging"}
    paused = await run(bot, "pause sandbox-db")
    assert paused.status == "ok" and paused.operations[0].operation_id
    clock.advance(10)
    assert (await run(bot, "resume sandbox-db")).status == "ok"
    clock.advance(10)
    restart = await run(bot, "restart sandbox-db reset=false")
    assert restart.status == "ok"
    assert console_sim.requests_to("POST", r".*/restart$")[0].body["reset"] is False
    clock.advance(10)
    snap = await run(bot, "snapshot sandbox-db")
    assert snap.status == "ok"


async def test_busy_database_is_a_clear_error(bot):
    await run(bot, "restart sandbox-db")
    reply = await run(bot, "pause sandbox-db")
    assert reply.status == "error"
    assert "another operation is in progress" in reply.text
    assert "409" in reply.text
    assert reply.text.count("in progress") == 1  # the API's words, not repeated


async def test_clone_into_another_environment_checks_both(bot, console_sim):
    reply = await run(bot, "clone sandbox-db sandbox-copy env=staging")
    assert reply.status == "ok"
    assert console_sim.requests_to("POST", r".*/clone$")[0].body["name"] == "sandbox-copy"
    # #prod-db may not create anything anywhere: refused before any clone request
    before = len(console_sim.requests_to("POST", r".*/clone$"))
    refused = await run(bot, "clone orders-db x-copy", channel=PROD)
    assert refused.status == "denied"
    assert len(console_sim.requests_to("POST", r".*/clone$")) == before


async def test_restore_as_new_database(bot, console_sim):
    snap_id = console_sim.snapshots[0].id
    # copying production's data out needs operator there (tests/commands/test_cmd_rights.py)
    bot.services.permissions.grant(DEV, "console", "production", Role.OPERATOR)
    reply = await run(bot, f"restore {snap_id[:8]} as prod-copy env=development")
    assert reply.status == "ok", reply.text
    assert console_sim.find_database("prod-copy")


async def test_import_of_a_local_file_needs_approval_then_streams(bot, console_sim, tmp_path):
    dump = tmp_path / "graph.dump"
    dump.write_bytes(b"g" * 300_000)
    card = await run(bot, f"import sandbox-db {dump}")
    assert card.status == "pending"
    assert console_sim.requests_to("POST", r".*/import$") == []
    done = await run(bot, approve_line(card))
    assert done.status == "ok", done.text
    (upload,) = console_sim.requests_to("POST", r".*/import$")
    assert "300" in str(upload.body)
    missing = await run(bot, "import sandbox-db /no/such/file")
    assert missing.status == "error" and "no readable file" in missing.text


# -- approvals ---------------------------------------------------------------------------


async def test_terminate_needs_approval_and_the_typed_name(bot, console_sim):
    card = await run(bot, "terminate sandbox-db")
    assert card.status == "pending" and "Approval needed" in (card.title or "")
    assert console_sim.requests_to("DELETE") == []
    approval_id = card.actions[0].value
    assert approve_line(card).endswith(f"approve {approval_id} confirm=sandbox-db")
    wrong = await run(bot, f"approve {approval_id} confirm=sandbox")
    assert wrong.status == "error" and "type the database name" in wrong.text
    assert console_sim.requests_to("DELETE") == []
    done = await run(bot, approve_line(card))
    assert done.status == "ok" and "approved the request" in done.text
    assert len(console_sim.requests_to("DELETE")) == 1
    again = await run(bot, approve_line(card))
    assert again.status == "info" and "already" in again.text
    assert len(console_sim.requests_to("DELETE")) == 1
    assert bot.services.approvals.get(approval_id).state == "executed"


async def test_double_click_executes_once(bot, console_sim):
    card = await run(bot, "terminate sandbox-db")
    line = approve_line(card)
    replies = await asyncio.gather(*(run(bot, line) for _ in range(5)))
    assert sum(r.status == "ok" for r in replies) == 1
    assert len(console_sim.requests_to("DELETE")) == 1


async def test_protected_environment_refuses_self_approval(bot, console_sim):
    card = await run(bot, "terminate orders-db", channel=ONCALL)
    assert card.status == "pending" and "protected" in card.text
    own = await run(bot, approve_line(card), channel=ONCALL)
    assert own.status == "denied" and "cannot approve their own" in own.text
    carol = await run(bot, approve_line(card), user="U0CAROL", channel=ONCALL)
    assert carol.status == "denied" and "U0BOB" in carol.text
    assert console_sim.requests_to("DELETE") == []
    by_bob = await run(bot, approve_line(card), user=BOB, channel=ONCALL)
    assert by_bob.status == "ok"
    assert len(console_sim.requests_to("DELETE")) == 1


async def test_approval_is_checked_at_click_time(bot, console_sim):
    card = await run(bot, "terminate orders-db", channel=ONCALL)
    bot.services.permissions.revoke(ONCALL, "console", "production")
    reply = await run(bot, approve_line(card), user=BOB, channel=ONCALL)
    assert reply.status == "denied" and "no longer be approved" in reply.text
    assert console_sim.requests_to("DELETE") == []


async def test_approval_from_another_channel_is_refused(bot, console_sim):
    card = await run(bot, "terminate sandbox-db")
    reply = await run(bot, approve_line(card), user=BOB, channel=ONCALL)
    assert reply.status == "denied" and "another channel" in reply.text
    assert console_sim.requests_to("DELETE") == []


async def test_requester_may_withdraw_and_nothing_runs(bot, console_sim):
    card = await run(bot, "terminate sandbox-db")
    reply = await run(bot, f"deny {card.actions[0].value}")
    assert reply.status == "info" and "denied" in reply.text
    assert (await run(bot, approve_line(card))).status == "info"
    assert console_sim.requests_to("DELETE") == []


async def test_expired_approval_does_not_run(bot, console_sim):
    bot.services.approval_ttl_seconds = 0
    card = await run(bot, "terminate sandbox-db")
    reply = await run(bot, approve_line(card))
    assert "expired" in reply.text
    assert console_sim.requests_to("DELETE") == []


async def test_switch_and_restore_into_need_admin_and_approval(bot, console_sim, clock):
    card = await run(bot, "switch orders-db to orders-replica", channel=ONCALL)
    assert card.status == "pending" and "Connection URL" in dict(card.fields)
    done = await run(bot, approve_line(card), user=BOB, channel=ONCALL)
    assert done.status == "ok"
    assert console_sim.requests_to("POST", r".*/connections/switch$")[0].body["targetDatabase"]
    clock.advance(10)
    snap_id = console_sim.snapshots[0].id
    card = await run(bot, f"restore {snap_id} into billing-db", channel=ONCALL)
    assert card.status == "pending" and "replacing its data" in (card.title or "")
    done = await run(bot, approve_line(card), user=BOB, channel=ONCALL)
    assert done.status == "ok", done.text
    # operators may not restore into a database at all
    refused = await run(bot, f"restore {snap_id[:8]} into orders-db env=staging")
    assert refused.status in ("denied", "error")


async def test_dr_clones_waits_and_switches(bot, console_sim, clock):
    card = await run(bot, "dr orders-db", channel=ONCALL)
    assert card.status == "pending"

    async def time_passes() -> None:
        for _ in range(200):
            await asyncio.sleep(0.01)
            clock.advance(1)

    ticker = asyncio.create_task(time_passes())
    done = await run(bot, approve_line(card), user=BOB, channel=ONCALL)
    ticker.cancel()
    assert done.status == "ok", done.text
    assert "clone orders-db-dr is ready" in done.text
    assert len(console_sim.requests_to("POST", r".*/connections/switch$")) == 1


async def test_dr_stops_when_the_clone_fails(bot, console_sim, clock):
    console_sim.fail_next_operation("clone")
    card = await run(bot, "dr orders-db", channel=ONCALL)

    async def time_passes() -> None:
        for _ in range(200):
            await asyncio.sleep(0.01)
            clock.advance(1)

    ticker = asyncio.create_task(time_passes())
    done = await run(bot, approve_line(card), user=BOB, channel=ONCALL)
    ticker.cancel()
    assert done.status == "error" and "was not switched" in done.text
    assert console_sim.requests_to("POST", r".*/connections/switch$") == []
    approval = bot.services.approvals.get(card.actions[0].value)
    assert approval.state == "failed"


# -- access management from chat -----------------------------------------------------------


async def test_access_verbs(bot, console_sim):
    access = await run(bot, "access")
    console_rows = [row for row in access.tables[0].rows if row[0] == "console"]
    assert {row[1] for row in console_rows} == {"development", "staging"}
    refused = await run(bot, "grant console production admin")
    assert refused.status == "denied" and "bot admins" in refused.text
    granted = await run(bot, "grant console production operator channel=C0NEW", user=ADMIN)
    assert granted.status == "ok"
    assert (await run(bot, "list", channel="C0NEW")).status == "ok"
    wrong = await run(bot, "grant nope production operator", user=ADMIN)
    assert wrong.status == "error" and "no provider" in wrong.text
    bad_role = await run(bot, "grant console production owner", user=ADMIN)
    assert bad_role.status == "error" and "valid roles" in bad_role.text
    assert (await run(bot, "protect console staging on", user=ADMIN)).status == "ok"
    assert (await run(bot, "approvers console staging users=U0BOB", user=ADMIN)).status == "ok"
    incident = await run(bot, "incident-channel console staging C0INC", user=ADMIN)
    assert incident.status == "ok"
    assert bot.services.permissions.incident_channel("console", "x", "staging") == "C0INC"
    assert (await run(bot, "revoke console production channel=C0NEW", user=ADMIN)).status == "ok"
    assert (await run(bot, "list", channel="C0NEW")).status == "denied"


async def test_help(bot):
    listing = await run(bot, "help")
    rows = [row for table in listing.tables for row in table.rows]
    first_words = {row[0].split()[0] for row in rows if row[0] and not row[0].startswith(" ")}
    assert first_words == {verb.name for verb in bot.registry.all()}
    one = await run(bot, "help terminate")
    assert dict(one.fields)["Needs"] == "admin + approval"
    assert "did you mean" in (await run(bot, "help termnate")).text.lower()


# -- audit ------------------------------------------------------------------------------------


async def test_everything_is_audited_without_secrets(bot):
    from tests.support import SECRET, SECRET_ID

    await run(bot, "list")
    await run(bot, "pause orders-db", channel=PROD)
    card = await run(bot, "terminate sandbox-db")
    await run(bot, approve_line(card))
    rows = bot.services.audit.query(limit=1000)
    kinds = {row["kind"] for row in rows}
    assert {"command", "decision", "api_call", "approval", "operation"} <= kinds
    calls = [r for r in rows if r["kind"] == "api_call"]
    assert any(r["user"] == ALICE for r in calls)
    dump = repr(rows)
    client = bot.services.providers["console"].client
    for secret in (SECRET, SECRET_ID, client.auth.current):
        assert secret and secret not in dump


async def test_unexpected_errors_are_answered_plainly(bot, monkeypatch):
    async def boom(*args, **kwargs):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(bot.services.providers["console"].client, "environments", boom)
    reply = await run(bot, "list")
    assert reply.status == "error" and "Something went wrong" in reply.text
    assert "secret internals" not in reply.text


@pytest.mark.parametrize("line", ["show sandbox-db", "list"])
async def test_api_outage_is_described(bot, console_sim, line):
    console_sim.faults.error_rate = 1.0
    console_sim.faults.error_status = 503
    reply = await run(bot, line)
    assert reply.status == "error" and "503" in reply.text


async def test_a_visible_database_with_too_low_a_role_is_a_denial(bot, console_sim):
    reply = await run(bot, "terminate orders-db")  # staging, where #dev-db is operator
    assert reply.status == "denied"
    assert "orders-db is in staging/console, where #C0DEV is operator" in plain(reply.text)
    assert "needs admin" in reply.text
    assert console_sim.mutating_requests() == []
    # in a DM the place is the person's direct messages, not a channel
    from permissions.roles import Role

    bot.services.permissions.grant("U0CAROL", "console", "development", Role.ADMIN)
    bot.services.permissions.grant("U0CAROL", "console", "staging", Role.OPERATOR)
    dm = await run(bot, "terminate orders-db", user="U0CAROL", channel="D0CAROLBOT")
    assert dm.status == "denied"
    assert "where the direct messages of @U0CAROL with graphops is operator" in plain(dm.text)


async def test_a_line_that_does_not_fit_is_audited_without_its_text(bot):
    await run(bot, "pause sandbox-db hunter2-typed-by-mistake")
    await run(bot, "paws sandbox-db hunter2-typed-by-mistake")
    rows = bot.services.audit.query(kind="command", limit=100)
    assert [r["outcome"] for r in rows[-2:]] == ["usage error", "unknown verb"]
    assert "hunter2" not in repr(rows)
    await run(bot, "list")
    assert bot.services.audit.query(kind="command", limit=1)[-1]["detail"] == {"text": "list"}


async def test_a_burst_of_commands_shares_one_lookup(bot, console_sim):
    replies = await asyncio.gather(*(run(bot, "show sandbox-db") for _ in range(20)))
    assert all(r.status == "ok" for r in replies)
    assert len(console_sim.requests_to("GET", r"^/deployments/environments$")) == 1
    assert len(console_sim.requests_to("GET", r"^/deployments/environments/.*/databases$")) == 2


@pytest.mark.parametrize(
    ("line", "channel", "taken_in", "taken"),
    [
        ("dr orders-db", ONCALL, "production", "orders-db-dr"),
        ("dr orders-db env=production name=billing-db", ONCALL, "", "billing-db"),
        ("clone sandbox-db catalog-db env=staging", DEV, "", "catalog-db"),
        ("create sandbox-db env=development plan=ds1 version=5.24.0", DEV, "", "sandbox-db"),
    ],
)
async def test_a_taken_name_is_refused_before_any_approval_or_change(
    bot, console_sim, line, channel, taken_in, taken
):
    """The API refuses a name taken in the environment (400) — found after an approval,
    it wasted the approver's click at 3 a.m.: refused at once, naming what works."""
    if taken_in:
        console_sim.add_database(console_sim.find_environment(taken_in).id, taken)
    bot.services.resolver.invalidate("console")
    before = len(console_sim.mutating_requests())
    reply = await run(bot, line, channel=channel)
    assert reply.status == "error", text_of(reply)
    assert f"already has a database called {taken}; pick another name" in reply.text
    assert not reply.actions  # no approval card
    assert len(console_sim.mutating_requests()) == before
