"""Schedules: next-run computation (time zones, DST) and the Scheduler against the simulator."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from commands.scheduled import PipelineRunner, newest_snapshot
from core.invocation import Invocation
from core.reply import Reply
from operations.follow import Backoff
from operations.schedules import Scheduler, ScheduleStore
from operations.tracker import Tracker, TrackerSettings
from operations.when import WhenError, parse_when
from simulators.base import ManualClock
from tests.support import RecordingNotifier

ALICE, DEV = "U0ALICE", "C0DEV"
HOUR = 3600.0


def utc(*parts: int) -> float:
    return datetime(*parts, tzinfo=UTC).timestamp()  # type: ignore[misc]


# -- next run ------------------------------------------------------------------------

NEXT_RUNS = [
    # (when, tz, after (UTC), expected next run (UTC))
    ("weekdays 20:00", "UTC", utc(2025, 1, 1, 0, 0), utc(2025, 1, 1, 20, 0)),
    ("daily 02:30", None, utc(2025, 1, 1, 3, 0), utc(2025, 1, 2, 2, 30)),
    ("hourly", "UTC", utc(2025, 1, 1, 10, 0), utc(2025, 1, 1, 11, 0)),
    # Europe/Paris, spring forward (Sun 2025-03-30, 02:00 CET -> 03:00 CEST)
    ("weekdays 20:00", "Europe/Paris", utc(2025, 3, 28, 19, 0), utc(2025, 3, 31, 18, 0)),
    ("daily 02:30", "Europe/Paris", utc(2025, 3, 29, 12, 0), utc(2025, 3, 30, 1, 30)),
    ("daily 02:30", "Europe/Paris", utc(2025, 3, 30, 1, 30), utc(2025, 3, 31, 0, 30)),
    ("hourly", "Europe/Paris", utc(2025, 3, 30, 0, 30), utc(2025, 3, 30, 1, 0)),
    ("hourly", "Europe/Paris", utc(2025, 3, 30, 1, 0), utc(2025, 3, 30, 2, 0)),
    # Europe/Paris, fall back (Sun 2025-10-26, 03:00 CEST -> 02:00 CET)
    ("weekdays 20:00", "Europe/Paris", utc(2025, 10, 24, 19, 0), utc(2025, 10, 27, 19, 0)),
    ("daily 02:30", "Europe/Paris", utc(2025, 10, 25, 12, 0), utc(2025, 10, 26, 0, 30)),
    ("daily 02:30", "Europe/Paris", utc(2025, 10, 26, 0, 30), utc(2025, 10, 27, 1, 30)),
    ("hourly", "Europe/Paris", utc(2025, 10, 26, 0, 0), utc(2025, 10, 26, 2, 0)),
    # America/New_York (2025-03-09 02:00 EST -> 03:00 EDT; 2025-11-02 02:00 EDT -> 01:00 EST)
    ("every monday 07:00", "America/New_York", utc(2025, 3, 3, 12, 0), utc(2025, 3, 10, 11, 0)),
    ("daily 02:30", "America/New_York", utc(2025, 3, 9, 0, 0), utc(2025, 3, 9, 7, 30)),
    ("daily 01:30", "America/New_York", utc(2025, 11, 2, 0, 0), utc(2025, 11, 2, 5, 30)),
    ("daily 01:30", "America/New_York", utc(2025, 11, 2, 5, 30), utc(2025, 11, 3, 6, 30)),
    ("0 20 * * 1-5", "America/New_York", utc(2025, 10, 31, 12, 0), utc(2025, 11, 1, 0, 0)),
    ("0 20 * * 1-5", "America/New_York", utc(2025, 11, 1, 0, 0), utc(2025, 11, 4, 1, 0)),
    # cron forms
    ("*/15 9-17 * * mon-fri", "UTC", utc(2025, 1, 3, 17, 45), utc(2025, 1, 6, 9, 0)),
    ("0 12 1 * 1", "UTC", utc(2025, 1, 1, 13, 0), utc(2025, 1, 6, 12, 0)),  # 1st OR Monday
    ("0 0 29 2 *", "UTC", utc(2025, 1, 1, 0, 0), utc(2028, 2, 29, 0, 0)),
    ("30 6 * * 0", "Europe/Paris", utc(2025, 3, 29, 0, 0), utc(2025, 3, 30, 4, 30)),
    ("every sat,sun 09:00", "UTC", utc(2025, 1, 1, 0, 0), utc(2025, 1, 4, 9, 0)),
    ("weekends 09:00", "UTC", utc(2025, 1, 4, 9, 0), utc(2025, 1, 5, 9, 0)),
]


@pytest.mark.parametrize(("when", "tz", "after", "expected"), NEXT_RUNS)
def test_next_run(when: str, tz: str | None, after: float, expected: float) -> None:
    words = [when] if when[0].isdigit() or when[0] == "*" else when.split()
    rule = parse_when(words, tz)
    got = rule.next_after(after)
    assert got == expected, datetime.fromtimestamp(got, UTC)


def test_unquoted_cron_and_zone_case_are_accepted() -> None:
    assert parse_when(["0", "20", "*", "*", "1-5"], "UTC").text == "0 20 * * 1-5"
    assert parse_when(["daily", "7:05"], "europe/paris").tz == "Europe/Paris"
    assert parse_when(["daily", "7:05"]).text == "daily 07:05"


@pytest.mark.parametrize(
    ("words", "tz", "message"),
    [
        (["daily", "25:00"], "UTC", "is not a time of day: use 24-hour HH:MM"),
        (["daily", "8pm"], "UTC", "e.g. `daily 20:00`"),
        (["weekdays"], "UTC", "takes a time of day, e.g. `weekdays 20:00`"),
        (["every", "funday", "07:00"], "UTC", "did you mean `sunday`"),
        (["hourly", "extra"], "UTC", "takes nothing more"),
        (["0 20 * *"], "UTC", "5 fields"),
        (["61 * * * *"], "UTC", "cron minute `61` is not valid: it takes 0-59"),
        (["0 0 * * funday"], "UTC", "cron day of week `funday` is not valid"),
        (["0 0 30 2 *"], "UTC", "never runs"),
        (["sometimes"], "UTC", 'such as `"0 20 * * 1-5"`'),
        ([], "UTC", "say when it runs"),
        (["daily", "02:30"], "Europe/Pari", "did you mean Europe/Paris"),
        (["daily", "02:30"], "paris", "did you mean Europe/Paris"),
        (["daily", "02:30"], "Mars/Olympus", "IANA names such as Europe/Paris"),
    ],
)
def test_invalid_when_is_explained(words: list[str], tz: str, message: str) -> None:
    with pytest.raises(WhenError) as caught:
        parse_when(words, tz)
    assert message in str(caught.value)


def test_newest_snapshot_ignores_unfinished_ones() -> None:
    from clients.graphenedb import Snapshot

    snaps = [
        Snapshot(id="a", createdAt="Mon, 01 Sep 2025 10:00:00 GMT", status="done"),
        Snapshot(id="b", createdAt="2025-09-03T10:00:00Z", status="done"),
        Snapshot(id="c", createdAt="2025-09-04T10:00:00Z", status="working"),
        Snapshot(id="d", createdAt="Tue, 02 Sep 2025 10:00:00 GMT", status="done"),
    ]
    assert newest_snapshot(snaps).id == "b"
    assert newest_snapshot(snaps[2:3]) is None


# -- the scheduler against the simulator --------------------------------------------------


async def make(bot, line: str, user: str = ALICE, channel: str = DEV):  # type: ignore[no-untyped-def]
    reply = await bot.run(Invocation(user=user, channel=channel, text=line))
    assert reply.status == "ok", reply
    store = ScheduleStore(bot.db)
    return store.get(max(s.id for s in store.for_channel(channel)))


def scheduler(bot, notifier, wall, **kwargs):  # type: ignore[no-untyped-def]
    return Scheduler(
        PipelineRunner(bot.pipeline), notifier, bot.db, bot.services.audit, clock=wall, **kwargs
    )


def pauses(console_sim) -> int:  # type: ignore[no-untyped-def]
    return len(console_sim.requests_to("POST", r".*/pause$"))


async def test_a_due_pause_runs_once_and_is_tracked_in_its_thread(bot, console_sim, clock):
    schedule = await make(bot, "schedule pause sandbox-db daily 20:00 tz=Europe/Paris")
    # Two hours before the run: outside the heads-up window whatever the real time is
    # (starting at time.time() failed CI between 18:45 and 19:00 UTC).
    wall = ManualClock(schedule.next_run_at - 2 * HOUR)
    notifier = RecordingNotifier()
    tracker = Tracker(
        bot.db,
        bot.services.providers,
        notifier,
        permissions=bot.services.permissions,
        settings=TrackerSettings(backoff=Backoff(first=0.0, factor=1.0, cap=0.0)),
    )
    runner = scheduler(bot, notifier, wall, tracker=tracker)
    assert await runner.run_once() == 0 and pauses(console_sim) == 0
    wall.now = schedule.next_run_at + 1
    assert await runner.run_once() == 1
    assert await runner.run_once() == 0  # claimed: never twice
    assert pauses(console_sim) == 1
    channel, thread, posted = notifier.posts[0]
    assert channel == DEV and thread is None
    assert (posted.title or "").startswith("Scheduled: Pausing sandbox-db")
    assert f"Schedule {schedule.id}" in posted.text and posted.visibility == "channel"
    assert tracker.running() == 1
    for _ in range(12):
        await tracker.run_once()
        clock.advance(0.5)
    thread_ts = "101.000100"
    final = [r for _, t, r in notifier.posts if t == thread_ts and r.title]
    assert final and "finished" in (final[0].title or "")
    after = ScheduleStore(bot.db).get(schedule.id)
    assert after.next_run_at == schedule.next_run_at + 24 * HOUR
    assert after.last_run_at == wall.now
    rows = bot.db.execute(
        "SELECT outcome FROM audit WHERE kind = 'operation' AND verb = 'schedule pause'"
    ).fetchall()
    assert [r[0] for r in rows] == ["ok"]


async def test_a_revoked_binding_refuses_the_run_and_says_so(bot, console_sim):
    schedule = await make(bot, "schedule pause sandbox-db daily 20:00")
    bot.services.permissions.revoke(DEV, "console", "development")
    bot.services.permissions.revoke(DEV, "console", "staging")
    console_sim.requests.clear()
    wall = ManualClock(schedule.next_run_at + 1)
    notifier = RecordingNotifier()
    assert await scheduler(bot, notifier, wall).run_once() == 1
    assert console_sim.requests == []  # not even a token request
    ((channel, _, posted),) = notifier.posts
    assert channel == DEV and posted.status == "denied"
    assert "did not run" in (posted.title or "") and "stays active" in posted.text
    assert "not bound to any environment" in posted.text
    assert [a.command for a in posted.actions] == [f"/gdb unschedule {schedule.id}"]
    assert ScheduleStore(bot.db).get(schedule.id).state == "active"


async def test_heads_up_is_posted_once_with_two_buttons(bot):
    schedule = await make(bot, "schedule pause sandbox-db daily 20:00")
    await make(bot, "schedule snapshot sandbox-db daily 20:00")  # no heads-up for snapshots
    notifier = RecordingNotifier()
    wall = ManualClock(schedule.next_run_at - 20 * 60)
    runner = scheduler(bot, notifier, wall)
    await runner.run_once()
    assert notifier.posts == []  # not yet: 15 min ahead
    wall.now = schedule.next_run_at - 10 * 60
    await runner.run_once()
    await runner.run_once()
    await scheduler(bot, notifier, wall).run_once()  # a restarted scheduler too
    ((channel, _, posted),) = notifier.posts
    assert channel == DEV and "Heads-up: pause sandbox-db in 10 min" in (posted.title or "")
    actions = {a.action_id: a for a in posted.actions}
    assert actions["schedule.skip"].label == "Skip tonight"
    assert actions["schedule.skip"].value == str(schedule.id)
    assert actions["schedule.skip"].command == f"/gdb schedule-skip {schedule.id}"
    assert actions["schedule.extend"].label == "Keep running 2 h"
    assert actions["schedule.extend"].command == f"/gdb schedule-extend {schedule.id}"


async def test_heads_up_that_cannot_be_posted_is_tried_again(bot):
    schedule = await make(bot, "schedule pause sandbox-db daily 20:00")
    notifier = RecordingNotifier()
    notifier.failures = 1
    runner = scheduler(bot, notifier, ManualClock(schedule.next_run_at - 5 * 60))
    await runner.run_once()
    await runner.run_once()
    assert len(notifier.posts) == 1


async def press(bot, action, user: str = ALICE, channel: str = DEV) -> Reply:  # type: ignore[no-untyped-def]
    return await bot.run(Invocation(user=user, channel=channel, text=action.command))


async def test_skip_tonight_then_the_next_night_runs(bot, console_sim, clock):
    schedule = await make(bot, "schedule pause sandbox-db daily 20:00 tz=Europe/Paris")
    notifier = RecordingNotifier()
    wall = ManualClock(schedule.next_run_at - 5 * 60)
    runner = scheduler(bot, notifier, wall)
    await runner.run_once()
    skip = next(a for a in notifier.posts[0][2].actions if a.action_id == "schedule.skip")
    pressed = await press(bot, skip)
    assert pressed.status == "ok" and "skipped the run" in pressed.text
    wall.now = schedule.next_run_at + 1
    assert await runner.run_once() == 0
    assert pauses(console_sim) == 0
    assert "Skipped as asked" in (notifier.posts[-1][2].title or "")
    wall.now = schedule.next_run_at + 24 * HOUR - 5 * 60
    await runner.run_once()
    assert "Heads-up" in (notifier.posts[-1][2].title or "")  # the next night warns again
    wall.now = schedule.next_run_at + 24 * HOUR + 1
    assert await runner.run_once() == 1
    assert pauses(console_sim) == 1
    kinds = [kind for _, kind, _ in ScheduleStore(bot.db).runs(schedule.id)]
    assert kinds == ["headsup", "skipped", "headsup", "run"]


async def test_keep_running_moves_the_run_two_hours_later(bot, console_sim):
    schedule = await make(bot, "schedule pause sandbox-db daily 20:00")
    notifier = RecordingNotifier()
    wall = ManualClock(schedule.next_run_at - 5 * 60)
    runner = scheduler(bot, notifier, wall)
    await runner.run_once()
    extend = next(a for a in notifier.posts[0][2].actions if a.action_id == "schedule.extend")
    assert (await press(bot, extend)).status == "ok"
    assert (await press(bot, extend)).status == "ok"  # pressed twice: still 2 h, not 4
    wall.now = schedule.next_run_at + 1
    assert await runner.run_once() == 0 and pauses(console_sim) == 0
    wall.now = schedule.next_run_at + 2 * HOUR - 10 * 60
    await runner.run_once()
    assert "Heads-up" in (notifier.posts[-1][2].title or "")  # before the postponed run
    wall.now = schedule.next_run_at + 2 * HOUR + 1
    assert await runner.run_once() == 1
    assert pauses(console_sim) == 1
    after = ScheduleStore(bot.db).get(schedule.id)
    assert after.next_run_at == schedule.next_run_at + 24 * HOUR  # back to 20:00
    assert after.postponed_to is None


async def test_skip_and_extend_need_operator_on_the_binding(bot):
    schedule = await make(bot, "schedule pause sandbox-db daily 20:00")
    elsewhere = await bot.run(Invocation(ALICE, "C0PROD", f"schedule-skip {schedule.id}"))
    assert elsewhere.status == "denied" and "belongs to" in elsewhere.text
    bot.services.permissions.grant(DEV, "console", "development", _viewer())
    refused = await bot.run(Invocation("U0CAROL", DEV, f"schedule-extend {schedule.id}"))
    assert refused.status == "denied" and "needs operator" in refused.text
    assert ScheduleStore(bot.db).get(schedule.id).postponed_to is None


def _viewer():  # type: ignore[no-untyped-def]
    from permissions.roles import Role

    return Role.VIEWER


async def test_missed_run_inside_grace_runs_once_after_a_restart(bot, console_sim):
    schedule = await make(bot, "schedule pause sandbox-db daily 20:00")
    before = ManualClock(schedule.next_run_at - 2 * HOUR)
    await scheduler(bot, RecordingNotifier(), before).run_once()
    notifier = RecordingNotifier()
    later = ManualClock(schedule.next_run_at + 5 * 60)
    restarted = scheduler(bot, notifier, later, grace_seconds=900)
    assert await restarted.run_once() == 1
    assert await restarted.run_once() == 0
    assert pauses(console_sim) == 1


async def test_missed_runs_outside_grace_are_reported_once_and_skipped(bot, console_sim):
    schedule = await make(bot, "schedule pause sandbox-db daily 20:00")
    notifier = RecordingNotifier()
    later = ManualClock(schedule.next_run_at + 2 * 24 * HOUR + 2 * HOUR)
    restarted = scheduler(bot, notifier, later, grace_seconds=900)
    assert await restarted.run_once() == 0
    assert await restarted.run_once() == 0
    assert pauses(console_sim) == 0
    ((channel, _, posted),) = notifier.posts
    assert channel == DEV and (posted.title or "").startswith("Skipped: scheduled pause")
    assert "3 runs were missed" in posted.text
    after = ScheduleStore(bot.db).get(schedule.id)
    assert after.next_run_at == schedule.next_run_at + 3 * 24 * HOUR
    assert after.next_run_at > later.now


async def test_refresh_restores_the_newest_snapshot_of_the_source(bot, console_sim):
    development = console_sim.find_environment("development").id
    golden = console_sim.add_database(development, "golden-db")
    newer = console_sim.add_snapshot(golden.id)
    newer.created_at = "Tue, 02 Sep 2025 10:00:00 GMT"
    older = console_sim.add_snapshot(golden.id)
    older.created_at = "Mon, 01 Sep 2025 10:00:00 GMT"
    console_sim.add_snapshot(
        golden.id, status="working"
    ).created_at = "Wed, 03 Sep 2025 10:00:00 GMT"
    bot.services.resolver.invalidate("console")
    card = await bot.run(
        Invocation(ALICE, DEV, "schedule refresh sandbox-db from golden-db daily 02:30")
    )
    assert card.status == "pending", card
    approve = next(a for a in card.actions if a.action_id == "approval.approve")
    done = await bot.run(Invocation(ALICE, DEV, approve.command))
    assert done.status == "ok", done.text
    store = ScheduleStore(bot.db)
    (schedule,) = store.for_channel(DEV)
    assert schedule.state == "active"
    notifier = RecordingNotifier()
    wall = ManualClock(schedule.next_run_at + 1)
    assert await scheduler(bot, notifier, wall).run_once() == 1
    sandbox = console_sim.find_database("sandbox-db")
    (restore,) = console_sim.requests_to("POST", rf".*/{sandbox.id}/restore$")
    assert restore.body["snapshotId"] == newer.id
    assert notifier.posts[0][2].status == "ok"


async def test_refresh_without_a_finished_snapshot_says_so(bot, console_sim):
    development = console_sim.find_environment("development").id
    console_sim.add_database(development, "empty-db")
    bot.services.resolver.invalidate("console")
    card = await bot.run(Invocation(ALICE, DEV, "schedule refresh sandbox-db from empty-db hourly"))
    approve = next(a for a in card.actions if a.action_id == "approval.approve")
    assert (await bot.run(Invocation(ALICE, DEV, approve.command))).status == "ok"
    (schedule,) = ScheduleStore(bot.db).for_channel(DEV)
    notifier = RecordingNotifier()
    await scheduler(bot, notifier, ManualClock(schedule.next_run_at + 1)).run_once()
    assert console_sim.requests_to("POST", r".*/restore$") == []
    ((_, _, posted),) = notifier.posts
    assert posted.status == "error" and "no finished manual snapshot" in posted.text
