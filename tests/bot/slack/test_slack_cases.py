"""Issue 16, case by case: each a test through the real Bolt app (HTTP mode, correctly
signed requests built by the strict stand-in as Slack builds them), failing if its fix
is reverted. Socket Mode (case 11) is in test_slack_socket_mode.py."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
import time
from collections.abc import Callable

import pytest

from bot.slack.blocks import fallback_text, mrkdwn
from bot.slack.groups import UserGroups
from core.refs import UserRef
from core.reply import Reply
from permissions.roles import Role
from simulators.graphenedb import ConsoleSimulator
from simulators.slack import SlackStandIn
from simulators.typedb import TypeDBSimulator
from tests.bot.slack.conftest import SlackHarness
from tests.bot.slack.slack_support import answers_to, texts, wait_private


async def _until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


def _roots(harness: SlackHarness, channel: str = "C0DEV") -> list[object]:
    return [m for m in harness.standin.messages if m.channel == channel and not m.thread_ts]


async def _card(harness: SlackHarness, line: str, *, user: str, channel: str) -> tuple[str, str]:
    """Request something that needs approval; (approval id, ts of its card)."""
    await harness.slack.slash(line, user=user, channel=channel)
    approvals = harness.rt.bot.services.approvals

    def posted() -> list[object]:
        return [a for a in approvals.pending(channel) if a.message_ts]

    await _until(lambda: bool(posted()))
    approval = posted()[-1]
    return approval.id, str(approval.message_ts)  # type: ignore[attr-defined]


def _row(name: str) -> dict[str, object]:
    """A concept row as the TypeDB simulator answers reads."""
    return {
        "data": {
            "p": {
                "kind": "entity",
                "iid": "0x1e00",
                "type": {"kind": "entityType", "label": "person"},
            },
            "name": {
                "kind": "attribute",
                "value": name,
                "valueType": "string",
                "type": {"kind": "attributeType", "label": "name", "valueType": "string"},
            },
        }
    }


# -- 1. "payload" anywhere in a slash command ---


async def test_case01_a_command_containing_payload_is_read(
    harness: SlackHarness, console_sim: ConsoleSimulator
) -> None:
    dev = console_sim.find_environment("development")
    console_sim.add_database(dev.id, "payload-api")
    harness.standin.users["U0ALICE"] = "payload-alice"  # the user name is in the body too
    response = await harness.slack.slash("show payload-api")
    assert response.status_code == 200, response.text
    [answer] = await harness.standin.wait_for("chat.postMessage")
    assert "payload-api" in texts(answer) and "running" in texts(answer)


# -- 2. entities decoded once at the edge ---


async def test_case02_command_text_reaches_the_api_as_typed(
    full: SlackHarness, tdb_sim: TypeDBSimulator
) -> None:
    insert = 'insert $p isa person, has name "R&D <team>", has age 40;'
    await full.slack.slash(f"query social '{insert}'")
    await full.standin.wait_for("chat.postMessage")
    assert tdb_sim.database("social").writes == [insert]
    read = "match $p isa person, has age $a; $a > 30;"
    await full.slack.slash(f"query social '{read}'")
    await full.standin.wait_for("chat.postMessage", count=2)
    queries = [r.body["query"] for r in tdb_sim.requests_to("POST", r"^/v1/query$")]
    assert queries == [insert, read]
    # the card of a protected write shows the query that runs (escaped once for Slack)
    full.rt.bot.services.permissions.set_protected("graph", "graph", True)
    _, card_ts = await _card(full, f"query social '{insert}'", user="U0ALICE", channel="C0DEV")
    card = full.standin.message("C0DEV", card_ts)
    assert card is not None
    shown = json.dumps(card.blocks)
    assert "R&amp;D &lt;team&gt;" in shown and "&amp;amp;" not in shown


# -- 3. text from people and APIs is shown literally ---


_CODE = re.compile(r"```.*?```|`[^`\n]*`", re.DOTALL)


def _formatting_outside_code(mrkdwn_text: str) -> list[str]:
    """`*`, `_`, `~` that Slack could read as formatting: outside code spans, not in an
    emoji shortcode, not the bot's own bold field labels."""
    prose = _CODE.sub("", mrkdwn_text)
    prose = re.sub(r":[a-z0-9_+-]+:", "", prose)
    prose = re.sub(r"(^|\n)\*[^*\n]+\*\n", r"\1", prose)
    return re.findall(r"[*_~]", prose)


def _mrkdwn_texts(node: object) -> list[str]:
    found = []
    if isinstance(node, dict):
        if node.get("type") == "mrkdwn":
            found.append(str(node.get("text")))
        for value in node.values():
            found += _mrkdwn_texts(value)
    elif isinstance(node, list):
        for item in node:
            found += _mrkdwn_texts(item)
    return found


async def test_case03_names_and_values_never_format_link_or_mention(
    full: SlackHarness, tdb_sim: TypeDBSimulator
) -> None:
    value = "*bold* _tmp_ ~old~ <!channel> <@U0ADMIN> & `tick`"
    tdb_sim.database("social").rows = [_row(value)]
    await full.slack.slash("query social 'match $p isa person, has name $name;'")
    await full.slack.slash("show *prod*_db")  # an unknown name, echoed in the error
    await full.standin.wait_for("chat.postMessage")
    await wait_private(full.standin, "U0ALICE", contains="prod")
    assert await full.rt.idle()
    for call in full.standin.calls:
        if not call.ok:
            continue
        for text in [*_mrkdwn_texts(call.body.get("blocks")), str(call.body.get("text") or "")]:
            assert "<!channel>" not in text and "<@U0ADMIN>" not in text, text
            assert _formatting_outside_code(text) == [], text
    # the renderer's rule, on every kind of value (also what home, cards and modals use)
    assert mrkdwn("R&D_*prod*") == "`R&amp;D_*prod*`"
    assert mrkdwn(f"by {UserRef('U0BOB')}: _x_") == "by <@U0BOB>: `_x_`"


# -- 4. the requester is answered where the bot cannot post ---


async def test_case04_answers_arrive_where_the_bot_is_not_a_member(
    harness: SlackHarness, console_sim: ConsoleSimulator
) -> None:
    permissions = harness.rt.bot.services.permissions
    permissions.grant("G0PRIVATE", "console", "development", Role.ADMIN)
    await harness.slack.slash("restart sandbox-db", channel="G0PRIVATE")
    [answer] = await wait_private(harness.standin, "U0ALICE", contains="Restarting")
    assert answer.method == "response_url"
    assert "private channel I am not in" in texts(answer)
    assert [r.method for r in console_sim.mutating_requests()] == ["POST"]  # it ran
    refused = [c for c in harness.standin.calls if c.error == "channel_not_found"]
    assert [c.method for c in refused] == ["chat.postMessage"]
    # help in a DM between two people: response_url, nothing else
    await harness.slack.slash("help", channel="D0ALICEBOB")
    await wait_private(harness.standin, "U0ALICE", count=2)
    # a click from App Home has no channel and no response_url: the clicker's DM
    response = await harness.slack.click("approval.deny", "A-unknown", user="U0BOB", channel=None)
    assert response.status_code == 200
    [dm] = await harness.standin.wait_for(
        "chat.postMessage", where=lambda c: c.body["channel"] == "U0BOB"
    )
    assert "No approval" in texts(dm)
    assert not [c for c in harness.standin.calls if c.body.get("channel") == ""]


# -- 5. a message is budgeted by its total size ---


@pytest.mark.parametrize("measure", ["text", "json"])
async def test_case05_long_results_stay_within_slacks_total(
    full: SlackHarness, tdb_sim: TypeDBSimulator, measure: str
) -> None:
    full.standin.blocks_measure = measure
    tdb_sim.database("social").rows = [_row(f"{i:02d}" + "x" * 800) for i in range(20)]
    await full.slack.slash("query social 'match $p isa person, has name $name;'")
    [answer] = await full.standin.wait_for("chat.postMessage")
    assert not [
        c for c in full.standin.calls if c.error in ("msg_blocks_too_long", "invalid_blocks")
    ]
    assert "00xxx" in texts(answer)
    assert await full.rt.idle()
    assert not [c for c in answers_to(full.standin, "U0ALICE") if "/invite" in texts(c)]


# -- 6. files: scope, upload v2, fallback text ---


async def test_case06_files_are_uploaded_with_upload_v2(
    full: SlackHarness, tdb_sim: TypeDBSimulator
) -> None:
    await full.slack.slash("schema social")
    [answer] = await full.standin.wait_for("chat.postMessage")
    [complete] = await full.standin.wait_for("files.completeUploadExternal")
    [root] = _roots(full)
    assert complete.body["channel_id"] == "C0DEV" and complete.body["thread_ts"] == root.ts
    file_id = complete.body["files"][0]["id"]
    assert "entity person" in full.standin.file_content(file_id)
    assert "attached" in texts(answer)
    refused = [c for c in full.standin.calls if c.error == "missing_scope"]
    assert refused == []


def test_case06_fallback_text_is_never_cut_mid_mention_or_entity() -> None:
    for pad in range(2990, 3000):
        text = "x" * pad + f" {UserRef('U0ALICEXYZ')} & <b> {UserRef('U0BOB')}"
        shown = fallback_text(Reply(text=text))
        assert len(shown) <= 3000
        assert not re.search(r"<[^<>]*$", shown) and not re.search(r"&[a-z]{0,4}$", shown)
        assert shown.endswith("…")


# -- 7. a modal opens before its trigger expires ---


async def test_case07_the_modal_opens_at_once_despite_a_cold_group_cache_and_a_429(
    harness: SlackHarness, console_sim: ConsoleSimulator
) -> None:
    standin, rt = harness.standin, harness.rt
    standin.usergroups["S0DBA"] = ["U0BOB"]
    standin.trigger_ttl = 1.0  # stricter than Slack's 3 s, to keep the test short
    rt.bot.services.permissions.set_approvers("C0ONCALL", "console", "production", ["S0DBA"])
    approval_id, card_ts = await _card(
        harness, "terminate orders-db env=production", user="U0ALICE", channel="C0ONCALL"
    )
    rt.groups = UserGroups(rt.client)  # cold cache
    standin.fail_next("usergroups.users.list", status=429, retry_after=2)
    await harness.slack.click(
        "approval.approve", approval_id, user="U0BOB", channel="C0ONCALL", message_ts=card_ts
    )
    [update] = await standin.wait_for(
        "views.update",
        timeout=15,
        where=lambda c: c.body["view"].get("callback_id") == "approval.confirm",
    )
    assert [c.error for c in standin.calls_to("views.open")] == [""]  # opened, in time
    assert [c.status for c in standin.calls_to("usergroups.users.list")][-2:] == [429, 200]
    response = await harness.slack.submit(update.body["view"], "orders-db", user="U0BOB")
    assert response.status_code == 200
    await standin.wait_for("chat.update", count=2)  # running, then done
    approval = rt.bot.services.approvals.get(approval_id)
    assert approval is not None and approval.decided_by == "U0BOB"


# -- 8. threads under the root ---


class RecordingTracker:
    def __init__(self) -> None:
        self.tracked: list[dict[str, object]] = []

    async def track(self, ref, *, channel, thread_ts, user, origin=None, approver=None):  # type: ignore[no-untyped-def]
        self.tracked.append(
            {"channel": channel, "thread_ts": thread_ts, "user": user, "approver": approver}
        )
        return len(self.tracked)


async def test_case08_approved_operations_report_under_the_card(
    harness: SlackHarness, console_sim: ConsoleSimulator
) -> None:
    tracker = RecordingTracker()
    harness.rt.tracker = tracker
    approval_id, card_ts = await _card(
        harness, "terminate sandbox-db", user="U0ALICE", channel="C0DEV"
    )
    await harness.slack.slash(f"approve {approval_id} confirm=sandbox-db", user="U0BOB")
    await _until(lambda: bool(tracker.tracked))
    [entry] = tracker.tracked
    assert entry["thread_ts"] == card_ts and entry["user"] == "U0ALICE"
    [result] = harness.standin.thread("C0DEV", card_ts)
    assert result.thread_ts == card_ts


# -- 9. a 5xx after Slack stored the message ---


@pytest.mark.parametrize("stored", [True, False])
async def test_case09_a_5xx_never_makes_a_double_post(harness: SlackHarness, stored: bool) -> None:
    harness.standin.fail_next("chat.postMessage", status=500, stored=stored)
    await harness.slack.slash("list")
    await _until(lambda: bool(_roots(harness)))
    assert await harness.rt.idle()
    assert len(_roots(harness)) == 1
    assert [c.status for c in harness.standin.calls_to("chat.postMessage")] == (
        [500] if stored else [500, 200]
    )
    assert answers_to(harness.standin, "U0ALICE") == []  # nothing told privately instead


# -- 10. malformed payloads ---


def _nested(depth: int) -> str:
    return '{"a":' * depth + "1" + "}" * depth


@pytest.mark.parametrize(
    "body",
    [
        {"type": "block_actions", "user": {"id": "U0BOB"}, "actions": []},
        {"type": "block_actions", "user": {"id": "U0BOB"}, "actions": "x"},
        {"type": "view_submission", "user": {"id": "U0BOB"}, "view": {"callback_id": "x"}},
        {"type": "view_submission", "user": "U0BOB", "view": {"type": "modal"}},
        {"type": "event_callback", "event": "x"},
        {"type": "shortcut", "user": {"id": "U0BOB"}},
        "not json",
        "[1, 2]",
        _nested(100),
        _nested(50_000),
    ],
)
async def test_case10_malformed_payloads_get_400(
    harness: SlackHarness, body: object, caplog: pytest.LogCaptureFixture
) -> None:
    from urllib.parse import urlencode

    text = body if isinstance(body, str) else json.dumps(body)
    form = urlencode({"payload": text})
    response = await harness.slack.post(form, "application/x-www-form-urlencoded")
    assert response.status_code == 400, response.text
    assert "malformed" in response.text
    if isinstance(body, dict) and body.get("type") == "event_callback":
        events = await harness.slack.post(text, "application/json")
        assert events.status_code == 400
    assert "Traceback" not in caplog.text
    assert harness.rt.tasks == set() and harness.standin.calls == []


@pytest.mark.parametrize("absent", [False, True])
@pytest.mark.parametrize("missing", ["command", "user_id", "channel_id"])
async def test_case10_a_slash_command_without_what_slack_always_sends_gets_400(
    harness: SlackHarness, missing: str, absent: bool
) -> None:
    """Slack's slash commands always name the command, the user and the channel; one
    without is not Slack's, and is not run (it was answered in a DM, channel '')."""
    from urllib.parse import urlencode

    fields = {"command": "/gdb", "text": "list", "user_id": "U0ALICE", "channel_id": "C0DEV"}
    if absent:
        del fields[missing]
    else:
        fields[missing] = ""
    response = await harness.slack.post(urlencode(fields), "application/x-www-form-urlencoded")
    assert response.status_code == 400 and missing in response.text
    assert harness.rt.tasks == set() and harness.standin.calls == []


# -- 12. channel posts name who asked ---


async def test_case12_posts_name_requester_and_approver(harness: SlackHarness) -> None:
    await harness.slack.slash("restart sandbox-db")
    [answer] = await harness.standin.wait_for("chat.postMessage")
    assert "<@U0ALICE> ran `/gdb restart sandbox-db`" in texts(answer)
    approval_id, card_ts = await _card(
        harness, "terminate orders-db env=production", user="U0ALICE", channel="C0ONCALL"
    )
    await harness.slack.slash(
        f"approve {approval_id} confirm=orders-db", user="U0BOB", channel="C0ONCALL"
    )
    _, update = await harness.standin.wait_for("chat.update", count=2)  # running, then done
    assert "<@U0ALICE>" in texts(update) and "<@U0BOB>" in texts(update)
    await _until(lambda: bool(harness.standin.thread("C0ONCALL", card_ts)))
    [result] = harness.standin.thread("C0ONCALL", card_ts)
    shown = json.dumps(result.blocks)
    assert "Requested by <@U0ALICE>, approved by <@U0BOB>" in shown


# -- 13. mentions typed as @name and #channel ---


async def test_case13_people_and_channels_typed_by_name_become_ids(harness: SlackHarness) -> None:
    standin, permissions = harness.standin, harness.rt.bot.services.permissions
    standin.usergroups["S0DBA"] = ["U0BOB"]
    standin.group_handles["S0DBA"] = "dba"
    await harness.slack.slash(
        "approvers console production users=@bob,@dba channel=#prod-oncall", user="U0ADMIN"
    )
    await harness.slack.slash("incident-channel console production #db-incidents", user="U0ADMIN")
    changed = await harness.standin.wait_for(
        "chat.postMessage", count=2, where=lambda c: "Access changed" in texts(c)
    )
    assert "<#C0INCIDENT>" in texts(changed[1])
    [binding] = permissions.policy_for("C0ONCALL").bindings
    assert binding.approvers == ("U0BOB", "S0DBA")
    # tables show people by name (a mention would not render inside the code block)
    await _card(harness, "terminate sandbox-db", user="U0ALICE", channel="C0DEV")
    await harness.slack.slash("pending", user="U0BOB")
    [listing] = await wait_private(harness.standin, "U0BOB", contains="Requested by")
    assert "@alice" in texts(listing) and "@U0ALICE" not in texts(listing)


# -- 14. no request body in any log line ---


async def test_case14_no_request_body_is_logged(
    harness: SlackHarness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    secret = "sentinel-typed-password-7c1e"
    submission = harness.standin.submission_payload(
        {"callback_id": "secret.submit", "private_metadata": "{}"},
        {"secret": {"value": {"type": "plain_text_input", "value": secret}}},
        user="U0BOB",
    )
    form, kind = SlackStandIn.form_body(submission)
    stale = await harness.slack.post(form, kind, timestamp=int(time.time()) - 600)
    assert stale.status_code == 401
    unknown = harness.standin.action_payload(
        "no.such.action", secret, user="U0BOB", channel="C0DEV"
    )
    await harness.slack.send(unknown)
    assert await harness.rt.idle()
    assert secret not in caplog.text
    assert "bad or stale signature" in caplog.text


# -- 15. what is approved is visible whole ---


async def test_case15_an_approval_shows_the_whole_query_with_size_and_digest(
    full: SlackHarness, tdb_sim: TypeDBSimulator
) -> None:
    full.rt.bot.services.permissions.set_protected("graph", "graph", True)
    name = "y" * 3200
    query = f'insert $p isa person, has name "{name}", has age 41;'
    _, card_ts = await _card(full, f"query social '{query}'", user="U0ALICE", channel="C0DEV")
    card = full.standin.message("C0DEV", card_ts)
    assert card is not None
    shown = json.dumps(card.blocks)
    digest = hashlib.sha256(query.encode()).hexdigest()
    assert f"{len(query):,} characters" in shown and digest[:16] in shown
    for text in _mrkdwn_texts(card.blocks):
        assert text.count("```") % 2 == 0, text  # no code fence left open
    [complete] = await full.standin.wait_for("files.completeUploadExternal")
    assert complete.body["thread_ts"] == card_ts  # beside the card, in its thread
    content = full.standin.file_content(complete.body["files"][0]["id"])
    assert query in content
    assert hashlib.sha256(content.encode()).hexdigest() in shown


# -- the secret prompt: a modal, the command again with the secret -----------------------------


async def test_a_password_is_typed_in_a_modal_and_never_shown(
    full: SlackHarness, tdb_sim: TypeDBSimulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    password = "sentinel-new-user-pw-6b2e"
    await full.slack.slash("user add carol")
    [prompt] = await wait_private(full.standin, "U0ALICE", contains="Enter")
    buttons = [
        e
        for b in prompt.body["blocks"]
        if b["type"] == "actions"
        for e in b["elements"]
        if e["action_id"] == "secret.open"
    ]
    [button] = buttons
    click = full.standin.action_payload(
        "secret.open",
        button["value"],
        user="U0ALICE",
        channel="C0DEV",
        label=button["text"]["text"],
    )
    await full.slack.send(click)
    [opened] = await full.standin.wait_for("views.open")
    view = opened.body["view"]
    assert "Password for carol" in json.dumps(view)
    response = await full.slack.submit(
        view, password, user="U0ALICE", block="secret", action="value"
    )
    assert response.status_code == 200
    await _until(lambda: "carol" in tdb_sim.usernames)
    assert await full.rt.idle()
    assert tdb_sim._users["carol"] == password
    for call in full.standin.calls:
        assert password not in json.dumps(call.body, default=str), call.method
    assert password not in caplog.text
