"""End to end through the real Bolt app over HTTP: signed requests in, Web API calls out."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from bot.logs import COMMAND_LOGGER
from permissions.roles import Role
from simulators.graphenedb import ConsoleSimulator
from tests.bot.slack.conftest import SlackHarness
from tests.bot.slack.slack_support import signed_headers, texts, wait_private
from tests.waiting import until

SAID = ("chat.postMessage", "chat.postEphemeral", "response_url")  # answers, any way


async def test_help_is_ephemeral(harness: SlackHarness) -> None:
    response = await harness.slack.slash("help")
    assert response.status_code == 200
    assert response.text == ""  # an empty ack
    [call] = await wait_private(harness.standin, "U0ALICE")
    assert call.method == "response_url" and call.body["response_type"] == "ephemeral"
    assert call.body["_channel"] == "C0DEV"
    assert "terminate" in texts(call)
    assert harness.standin.calls_to("chat.postMessage") == []


async def test_the_first_burst_after_a_start_asks_auth_test_once(harness: SlackHarness) -> None:
    """Found by an attack: Bolt's single-workspace authorization called auth.test for every
    request that came before its first answer, and each ack waited for its own call (with
    Slack slow or answering 429, past Slack's 3 s). One call now serves them all."""
    harness.standin.delays["auth.test"] = 0.5  # Slack slow to answer the first one
    responses = await asyncio.gather(*(harness.slack.slash("help") for _ in range(10)))
    assert [r.status_code for r in responses] == [200] * 10
    assert len(harness.standin.calls_to("auth.test")) == 1
    await harness.slack.slash("help")  # kept: not asked again
    assert len(harness.standin.calls_to("auth.test")) == 1


async def test_a_slow_auth_test_refuses_within_slacks_limit_with_a_clear_answer(
    harness: SlackHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Found by an attack: with auth.test slow, every ack waited for it (5 s, past Slack's
    3 s), and a failing one told people to reinstall the app. A request now waits at most
    AUTH_TEST_SECONDS, is told that nothing was done, and a later one goes through."""
    from bot.slack import app as slack_app

    monkeypatch.setattr(slack_app, "AUTH_TEST_SECONDS", 0.1)
    harness.standin.delays["auth.test"] = 1.0  # later than the bound
    response = await harness.slack.slash("list")
    assert response.status_code == 200
    [told] = await harness.standin.wait_for("response_url")
    assert "nothing was done" in texts(told) and "reinstall" not in texts(told).lower()
    assert harness.standin.calls_to("chat.postMessage") == []  # nothing ran
    harness.standin.delays.clear()
    monkeypatch.setattr(slack_app, "AUTH_TEST_SECONDS", 30.0)
    await harness.slack.slash("help")  # the first call goes on; a later request uses it
    await wait_private(harness.standin, "U0ALICE", contains="terminate")


async def test_empty_command_shows_help(harness: SlackHarness) -> None:
    await harness.slack.slash("")
    [call] = await wait_private(harness.standin, "U0ALICE")
    assert "terminate" in texts(call)


async def test_list_posts_a_table_in_the_channel(harness: SlackHarness) -> None:
    await harness.slack.slash("list")
    [call] = await harness.standin.wait_for("chat.postMessage")
    assert call.body["channel"] == "C0DEV"
    assert "```" in texts(call) and "sandbox-db" in texts(call)


async def test_denied_verb_is_ephemeral_and_sends_nothing(
    harness: SlackHarness, console_sim: ConsoleSimulator
) -> None:
    await harness.slack.slash("pause orders-db", channel="C0PROD")
    [call] = await wait_private(harness.standin, "U0ALICE")
    assert "viewer" in texts(call)
    assert harness.standin.calls_to("chat.postMessage") == []
    assert console_sim.mutating_requests() == []
    assert harness.rt.metrics.denials == 1


async def _terminate_card(
    harness: SlackHarness, *, user: str = "U0ALICE", channel: str = "C0DEV", db: str = "sandbox-db"
) -> tuple[str, str]:
    """Request a terminate; return (approval id, card ts)."""
    await harness.slack.slash(f"terminate {db}", user=user, channel=channel)
    [card] = await harness.standin.wait_for("chat.postMessage")
    [actions] = [b for b in card.body["blocks"] if b["type"] == "actions"]
    buttons = {e["action_id"]: e["value"] for e in actions["elements"]}
    assert set(buttons) == {"approval.approve", "approval.deny"}
    approval_id = buttons["approval.approve"]
    assert buttons["approval.deny"] == approval_id  # the values are only the id
    approvals = harness.rt.bot.services.approvals

    def card_ts() -> str | None:
        approval = approvals.get(approval_id)
        return approval.message_ts if approval else None

    await until(lambda: card_ts() is not None)  # stored right after the post
    return approval_id, str(card_ts())


async def _confirm_modal(harness: SlackHarness) -> dict[str, object]:
    """The typed-name modal, opened as a loading view then filled in by views.update."""
    [update] = await harness.standin.wait_for(
        "views.update", where=lambda c: c.body["view"].get("callback_id") == "approval.confirm"
    )
    return dict(update.body["view"])


def message_ts(harness: SlackHarness, call: object) -> str:
    """The ts the stand-in gave a posted message (the message it stored for `call`)."""
    body = getattr(call, "body", {})
    [stored] = [
        m
        for m in harness.standin.messages
        if m.channel == body["channel"] and m.text == body["text"] and not m.thread_ts
    ]
    return stored.ts


def _deletes(console_sim: ConsoleSimulator) -> list[object]:
    return [r for r in console_sim.mutating_requests() if r.method == "DELETE"]


async def test_full_approval_flow(harness: SlackHarness, console_sim: ConsoleSimulator) -> None:
    approval_id, ts = await _terminate_card(harness)
    response = await harness.slack.click(
        "approval.approve", approval_id, user="U0BOB", channel="C0DEV", message_ts=ts
    )
    assert response.status_code == 200
    [opened] = await harness.standin.wait_for("views.open")
    assert opened.body["view"]["callback_id"] == "graphops.loading"  # at once
    view = await _confirm_modal(harness)
    assert _deletes(console_sim) == []  # nothing runs before the name is typed

    response = await harness.slack.submit(view, "sandbox-db", user="U0BOB")
    assert response.status_code == 200 and response.text == ""  # closes the modal
    running, update = await harness.standin.wait_for("chat.update", count=2)
    assert "Running" in texts(running)  # edited at the claim: no live buttons while it runs
    assert not [b for b in running.body["blocks"] if b["type"] == "actions"]
    assert update.body["ts"] == ts and update.body["channel"] == "C0DEV"
    assert "U0BOB" in texts(update) and "Done" in texts(update)
    assert not [b for b in update.body["blocks"] if b["type"] == "actions"]
    assert len(_deletes(console_sim)) == 1
    results = await harness.standin.wait_for(
        "chat.postMessage", where=lambda c: c.body.get("thread_ts") == ts
    )
    assert len(results) == 1
    approval = harness.rt.bot.services.approvals.get(approval_id)
    assert approval is not None and approval.state == "executed"
    assert approval.decided_by == "U0BOB"


async def test_requester_cannot_approve_own_in_protected_environment(
    harness: SlackHarness, console_sim: ConsoleSimulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=COMMAND_LOGGER)
    approval_id, ts = await _terminate_card(
        harness, user="U0BOB", channel="C0ONCALL", db="orders-db env=production"
    )
    await harness.slack.click(
        "approval.approve", approval_id, user="U0BOB", channel="C0ONCALL", message_ts=ts
    )
    [refusal] = await harness.standin.wait_for("views.update")  # the loading modal, filled
    assert "requester cannot approve" in texts(refusal)
    assert refusal.body["view"].get("submit") is None  # nothing to submit
    lines = [r.getMessage() for r in caplog.records if r.name == COMMAND_LOGGER]
    assert any(line.startswith("command approve by U0BOB") and "denied" in line for line in lines)
    assert await harness.rt.idle()
    assert harness.standin.calls_to("chat.update") == []
    assert console_sim.mutating_requests() == []
    approval = harness.rt.bot.services.approvals.get(approval_id)
    assert approval is not None and approval.state == "pending"


async def test_double_submission_executes_once(
    harness: SlackHarness, console_sim: ConsoleSimulator
) -> None:
    approval_id, ts = await _terminate_card(harness)
    await harness.slack.click(
        "approval.approve", approval_id, user="U0BOB", channel="C0DEV", message_ts=ts
    )
    view = await _confirm_modal(harness)
    first, second = await asyncio.gather(
        harness.slack.submit(view, "sandbox-db", user="U0BOB"),
        harness.slack.submit(view, "sandbox-db", user="U0BOB"),
    )
    assert first.status_code == second.status_code == 200
    await harness.standin.wait_for("chat.update", count=2)
    [already] = await wait_private(harness.standin, "U0BOB")
    assert "already approved" in texts(already)
    assert await harness.rt.idle()
    assert len(_deletes(console_sim)) == 1
    assert len(harness.standin.calls_to("chat.update")) == 2  # running, then done


async def test_wrong_name_is_refused_on_the_field(
    harness: SlackHarness, console_sim: ConsoleSimulator
) -> None:
    approval_id, ts = await _terminate_card(harness)
    await harness.slack.click(
        "approval.approve", approval_id, user="U0BOB", channel="C0DEV", message_ts=ts
    )
    view = await _confirm_modal(harness)
    response = await harness.slack.submit(view, "orders-db", user="U0BOB")
    assert response.status_code == 200
    answer = response.json()
    assert answer["response_action"] == "errors"
    assert "sandbox-db" in answer["errors"]["confirm"]
    # every piece of work the submission could start has ended: nothing more can run
    assert await harness.rt.idle()
    assert _deletes(console_sim) == []
    assert harness.standin.calls_to("chat.update") == []
    approval = harness.rt.bot.services.approvals.get(approval_id)
    assert approval is not None and approval.state == "pending"


async def test_deny_updates_the_card(
    harness: SlackHarness, console_sim: ConsoleSimulator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=COMMAND_LOGGER)
    approval_id, ts = await _terminate_card(harness)
    await harness.slack.click(
        "approval.deny", approval_id, user="U0BOB", channel="C0DEV", message_ts=ts
    )
    [update] = await harness.standin.wait_for("chat.update")
    assert "Denied" in texts(update) and "U0BOB" in texts(update)
    assert console_sim.mutating_requests() == []
    assert await harness.rt.idle()
    # a click has its one log line, as a typed command does
    lines = [r.getMessage() for r in caplog.records if r.name == COMMAND_LOGGER]
    assert any(line.startswith("command deny by U0BOB in C0DEV") for line in lines), lines


def _expire_now(harness: SlackHarness, approval_id: str) -> None:
    harness.rt.bot.db.execute(
        "UPDATE approvals SET expires_at = ? WHERE id = ?", [time.time() - 1, approval_id]
    )


async def test_clicking_an_expired_card_says_so(
    harness: SlackHarness, console_sim: ConsoleSimulator
) -> None:
    approval_id, ts = await _terminate_card(harness)
    _expire_now(harness, approval_id)
    await harness.slack.click(
        "approval.approve", approval_id, user="U0BOB", channel="C0DEV", message_ts=ts
    )
    [refusal] = await wait_private(harness.standin, "U0BOB")
    assert "expired" in texts(refusal)
    [update] = await harness.standin.wait_for("chat.update")
    assert "Expired" in texts(update)
    assert harness.standin.calls_to("views.open") == []
    assert console_sim.mutating_requests() == []


async def test_sweep_updates_expired_cards(harness: SlackHarness) -> None:
    from bot.slack.sweep import sweep_once

    approval_id, ts = await _terminate_card(harness)
    _expire_now(harness, approval_id)
    expired = await sweep_once(harness.rt)
    assert [a.id for a in expired] == [approval_id]
    [update] = await harness.standin.wait_for("chat.update")
    assert update.body["ts"] == ts and "Expired" in texts(update)
    assert await sweep_once(harness.rt) == []  # once only


@pytest.mark.parametrize("case", ["forged", "stale"])
async def test_bad_signatures_are_rejected(harness: SlackHarness, case: str) -> None:
    from urllib.parse import urlencode

    body = urlencode({"command": "/gdb", "text": "help", "user_id": "U0ALICE"})
    if case == "forged":
        response = await harness.slack.post(
            body, "application/x-www-form-urlencoded", secret="not-the-secret"
        )
    else:
        response = await harness.slack.post(
            body, "application/x-www-form-urlencoded", timestamp=int(time.time()) - 301
        )
    assert response.status_code == 401
    # refused before the Bolt app: no listener work was started that could still call Slack
    assert harness.rt.tasks == set()
    assert [c.method for c in harness.standin.calls] == []


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-Slack-Signature": "v0=00"},
        {"X-Slack-Request-Timestamp": "abc", "X-Slack-Signature": "v0=00"},
        {"X-Slack-Request-Timestamp": "", "X-Slack-Signature": "v0=00"},
        {"X-Slack-Request-Timestamp": "1e9", "X-Slack-Signature": "v0=00"},
        {"X-Slack-Request-Timestamp": "9" * 400, "X-Slack-Signature": "v0=00"},
        {"X-Slack-Request-Timestamp": "NOW", "X-Slack-Signature": "v0=é".encode()},
    ],
)
async def test_a_request_without_a_usable_timestamp_is_refused_not_a_500(
    harness: SlackHarness, headers: dict[str, str]
) -> None:
    """Missing, non-numeric or huge X-Slack-Request-Timestamp, a signature that is not
    ASCII: 401 like any bad signature, never a 500 (slack_sdk raises on them)."""
    if headers.get("X-Slack-Request-Timestamp") == "NOW":
        headers = {**headers, "X-Slack-Request-Timestamp": str(int(time.time()))}
    response = await harness.slack.http.post(
        harness.slack.url + "/slack/events", content=b"x=1", headers=headers
    )
    assert response.status_code == 401, response.text
    assert [c.method for c in harness.standin.calls] == []


async def test_a_body_that_is_not_utf8_is_refused_not_a_500(harness: SlackHarness) -> None:
    body = b"command=%2Fgdb&text=\xff\xfe&user_id=U0ALICE"
    for secret_known in (False, True):
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        if secret_known:  # signed as slack_sdk would sign the text, if it could be text
            headers |= signed_headers(body.decode("latin-1"))
        response = await harness.slack.http.post(
            harness.slack.url + "/slack/events", content=body, headers=headers
        )
        assert response.status_code == 401, response.text
    assert harness.rt.tasks == set()
    assert [c.method for c in harness.standin.calls] == []


async def test_slacks_ssl_check_is_answered_200_and_runs_nothing(harness: SlackHarness) -> None:
    """Slack checks a slash command URL's certificate with a form holding `ssl_check=1`
    (unsigned, as Bolt's SslCheck middleware assumes): 200, nothing run."""
    response = await harness.slack.http.post(
        harness.slack.url + "/slack/events",
        content="ssl_check=1&token=abc",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 200 and response.text == ""
    assert harness.rt.tasks == set()
    # a slash command that says ssl_check=1 is still a command, and still needs a signature
    forged = await harness.slack.http.post(
        harness.slack.url + "/slack/events",
        content="ssl_check=1&command=%2Fgdb&text=list&user_id=U0ALICE&channel_id=C0DEV",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert forged.status_code == 401
    assert [c.method for c in harness.standin.calls] == []


async def test_ack_arrives_before_a_slow_api_answers(
    harness: SlackHarness, console_sim: ConsoleSimulator
) -> None:
    console_sim.faults.latency = 2.0
    response = await harness.slack.slash("list")
    assert response.status_code == 200
    assert harness.standin.calls_to("chat.postMessage") == []  # the ack came first
    await harness.standin.wait_for("chat.postMessage", timeout=30.0)


@pytest.mark.parametrize("via", ["slash", "button", "mention"])
async def test_every_listener_answers_slack_before_its_work_is_done(
    harness: SlackHarness, console_sim: ConsoleSimulator, via: str
) -> None:
    """Bolt sends the HTTP response once the listener returns (process_before_response,
    bot/slack/app.py): a listener that awaited its work would hold the ack for as long
    as the API takes. Each kind of listener returns while its API call is outstanding."""
    console_sim.faults.latency = 1.0
    if via == "slash":
        response = await harness.slack.slash("list")
    elif via == "button":
        response = await harness.slack.click(
            "command", "/gdb list", user="U0ALICE", channel="C0DEV"
        )
    else:
        response = await harness.slack.send(
            harness.standin.mention_event("list", user="U0ALICE", channel="C0DEV")
        )
    assert response.status_code == 200
    assert harness.rt.tasks, "no work is running: the ack waited for it"
    assert harness.standin.calls_to("chat.postMessage") == []  # the ack came first
    [answer] = await harness.standin.wait_for("chat.postMessage", timeout=30.0)
    assert "sandbox-db" in str(answer.body)


async def test_healthz_and_metrics(harness: SlackHarness, monkeypatch: pytest.MonkeyPatch) -> None:
    http, url = harness.slack.http, harness.slack.url
    await harness.slack.slash("list")
    await harness.standin.wait_for("chat.postMessage")
    await harness.slack.slash("pause orders-db", channel="C0PROD")
    await wait_private(harness.standin, "U0ALICE")
    assert await harness.rt.idle()

    health = await http.get(url + "/healthz")
    assert health.status_code == 200 and health.json() == {"status": "ok", "store": True}
    metrics = await http.get(url + "/metrics")
    assert metrics.status_code == 200
    assert metrics.headers["content-type"].startswith("text/plain")
    samples = _samples(metrics.text)
    assert samples[("graphops_commands_total", (("outcome", "ok"), ("verb", "list")))] == 1
    assert samples[("graphops_commands_total", (("outcome", "denied"), ("verb", "pause")))] == 1
    assert samples[("graphops_denials_total", ())] == 1
    get = (("method", "GET"), ("provider", "console"))
    assert samples[("graphops_api_request_seconds_count", get)] >= 1
    assert samples[("graphops_tracked_operations", ())] == 0

    import bot.slack.server as server_module

    monkeypatch.setattr(server_module, "store_answers", lambda path: False)
    failing = await http.get(url + "/healthz")
    assert failing.status_code == 503 and failing.json()["store"] is False


def _samples(exposition: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Prometheus text parsed with prometheus_client: (name, sorted labels) -> value."""
    from prometheus_client.parser import text_string_to_metric_families

    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(exposition)
        for sample in family.samples
    }


async def test_app_home_is_published(harness: SlackHarness) -> None:
    _, _ = await _terminate_card(
        harness, user="U0ALICE", channel="C0ONCALL", db="orders-db env=production"
    )
    response = await harness.slack.event(
        {"type": "app_home_opened", "user": "U0BOB", "channel": "D0BOB", "tab": "home"}
    )
    assert response.status_code == 200
    [publish] = await harness.standin.wait_for("views.publish")
    assert publish.body["user_id"] == "U0BOB"
    view = publish.body["view"]
    assert view["type"] == "home"
    shown = str(view["blocks"])
    assert "<#C0DEV>" in shown and "<#C0ONCALL>" in shown
    assert "<#C0PROD>" not in shown  # bob is not a member there (stand-in channels)
    assert "orders-db" in shown  # the approval bob may act on
    [conversations] = harness.standin.calls_to("users.conversations")
    assert conversations.body["user"] == "U0BOB"


async def test_long_table_is_paginated_with_more(
    harness: SlackHarness, console_sim: ConsoleSimulator
) -> None:
    dev = console_sim.find_environment("development")
    for index in range(120):
        console_sim.add_database(dev.id, f"bulk-{index:03d}")
    await harness.slack.slash("list development")
    [message] = await harness.standin.wait_for("chat.postMessage")
    more = [
        e
        for b in message.body["blocks"]
        if b["type"] == "actions"
        for e in b["elements"]
        if e["action_id"] == "page.more"
    ]
    assert len(more) == 1
    shown = texts(message)
    assert "bulk-000" in shown and "bulk-119" not in shown
    await harness.slack.click("page.more", more[0]["value"], user="U0ALICE", channel="C0DEV")
    [page] = await wait_private(harness.standin, "U0ALICE", contains="page 2 of")
    assert "bulk-" in texts(page)
    await harness.slack.click("page.more", "nope:1", user="U0ALICE", channel="C0DEV")
    await wait_private(harness.standin, "U0ALICE", contains="expired")


async def test_a_failing_listener_answers_plainly(
    harness: SlackHarness, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async def boom(invocation: object) -> None:
        raise RuntimeError("kaboom with " + "xoxb-sentinel-bot-token-8e1f")

    monkeypatch.setattr(harness.rt.bot, "run", boom)
    await harness.slack.slash("list")
    [call] = await wait_private(harness.standin, "U0ALICE")
    assert "went wrong" in texts(call)
    assert "Traceback" not in texts(call) and "kaboom" not in texts(call)
    assert "kaboom" in caplog.text and "Traceback" in caplog.text  # logged, with the trace
    assert "xoxb-sentinel" not in caplog.text  # but never the token


class RecordingTracker:
    """Stands in for operations.tracker.Tracker: records what it is asked to follow."""

    def __init__(self) -> None:
        self.tracked: list[dict[str, object]] = []

    async def track(
        self,
        ref: object,
        *,
        channel: str,
        thread_ts: str | None,
        user: str,
        origin: object = None,
        approver: str | None = None,
    ) -> int:
        self.tracked.append(
            {"ref": ref, "channel": channel, "thread_ts": thread_ts, "user": user, "origin": origin}
        )
        return len(self.tracked)

    def running(self) -> int:
        return len(self.tracked)


async def test_operations_are_tracked_under_the_posted_message(
    harness: SlackHarness,
) -> None:
    tracker = RecordingTracker()
    harness.rt.tracker = tracker
    harness.rt.metrics.tracked = tracker.running
    await harness.slack.slash("restart sandbox-db")
    [message] = await harness.standin.wait_for("chat.postMessage")
    await until(lambda: bool(tracker.tracked))
    [entry] = tracker.tracked
    assert entry["channel"] == "C0DEV" and entry["user"] == "U0ALICE"
    assert message.body["channel"] == "C0DEV" and "thread_ts" not in message.body
    assert entry["thread_ts"] == message_ts(harness, message)
    assert "Restarting sandbox-db" in str(getattr(entry["origin"], "title", ""))
    metrics = await harness.slack.http.get(harness.slack.url + "/metrics")
    assert "graphops_tracked_operations 1" in metrics.text


async def test_typed_approve_updates_the_card_and_answers_in_its_thread(
    harness: SlackHarness, console_sim: ConsoleSimulator
) -> None:
    approval_id, ts = await _terminate_card(harness)
    await harness.slack.slash(f"approve {approval_id} confirm=sandbox-db", user="U0BOB")
    _, update = await harness.standin.wait_for("chat.update", count=2)
    assert update.body["ts"] == ts and "Approved" in texts(update)
    assert not [b for b in update.body["blocks"] if b["type"] == "actions"]  # no live buttons
    await until(lambda: bool(harness.standin.thread("C0DEV", ts)))
    assert await harness.rt.idle()
    roots = [m for m in harness.standin.messages if not m.thread_ts]
    assert len(roots) == 1  # the card; the result went to its thread, not a new message
    assert len(_deletes(console_sim)) == 1


async def test_healthz_is_503_while_another_process_holds_the_store(
    harness: SlackHarness,
) -> None:
    import sqlite3

    path = str(harness.rt.bot.config.bot.database)
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # a write lock, as another process would hold it
    try:
        held = await harness.slack.http.get(harness.slack.url + "/healthz")
        assert held.status_code == 503 and held.json()["store"] is False
    finally:
        other.execute("ROLLBACK")
        other.close()
    free = await harness.slack.http.get(harness.slack.url + "/healthz")
    assert free.status_code == 200


async def test_the_ack_says_what_is_happening_when_the_answer_needs_the_api(
    harness: SlackHarness, console_sim: ConsoleSimulator
) -> None:
    quick = await harness.slack.slash("help")  # no API: an empty ack, then the answer
    assert quick.status_code == 200 and quick.content == b""
    await wait_private(harness.standin, "U0ALICE")
    assert await harness.rt.idle()  # the command and its timer are over: nothing else comes
    assert [c for c in harness.standin.calls if "Working on" in texts(c)] == []
    console_sim.faults.latency = 2.0
    acked = await harness.slack.slash("restart sandbox-db")
    assert acked.status_code == 200
    # a plain-text body (Bolt's ack(text=)): shown to the requester only, Slack's default
    assert acked.text == "Restarting sandbox-db…"
    assert harness.standin.calls_to("chat.postMessage") == []  # said before the answer
    [answer] = await harness.standin.wait_for("chat.postMessage", timeout=30.0)
    assert "Restarting sandbox-db" in texts(answer)
    assert await harness.rt.idle()
    # the ack said it: no second notice through the response_url
    assert [c for c in harness.standin.calls if "Working on" in texts(c)] == []


async def test_no_ack_notice_where_nothing_is_bound(
    harness: SlackHarness, console_sim: ConsoleSimulator
) -> None:
    """A channel bound to nothing is refused before any request: the ack promises
    nothing ("Listing the databases…" then a refusal read as a broken promise)."""
    acked = await harness.slack.slash("list", channel="C0NOWHERE")
    assert acked.status_code == 200 and acked.content == b""
    [refusal] = await wait_private(harness.standin, "U0ALICE")
    assert "not bound" in texts(refusal) or "denied" in texts(refusal).lower(), texts(refusal)
    assert await harness.rt.idle()
    assert console_sim.requests == []


@pytest.mark.parametrize(
    ("typed", "user", "channel", "said"),
    [
        # C0PROD is bound as viewer: restarting is refused, so nothing is promised
        ("restart sandbox-db", "U0ALICE", "C0PROD", None),
        ("show sandbox-db", "U0ALICE", "C0PROD", "Looking up sandbox-db…"),
        # C0DEV is not bound to production by that name; a binding by id cannot be
        # told apart without I/O, so the ack only says it is checking
        (
            "restart sandbox-db env=production",
            "U0ALICE",
            "C0DEV",
            "Checking `/gdb restart sandbox-db env=production`…",
        ),
        (
            "restart sandbox-db env=development",
            "U0ALICE",
            "C0DEV",
            "Restarting sandbox-db in development…",
        ),
        # a personal binding is for the person's direct messages, not other channels
        ("list", "U0CAROL", "C0NOWHERE", None),
        ("list", "U0CAROL", "D0CAROLBOT", "Listing the databases…"),
        # a bot admin holds no role where nothing is bound
        ("list", "U0ADMIN", "C0NOWHERE", None),
        # held by named users: the others hold the fallback only
        ("restart sandbox-db", "U0ALICE", "C0HELD", None),
        ("restart sandbox-db", "U0BOB", "C0HELD", "Restarting sandbox-db…"),
        # a user group's membership needs I/O: checking, no promise
        ("restart sandbox-db", "U0ALICE", "C0GROUP", "Checking `/gdb restart sandbox-db`…"),
        # operator on `*` but viewer on production, and where billing-db is not known yet
        ("restart billing-db", "U0ALICE", "C0MIXED", "Checking `/gdb restart billing-db`…"),
        ("snapshot billing-db", "U0ALICE", "C0MIXED", "Checking `/gdb snapshot billing-db`…"),
        # `provider=` narrows the verb to that provider, bound here or not
        ("plans provider=console2", "U0ALICE", "C0DEV", None),
        ("plans provider=console", "U0ALICE", "C0DEV", "Looking up the plans…"),
        # data copied out of an environment this channel is not bound to
        (
            "clone sandbox-db copy-db source-env=production",
            "U0ALICE",
            "C0DEV",
            "Checking `/gdb clone sandbox-db copy-db source-env=production`…",
        ),
        # `env=` names an environment, not a GrapheneDB provider
        (
            "restart sandbox-db env=console",
            "U0ALICE",
            "C0DEV",
            "Checking `/gdb restart sandbox-db env=console`…",
        ),
    ],
)
async def test_the_ack_promises_only_what_the_bindings_allow(
    harness: SlackHarness,
    console_sim: ConsoleSimulator,
    typed: str,
    user: str,
    channel: str,
    said: str | None,
) -> None:
    """The ack's "Restarting …" then "Not allowed" read as a broken promise: the ack
    says what is done only where a binding surely gives the person the verb's role."""
    store = harness.rt.bot.services.permissions
    store.grant("U0CAROL", "console", "*", Role.VIEWER)
    store.grant_held(
        "C0HELD", "console", "*", Role.OPERATOR, by="test", users=["U0BOB"], fallback=None
    )
    store.grant_held(
        "C0GROUP", "console", "*", Role.OPERATOR, by="test", users=["S0ONCALL"], fallback=None
    )
    store.grant("C0MIXED", "console", "*", Role.OPERATOR)
    store.grant("C0MIXED", "console", "production", Role.VIEWER)
    acked = await harness.slack.slash(typed, user=user, channel=channel)
    assert acked.status_code == 200
    assert (acked.text or None) == said
    await harness.rt.idle()
    answers = [texts(c) for c in harness.standin.calls if c.method in SAID]
    assert answers, "the command is answered, whatever its ack said"
    if said is None:  # refused: told why, and no API request was sent
        assert any("not" in a.lower() for a in answers), answers
        assert console_sim.requests == [], answers


async def test_an_environment_the_cache_does_not_know_is_not_promised(
    harness: SlackHarness,
) -> None:
    """Bound to every environment (`*`): once the environments are listed, `env=qa`
    (none of them) gets no promise; `env=Staging` (one of them, any case) does."""
    harness.rt.bot.services.permissions.grant("C0ALL", "console", "*", Role.OPERATOR)
    await harness.slack.slash("envs", channel="C0ALL")
    assert await harness.rt.idle()
    qa = await harness.slack.slash("restart catalog-db env=qa", channel="C0ALL")
    assert qa.text == "Checking `/gdb restart catalog-db env=qa`…"
    staging = await harness.slack.slash("restart catalog-db env=Staging", channel="C0ALL")
    assert staging.text == "Restarting catalog-db in Staging…"
    assert await harness.rt.idle()
    assert any("not one this channel may use" in texts(c) for c in harness.standin.calls)


async def test_the_ack_knows_where_a_database_is_from_the_name_cache(
    harness: SlackHarness, console_sim: ConsoleSimulator
) -> None:
    """Operator on `*` but viewer on production: once a listing has shown where each
    database is (no request at the ack), the ack promises the restart of one in staging
    and only checks the restart of one in production."""
    store = harness.rt.bot.services.permissions
    store.grant("C0MIXED", "console", "*", Role.OPERATOR)
    store.grant("C0MIXED", "console", "production", Role.VIEWER)
    await harness.slack.slash("list", channel="C0MIXED")
    assert await harness.rt.idle()
    allowed = await harness.slack.slash("show catalog-db", channel="C0MIXED")
    assert allowed.text == "Looking up catalog-db…"
    resume = await harness.slack.slash("resume catalog-db", channel="C0MIXED")
    assert resume.text == "Resuming catalog-db…"
    refused = await harness.slack.slash("pause billing-db", channel="C0MIXED")
    assert refused.text == "Checking `/gdb pause billing-db`…"
    assert await harness.rt.idle()
    assert any("where <#C0MIXED> is viewer" in texts(c) for c in harness.standin.calls)


@pytest.mark.parametrize(
    ("typed", "said"),
    [
        ("show sandbox-db", "Looking up sandbox-db…"),
        ("show sandbox-db env=development", "Looking up sandbox-db in development…"),
        ("list", "Listing the databases…"),
        ("list staging", "Listing the databases in staging…"),
        ("restart", None),  # a menu: "Working on …" if it takes a while
        ("terminate sandbox-db", "Checking `/gdb terminate sandbox-db`…"),
        # a write query waits for an approval in a protected environment: no promise
        (
            "query social 'match $p isa person;'",
            "Checking `/gdb query social 'match $p isa person;'`…",
        ),
        ("show a<b>&c", "Looking up a&lt;b&gt;&amp;c…"),
        ("help", None),  # no API
        ("access", None),
        ("frobnicate x", None),  # not a verb: the answer says so at once
        ("pause a b", None),  # invalid arguments
        ("approve 12345678", None),  # decided like the button
        # a token pasted by mistake is not repeated back, even to the one who typed it
        ("list xoxb-1234567890-abcdefghijkl", "Listing the databases in [REDACTED]…"),
        # typed text never turns into formatting: a word with a mrkdwn marker is code
        ("list *bold*", "Listing the databases in `*bold*`…"),
        ("show a_b_ env=~x~", "Looking up `a_b_` in `~x~`…"),
        ("terminate password=hunter2-x", None),  # not an option of terminate: no notice
        ("restart sandbox-db dry-run=true", None),  # a dry run restarts nothing
        ("plan restart sandbox-db", None),
    ],
)
async def test_ack_notice_wording(harness: SlackHarness, typed: str, said: str | None) -> None:
    from bot.slack.runtime import ack_notice

    assert ack_notice(harness.rt.bot, harness.rt.bot.pipeline.read(typed)) == said
