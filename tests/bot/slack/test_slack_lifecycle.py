"""Approved work and accepted requests in Slack, through the real Bolt app: failures after
approval are told on the card, in its thread and in the incident channel; what a stopped
process left is taken up at start (bot/slack/recovery.py); SIGTERM drains."""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.demo import apply_demo_policy
from bot.slack.recovery import recover
from bot.wiring import Bot, build_bot, build_tracker
from core.reply import OperationRef, Reply
from permissions.approvals import _process_start
from simulators.graphenedb import ConsoleSimulator
from simulators.slack import SlackStandIn
from tests.bot.slack.conftest import SlackHarness, make_standin, serving
from tests.bot.slack.slack_support import texts, wait_private
from tests.support import ENVIRON, make_config
from tests.waiting import until

ONCALL, INCIDENT = "C0ONCALL", "C0INCIDENT"
GONE = "999999999:1"  # a runner whose process is not running


pytestmark = pytest.mark.usefixtures("fast_waits")


@pytest.fixture
async def safe_bot(console_sim: ConsoleSimulator, tmp_path: Path) -> AsyncIterator[Bot]:
    """The demo policy, safety snapshots in protected environments (the default)."""
    config = make_config(
        console_sim.base_url, tmp_path / "l.sqlite3", snapshot_before_destroy="protected"
    )
    bot = build_bot(config, environ=ENVIRON)
    apply_demo_policy(bot)
    try:
        yield bot
    finally:
        await bot.aclose()


@pytest.fixture
async def standin_all() -> AsyncIterator[SlackStandIn]:
    server = make_standin(channels=["C0DEV", ONCALL, INCIDENT])
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
async def live(safe_bot: Bot, standin_all: SlackStandIn) -> AsyncIterator[SlackHarness]:
    """The app with a real tracker delivering the outbox (steps, incident posts)."""
    async with serving(safe_bot, standin_all) as harness:
        tracker = build_tracker(safe_bot, harness.rt.notifier)
        harness.rt.tracker = tracker
        tracker.start()
        try:
            yield harness
        finally:
            await tracker.stop()


async def _card(harness: SlackHarness, line: str) -> tuple[str, str]:
    await harness.slack.slash(line, user="U0ALICE", channel=ONCALL)
    approvals = harness.rt.bot.services.approvals
    await until(lambda: any(a.message_ts for a in approvals.pending(ONCALL)))
    approval = next(a for a in approvals.pending(ONCALL) if a.message_ts)
    return approval.id, str(approval.message_ts)


def _edits(standin: SlackStandIn, ts: str) -> list[object]:
    return [c for c in standin.ok_calls("chat.update") if c.body.get("ts") == ts]


def _live_buttons(call: object) -> bool:
    return any(b["type"] == "actions" for b in call.body.get("blocks") or [])  # type: ignore[attr-defined]


async def test_a_safety_snapshot_failing_after_approval_is_told_on_card_thread_and_incident(
    live: SlackHarness, console_sim: ConsoleSimulator, ticking: None
) -> None:
    approval_id, ts = await _card(live, "switch orders-db to orders-replica")
    console_sim.fail_next_operation("snapshot")
    await live.slack.slash(f"approve {approval_id}", user="U0BOB", channel=ONCALL)
    await until(
        lambda: any("failed" in json.dumps(m.blocks) for m in live.standin.thread(ONCALL, ts))
    )
    *progress, result = live.standin.thread(ONCALL, ts)  # in the thread, for everyone to see
    # how the wait went came first, in the same thread (commands/safety.py wait_for)
    assert progress and "Taking a safety snapshot of orders-db" in json.dumps(progress[0].blocks)
    shown = json.dumps(result.blocks)
    assert "safety snapshot of orders-db failed" in shown
    assert "Requested by <@U0ALICE>, approved by <@U0BOB>" in shown
    await until(lambda: not _live_buttons(_edits(live.standin, ts)[-1]))
    final = _edits(live.standin, ts)[-1]
    assert "failed" in texts(final) and "safety snapshot" in texts(final)  # the card itself
    incident = await live.standin.wait_for(
        "chat.postMessage", where=lambda c: c.body.get("channel") == INCIDENT
    )
    assert len(incident) == 1
    said = texts(incident[0])
    assert "<@U0ALICE>" in said and "<@U0BOB>" in said and "safety snapshot" in said
    assert console_sim.requests_to("POST", r".*/connections/switch$") == []
    assert live.rt.bot.services.approvals.get(approval_id).reported_at  # type: ignore[union-attr]


async def test_approved_work_left_by_a_stopped_process_is_resumed_at_start(
    live: SlackHarness, console_sim: ConsoleSimulator, ticking: None
) -> None:
    approvals = live.rt.bot.services.approvals
    approval_id, ts = await _card(live, "switch orders-db to orders-replica")
    # what a process killed right after the click leaves: approved, its runner gone
    assert approvals.claim(approval_id, "U0BOB", "approve").claimed
    live.rt.bot.db.execute("UPDATE approvals SET runner = ? WHERE id = ?", [GONE, approval_id])
    assert recover(live.rt) == 1
    assert await live.rt.idle()
    done = approvals.get(approval_id)
    assert done is not None and done.state == "executed" and done.reported_at
    assert len(console_sim.requests_to("POST", r".*/snapshots/manual$")) == 1
    assert len(console_sim.requests_to("POST", r".*/connections/switch$")) == 1
    final = _edits(live.standin, ts)[-1]
    assert "Done" in texts(final) and not _live_buttons(final)
    [result] = [m for m in live.standin.thread(ONCALL, ts) if "restarted" in json.dumps(m.blocks)]
    assert "Requested by <@U0ALICE>, approved by <@U0BOB>" in json.dumps(result.blocks)
    # the switch is followed in the card's thread to its end, and announced with both names
    [announced] = await live.standin.wait_for(
        "chat.postMessage",
        where=lambda c: c.body.get("channel") == INCIDENT and "finished" in texts(c),
        timeout=20,
    )
    assert "Requested by <@U0ALICE>, approved by <@U0BOB>" in texts(announced)
    assert recover(live.rt) == 0  # nothing is left: a second start does nothing


async def test_an_ended_approval_whose_card_was_not_told_is_told_at_start(
    live: SlackHarness, console_sim: ConsoleSimulator
) -> None:
    approvals = live.rt.bot.services.approvals
    approval_id, ts = await _card(live, "switch orders-db to orders-replica")
    approvals.claim(approval_id, "U0BOB", "approve")
    approvals.start(approval_id)
    # killed once the work ended, before its card was told and its operation followed
    op = OperationRef(provider="console", database_id="d", operation_id="op-7", label="x")
    kept = Reply(
        status="ok", title="Switching orders-db's connection URL", text="Started.", operations=[op]
    )
    approvals.finish(approval_id, "executed", "Switching", kept.model_dump_json())
    assert approvals.get(approval_id).reported_at is None  # type: ignore[union-attr]
    assert recover(live.rt) == 1
    assert await live.rt.idle()
    assert "Done" in texts(_edits(live.standin, ts)[-1])
    assert [m.text for m in live.standin.thread(ONCALL, ts)]
    followed = live.rt.bot.db.execute("SELECT operation_id, thread_ts FROM tracked_operations")
    assert followed.fetchall() == [("op-7", ts)]  # its operation is followed under the card
    assert approvals.get(approval_id).reported_at  # type: ignore[union-attr]
    assert console_sim.mutating_requests() == []


async def test_an_outcome_posted_before_a_kill_is_not_posted_again_in_the_card_thread(
    live: SlackHarness,
    console_sim: ConsoleSimulator,
    monkeypatch: pytest.MonkeyPatch,
    ticking: None,
) -> None:
    """Killed between posting an approval's outcome in its card's thread and recording
    it as reported (a store locked by another process widens that moment), the next
    start found nothing recorded and posted the outcome a second time. The outcome
    message carries a key (its metadata); the next start finds it in the thread and
    follows it instead."""
    from bot.slack import decisions

    approvals = live.rt.bot.services.approvals
    approval_id, ts = await _card(live, "switch orders-db to orders-replica")

    async def killed_before_recording(rt: object, approval_id: str) -> None:
        return None

    monkeypatch.setattr(decisions, "mark_reported", killed_before_recording)
    await live.slack.slash(f"approve {approval_id}", user="U0BOB", channel=ONCALL)

    def outcomes() -> list[object]:
        return [m for m in live.standin.thread(ONCALL, ts) if "approved by" in json.dumps(m.blocks)]

    await until(lambda: len(outcomes()) == 1)
    assert await live.rt.idle()
    ended = approvals.get(approval_id)
    assert ended is not None and ended.state == "executed" and ended.reported_at is None
    monkeypatch.undo()

    assert recover(live.rt) == 1
    assert await live.rt.idle()
    assert len(outcomes()) == 1  # never posted a second time
    assert approvals.get(approval_id).reported_at  # type: ignore[union-attr]
    assert "Done" in texts(_edits(live.standin, ts)[-1])
    assert len(console_sim.requests_to("POST", r".*/connections/switch$")) == 1
    assert recover(live.rt) == 0


async def test_an_answer_posted_before_a_kill_is_not_posted_again(
    live: SlackHarness, console_sim: ConsoleSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Killed between posting a command's answer in the channel and recording it (a kill
    -9 during a burst: the post was in flight, no ts was kept), the next start found the
    request answered but not posted and posted it a second time. The answer carries its
    request's key (its metadata); the next start finds it in the channel's history, page
    by page, and posts nothing."""
    rt, standin = live.rt, live.standin
    standin.history_page = 2  # the history is read page by page
    monkeypatch.setattr(rt.inbox, "posted", lambda row_id, ts: None)  # killed before these
    monkeypatch.setattr(rt.inbox, "done", lambda row_id: None)
    for typed in ("list", "list development", "list staging", "envs", "list"):
        await live.slack.slash(typed)
    assert await rt.idle()

    def answers() -> list[str]:
        return [texts(c) for c in standin.ok_calls("chat.postMessage") if "ran `/gdb" in texts(c)]

    assert len(answers()) == 5
    monkeypatch.undo()
    rt.bot.db.execute("UPDATE accepted_requests SET runner = ?", [GONE])
    assert recover(rt) == 5
    assert await rt.idle()
    assert len(answers()) == 5, answers()  # none posted a second time
    assert not any("delivered after graphops restarted" in a for a in answers())
    # the channel's history read once for all five (it is rate-limited): 3 pages of 2
    assert len(standin.calls_to("conversations.history")) == 3
    assert rt.inbox.pending() == 0
    assert recover(rt) == 0


async def test_an_answer_whose_channel_history_cannot_be_read_is_shown_privately(
    live: SlackHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When the restart cannot tell whether the answer landed (the history keeps failing,
    or the bot may post in a public channel it cannot read), the answer is neither posted
    in the channel a second time nor lost: the requester alone sees it, told why."""
    rt, standin = live.rt, live.standin
    monkeypatch.setattr(rt.inbox, "posted", lambda row_id, ts: None)  # killed before these
    monkeypatch.setattr(rt.inbox, "done", lambda row_id: None)
    await live.slack.slash("list")
    assert await rt.idle()
    monkeypatch.undo()
    rt.bot.db.execute("UPDATE accepted_requests SET runner = ?", [GONE])
    standin.fail_next("conversations.history", status=500, times=20, retry_after=0)
    assert recover(rt) == 1
    assert await rt.idle()
    posted = [c for c in standin.ok_calls("chat.postMessage") if "sandbox-db" in texts(c)]
    assert len(posted) == 1  # the one before the kill
    [private] = await wait_private(standin, "U0ALICE", contains="could not be read to check")
    assert "sandbox-db" in texts(private)
    assert rt.inbox.pending() == 0


def test_the_key_of_an_answer_is_this_stores_own(live: SlackHarness, tmp_path: Path) -> None:
    """Another graphops (its own store) posting in the same channel never matches."""
    from bot.store import open_database
    from operations.inbox import Inbox

    other = Inbox(open_database(tmp_path / "other.sqlite3"))
    assert other.answer_key(1) != live.rt.inbox.answer_key(1)
    assert live.rt.inbox.answer_key(1) == live.rt.inbox.answer_key(1)


async def test_an_answer_not_posted_before_a_kill_is_posted_once_with_its_key(
    live: SlackHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The other side: an answer computed but not posted is delivered after the restart,
    carrying the same key, so that a kill during that post is not followed by a third."""
    rt, standin = live.rt, live.standin
    row = rt.inbox.accept("U0DAVE", "C0DEV", "list", None)
    answer = Reply(status="ok", title="Databases", text="sandbox-db")
    rt.inbox.answered(row, answer.model_dump_json())
    rt.bot.db.execute("UPDATE accepted_requests SET runner = ?", [GONE])
    assert recover(rt) == 1
    assert await rt.idle()
    [late] = [c for c in standin.ok_calls("chat.postMessage") if "sandbox-db" in texts(c)]
    assert "delivered after graphops restarted" in texts(late)
    assert late.body["metadata"]["event_payload"]["key"] == rt.inbox.answer_key(row)


async def test_requests_accepted_by_a_stopped_process_are_answered(
    live: SlackHarness, console_sim: ConsoleSimulator
) -> None:
    rt = live.rt
    inbox = rt.inbox
    approval_id, _ = await _card(live, "switch orders-db to orders-replica")
    rows = {
        "accepted": inbox.accept("U0ALICE", "C0DEV", "restart sandbox-db", None),
        "sent": inbox.accept("U0CAROL", "C0DEV", "pause sandbox-db", None),
        "answered": inbox.accept("U0DAVE", "C0DEV", "restart sandbox-db", None),
        "click": inbox.accept("U0BOB", ONCALL, f"approve {approval_id}", None),
    }
    inbox.mark_sent(rows["sent"], "POST /deployments/databases/graphneo/x/pause (console)")
    answer = Reply(
        status="ok",
        title="Restarting sandbox-db",
        text="Started; progress follows in the thread.",
        operations=[
            OperationRef(provider="console", database_id="d", operation_id="op-1", label="x")
        ],
    )
    inbox.answered(rows["answered"], answer.model_dump_json())
    rt.bot.db.execute("UPDATE accepted_requests SET runner = ?", [GONE])
    assert recover(rt) == 4
    assert await rt.idle()
    [nothing] = await wait_private(live.standin, "U0ALICE", contains="restart sandbox-db")
    assert "nothing was done" in texts(nothing)
    [unknown] = await wait_private(live.standin, "U0CAROL")
    assert "whether it was carried out is unknown" in texts(unknown) and "/pause" in texts(unknown)
    [click] = await wait_private(live.standin, "U0BOB")
    assert "still waits for a decision" in texts(click)
    [posted] = [c for c in live.standin.ok_calls("chat.postMessage") if "Restarting" in texts(c)]
    assert "delivered after graphops restarted" in texts(posted)
    assert "<@U0DAVE> ran `/gdb restart sandbox-db`" in texts(posted)  # who asked, as always
    [message] = [m for m in live.standin.messages if "Restarting" in json.dumps(m.blocks)]
    tracked = rt.bot.db.execute("SELECT thread_ts, requester FROM tracked_operations").fetchall()
    assert tracked == [(message.ts, "U0DAVE")]  # its operation is followed under it
    assert inbox.pending() == 0
    assert console_sim.mutating_requests() == []  # nothing was run again


@pytest.mark.parametrize(
    ("typed", "kept"),
    [
        ("help Xq7pLm2Zr9Kw!", "help …"),  # not a verb, looks like a password
        ("help /gdb Xq7pLm2Zr9Kw!", "help …"),
        ("help restart", "help restart"),
        ("help orders-db2", "help orders-db2"),  # a name, not a password
    ],
)
async def test_a_help_topic_that_looks_like_a_password_is_not_kept(
    harness: SlackHarness, monkeypatch: pytest.MonkeyPatch, typed: str, kept: str
) -> None:
    """`help <word>` fits the help verb's syntax, so its line was kept whole in the
    inbox before it ran (and repeated by a restart), although the answer says a word
    like that is not repeated."""
    monkeypatch.setattr(harness.rt.inbox, "done", lambda row_id: None)  # keep the row
    await harness.slack.slash(typed)
    assert await harness.rt.idle()
    rows = harness.rt.bot.db.execute("SELECT text FROM accepted_requests").fetchall()
    assert rows == [(kept,)]


async def test_a_finished_command_leaves_nothing_in_the_inbox(harness: SlackHarness) -> None:
    await harness.slack.slash("restart sandbox-db")
    await harness.standin.wait_for("chat.postMessage")
    assert await harness.rt.idle()
    assert harness.rt.inbox.pending() == 0


async def test_while_draining_new_requests_are_answered_not_run(
    harness: SlackHarness, console_sim: ConsoleSimulator
) -> None:
    harness.rt.draining = True
    acked = await harness.slack.slash("restart sandbox-db")
    assert acked.status_code == 200 and acked.content == b""  # no "Restarting…" promised
    [told] = await wait_private(harness.standin, "U0ALICE")
    assert "restarting" in texts(told)
    assert await harness.rt.idle()
    assert console_sim.mutating_requests() == []
    assert harness.rt.inbox.pending() == 0


async def test_the_sweep_takes_over_work_of_a_process_that_died_while_serve_runs(
    live: SlackHarness, console_sim: ConsoleSimulator, ticking: None
) -> None:
    """A `graphops shell -c "approve …"` killed mid-work beside a running serve."""
    from bot.slack.sweep import sweep_once

    approvals = live.rt.bot.services.approvals
    approval_id, ts = await _card(live, "switch orders-db to orders-replica")
    approvals.claim(approval_id, "U0BOB", "approve")
    parent = os.getppid()  # a live process that is not this one (this one's own work
    alive = f"{parent}:{_process_start(parent)}"  # is resumed when paused, not taken)
    live.rt.bot.db.execute("UPDATE approvals SET runner = ? WHERE id = ?", [alive, approval_id])
    await sweep_once(live.rt)  # its runner is alive: left alone
    assert await live.rt.idle()
    assert approvals.get(approval_id).state == "approved"  # type: ignore[union-attr]
    live.rt.bot.db.execute("UPDATE approvals SET runner = ? WHERE id = ?", [GONE, approval_id])
    await sweep_once(live.rt)
    assert await live.rt.idle()
    assert approvals.get(approval_id).state == "executed"  # type: ignore[union-attr]
    assert len(console_sim.requests_to("POST", r".*/connections/switch$")) == 1
    assert "Done" in texts(_edits(live.standin, ts)[-1])


async def test_the_inbox_knows_whether_a_command_sent_something(
    harness: SlackHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A restart sends a request that changes something; an approval card only previews
    (its recording clients send nothing): the first is marked sent, the second not."""
    inbox = harness.rt.inbox
    monkeypatch.setattr(inbox, "done", lambda row_id: None)  # keep the rows to look at them
    await harness.slack.slash("restart sandbox-db")
    await harness.slack.slash("terminate sandbox-db")
    assert await harness.rt.idle()
    got = {
        text: (stage, sent)
        for text, stage, sent in harness.rt.bot.db.execute(
            "SELECT text, stage, sent FROM accepted_requests"
        ).fetchall()
    }
    assert got["terminate sandbox-db"] == ("answered", None)
    stage, sent = got["restart sandbox-db"]
    assert stage == "answered" and sent.startswith("POST /deployments/") and "/restart" in sent


async def test_an_answer_delivered_before_the_kill_is_not_posted_again(
    live: SlackHarness, console_sim: ConsoleSimulator
) -> None:
    """Killed after the answer was posted and its operation followed, before the inbox row
    was deleted: the restart finds the operation followed and posts nothing again."""
    rt = live.rt
    row = rt.inbox.accept("U0DAVE", "C0DEV", "restart sandbox-db", None)
    ref = OperationRef(provider="console", database_id="d", operation_id="op-9", label="x")
    answer = Reply(status="ok", title="Restarting sandbox-db", text="Started.", operations=[ref])
    rt.inbox.answered(row, answer.model_dump_json())
    tracker = rt.delivery.tracker()
    assert tracker is not None
    await tracker.track(ref, channel="C0DEV", thread_ts="1700000000.000100", user="U0DAVE")
    rt.bot.db.execute("UPDATE accepted_requests SET runner = ?", [GONE])
    assert recover(rt) == 1
    assert await rt.idle()
    assert rt.inbox.pending() == 0
    posted = [c for c in live.standin.ok_calls("chat.postMessage") if "Restarting" in texts(c)]
    assert posted == []


async def test_a_request_acked_while_the_store_is_locked_is_kept_once_it_is_free(
    harness: SlackHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The inbox row is written before the ack without waiting for another process's
    lock (acks stay prompt); a request that met the lock is kept before it runs."""
    from tests.bot.slack.test_slack_store import LockHolder

    inbox = harness.rt.inbox
    monkeypatch.setattr(inbox, "done", lambda row_id: None)  # keep the rows to look at them
    holder = LockHolder(str(harness.rt.bot.config.bot.database))
    try:
        await holder.locked()
        for line in ("list", "restart sandbox-db"):
            assert (await harness.slack.slash(line)).status_code == 200
            assert holder.holding(), f"the ack of {line!r} came after the lock was let go"
    finally:
        await holder.release()
    assert await harness.rt.idle()
    kept = harness.rt.bot.db.execute("SELECT text, stage FROM accepted_requests ORDER BY id")
    assert kept.fetchall() == [("list", "answered"), ("restart sandbox-db", "answered")]


async def test_a_lock_on_the_inbox_after_the_answer_neither_breaks_it_nor_repeats_it(
    harness: SlackHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process holds the lock when the answer is kept and when its row is
    deleted: the answer is still delivered (not "Something went wrong"), and the row is
    deleted once the store is free (a later restart would answer it again)."""
    import sqlite3

    inbox = harness.rt.inbox
    locked = sqlite3.OperationalError("database is locked")
    done = inbox.done

    def busy(*args: object) -> None:
        raise locked

    monkeypatch.setattr(inbox, "answered", busy)
    monkeypatch.setattr(inbox, "done", busy)
    await harness.slack.slash("list")
    [answer] = await harness.standin.wait_for("chat.postMessage")
    assert "sandbox-db" in texts(answer) and "went wrong" not in texts(answer)
    assert await harness.rt.idle()
    assert inbox.pending() == 1  # the lock is still "held"
    monkeypatch.setattr(inbox, "done", done)
    harness.rt.forget_later()  # as the approval sweep does
    assert inbox.pending() == 0


async def test_an_answer_delivered_while_the_store_is_locked_is_not_repeated_after_a_kill(
    harness: SlackHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The answer was delivered, its row could not be deleted (locked), and the process
    is killed before the lock goes: the next start must not answer it again ("nothing
    was done" for what was done). The row is marked answered in the spool."""
    import sqlite3

    from operations.inbox import Inbox

    inbox = harness.rt.inbox
    assert inbox.spool is not None

    def busy(*args: object) -> None:
        raise sqlite3.OperationalError("database is locked")

    monkeypatch.setattr(inbox, "done", busy)
    await harness.slack.slash("list")
    await harness.standin.wait_for("chat.postMessage")
    assert await harness.rt.idle()
    assert inbox.pending() == 1
    # killed here; the next start finds the row of a process that is gone
    harness.rt.bot.db.execute("UPDATE accepted_requests SET runner = ?", [GONE])
    restarted = Inbox(harness.rt.bot.db, spool=inbox.spool)
    assert restarted.left_over() == []
    assert restarted.pending() == 0 and not inbox.spool.exists()


async def test_an_answer_kept_while_the_store_is_locked_survives_a_kill(
    harness: SlackHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The restart's answer could not be written to the store (locked), and the process
    was killed before its row was deleted (found by an attack: the next start said
    "whether it was carried out is unknown" to a requester who had the answer, and the
    operation was never followed). The answer is kept in the spool: the next start has
    it, to deliver with its operation followed."""
    import sqlite3

    from operations.inbox import Inbox

    inbox = harness.rt.inbox

    def busy(*args: object) -> None:
        raise sqlite3.OperationalError("database is locked")

    monkeypatch.setattr(inbox, "answered", busy)
    monkeypatch.setattr(harness.rt, "forget", lambda row: None)  # killed before the row went
    await harness.slack.slash("restart sandbox-db")
    await harness.standin.wait_for("chat.postMessage")
    assert await harness.rt.idle()
    harness.rt.bot.db.execute("UPDATE accepted_requests SET runner = ?", [GONE])
    [left] = Inbox(harness.rt.bot.db, spool=inbox.spool).left_over()
    assert left.stage == "answered" and left.reply is not None
    assert Reply.model_validate_json(left.reply).operations  # to be followed after it


async def test_an_answer_posted_before_a_kill_is_followed_under_its_message_not_posted_again(
    harness: SlackHarness,
    console_sim: ConsoleSimulator,
    monkeypatch: pytest.MonkeyPatch,
    ticking: None,
) -> None:
    """Found by an attack: killed while a started operation waited for a locked store,
    the next start posted the answer again ("delivered after graphops restarted") and
    the first message said "Started" forever. Where the answer was posted is kept (in
    the spool while the store is locked): the next start follows the operation under
    that message, which ends edited to the operation's end."""
    import sqlite3

    rt = harness.rt

    def busy(*args: object) -> None:
        raise sqlite3.OperationalError("database is locked")

    monkeypatch.setattr(rt.inbox, "posted", busy, raising=False)  # to the spool, then
    monkeypatch.setattr(rt, "forget", lambda row: None)  # killed before the row went
    assert rt.tracker is None  # killed while following it waited for the store
    await harness.slack.slash("restart sandbox-db")
    await harness.standin.wait_for("chat.postMessage")
    assert await rt.idle()
    [answer] = [m for m in harness.standin.messages if m.thread_ts is None]
    ts = answer.ts
    rt.bot.db.execute("UPDATE accepted_requests SET runner = ?", [GONE])
    monkeypatch.undo()

    rt.tracker = tracker = build_tracker(rt.bot, rt.notifier)
    tracker.start()
    try:
        assert recover(rt) == 1
        assert await rt.idle()
        [(thread_ts,)] = rt.bot.db.execute("SELECT thread_ts FROM tracked_operations").fetchall()
        assert thread_ts == ts
        [ended] = await harness.standin.wait_for(
            "chat.update", where=lambda c: c.body.get("ts") == ts, timeout=20
        )
        assert "Started" not in texts(ended)
    finally:
        await tracker.stop()
    roots = [c for c in harness.standin.calls_to("chat.postMessage") if not c.body.get("thread_ts")]
    assert len(roots) == 1, [texts(c) for c in roots]  # never posted a second time
    assert not [c for c in harness.standin.calls if "after graphops restarted" in texts(c)]
    assert rt.inbox.pending() == 0
    assert len(console_sim.requests_to("POST", r"/restart$")) == 1


def test_a_request_of_another_day_is_named_with_its_date() -> None:
    from bot.slack.recovery import when_received

    now = 1_764_511_200.0  # 2025-11-30 14:00:00 UTC
    assert when_received(now - 60, now) == "13:59:00 UTC"
    assert when_received(now - 3 * 86400, now) == "2025-11-27 14:00:00 UTC"
    assert when_received(now + 86400 * 365, now).startswith("2026-11-30 ")  # a clock ahead


async def test_after_a_restart_requests_are_answered_a_few_at_a_time(
    live: SlackHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A hundred answers at once after a restart were a storm of 429s from Slack (its
    posting methods are rate-limited): they go `RECOVERY_AT_ONCE` at a time, all of them."""
    import asyncio

    from bot.slack import recovery

    rt = live.rt
    for n in range(12):
        rt.inbox.accept(f"U0USER{n:02d}", "C0DEV", "restart sandbox-db", None)
    rt.bot.db.execute("UPDATE accepted_requests SET runner = ?", [GONE])
    in_flight, most, told = 0, 0, []
    say = rt.delivery.say

    async def counted(origin: object, text: str, *args: object, **kwargs: object) -> None:
        nonlocal in_flight, most
        in_flight += 1
        most = max(most, in_flight)
        await asyncio.sleep(0.01)
        await say(origin, text, *args, **kwargs)  # type: ignore[arg-type]
        told.append(origin)
        in_flight -= 1

    monkeypatch.setattr(rt.delivery, "say", counted)
    assert recover(rt) == 12
    assert await rt.idle()
    assert len(told) == 12 and most == recovery.RECOVERY_AT_ONCE
