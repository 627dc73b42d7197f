"""Every follow loop ends: garbage, 404 or 500 forever, or no end in sight, is reported lost once.

The tracker runs on a fake clock with small configured limits; the Console
simulator answers operation polls with what each case needs, for as long as
the test runs. No wall-clock sleep: every pass is driven by hand.
"""

from __future__ import annotations

from typing import Any

import pytest

from core.invocation import Invocation
from core.provider import Provider
from operations.follow import Backoff, FollowLimits, Outcome, StepEvent, follow
from operations.tracker import Tracker, TrackerSettings
from tests.support import RecordingNotifier

LIMITS = FollowLimits(max_failures=4, deadlines={"restart": 600.0}, default_deadline=600.0)
OPERATIONS = r"/operations(/[^/]+)?$"  # the collection (read while running) and by id


class FakeClock:
    def __init__(self, now: float = 10_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def tracker_for(bot, console, notifier, clock) -> Tracker:  # type: ignore[no-untyped-def]
    """A tracker on the fast-retry client of the `console` fixture."""
    providers = {
        **bot.services.providers,
        "console": Provider("console", "graphenedb", console, console),
    }
    return Tracker(
        bot.db,
        providers,
        notifier,
        permissions=bot.services.permissions,
        settings=TrackerSettings(backoff=Backoff(0.0, 1.0, 0.0), limits=LIMITS),
        clock=clock,
    )


async def start_restart(bot, tracker):  # type: ignore[no-untyped-def]
    reply = await bot.run(Invocation("U0ALICE", "C0DEV", "restart sandbox-db"))
    assert reply.operations, reply
    ref = reply.operations[0]
    tracked = await tracker.track(ref, channel="C0DEV", thread_ts="1.0", user="U0ALICE")
    return ref, tracked


def finals(notifier: RecordingNotifier, channel: str) -> list[Any]:
    return [r for c, _, r in notifier.posts if c == channel and r.title]


@pytest.mark.parametrize(
    "answer",
    [
        {"status": 200, "text": "<html>garbage</html>"},
        {"status": 200, "body": {"no": "id"}},
        {"status": 200, "body": [1, 2, 3]},
        {"status": 404, "body": {"error": "operation not found"}},
        {"status": 500, "body": {"error": "boom"}},
    ],
    ids=["not-json", "no-id", "a-list", "404", "500"],
)
async def test_a_server_that_never_answers_usably_gets_one_lost_message(
    bot, console, console_sim, answer
):
    notifier, clock = RecordingNotifier(), FakeClock()
    tracker = tracker_for(bot, console, notifier, clock)
    ref, tracked = await start_restart(bot, tracker)
    console_sim.faults.fail_next("GET", OPERATIONS, times=10_000, **answer)
    for _ in range(LIMITS.max_failures + 2):
        await tracker.run_once()
        clock.now += 1
    assert tracker.state(tracked) == "lost"
    polls = len(console_sim.requests_to("GET", OPERATIONS))
    for _ in range(5):  # nothing is polled after the final message
        await tracker.run_once()
        clock.now += 60
    assert len(console_sim.requests_to("GET", OPERATIONS)) == polls
    (final,) = finals(notifier, "C0DEV")
    assert "lost track" in (final.title or "")
    assert f"{LIMITS.max_failures} polls in a row failed" in final.text
    assert ref.operation_id in final.text and f"`ops {ref.database_id}`" in final.text
    (incident,) = finals(notifier, "C0INCIDENT")
    assert "lost track" in (incident.title or "") and incident.status == "error"


async def test_an_operation_that_never_ends_is_lost_at_its_deadline(bot, console, console_sim):
    notifier, clock = RecordingNotifier(), FakeClock()
    tracker = tracker_for(bot, console, notifier, clock)
    ref, tracked = await start_restart(bot, tracker)
    # The simulated clock never moves: the restart stays "started" at its first step.
    for _ in range(3):
        await tracker.run_once()
        clock.now += 100
    assert tracker.state(tracked) == "running"
    clock.now += 600
    await tracker.run_once()
    assert tracker.state(tracked) == "lost"
    polls = len(console_sim.requests_to("GET", OPERATIONS))
    await tracker.run_once()
    assert len(console_sim.requests_to("GET", OPERATIONS)) == polls
    (final,) = finals(notifier, "C0DEV")
    assert "not finished after 10 min" in final.text
    assert "last status seen: started" in final.text and ref.operation_id in final.text
    assert len(finals(notifier, "C0INCIDENT")) == 1


async def test_the_lost_message_is_sent_once_across_a_restart(bot, console, console_sim):
    clock = FakeClock()
    first = RecordingNotifier()
    tracker = tracker_for(bot, console, first, clock)
    _, tracked = await start_restart(bot, tracker)
    console_sim.faults.fail_next("GET", OPERATIONS, status=404, times=10_000)
    for _ in range(LIMITS.max_failures):
        await tracker.poll_due()  # queued, but the bot "dies" before delivering
        clock.now += 1
    assert tracker.state(tracked) == "lost" and first.posts == []
    second = RecordingNotifier()
    again = tracker_for(bot, console, second, clock)
    await again.run_once()
    await again.run_once()
    assert len(finals(second, "C0DEV")) == 1 and len(finals(second, "C0INCIDENT")) == 1
    third = RecordingNotifier()
    await tracker_for(bot, console, third, clock).run_once()
    assert third.posts == []


async def test_a_usable_answer_resets_the_count_of_failures(bot, console, console_sim, clock):
    notifier, tracker_clock = RecordingNotifier(), FakeClock()
    tracker = tracker_for(bot, console, notifier, tracker_clock)
    _, tracked = await start_restart(bot, tracker)
    for _ in range(3):  # three failures, one success, three failures: never four in a row
        console_sim.faults.fail_next(
            "GET", OPERATIONS, status=404, times=2 * (LIMITS.max_failures - 1)
        )
        for _ in range(LIMITS.max_failures):
            await tracker.run_once()
    assert tracker.state(tracked) == "running"
    clock.advance(60)
    await tracker.run_once()
    assert tracker.state(tracked) == "finished"


# ---- follow(): used by dr and the safety snapshot ------------------------------------------


class Script:
    """An OperationSource answering from a list (the last answer repeats)."""

    def __init__(self, *answers: Any) -> None:
        self.answers = list(answers)
        self.calls = 0

    async def operation(self, database_id: str, operation_id: str) -> Any:
        self.calls += 1
        assert self.calls < 100, "polled without end"
        answer = self.answers[min(self.calls, len(self.answers)) - 1]
        if isinstance(answer, Exception):
            raise answer
        return answer


async def _no_sleep(seconds: float) -> None:
    return None


async def test_follow_ends_lost_after_failures_and_polls_no_more():
    from clients.errors import NotFound, UnusableAnswer

    source = Script(UnusableAnswer("operation op: no `id` in the answer"), NotFound("gone"))
    outcome = await follow(
        source, "db", "op", _record([]), limits=LIMITS, sleep=_no_sleep, clock=FakeClock()
    )
    assert isinstance(outcome, Outcome) and outcome.status == "lost"
    assert source.calls == LIMITS.max_failures
    assert "4 polls in a row failed" in (outcome.error or "")
    assert outcome.describe().startswith("lost track of operation op (no answer was usable)")


async def test_follow_ends_lost_at_the_deadline_with_what_it_saw():
    from clients.graphenedb import Operation

    clock = FakeClock()
    started = Operation.model_validate(
        {"id": "op", "status": "started", "steps": [{"state": "copying"}]}
    )

    async def sleep(seconds: float) -> None:
        clock.now += 100

    source = Script(started)
    seen: list[StepEvent] = []
    outcome = await follow(
        source, "db", "op", _record(seen), kind="restart", limits=LIMITS, sleep=sleep, clock=clock
    )
    assert outcome.status == "lost" and "not finished after 10 min" in (outcome.error or "")
    assert (outcome.last_status, outcome.last_step) == ("started", "copying")
    assert [e.name for e in seen] == ["copying"]  # a step without a status, posted once
    assert source.calls == 7


async def test_follow_follows_a_chain_to_its_end():
    from clients.graphenedb import Operation

    def op(op_id: str, status: str, steps: list[str], nxt: str | None = None) -> Operation:
        return Operation.model_validate(
            {
                "id": op_id,
                "status": status,
                "nextOperationId": nxt,
                "steps": [{"state": s} for s in steps],
            }
        )

    class Chain:
        async def operation(self, database_id: str, operation_id: str) -> Operation:
            return {
                "a": op("a", "finished", ["snap", "copy"], "b"),
                "b": op("b", "finished", ["volume", "start"], "c"),
                "c": op("c", "finished", ["check"]),
            }[operation_id]

    seen: list[StepEvent] = []
    outcome = await follow(Chain(), "db", "a", _record(seen), sleep=_no_sleep, clock=FakeClock())
    assert (outcome.status, outcome.operation_id) == ("finished", "c")
    assert [e.name for e in seen] == ["snap", "copy", "volume", "start", "check"]


def _record(into: list[StepEvent]):  # type: ignore[no-untyped-def]
    async def on_step(event: StepEvent) -> None:
        into.append(event)

    return on_step


# ---- watches end too -----------------------------------------------------------------------


async def test_a_watch_ends_after_failed_status_checks_and_says_why(bot, console, console_sim):
    from operations.watch import Watcher

    providers = {"console": Provider("console", "graphenedb", console, console)}
    reply = await bot.run(Invocation("U0ALICE", "C0DEV", "watch sandbox-db"))
    assert reply.status == "ok", reply
    watcher = Watcher(bot.db, providers, max_failures=3)
    await watcher.run_once()  # the baseline
    console_sim.faults.fail_next("GET", r"/status$", status=200, text="garbage", times=10_000)
    for _ in range(2):
        assert await watcher.run_once() == 0
    assert bot.services.watches.active()  # two failures in a row: still watching
    assert await watcher.run_once() == 1
    assert bot.services.watches.active() == []
    checks = len(console_sim.requests_to("GET", r"/status$"))
    await watcher.run_once()
    assert len(console_sim.requests_to("GET", r"/status$")) == checks  # no check after it
    notifier = RecordingNotifier()
    await tracker_for(bot, console, notifier, FakeClock()).deliver()
    (text,) = notifier.texts("C0DEV")
    assert text.startswith("Stopped watching sandbox-db: 3 status checks in a row failed")
    assert "the answer was not JSON" in text and "`watch sandbox-db` starts again" in text


async def test_the_limits_come_from_the_config(tmp_path):
    from bot.config import OperationsSettings
    from bot.wiring import build_bot, build_tracker
    from tests.support import ENVIRON, make_config

    config = make_config("http://127.0.0.1:9", tmp_path / "c.sqlite3")
    operations = OperationsSettings(max_poll_failures=3, deadline_minutes={"import": 5})
    built = build_bot(config.model_copy(update={"operations": operations}), environ=ENVIRON)
    try:
        limits = build_tracker(built, RecordingNotifier()).settings.limits
    finally:
        await built.aclose()
    assert limits.max_failures == 3
    assert limits.deadline("import") == 300 and limits.deadline("restart") == 3600


async def test_a_bug_while_reading_an_operation_is_not_shown_by_its_class_name(
    bot, console, console_sim, monkeypatch
):
    """An exception inside the tracker ends in the words of the lost message, not its repr."""
    notifier, clock = RecordingNotifier(), FakeClock()
    tracker = tracker_for(bot, console, notifier, clock)
    _, tracked = await start_restart(bot, tracker)

    async def broken(row):  # type: ignore[no-untyped-def]
        raise KeyError("database_id")

    monkeypatch.setattr(tracker, "_poll", broken)
    for _ in range(LIMITS.max_failures + 1):
        await tracker.run_once()
        clock.now += 1
    assert tracker.state(tracked) == "lost"
    (final,) = finals(notifier, "C0DEV")
    assert "an internal error while reading it (in the bot's log)" in final.text
    assert "KeyError" not in final.text and "database_id" not in final.text
