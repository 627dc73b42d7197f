"""Waits inside commands end: `dr` and the safety snapshot give up within their limits,
say what is known in the thread, tell the incident channel once, and poll no more.
And `restore ... as` follows the operation under the new database, never the source.

The limits are small (3 failed polls in a row, deadlines of half a second) and the
polls fast; the Console simulator answers operation polls with what each case needs.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.demo import apply_demo_policy
from bot.wiring import Bot, build_bot
from commands.context import reporting_progress
from core.invocation import Invocation
from core.reply import Reply
from operations.follow import Backoff, FollowLimits
from operations.tracker import Tracker, TrackerSettings
from tests.support import ENVIRON, RecordingNotifier, make_config

ALICE, BOB = "U0ALICE", "U0BOB"
DEV, ONCALL, INCIDENT = "C0DEV", "C0ONCALL", "C0INCIDENT"
OPERATIONS = r"/operations(/[^/]+)?$"
LIMITS = FollowLimits(max_failures=3, deadlines={}, default_deadline=60.0)
SHORT = FollowLimits(max_failures=3, deadlines={}, default_deadline=0.5)  # seconds
FOREVER = [
    {"status": 200, "text": "<html>garbage</html>"},
    {"status": 404, "body": {"error": "operation not found"}},
    {"status": 500, "body": {"error": "boom"}},
]


@pytest.fixture
async def bot(console_sim, tmp_path: Path) -> AsyncIterator[Bot]:  # type: ignore[no-untyped-def]
    config = make_config(
        console_sim.base_url, tmp_path / "w.sqlite3", snapshot_before_destroy="protected"
    )
    built = build_bot(config, environ=ENVIRON)
    apply_demo_policy(built)
    built.services.follow_limits = LIMITS
    built.services.wait_backoff = Backoff(0.01, 1.0, 0.01)
    try:
        yield built
    finally:
        await built.aclose()


async def run(bot: Bot, line: str, user: str = ALICE, channel: str = DEV) -> Reply:
    return await bot.run(Invocation(user=user, channel=channel, text=line))


async def approved(bot: Bot, line: str, channel: str = ONCALL) -> Reply:
    """Ask as alice, approve as bob (the oncall approver)."""
    card = await run(bot, line, channel=channel)
    assert card.status == "pending", card.text
    (approve,) = [a.command for a in card.actions if a.action_id == "approval.approve"]
    return await run(bot, approve, user=BOB, channel=channel)


def tracker(bot: Bot, notifier: RecordingNotifier) -> Tracker:
    return Tracker(
        bot.db,
        bot.services.providers,
        notifier,
        permissions=bot.services.permissions,
        settings=TrackerSettings(backoff=Backoff(0.0, 1.0, 0.0), limits=LIMITS),
    )


async def incidents(bot: Bot) -> list[Any]:
    """What the incident channel got (the outbox, delivered by a tracker)."""
    notifier = RecordingNotifier()
    await tracker(bot, notifier).deliver()
    return [reply for channel, _, reply in notifier.posts if channel == INCIDENT]


async def polls_stay(bot: Bot, console_sim) -> None:  # type: ignore[no-untyped-def]
    """Nothing polls after the final message: a tracker pass sends no operation request."""
    before = len(console_sim.requests_to("GET", OPERATIONS))
    for _ in range(3):
        await tracker(bot, RecordingNotifier()).run_once()
    assert len(console_sim.requests_to("GET", OPERATIONS)) == before


@pytest.mark.parametrize("answer", FOREVER, ids=["garbage", "404", "500"])
async def test_dr_gives_up_on_a_clone_it_cannot_follow(bot, console_sim, answer):
    console_sim.faults.fail_next("GET", OPERATIONS, times=10_000, **answer)
    done = await approved(bot, "dr orders-db")
    assert done.status == "error" and "stopped" in (done.title or "")
    assert "lost track of operation" in done.text
    assert "3 polls in a row failed" in done.text
    assert "`ops orders-db` shows whether it finished" in done.text
    assert "State so far: clone started" in done.text and "was not switched" in done.text
    assert [r.path for r in console_sim.mutating_requests()][-1].endswith("/clone")  # no switch
    assert done.operations == []  # nothing left for the tracker to follow
    (notice,) = await incidents(bot)
    assert notice.status == "error" and "lost track of operation" in notice.text
    assert (await incidents(bot)) == []  # told once
    await polls_stay(bot, console_sim)


async def test_dr_gives_up_on_a_clone_that_never_runs(bot, console_sim, clock):
    """The clone's operation finishes, but its status never says running: the wait for it
    ends at its deadline, and nothing is switched."""
    bot.services.follow_limits = SHORT
    console_sim.faults.fail_next(
        "GET", r"/status$", status=200, body={"state": "provisioning"}, times=10_000
    )
    card = await run(bot, "dr orders-db", channel=ONCALL)
    (approve,) = [a.command for a in card.actions if a.action_id == "approval.approve"]
    ticking = asyncio.create_task(_tick(clock))  # the clone's operation runs and finishes
    try:
        done = await run(bot, approve, user=BOB, channel=ONCALL)
    finally:
        ticking.cancel()
    assert done.status == "error", done.text
    assert "orders-db-dr did not become running (last state seen: provisioning)" in done.text
    assert "not finished after" in done.text
    assert not [r for r in console_sim.mutating_requests() if r.path.endswith("/switch")]
    (notice,) = await incidents(bot)
    assert "did not become running" in notice.text


async def _tick(clock) -> None:  # type: ignore[no-untyped-def]
    while True:
        await asyncio.sleep(0.005)
        clock.advance(1)


@pytest.mark.parametrize("answer", FOREVER, ids=["garbage", "404", "500"])
async def test_a_safety_snapshot_it_cannot_follow_stops_the_terminate(bot, console_sim, answer):
    console_sim.faults.fail_next("GET", OPERATIONS, times=10_000, **answer)
    card = await run(bot, "terminate billing-db", channel=ONCALL)
    (approve,) = [a.command for a in card.actions if a.action_id == "approval.approve"]
    done = await run(bot, approve, user=BOB, channel=ONCALL)
    assert done.status == "error", done.text
    assert "the safety snapshot of billing-db: lost track of operation" in done.text
    assert "nothing else was done" in done.text and "`ops billing-db`" in done.text
    assert [r.method for r in console_sim.mutating_requests()] == ["POST"]  # no DELETE
    (notice,) = await incidents(bot)
    assert "lost track" in notice.text and "terminate billing-db" in (notice.title or "")
    assert (await incidents(bot)) == []
    await polls_stay(bot, console_sim)


async def test_a_safety_snapshot_that_never_ends_is_given_up_at_its_deadline(bot, console_sim):
    # The simulated clock never moves: the snapshot stays "started" for ever.
    bot.services.follow_limits = SHORT
    done = await approved(bot, "switch orders-db to orders-replica")
    assert done.status == "error", done.text
    assert "not finished after" in done.text and "last status seen: started" in done.text
    assert [r.path for r in console_sim.mutating_requests()][-1].endswith("/snapshots/manual")
    assert len(await incidents(bot)) == 1


@pytest.mark.parametrize("console_shapes", [(), ("copy-op-only",)], ids=["documented", "op-only"])
async def test_restore_as_follows_the_new_database(bot, console_sim, clock, console_shapes):
    source = console_sim.find_database("sandbox-db")
    snap = console_sim.add_snapshot(source.id)
    reply = await run(bot, f"restore {snap.id[:8]} as sandbox-restored env=development")
    assert reply.status == "ok", reply.text
    new = console_sim.find_database("sandbox-restored")
    (ref,) = reply.operations
    assert ref.database_id == new.id != source.id
    notifier = RecordingNotifier()
    follower = tracker(bot, notifier)
    tracked = await follower.track(ref, channel=DEV, thread_ts="1.0", user=ALICE)
    for _ in range(20):
        await follower.run_once()
        clock.advance(1)
        if follower.state(tracked) != "running":
            break
    assert follower.state(tracked) == "finished"
    assert console_sim.requests_to("GET", rf"/{source.id}/operations") == []
    (final,) = [r for c, _, r in notifier.posts if c == DEV and r.title]
    assert "finished in" in (final.title or "")
    announced = [r for c, _, r in notifier.posts if c == INCIDENT]
    assert [r.status for r in announced] == ["ok"]  # a restore's end, not a false alarm


@pytest.mark.parametrize("console_shapes", [("copy-op-only",)])
async def test_a_new_database_nobody_names_is_not_followed_into_a_false_alarm(
    bot, console_sim, console_shapes
):
    """The answer names no database and the listing does not show it yet: nothing is
    handed to the tracker (it would poll under no database and cry "lost")."""
    source = console_sim.find_database("sandbox-db")
    snap = console_sim.add_snapshot(source.id)
    assert (await run(bot, "list")).status == "ok"  # the names are cached
    dev = console_sim.find_environment("development").id
    console_sim.faults.fail_next("GET", rf"/environments/{dev}/databases$", status=200, body=[])
    reply = await run(bot, f"restore {snap.id[:8]} as sandbox-restored env=development")
    assert reply.status == "ok" and reply.operations == []
    assert "cannot be followed here" in reply.text and "`list`" in reply.text
    assert console_sim.find_database("sandbox-restored")  # it is being made all the same


@pytest.mark.parametrize("console_shapes", [("restart-echo",)])
async def test_a_restart_answered_without_an_operation_is_followed_all_the_same(bot, console_sim):
    """Observed: restart may answer only `{stationIds, reset}`. The one restart running on
    the database is followed (the thread gets its result), not answered "Done."."""
    reply = await run(bot, "restart sandbox-db")
    assert reply.status == "ok" and len(reply.operations) == 1, reply.text
    sandbox = console_sim.find_database("sandbox-db")
    [running] = [op for op in console_sim.operations if op.database_id == sandbox.id]
    assert reply.operations[0].operation_id == running.id


@pytest.mark.parametrize("console_shapes", [("restart-echo",)])
async def test_a_restart_whose_operation_cannot_be_found_says_so(bot, console_sim):
    console_sim.faults.fail_next("GET", OPERATIONS, status=500, times=50, body={"error": "boom"})
    reply = await run(bot, "restart sandbox-db")
    assert reply.status == "ok" and not reply.operations
    assert "named no operation to follow" in reply.text and "ops sandbox-db" in reply.text
    assert "Done." not in reply.text


@contextlib.asynccontextmanager
async def time_passes(clock) -> AsyncIterator[None]:  # type: ignore[no-untyped-def]
    """The simulator's operations move on: a second of its clock every 5 ms."""

    async def tick() -> None:
        while True:
            await asyncio.sleep(0.005)
            clock.advance(1)

    ticking = asyncio.create_task(tick())
    try:
        yield
    finally:
        ticking.cancel()


async def test_long_waits_inside_approved_work_say_how_they_go(bot, console_sim, clock):
    """dr's clone and a production terminate's safety snapshot report each step (the
    approval card's thread in Slack, the shell), not only the end; the preview that
    built the approval card reports nothing."""
    said: list[str] = []

    async def progress(text: str) -> None:
        said.append(text)

    async with time_passes(clock):
        with reporting_progress(progress):
            card = await run(bot, "dr orders-db", channel=ONCALL)
            assert card.status == "pending" and said == []  # the preview waits for nothing
            (approve,) = [a.command for a in card.actions if a.action_id == "approval.approve"]
            done = await run(bot, approve, user=BOB, channel=ONCALL)
    assert done.status != "error", done.text
    assert said[0] == "Cloning orders-db to orders-db-dr…", said
    assert any(line.startswith("clone of orders-db: ") and " · " in line for line in said), said
    assert said[-1].endswith("is ready; switching the connection URL to it…"), said

    said.clear()
    async with time_passes(clock):  # a database nothing else is busy with
        with reporting_progress(progress):
            ended = await approved(bot, "terminate billing-db", channel=ONCALL)
    assert ended.status != "error", ended.text
    assert said and said[0].startswith("Taking a safety snapshot of billing-db before"), said
    assert any(line.startswith("safety snapshot of billing-db: ") for line in said), said


async def test_progress_that_cannot_be_shown_does_not_stop_the_work(bot, console_sim, clock):
    async def broken(text: str) -> None:
        raise OSError("the thread is gone")

    async with time_passes(clock):
        with reporting_progress(broken):
            done = await approved(bot, "dr orders-db")
    assert done.status != "error", done.text
    assert [r.path for r in console_sim.mutating_requests()][-1].endswith("/switch")
