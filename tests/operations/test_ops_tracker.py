"""The tracker against the simulator's operation state machine, with a recording notifier."""

from __future__ import annotations

import pytest

from bot.text import humanize
from core.invocation import Invocation
from core.refs import plain
from operations.follow import Backoff
from operations.tracker import Tracker, TrackerSettings
from tests.support import RecordingNotifier

ALWAYS_DUE = TrackerSettings(backoff=Backoff(first=0.0, factor=1.0, cap=0.0))


def make_tracker(bot, notifier):  # type: ignore[no-untyped-def]
    return Tracker(
        bot.db,
        bot.services.providers,
        notifier,
        permissions=bot.services.permissions,
        settings=ALWAYS_DUE,
    )


async def start(bot, line, user="U0ALICE", channel="C0DEV"):  # type: ignore[no-untyped-def]
    reply = await bot.run(Invocation(user=user, channel=channel, text=line))
    assert reply.operations, reply
    return reply


async def drive(tracker, clock, passes=12, step=0.5):  # type: ignore[no-untyped-def]
    for _ in range(passes):
        await tracker.run_once()
        clock.advance(step)


def step_texts(notifier: RecordingNotifier) -> list[str]:
    lines = []
    for _, thread, reply in notifier.posts:
        if thread == "1.0" and not reply.title:
            lines.extend(line.split(" · ")[0] for line in reply.text.splitlines())
    return lines


async def test_steps_posted_in_order_once_then_final_and_status(bot, clock):
    notifier = RecordingNotifier()
    tracker = make_tracker(bot, notifier)
    reply = await start(bot, "restart sandbox-db")
    tracked = await tracker.track(
        reply.operations[0], channel="C0DEV", thread_ts="1.0", user="U0ALICE", origin=reply
    )
    assert (
        await tracker.track(reply.operations[0], channel="C0DEV", thread_ts="1.0", user="U0ALICE")
        == tracked
    )  # tracking twice is one tracking
    await drive(tracker, clock)
    assert step_texts(notifier) == ["stopping-database", "starting-database", "health-check"]
    finals = [r for _, t, r in notifier.posts if r.title]
    assert len(finals) == 1 and "finished" in (finals[0].title or "")
    assert tracker.state(tracked) == "finished"
    (update,) = notifier.updates
    assert update[1] == "1.0" and update[2].text.startswith("Finished")
    assert tracker.running() == 0
    # restart is not announced in the incident channel when it succeeds
    assert notifier.texts("C0INCIDENT") == []


async def test_a_restarted_tracker_posts_the_rest_exactly_once(bot, clock):
    first = RecordingNotifier()
    tracker = make_tracker(bot, first)
    reply = await start(bot, "restart sandbox-db")
    await tracker.track(reply.operations[0], channel="C0DEV", thread_ts="1.0", user="U0ALICE")
    clock.advance(0.5)
    await tracker.run_once()  # step 0 reported and delivered
    clock.advance(1.0)
    await tracker.poll_due()  # step 1 queued, then the bot "dies" before delivering
    clock.advance(10)  # the operation finishes while the bot is down
    second = RecordingNotifier()
    await make_tracker(bot, second).run_once()
    assert step_texts(first) == ["stopping-database"]
    assert step_texts(second) == ["starting-database", "health-check"]
    assert len([r for _, _, r in second.posts if r.title]) == 1
    third = RecordingNotifier()
    await make_tracker(bot, third).run_once()
    assert third.posts == [] and third.updates == []


async def test_clone_chain_is_followed_to_the_end(bot, clock, console_sim):
    notifier = RecordingNotifier()
    tracker = make_tracker(bot, notifier)
    reply = await start(bot, "clone sandbox-db sandbox-copy")
    await tracker.track(reply.operations[0], channel="C0DEV", thread_ts="1.0", user="U0ALICE")
    await drive(tracker, clock, passes=20)
    assert step_texts(notifier) == [
        "creating-snapshot",
        "copy-snapshot",
        "creating-volume",
        "starting-database",
    ]
    assert console_sim.find_database("sandbox-copy").state == "running"


async def test_failure_is_reported_and_announced(bot, clock, console_sim):
    console_sim.fail_next_operation("restart", at_step="starting-database")
    notifier = RecordingNotifier()
    tracker = make_tracker(bot, notifier)
    reply = await start(bot, "restart sandbox-db")
    tracked = await tracker.track(
        reply.operations[0], channel="C0DEV", thread_ts="1.0", user="U0ALICE"
    )
    await drive(tracker, clock)
    assert tracker.state(tracked) == "failed"
    final = next(r for c, t, r in notifier.posts if c == "C0DEV" and r.title)
    assert final.status == "error" and "failed at step starting-database" in final.text
    (incident,) = [r for c, _, r in notifier.posts if c == "C0INCIDENT"]
    assert incident.status == "error" and "(thread 1.0)" in plain(incident.text)
    # the channel once, then the thread: in the shell `in #dev (thread)`, not
    # `from #dev: #dev (thread)`
    assert plain(incident.text).startswith("Run by @U0ALICE in #C0DEV (#C0DEV (thread 1.0))")
    assert humanize(incident.text, {"C0DEV": "dev", "U0ALICE": "alice"}).startswith(
        "Run by @alice in #dev (thread)"
    )


async def test_executed_terminate_is_announced(bot, clock):
    notifier = RecordingNotifier()
    tracker = make_tracker(bot, notifier)
    card = await bot.run(Invocation("U0ALICE", "C0DEV", "terminate sandbox-db"))
    reply = await start(bot, card.actions[0].command)
    await tracker.track(reply.operations[0], channel="C0DEV", thread_ts="1.0", user="U0ALICE")
    await drive(tracker, clock)
    (incident,) = [r for c, _, r in notifier.posts if c == "C0INCIDENT"]
    assert "terminate sandbox-db" in (incident.title or "")


async def test_an_executed_switch_back_is_announced_naming_requester_and_approver(bot, clock):
    """Switch-backs are announced like switches; approved work names both people."""
    notifier = RecordingNotifier()
    tracker = make_tracker(bot, notifier)
    card = await bot.run(Invocation("U0ALICE", "C0ONCALL", "switch orders-db to orders-replica"))
    switched = await start(bot, card.actions[0].command, user="U0BOB", channel="C0ONCALL")
    await tracker.track(switched.operations[0], channel="C0ONCALL", thread_ts="1.0", user="U0ALICE")
    await drive(tracker, clock)
    back = next(a for a in switched.actions if a.label.startswith("Switch back"))
    card = await bot.run(Invocation("U0ALICE", "C0ONCALL", back.command))
    reply = await start(bot, card.actions[0].command, user="U0BOB", channel="C0ONCALL")
    assert reply.operations[0].verb == "switch-back"
    await tracker.track(
        reply.operations[0], channel="C0ONCALL", thread_ts="2.0", user="U0ALICE", approver="U0BOB"
    )
    await drive(tracker, clock)
    incidents = [r for c, _, r in notifier.posts if c == "C0INCIDENT"]
    assert len(incidents) == 2  # the switch, and the switch back
    said = plain(incidents[1].text)
    assert "switch the connection URL back" in (incidents[1].title or "")
    assert "Requested by @U0ALICE, approved by @U0BOB" in said, said


async def test_slack_failures_delay_and_coalesce_but_lose_nothing(bot, clock):
    notifier = RecordingNotifier()
    notifier.failures = 4
    tracker = make_tracker(bot, notifier)
    reply = await start(bot, "restart sandbox-db")
    await tracker.track(reply.operations[0], channel="C0DEV", thread_ts="1.0", user="U0ALICE")
    await drive(tracker, clock, passes=12, step=0.6)
    for _ in range(4):
        await tracker.run_once()
    assert step_texts(notifier) == ["stopping-database", "starting-database", "health-check"]
    assert len([r for _, t, r in notifier.posts if t == "1.0" and not r.title]) < 3  # coalesced
    assert len([r for _, _, r in notifier.posts if r.title]) == 1


async def test_transient_poll_errors_are_retried(bot, clock, console_sim):
    notifier = RecordingNotifier()
    tracker = make_tracker(bot, notifier)
    reply = await start(bot, "restart sandbox-db")
    tracked = await tracker.track(
        reply.operations[0], channel="C0DEV", thread_ts="1.0", user="U0ALICE"
    )
    console_sim.faults.fail_next("GET", r".*/operations/.*", status=500, times=6)
    await drive(tracker, clock, passes=16)
    assert tracker.state(tracked) == "finished"


async def test_an_unknown_operation_is_reported_lost(bot):
    from core.reply import OperationRef

    notifier = RecordingNotifier()
    tracker = make_tracker(bot, notifier)
    db = (await bot.services.providers["console"].client.environments())[0]
    ref = OperationRef(
        provider="console",
        database_id="nope",
        operation_id="missing",
        label="restart ghost",
        environment_id=db.id,
        environment_name=db.name,
    )
    tracked = await tracker.track(ref, channel="C0DEV", thread_ts="1.0", user="U0ALICE")
    for _ in range(ALWAYS_DUE.limits.max_failures - 1):  # a 404 may be transient (the seed)
        await tracker.run_once()
    assert tracker.state(tracked) == "running" and notifier.posts == []
    await tracker.run_once()
    assert tracker.state(tracked) == "lost"
    assert "lost track" in (notifier.posts[0][2].title or "")
    assert "database not found" in notifier.posts[0][2].text


@pytest.mark.parametrize("count", [40])
async def test_many_operations_share_one_token(bot, clock, console_sim, count):
    notifier = RecordingNotifier()
    tracker = make_tracker(bot, notifier)
    development = console_sim.find_environment("development").id
    for index in range(count):
        console_sim.add_database(development, f"bulk-{index:03d}")
    bot.services.resolver.invalidate("console")
    for index in range(count):
        reply = await start(bot, f"restart bulk-{index:03d}")
        await tracker.track(
            reply.operations[0], channel="C0DEV", thread_ts=f"{index}.0", user="U0ALICE"
        )
    await drive(tracker, clock, passes=12)
    assert tracker.running() == 0
    assert console_sim.tokens_issued == 1


async def test_a_step_seen_again_after_a_lost_update_is_not_posted_twice(bot, clock):
    notifier = RecordingNotifier()
    tracker = make_tracker(bot, notifier)
    reply = await start(bot, "restart sandbox-db")
    tracked = await tracker.track(
        reply.operations[0], channel="C0DEV", thread_ts="1.0", user="U0ALICE"
    )
    clock.advance(1.5)
    await tracker.run_once()
    # As if the bot died after queueing the steps but before recording how many it reported:
    bot.db.execute("UPDATE tracked_operations SET steps_reported = 0 WHERE id = ?", [tracked])
    await drive(make_tracker(bot, notifier), clock)
    assert step_texts(notifier) == ["stopping-database", "starting-database", "health-check"]


def test_the_outbox_keeps_no_secret(bot) -> None:
    """What the tracker and the watcher queue is redacted before it is written to disk
    (an API's words about an operation may echo a secret)."""
    from core.redaction import remember
    from core.reply import Reply
    from operations.store import Outbox

    remember("sentinel-outbox-secret-4e21")
    outbox = Outbox(bot.db)
    reply = Reply(title="failed", text="reason: token sentinel-outbox-secret-4e21 expired")
    assert outbox.put(None, "k", "C0DEV", reply.model_dump())
    [(stored,)] = bot.db.execute("SELECT reply FROM outbox").fetchall()
    assert "sentinel-outbox-secret-4e21" not in stored and "[REDACTED]" in stored
    assert outbox.pending()[0].reply["title"] == "failed"


async def test_late_polls_do_not_push_the_schedule_back(bot, clock, console_sim):
    """The next poll is one interval after the previous one was *due*, however late
    it ran (API latency, a wait for a free slot), but never less than the first
    interval after it ran (bench/tracker.py: 1,000 operations, issue 17)."""
    tracker = Tracker(
        bot.db,
        bot.services.providers,
        RecordingNotifier(),
        settings=TrackerSettings(backoff=Backoff(first=1.0, factor=2.0, cap=100.0), spread=0),
        clock=clock,
    )
    console_sim.step_seconds = 100.0  # still running at every poll below
    reply = await start(bot, "restart sandbox-db")
    tracked = await tracker.track(
        reply.operations[0], channel="C0DEV", thread_ts="1.0", user="U0ALICE"
    )

    def next_poll_at() -> float:
        row = bot.db.execute(
            "SELECT next_poll_at FROM tracked_operations WHERE id = ?", [tracked]
        ).fetchone()
        return float(row[0])

    due = next_poll_at()
    assert due == clock() + 1.0
    clock.advance(1.9)  # the first poll runs 0.9 s late
    assert await tracker.poll_due() == 1
    assert next_poll_at() == due + 2.0  # due + interval, not (ran at) + interval
    clock.advance(next_poll_at() + 5.0 - clock())  # 5 s late: due + 4 s is past
    assert await tracker.poll_due() == 1
    assert next_poll_at() == clock() + 1.0  # so no burst of catching up
    assert tracker.state(tracked) == "running"


@pytest.mark.parametrize(
    "backoff",
    [
        Backoff(),
        Backoff(first=0.5, factor=2.0, cap=30.0),
        Backoff(20.0, 1.5, 15.0),
        Backoff(0, 1, 0),
    ],
)
def test_the_nth_delay_is_the_nth_of_the_sequence(backoff):
    """`Backoff.delay(n)` (the tracker's reschedule, its resend wait) is what `delays()`
    (a command's own waits) yields n-th."""
    sequence = backoff.delays()
    for n in range(60):
        assert backoff.delay(n) == pytest.approx(next(sequence)), n
