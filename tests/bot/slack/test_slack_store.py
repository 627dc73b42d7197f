"""The store never blocks the event loop (issue 15, case 11): another process holding the
SQLite write lock (`BEGIN IMMEDIATE`, a real second process) must not delay Slack's acks.

The order of events is what is checked, never durations: each ack must arrive while
the other process still holds the lock (it says so before it lets go, and it lets go
by itself after `HOLD_SECONDS`, so a bot whose loop is frozen fails instead of hanging).
"""

from __future__ import annotations

import asyncio
import select
import subprocess
import sys
from collections.abc import Callable

import pytest
from aiohttp import web

from bot.slack.edge import Origin
from bot.slack.sweep import sweep_once
from commands.pipeline import STORE_BUSY_MIDWAY
from core.invocation import Invocation
from core.reply import Reply
from operations import locked
from simulators.graphenedb import ConsoleSimulator
from tests.bot.slack.conftest import SlackHarness
from tests.bot.slack.slack_support import texts, wait_private
from tests.waiting import until

HOLD_SECONDS = 15.0  # longer than any ack may take, shorter than the old 30 s busy timeout

HOLDER = r"""
import select, sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
if sys.argv[3:] == ["on-cue"]:
    sys.stdin.readline()  # "lock"
conn.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
select.select([sys.stdin], [], [], float(sys.argv[2]))  # until told, or the time is up
print("releasing", flush=True)
conn.execute("ROLLBACK")
conn.close()
"""


class LockHolder:
    """A real second process holding the SQLite write lock of `path`."""

    def __init__(
        self, path: str, hold_seconds: float = HOLD_SECONDS, *, on_cue: bool = False
    ) -> None:
        """`on_cue`: the lock is taken only when `cue()` says so (the process is ready)."""
        when = "on-cue" if on_cue else "now"
        self.proc = subprocess.Popen(
            [sys.executable, "-c", HOLDER, path, str(hold_seconds), when],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    async def cue(self) -> None:
        """Take the lock now (an `on_cue` holder) and return once it is held."""
        assert self.proc.stdin is not None
        self.proc.stdin.write("lock\n")
        self.proc.stdin.flush()
        await self.locked()

    async def locked(self) -> None:
        assert self.proc.stdout is not None
        line = await asyncio.to_thread(self.proc.stdout.readline)
        assert line.strip() == "locked", line

    def holding(self) -> bool:
        """True while the lock is certainly held: it has not said "releasing" yet."""
        assert self.proc.stdout is not None
        said, _, _ = select.select([self.proc.stdout], [], [], 0)
        return not said

    async def release(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        code = await asyncio.to_thread(self.proc.wait, 30)
        assert code == 0


async def test_acks_stay_prompt_while_another_process_holds_the_write_lock(
    harness: SlackHarness, console_sim: ConsoleSimulator
) -> None:
    holder = LockHolder(str(harness.rt.bot.config.bot.database))
    try:
        await holder.locked()
        lines = ("list", "show sandbox-db", "restart sandbox-db", "help")
        for line in lines:
            response = await harness.slack.slash(line)
            assert response.status_code == 200
            assert holder.holding(), f"the ack of {line!r} came after the lock was let go"
    finally:
        await holder.release()
    # The work waited for the store off the loop, and runs now that it is free.
    assert await harness.rt.idle()
    typed = [r for r in harness.rt.bot.services.audit.query(kind="command") if r["verb"]]
    assert [r["verb"] for r in typed] == ["list", "show", "restart", "help"]
    assert len(console_sim.requests_to("POST", r"/restart$")) == 1
    assert not [c for c in harness.standin.calls if "busy" in texts(c)]


async def test_a_store_locked_too_long_is_answered_while_still_locked(
    harness: SlackHarness, console_sim: ConsoleSimulator
) -> None:
    harness.rt.bot.store.wait_seconds = 0.5
    holder = LockHolder(str(harness.rt.bot.config.bot.database))
    try:
        await holder.locked()
        response = await harness.slack.slash("restart sandbox-db")
        assert response.status_code == 200
        [busy] = await wait_private(harness.standin, "U0ALICE", contains="store is busy")
        assert "Nothing was done" in texts(busy)
        assert holder.holding()
    finally:
        await holder.release()
    assert await harness.rt.idle()
    assert console_sim.requests == []  # nothing ran: not even a look-up


async def test_a_lock_taken_mid_command_fails_fast_and_loses_no_audit_row(
    harness: SlackHarness, console_sim: ConsoleSimulator
) -> None:
    bot = harness.rt.bot
    holder = LockHolder(str(bot.config.bot.database))
    try:
        await holder.locked()
        # Past the gate (as if the lock was taken just after it): audit rows wait in memory...
        restarted = await bot.run(Invocation("U0ALICE", "C0DEV", "restart sandbox-db"))
        assert restarted.status == "ok", restarted.text
        # ...and a write that cannot wait (the approval) stops the command plainly.
        card = await bot.run(Invocation("U0ALICE", "C0DEV", "terminate sandbox-db"))
        assert card.status == "error" and card.text == STORE_BUSY_MIDWAY
        assert holder.holding()
    finally:
        await holder.release()
    assert console_sim.requests_to("DELETE") == []
    assert len(console_sim.requests_to("POST", r"/restart$")) == 1
    await bot.run(Invocation("U0ALICE", "C0DEV", "help"))  # the next row lets the kept ones in
    audit = bot.services.audit.query(limit=1000)
    restart_rows = [r for r in audit if r["verb"] == "restart"]
    assert {r["kind"] for r in restart_rows} == {"command", "decision", "operation"}
    assert any(r["kind"] == "api_call" and "restart" in r["verb"] for r in audit)


async def test_an_operation_started_while_the_store_is_locked_is_followed_once_it_is_free(
    harness: SlackHarness, console_sim: ConsoleSimulator
) -> None:
    """Another process took the lock after the restart's API call (found by an attack:
    the answer said "Something went wrong" and the operation was never followed). The
    answer is delivered, and the operation is followed once the store is free."""
    from bot.slack.edge import Origin
    from bot.wiring import build_tracker

    rt = harness.rt
    rt.tracker = tracker = build_tracker(rt.bot, rt.notifier)
    tracker.start()
    holder = LockHolder(str(rt.bot.config.bot.database))
    tracked = "SELECT COUNT(*) FROM tracked_operations"
    try:
        await holder.locked()
        origin = Origin(user="U0ALICE", channel="C0DEV", command="restart sandbox-db")
        # past the gate, as if the lock was taken just after it
        running = asyncio.ensure_future(rt.run_command(origin, acked=True))
        [answer] = await harness.standin.wait_for("chat.postMessage")
        assert "Restarting sandbox-db" in texts(answer), texts(answer)
        assert holder.holding() and not running.done()  # following it waits for the store
        assert rt.bot.db.execute(tracked).fetchone() == (0,)
    finally:
        await holder.release()
    try:
        await running
        [(root,)] = rt.bot.db.execute("SELECT thread_ts FROM tracked_operations").fetchall()
        assert root  # under the answer: its progress is posted in that thread
        assert await harness.standin.wait_for(
            "chat.postMessage", where=lambda c: c.body.get("thread_ts") == root
        )
    finally:
        await tracker.stop()
    assert len(console_sim.requests_to("POST", r"/restart$")) == 1
    assert not [c for c in harness.standin.calls if "went wrong" in texts(c)]


async def _terminate_card(harness: SlackHarness) -> tuple[str, str]:
    """`terminate sandbox-db` asked by alice in #dev-db: (approval id, card ts)."""
    await harness.slack.slash("terminate sandbox-db")
    [card] = await harness.standin.wait_for("chat.postMessage")
    [actions] = [b for b in card.body["blocks"] if b["type"] == "actions"]
    approval_id = str(actions["elements"][0]["value"])
    approvals = harness.rt.bot.services.approvals

    def card_ts() -> str | None:
        approval = approvals.get(approval_id)
        return approval.message_ts if approval else None

    await until(lambda: card_ts() is not None)
    return approval_id, str(card_ts())


def _lock_at_the_first_read(
    console_sim: ConsoleSimulator,
    holder: LockHolder,
    monkeypatch: pytest.MonkeyPatch,
    method: str = "GET",
) -> Callable[[], None]:
    """Another process takes the store's lock when the API sees the first `method`
    request after `arm()` (GET: approved work has started and reads before its DELETE,
    whose journal write then meets the lock; DELETE: the request is sent, and what
    records its answer meets the lock)."""
    original = console_sim.before_handler
    state = {"armed": False, "cued": False}

    async def before_handler(request: web.Request) -> None:
        if state["armed"] and not state["cued"] and request.method == method:
            state["cued"] = True
            await holder.cue()
        await original(request)

    monkeypatch.setattr(console_sim, "before_handler", before_handler)
    return lambda: state.update(armed=True)


async def _approved_as_a_lock_is_taken(
    harness: SlackHarness,
    console_sim: ConsoleSimulator,
    monkeypatch: pytest.MonkeyPatch,
    at: str = "GET",
) -> tuple[str, str, LockHolder, asyncio.Future[Reply]]:
    """bob approves alice's `terminate sandbox-db`, and another process takes the store's
    lock once the work has started (its first read): (approval id, card ts, the lock's
    holder, the decision running)."""
    rt = harness.rt
    approval_id, ts = await _terminate_card(harness)
    holder = LockHolder(str(rt.bot.config.bot.database), on_cue=True)
    arm = _lock_at_the_first_read(console_sim, holder, monkeypatch, at)

    async def claimed(_: object) -> None:
        arm()

    invocation = await rt.invocation(Origin(user="U0BOB", channel="C0DEV"), "approve")
    deciding = asyncio.ensure_future(
        rt.bot.pipeline.decide_approval(invocation, approval_id, True, "sandbox-db", claimed)
    )
    return approval_id, ts, holder, deciding


async def test_approved_work_meeting_a_lock_waits_unsent_and_goes_on_once_it_is_free(
    harness: SlackHarness,
    console_sim: ConsoleSimulator,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Found by an attack: the approver saw "Something went wrong" and the approval
    stayed executing until a restart, which then ran it."""
    rt = harness.rt
    approval_id, _, holder, deciding = await _approved_as_a_lock_is_taken(
        harness, console_sim, monkeypatch
    )
    try:
        await until(lambda: "next step waits for the store" in caplog.text)
        assert holder.holding() and not deciding.done()
        assert console_sim.requests_to("DELETE") == []  # its journal write comes first
    finally:
        await holder.release()
    reply = await deciding
    assert reply.status == "ok", reply.text
    approval = rt.bot.services.approvals.get(approval_id)
    assert approval is not None and approval.state == "executed"
    assert len(console_sim.requests_to("DELETE")) == 1


async def test_approved_work_paused_by_a_long_lock_is_resumed_by_the_sweep_once(
    harness: SlackHarness, console_sim: ConsoleSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A lock held through every try: the approver is told it is paused (nothing more
    was sent); the sweep goes on with it once the store is free, its outcome in the
    card's thread; a second sweep does nothing."""
    rt = harness.rt
    monkeypatch.setattr(locked, "WRITE_ATTEMPTS", 1)
    approval_id, ts, holder, deciding = await _approved_as_a_lock_is_taken(
        harness, console_sim, monkeypatch
    )
    try:
        reply = await deciding
        assert holder.holding()
    finally:
        await holder.release()
    assert reply.title and reply.title.startswith("Approved, paused"), reply
    assert "nothing more was sent" in reply.text
    approvals = rt.bot.services.approvals
    paused = approvals.get(approval_id)
    assert paused is not None and paused.state == "executing"
    assert console_sim.requests_to("DELETE") == []

    await sweep_once(rt)
    assert await rt.idle()
    done = approvals.get(approval_id)
    assert done is not None and done.state == "executed" and done.reported_at
    assert len(console_sim.requests_to("DELETE")) == 1
    thread = [m.text for m in harness.standin.thread("C0DEV", ts)]
    assert any("store was locked" in t and "goes on now" in t for t in thread), thread
    await sweep_once(rt)
    assert await rt.idle()
    assert len(console_sim.requests_to("DELETE")) == 1


async def test_what_the_last_run_left_is_taken_up_after_a_lock_held_past_one_wait(
    harness: SlackHarness, caplog: pytest.LogCaptureFixture
) -> None:
    """Found by an attack: `serve` started under a lock held past the store gate's wait
    (30 s) dropped its recovery for good; nothing the last run left was answered until
    the next restart. The gate waits 0.2 s here: the lock outlasts several waits."""
    from bot.slack.recovery import start_recovery
    from bot.store import StoreGate

    rt = harness.rt
    path = str(rt.bot.config.bot.database)
    rt.bot.store = StoreGate(path, wait_seconds=0.2)
    rt.inbox.accept("U0ALICE", "C0DEV", "restart sandbox-db", None)
    rt.bot.db.execute("UPDATE accepted_requests SET runner = ?", ["999999999:1"])  # gone
    holder = LockHolder(path)
    try:
        await holder.locked()
        recovering = start_recovery(rt)
        await until(lambda: caplog.text.count("waits for the store (locked)") >= 3)
        assert holder.holding() and not recovering.done()
    finally:
        await holder.release()
    assert await recovering == 1
    assert await rt.idle()
    [told] = await wait_private(harness.standin, "U0ALICE", contains="restart sandbox-db")
    assert "nothing was done" in texts(told)
    assert rt.inbox.pending() == 0


async def test_approved_work_whose_request_was_sent_waits_for_the_store_and_never_pauses(
    harness: SlackHarness,
    console_sim: ConsoleSimulator,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Found by an attack: the lock came after the DELETE went out; the approver was told
    "paused, nothing more was sent", and the run that went on later called the outcome
    unknown although this process had the API's answer. What records an answer waits
    however long the lock lasts (here past every try a write before a request gets)."""
    monkeypatch.setattr(locked, "WRITE_ATTEMPTS", 1)
    rt = harness.rt
    approval_id, _, holder, deciding = await _approved_as_a_lock_is_taken(
        harness, console_sim, monkeypatch, at="DELETE"
    )
    try:
        await until(lambda: "waits for the store" in caplog.text)  # one try was all before
        assert holder.holding() and not deciding.done()
        assert len(console_sim.requests_to("DELETE")) == 1
    finally:
        await holder.release()
    reply = await deciding
    assert reply.status == "ok" and "paused" not in (reply.title or ""), reply
    approval = rt.bot.services.approvals.get(approval_id)
    assert approval is not None and approval.state == "executed"
    assert len(console_sim.requests_to("DELETE")) == 1


async def test_a_request_whose_row_cannot_be_written_once_the_store_is_free_is_not_run(
    harness: SlackHarness, console_sim: ConsoleSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Acked while another process held the lock (spooled), then the lock came back just
    as its row was written: it ran with no row, so a kill made the next start answer
    "nothing was done" although its restart had been sent. Now it is not run; the
    requester is told, and its spool entry is dropped (nothing left to answer)."""
    import sqlite3

    rt = harness.rt
    holder = LockHolder(str(rt.bot.config.bot.database))
    try:
        await holder.locked()
        response = await harness.slack.slash("restart sandbox-db")
        assert response.status_code == 200 and holder.holding()

        def locked_again(*args: object, **kwargs: object) -> int:
            raise sqlite3.OperationalError("database is locked")

        monkeypatch.setattr(rt.inbox, "accept", locked_again)
    finally:
        await holder.release()
    assert await rt.idle()
    [busy] = await wait_private(harness.standin, "U0ALICE", contains="store is busy")
    assert "Nothing was done" in texts(busy)
    assert console_sim.requests_to("POST", r"/restart$") == []
    monkeypatch.undo()
    spool = rt.inbox.spool  # told already: nothing left to answer after a restart
    assert spool is not None and (not spool.exists() or "restart" not in spool.read_text())
