"""The tracker's background dispatch (issue 17): each due operation is polled on its own,
at most `concurrency` at once, never twice at the same time, and a slow answer does not
hold up the operations behind it; waits are spread, never lengthened."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from bot.store import open_database
from core.provider import Provider
from core.reply import OperationRef, Reply
from operations.follow import Backoff
from operations.tracker import Tracker, TrackerSettings
from simulators.base import ManualClock
from tests.support import RecordingNotifier


class HeldOperations:
    """An operation source whose answers wait until the test lets them go."""

    def __init__(self) -> None:
        self.asked: list[str] = []
        self.release: dict[str, asyncio.Event] = {}
        self.in_flight = 0
        self.most_in_flight = 0

    async def operation(self, database_id: str, operation_id: str) -> Any:
        self.asked.append(operation_id)
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await self.release.setdefault(operation_id, asyncio.Event()).wait()
        finally:
            self.in_flight -= 1
        return SimpleNamespace(status="finished", steps=[], next_operation_id=None, error=None)


async def _tracked(tracker: Tracker, count: int) -> None:
    for n in range(count):
        await tracker.track(
            OperationRef(
                provider="console",
                database_id=f"db-{n}",
                operation_id=f"op-{n}",
                label=f"restart db-{n}",
                verb="restart",
            ),
            channel="C0DEV",
            thread_ts=f"1700000000.{n:06d}",
            user="U0ALICE",
        )


async def _until(condition: Any) -> None:
    for _ in range(500):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not reached")


async def test_dispatch_bounds_polls_in_flight_and_never_polls_one_twice(
    tmp_path: Path,
) -> None:
    clock = ManualClock(1000.0)
    source = HeldOperations()
    provider = Provider("console", "graphenedb", client=None, operations=source)  # type: ignore[arg-type]
    tracker = Tracker(
        open_database(tmp_path / "store.sqlite3"),
        {"console": provider},
        RecordingNotifier(),
        settings=TrackerSettings(backoff=Backoff(0.0, 1.0, 0.0), concurrency=3),
        clock=clock,
    )
    await _tracked(tracker, 5)
    assert await tracker.dispatch() == 3
    await _until(lambda: len(source.asked) == 3)
    assert await tracker.dispatch() == 0  # full: the 3 in flight are not started again
    assert source.asked == ["op-0", "op-1", "op-2"]
    source.release.setdefault("op-1", asyncio.Event()).set()  # one slow answer ends...
    await _until(lambda: tracker.state(2) == "finished")
    assert await tracker.dispatch() == 1  # ...and the next due one starts at once
    await _until(lambda: len(source.asked) == 4)
    assert source.asked[3] == "op-3" and source.most_in_flight == 3
    for event in list(source.release.values()):
        event.set()
    for name in ("op-3", "op-4"):
        source.release.setdefault(name, asyncio.Event()).set()

    async def drained() -> None:
        while tracker.running():
            await tracker.dispatch()
            await asyncio.sleep(0.01)

    await asyncio.wait_for(drained(), 5)
    assert sorted(source.asked) == [f"op-{n}" for n in range(5)]  # each polled once
    await tracker.stop()


async def test_waits_are_spread_but_never_longer_than_the_backoff(tmp_path: Path) -> None:
    clock = ManualClock(1000.0)
    tracker = Tracker(
        open_database(tmp_path / "store.sqlite3"),
        {},
        RecordingNotifier(),
        settings=TrackerSettings(backoff=Backoff(10.0, 1.5, 15.0), spread=0.2),
        clock=clock,
    )
    await _tracked(tracker, 50)
    due = [
        row[0] - 1000.0
        for row in tracker.db.execute("SELECT next_poll_at FROM tracked_operations").fetchall()
    ]
    assert all(8.0 <= wait <= 10.0 for wait in due)
    assert len({round(wait, 3) for wait in due}) > 10  # not all at the same instant


class HeldNotifier(RecordingNotifier):
    """Posts to a thread in `held` wait until the test lets them go."""

    def __init__(self, held: str) -> None:
        super().__init__()
        self.held = held
        self.holding = asyncio.Event()
        self.release = asyncio.Event()

    async def post(self, channel, reply, thread_ts=None):  # type: ignore[no-untyped-def]
        if thread_ts == self.held:
            self.holding.set()
            await self.release.wait()
        return await super().post(channel, reply, thread_ts)


async def test_a_slow_thread_does_not_hold_up_a_message_queued_in_another(
    tmp_path: Path,
) -> None:
    """Delivery sends each thread on its own: a message queued while another thread's
    send is stuck (a 429's Retry-After, a slow Slack) goes out at once, not after it."""
    notifier = HeldNotifier(held="1700000000.000001")
    tracker = Tracker(
        open_database(tmp_path / "store.sqlite3"),
        {},
        notifier,
        settings=TrackerSettings(tick_seconds=0.02),
    )
    reply = Reply(status="info", text="step").model_dump()
    tracker.outbox.put(None, "step:0", "C0DEV", reply, thread_ts="1700000000.000001")
    tracker.start()
    try:
        await asyncio.wait_for(notifier.holding.wait(), 5)
        tracker.outbox.put(None, "step:1", "C0DEV", reply, thread_ts="1700000000.000002")
        await _until(lambda: [ts for _, ts, _ in notifier.posts] == ["1700000000.000002"])
        notifier.release.set()
        await _until(lambda: len(notifier.posts) == 2)
        assert not tracker.outbox.pending()
    finally:
        notifier.release.set()
        await tracker.stop()
