"""Issue 20 (and issue 15, case 5) through the real Bolt app: signed requests built by the
strict stand-in as Slack builds them, answers read from the stand-in's records.

Who acts inside a channel (roles per user and user group), asking instead of failing
(menus of the values this person may act on, buttons under `show`), commands typed as
mentions and in DMs, and people of another workspace (Slack Connect)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bot.slack.groups import UserGroups
from simulators.graphenedb import ConsoleSimulator
from simulators.slack import NotDelivered, SlackStandIn, options_problems
from tests.bot.slack.conftest import SlackHarness
from tests.bot.slack.slack_support import answers_to, texts, wait_private
from tests.waiting import until

ALICE, BOB, CAROL, ADMIN = "U0ALICE", "U0BOB", "U0CAROL", "U0ADMIN"
PARTNER = "U0PARTNER"  # a person of another organization, in a shared channel


def _restarts(console_sim: ConsoleSimulator) -> list[Any]:
    return [r for r in console_sim.mutating_requests() if r.path.endswith("/restart")]


def _db_id(console_sim: ConsoleSimulator, name: str, env: str) -> str:
    return console_sim.find_database(name, env).id


def _oncall_for_dbas(harness: SlackHarness) -> None:
    """#prod-oncall's production admin held by @dba-team (S0DBA) only; others viewer."""
    standin, permissions = harness.standin, harness.rt.bot.services.permissions
    standin.usergroups["S0DBA"] = [CAROL]
    standin.group_handles["S0DBA"] = "dba-team"
    standin.users[CAROL] = "carol"
    permissions.set_users("C0ONCALL", "console", "production", ["S0DBA"])


def _menu(call: Any) -> dict[str, Any]:
    """The select menu block of an answer."""
    [block] = [
        b
        for b in call.body.get("blocks") or []
        if b["type"] == "actions" and str(b.get("block_id", "")).startswith("choice:")
    ]
    return dict(block)


def _options(block: dict[str, Any]) -> dict[str, str]:
    """label -> value of a static_select's options."""
    [element] = block["elements"]
    assert element["type"] == "static_select"
    assert options_problems(element["options"]) == []
    return {o["text"]["text"]: o["value"] for o in element["options"]}


async def _ask(harness: SlackHarness, line: str, user: str = ALICE, channel: str = "C0DEV") -> Any:
    """Type `line` and return the private answer holding a menu."""
    before = len(answers_to(harness.standin, user))
    await harness.slack.slash(line, user=user, channel=channel)
    answers = await wait_private(harness.standin, user, count=before + 1, contains="choice:")
    return answers[-1]


async def _pick(
    harness: SlackHarness, block: dict[str, Any], value: str, user: str = ALICE
) -> None:
    payload = harness.standin.pick_payload(block, value, user=user, channel="C0DEV")
    response = await harness.slack.send(payload)
    assert response.status_code == 200


# -- roles per user and user group ------------------------------------------------------------


async def test_a_channel_member_outside_users_is_refused_with_the_reason(
    harness: SlackHarness, console_sim: ConsoleSimulator
) -> None:
    _oncall_for_dbas(harness)
    await harness.slack.slash("restart orders-db env=production", channel="C0ONCALL")
    [refusal] = await wait_private(harness.standin, ALICE, contains="not among its users")
    shown = texts(refusal)
    assert "as viewer for" in shown and "restart needs operator" in shown
    assert "<!subteam^S0DBA>" in shown  # the group, as Slack renders it
    assert console_sim.mutating_requests() == []
    [row] = harness.rt.bot.services.audit.query(kind="decision")
    assert row["outcome"] == "denied" and row["team"] == "T0STANDIN"


async def test_a_member_of_a_named_group_is_allowed(
    harness: SlackHarness, console_sim: ConsoleSimulator
) -> None:
    _oncall_for_dbas(harness)
    await harness.slack.slash("restart orders-db env=production", user=CAROL, channel="C0ONCALL")
    [answer] = await harness.standin.wait_for("chat.postMessage")
    assert "Restarting orders-db" in texts(answer)
    [restart] = _restarts(console_sim)
    assert _db_id(console_sim, "orders-db", "production") in restart.path


async def test_access_says_which_rule_gave_the_asker_their_role(harness: SlackHarness) -> None:
    _oncall_for_dbas(harness)
    await harness.slack.slash("access", user=CAROL, channel="C0ONCALL")
    [mine] = await wait_private(harness.standin, CAROL, contains="Your role")
    assert "admin: a member of @dba-team, named in its users=" in texts(mine)
    await harness.slack.slash("access", channel="C0ONCALL")
    [theirs] = await wait_private(harness.standin, ALICE, contains="Your role")
    assert "viewer: not among its users @dba-team: its fallback role" in texts(theirs)


async def test_a_cold_group_cache_and_a_slow_slack_delay_neither_the_ack_nor_the_modal(
    harness: SlackHarness, console_sim: ConsoleSimulator
) -> None:
    standin, rt = harness.standin, harness.rt
    _oncall_for_dbas(harness)
    standin.trigger_ttl = 1.0  # stricter than Slack's 3 s: a late views.open fails
    standin.delays["usergroups.users.list"] = 2.0  # Slack slow to say who is in a group
    rt.groups = UserGroups(rt.client)  # cold
    response = await harness.slack.slash(
        "terminate orders-db env=production", user=CAROL, channel="C0ONCALL"
    )
    assert response.status_code == 200
    assert response.text == "Checking `/gdb terminate orders-db env=production`…"
    # acked while the group look-up it needs had not answered yet
    assert [c for c in standin.calls_to("usergroups.users.list") if c.ok] == []
    [card] = await standin.wait_for("chat.postMessage", timeout=15)
    approval_id = next(
        e["value"]
        for b in card.body["blocks"]
        if b["type"] == "actions"
        for e in b["elements"]
        if e["action_id"] == "approval.approve"
    )
    await until(lambda: bool(rt.bot.services.approvals.get(approval_id).message_ts))  # type: ignore[union-attr]
    ts = rt.bot.services.approvals.get(approval_id).message_ts  # type: ignore[union-attr]
    rt.groups = UserGroups(rt.client)  # cold again, for the approver's click
    standin.usergroups["S0DBA"] = [CAROL, BOB]
    await harness.slack.click(
        "approval.approve", approval_id, user=BOB, channel="C0ONCALL", message_ts=str(ts)
    )
    [update] = await standin.wait_for(
        "views.update",
        timeout=15,
        where=lambda c: c.body["view"].get("callback_id") == "approval.confirm",
    )
    [opened] = standin.calls_to("views.open")
    assert opened.ok  # opened in time, before the look-up answered:
    lookups = [c for c in standin.calls if c.method == "usergroups.users.list"]
    assert standin.calls.index(opened) < standin.calls.index(lookups[-1])
    response = await harness.slack.submit(update.body["view"], "orders-db", user=BOB)
    assert response.status_code == 200
    await standin.wait_for("chat.update")
    approval = rt.bot.services.approvals.get(approval_id)
    assert approval is not None and approval.decided_by == BOB


# -- ask, don't fail ---------------------------------------------------------------------------


async def test_restart_without_a_database_offers_only_what_this_person_may_restart(
    harness: SlackHarness, console_sim: ConsoleSimulator
) -> None:
    harness.rt.bot.services.permissions.grant("C0DEV", "console", "production", _viewer())
    answer = await _ask(harness, "restart")
    assert answer.body["response_type"] == "ephemeral"
    labels = set(_options(_menu(answer)))
    # #dev-db: admin on development, operator on staging, viewer on production
    assert labels == {
        "sandbox-db (development/console)",
        "orders-db (staging/console)",
        "catalog-db (staging/console)",
    }
    assert console_sim.mutating_requests() == []
    # in #prod-db, viewer only: refused as the typed command would be, no look-up at all
    listed = len(console_sim.requests)
    await harness.slack.slash("restart", channel="C0PROD")
    [refusal] = await wait_private(harness.standin, ALICE, contains="restart needs operator")
    assert "choice:" not in texts(refusal)
    assert len(console_sim.requests) == listed


async def test_picking_a_database_restarts_it(
    harness: SlackHarness, console_sim: ConsoleSimulator
) -> None:
    block = _menu(await _ask(harness, "restart"))
    await _pick(harness, block, _options(block)["sandbox-db (development/console)"])
    [answer] = await harness.standin.wait_for("chat.postMessage")
    assert "Restarting sandbox-db" in texts(answer)
    [restart] = _restarts(console_sim)
    assert _db_id(console_sim, "sandbox-db", "development") in restart.path
    command = harness.rt.bot.services.audit.query(kind="command")[-1]
    assert command["detail"]["text"].startswith("restart sandbox-db")  # as if typed


async def test_a_pick_is_kept_in_the_inbox_like_the_command_it_stands_for(
    harness: SlackHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pick runs a command (a restart): it was run with no inbox row, so a kill after
    its request went out left nothing for the next start to answer."""
    monkeypatch.setattr(harness.rt.inbox, "done", lambda row_id: None)  # keep the rows
    block = _menu(await _ask(harness, "restart"))
    await _pick(harness, block, _options(block)["sandbox-db (development/console)"])
    assert await harness.rt.idle()
    kept = harness.rt.bot.db.execute("SELECT user, text, stage FROM accepted_requests")
    rows = [row for row in kept.fetchall() if row[1] != "restart …"]  # the typed one
    assert rows == [(ALICE, "restart sandbox-db env=development", "answered")], rows


@pytest.mark.parametrize("forgery", ["unlisted", "someone else", "twice", "rights gone"])
async def test_a_forged_pick_is_refused_and_runs_nothing(
    harness: SlackHarness, console_sim: ConsoleSimulator, forgery: str
) -> None:
    block = _menu(await _ask(harness, "restart"))
    options = _options(block)
    key = block["block_id"].removeprefix("choice:")
    value = options["orders-db (staging/console)"]
    picker = ALICE
    if forgery == "unlisted":
        value = f"{key}:{len(options) + 40}"
    elif forgery == "someone else":
        picker = BOB
    elif forgery == "twice":
        await _pick(harness, block, value)
        await harness.standin.wait_for("chat.postMessage")
    else:  # the option was listed, but the person's rights changed since
        harness.rt.bot.services.permissions.grant("C0DEV", "console", "staging", _viewer())
    before = len(_restarts(console_sim))
    await _pick(harness, block, value, user=picker)
    await harness.rt.idle()
    reason = {
        "unlisted": "not one of the options",
        "someone else": "made for someone else",
        "twice": "already picked",
        "rights gone": "that command needs operator",  # found, where the role is viewer now
    }[forgery]
    await wait_private(harness.standin, picker, contains=reason)
    assert len(_restarts(console_sim)) == before
    denied = harness.rt.bot.services.audit.query(kind="decision")[-1]  # every one audited
    assert denied["outcome"] == "denied" and denied["user"] == picker


def _viewer() -> Any:
    from permissions.roles import Role

    return Role.VIEWER


async def test_more_than_a_hundred_databases_are_searched(
    harness: SlackHarness, console_sim: ConsoleSimulator
) -> None:
    dev = console_sim.find_environment("development")
    for number in range(120):
        console_sim.add_database(dev.id, f"svc-{number:03d}-db")
    block = _menu(await _ask(harness, "restart"))
    [element] = block["elements"]
    assert element["type"] == "external_select" and "options" not in element
    payload = harness.standin.suggestion_payload(block, "svc-11", user=ALICE, channel="C0DEV")
    response = await harness.slack.send(payload)
    assert response.status_code == 200
    options = response.json()["options"]
    assert options_problems(options) == []
    labels = [o["text"]["text"] for o in options]
    assert labels == [f"svc-11{d}-db (development/console)" for d in range(10)]
    everything = await harness.slack.send(
        harness.standin.suggestion_payload(block, "", user=ALICE, channel="C0DEV")
    )
    assert len(everything.json()["options"]) == 100  # Slack's limit for one answer
    stranger = await harness.slack.send(
        harness.standin.suggestion_payload(block, "svc", user=BOB, channel="C0DEV")
    )
    assert stranger.json()["options"] == []  # the menu is Alice's
    await _pick(harness, block, options[3]["value"])
    [restart] = await _until_restarted(console_sim)
    assert _db_id(console_sim, "svc-113-db", "development") in restart.path


async def _until_restarted(console_sim: ConsoleSimulator) -> list[Any]:
    await until(lambda: bool(_restarts(console_sim)))
    return _restarts(console_sim)


async def test_show_offers_the_actions_this_person_may_take(
    harness: SlackHarness, console_sim: ConsoleSimulator
) -> None:
    def buttons(call: Any) -> dict[str, str]:
        return {
            e["text"]["text"]: e["value"]
            for b in call.body["blocks"]
            if b["type"] == "actions"
            for e in b["elements"]
        }

    await harness.slack.slash("show sandbox-db")
    [shown] = await harness.standin.wait_for("chat.postMessage")
    offered = buttons(shown)
    assert set(offered) == {"Restart", "Pause", "Snapshot", "Watch here", "Terminate (approval)"}
    assert offered["Restart"] == "/gdb restart sandbox-db env=development"
    await harness.slack.slash("show orders-db", channel="C0PROD")  # viewer there
    [viewer] = await harness.standin.wait_for(
        "chat.postMessage", where=lambda c: c.body["channel"] == "C0PROD"
    )
    assert set(buttons(viewer)) == {"Watch here"}
    await harness.slack.click("command.0", offered["Restart"], user=ALICE, channel="C0DEV")
    [restart] = await _until_restarted(console_sim)
    assert _db_id(console_sim, "sandbox-db", "development") in restart.path
    await harness.slack.click(
        "command.4", offered["Terminate (approval)"], user=ALICE, channel="C0DEV"
    )
    await harness.standin.wait_for(
        "chat.postMessage", where=lambda c: "Approval needed" in texts(c)
    )
    assert [r for r in console_sim.mutating_requests() if r.method == "DELETE"] == []


# -- mentions and direct messages ---------------------------------------------------------------


async def test_a_mention_in_a_channel_is_answered_in_its_thread(harness: SlackHarness) -> None:
    payload = harness.standin.mention_event("list", user=ALICE, channel="C0DEV")
    response = await harness.slack.send(payload)
    assert response.status_code == 200
    [answer] = await harness.standin.wait_for("chat.postMessage")
    assert answer.body["channel"] == "C0DEV"
    assert answer.body["thread_ts"] == payload["event"]["ts"]
    assert "sandbox-db" in texts(answer)
    # the same event delivered again (a retry after a lost ack) runs once
    await harness.slack.send(payload)
    assert await harness.rt.idle()
    assert len(harness.standin.calls_to("chat.postMessage")) == 1


async def test_a_mention_that_needs_approval_puts_its_card_in_the_thread(
    harness: SlackHarness, console_sim: ConsoleSimulator
) -> None:
    payload = harness.standin.mention_event("restart sandbox-db", user=ALICE, channel="C0DEV")
    await harness.slack.send(payload)
    [answer] = await harness.standin.wait_for("chat.postMessage")
    assert answer.body["thread_ts"] == payload["event"]["ts"]
    assert "Restarting sandbox-db" in texts(answer)
    assert len(_restarts(console_sim)) == 1


async def test_list_in_a_dm_has_the_rights_of_a_personal_binding(harness: SlackHarness) -> None:
    await harness.slack.slash("grant @alice console staging operator", user=ADMIN)
    [granted] = await harness.standin.wait_for("chat.postMessage")
    assert "the direct messages of <@U0ALICE>" in texts(granted)
    response = await harness.slack.send(harness.standin.dm_event("list", user=ALICE))
    assert response.status_code == 200
    dm = harness.standin.dm_channel(ALICE)
    [answer] = await harness.standin.wait_for(
        "chat.postMessage", where=lambda c: c.body["channel"] == dm
    )
    shown = texts(answer)
    assert answer.body.get("thread_ts") is None  # a plain message of the DM
    assert "orders-db" in shown and "catalog-db" in shown  # staging: her personal binding
    assert "sandbox-db" not in shown  # development: only #dev-db's
    # Bob has no personal binding: refused, in his DM
    await harness.slack.send(harness.standin.dm_event("list", user=BOB))
    bob_dm = harness.standin.dm_channel(BOB)
    [refusal] = await harness.standin.wait_for(
        "chat.postMessage", where=lambda c: c.body["channel"] == bob_dm
    )
    assert "direct messages of" in texts(refusal) and "not bound" in texts(refusal)


async def test_the_manifest_decides_which_events_slack_delivers(tmp_path: Any) -> None:
    from simulators.slack import Manifest

    full = SlackStandIn()  # manifest.yml: both subscriptions, both scopes
    full.add_conversation("C0DEV", bot_member=True)
    assert full.mention_event("list", user=ALICE, channel="C0DEV")["event"]["type"] == (
        "app_mention"
    )
    assert full.dm_event("list", user=ALICE)["event"]["channel_type"] == "im"
    with pytest.raises(NotDelivered, match="not a member"):
        full.mention_event("list", user=ALICE, channel="C0ELSEWHERE")
    scopes = full.manifest.scopes if full.manifest else frozenset()
    no_scope = SlackStandIn(
        manifest=Manifest(
            scopes - {"im:history"},
            should_escape=True,
            messages_tab=True,
            bot_events=frozenset({"app_mention", "message.im"}),
        )
    )
    with pytest.raises(NotDelivered, match="im:history"):
        no_scope.dm_event("list", user=ALICE)
    read_only = SlackStandIn(
        manifest=Manifest(
            scopes,
            should_escape=True,
            messages_tab=True,
            bot_events=frozenset({"message.im"}),
            messages_tab_read_only=True,
        )
    )
    with pytest.raises(NotDelivered, match="read-only"):
        read_only.dm_event("list", user=ALICE)


# -- people of another workspace (issue 15, case 5) ---------------------------------------------


def _share_oncall_with_a_partner(harness: SlackHarness) -> None:
    harness.standin.user_teams[PARTNER] = "T0PARTNER"
    harness.standin.users[PARTNER] = "partner"


async def test_a_person_of_another_workspace_cannot_run_a_command(
    harness: SlackHarness, console_sim: ConsoleSimulator
) -> None:
    _share_oncall_with_a_partner(harness)
    acked = await harness.slack.slash(
        "restart orders-db env=production", user=PARTNER, channel="C0ONCALL"
    )
    assert acked.status_code == 200 and acked.content == b""  # no "Restarting…" promised
    [refusal] = await wait_private(harness.standin, PARTNER, contains="T0PARTNER")
    assert "allowed_teams" in texts(refusal)
    await harness.slack.send(
        harness.standin.mention_event("list", user=PARTNER, channel="C0ONCALL")
    )
    await harness.rt.idle()
    assert harness.standin.calls_to("chat.postMessage") == []
    assert console_sim.requests == []
    rows = harness.rt.bot.services.audit.query(kind="decision")
    assert {r["team"] for r in rows} == {"T0PARTNER"} and len(rows) == 2


async def test_a_person_of_another_workspace_can_neither_open_the_dialog_nor_approve(
    harness: SlackHarness, console_sim: ConsoleSimulator
) -> None:
    _share_oncall_with_a_partner(harness)
    rt, standin = harness.rt, harness.standin
    rt.bot.services.permissions.set_approvers("C0ONCALL", "console", "production", [])
    await harness.slack.slash("terminate orders-db env=production", channel="C0ONCALL")
    approvals = rt.bot.services.approvals
    await until(lambda: bool([a for a in approvals.pending("C0ONCALL") if a.message_ts]))
    [approval] = approvals.pending("C0ONCALL")
    await harness.slack.click(
        "approval.approve",
        approval.id,
        user=PARTNER,
        channel="C0ONCALL",
        message_ts=str(approval.message_ts),
    )
    await wait_private(standin, PARTNER, contains="T0PARTNER")
    # nor the dialog that asks for a secret (a TypeDB password)
    await harness.slack.click("secret.open", "user passwd erin", user=PARTNER, channel="C0ONCALL")
    await wait_private(standin, PARTNER, count=2, contains="T0PARTNER")
    assert standin.calls_to("views.open") == []  # no dialog at all
    # the typed-name dialog's submission, forged with the right name
    view = {
        "callback_id": "approval.confirm",
        "private_metadata": json.dumps({"approval_id": approval.id, "channel": "C0ONCALL"}),
    }
    response = await harness.slack.submit(view, "orders-db", user=PARTNER)
    assert response.status_code == 200
    await harness.slack.slash(
        f"approve {approval.id} confirm=orders-db", user=PARTNER, channel="C0ONCALL"
    )
    assert await rt.idle()
    assert len(answers_to(standin, PARTNER)) >= 2
    after = approvals.get(approval.id)
    assert after is not None and after.state == "pending"
    assert [r for r in console_sim.mutating_requests() if r.method == "DELETE"] == []
    assert standin.calls_to("chat.update") == []


async def test_allowed_teams_admits_a_partner_workspace(
    harness: SlackHarness, console_sim: ConsoleSimulator
) -> None:
    _share_oncall_with_a_partner(harness)
    harness.rt.bot.services.permissions.allowed_teams = frozenset({"T0PARTNER"})
    await harness.slack.slash("restart orders-db env=production", user=PARTNER, channel="C0ONCALL")
    [answer] = await harness.standin.wait_for("chat.postMessage")
    assert "Restarting orders-db" in texts(answer)
    [row] = [r for r in harness.rt.bot.services.audit.query(kind="decision")]
    assert row["outcome"] == "allowed" and row["team"] == "T0PARTNER"


async def test_a_workspace_of_the_installing_organization_is_admitted(
    harness: SlackHarness, console_sim: ConsoleSimulator
) -> None:
    """Enterprise Grid: the app installed in T0STANDIN of E0ORG; a user of T0OTHER (same
    organization) is admitted, a user of an unrelated organization is not."""
    standin = harness.standin
    standin.enterprise_id = "E0ORG"
    standin.team_enterprises["T0OTHER"] = "E0ORG"
    standin.user_teams[BOB] = "T0OTHER"
    harness.rt.bot.services.permissions.grant("C0DEV", "console", "staging", _operator())
    await harness.slack.slash("restart orders-db", user=BOB, channel="C0DEV")
    [answer] = await standin.wait_for("chat.postMessage")
    assert "Restarting orders-db" in texts(answer)


def _operator() -> Any:
    from permissions.roles import Role

    return Role.OPERATOR


async def test_a_request_that_names_no_workspace_is_refused(
    harness: SlackHarness, console_sim: ConsoleSimulator
) -> None:
    """No team_id (a forged or damaged request that is still signed): in doubt, deny. It
    was read as a local transport (no workspace), which is admitted."""
    payload = harness.standin.slash_payload("list", user="U0ALICE", channel="C0DEV")
    payload["team_id"] = ""
    payload.pop("enterprise_id", None)
    acked = await harness.slack.send(payload)
    assert acked.status_code == 200 and acked.content == b""
    [refusal] = await wait_private(harness.standin, "U0ALICE")
    assert "did not say which workspace you belong to" in texts(refusal)
    assert await harness.rt.idle()
    assert console_sim.requests == []
    assert harness.standin.calls_to("chat.postMessage") == []


async def test_mentions_and_direct_messages_are_kept_in_the_inbox_until_answered(
    harness: SlackHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As a slash command is: a kill between the ack and the answer is answered by the
    next start (operations/inbox.py), not lost."""
    inbox = harness.rt.inbox
    monkeypatch.setattr(inbox, "done", lambda row_id: None)  # keep the rows to look at them
    await harness.slack.send(harness.standin.mention_event("list", user=ALICE, channel="C0DEV"))
    await harness.slack.send(harness.standin.dm_event("show sandbox-db", user=ALICE))
    assert await harness.rt.idle()
    kept = harness.rt.bot.db.execute("SELECT user, text, stage FROM accepted_requests ORDER BY id")
    assert kept.fetchall() == [(ALICE, "list", "answered"), (ALICE, "show sandbox-db", "answered")]


@pytest.mark.parametrize("posted_before_the_kill", [False, True])
async def test_a_mention_is_answered_in_its_thread_after_a_restart(
    harness: SlackHarness, monkeypatch: pytest.MonkeyPatch, posted_before_the_kill: bool
) -> None:
    """A mention answered (or about to be) when graphops was killed: the next start
    answers in the mention's thread, not in the channel, and does not answer a second
    time when the answer had landed there (the inbox keeps the thread)."""
    from bot.slack.recovery import recover

    rt, standin = harness.rt, harness.standin
    monkeypatch.setattr(rt.inbox, "done", lambda row_id: None)  # killed before these
    if not posted_before_the_kill:
        monkeypatch.setattr(rt.delivery, "deliver", _never_delivered)
    payload = standin.mention_event("list", user=ALICE, channel="C0DEV")
    await harness.slack.send(payload)
    assert await rt.idle()
    monkeypatch.undo()
    thread = payload["event"]["ts"]
    rt.bot.db.execute("UPDATE accepted_requests SET runner = '999999999:1'")
    assert recover(rt) == 1
    assert await rt.idle()
    answers = [c for c in standin.ok_calls("chat.postMessage") if "sandbox-db" in texts(c)]
    assert len(answers) == 1, [texts(c) for c in answers]
    assert answers[0].body["channel"] == "C0DEV" and answers[0].body["thread_ts"] == thread
    assert ("delivered after graphops restarted" in texts(answers[0])) != posted_before_the_kill
    assert rt.inbox.pending() == 0


async def _never_delivered(*args: Any, **kwargs: Any) -> None:
    return None


async def test_a_private_answer_in_a_dm_posted_before_a_kill_is_not_posted_again(
    harness: SlackHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In a DM with the bot even a private answer (a refusal) is a message of the DM,
    which has a history: it carries its request's key, and the restart finds it."""
    from bot.slack.recovery import recover

    rt, standin = harness.rt, harness.standin
    monkeypatch.setattr(rt.inbox, "done", lambda row_id: None)  # killed before this
    payload = standin.dm_event("list", user=BOB)  # Bob has no personal binding
    await harness.slack.send(payload)
    assert await rt.idle()
    monkeypatch.undo()
    dm = payload["event"]["channel"]

    def refusals() -> list[Any]:
        return [m for m in standin.messages if m.channel == dm and "Not allowed" in m.text]

    assert len(refusals()) == 1
    rt.bot.db.execute("UPDATE accepted_requests SET runner = '999999999:1'")
    assert recover(rt) == 1
    assert await rt.idle()
    assert len(refusals()) == 1  # not posted a second time
    assert rt.inbox.pending() == 0
