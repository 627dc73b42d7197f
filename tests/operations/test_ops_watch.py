"""watch / unwatch: state changes and incidents posted once each, across restarts."""

from __future__ import annotations

from core.invocation import Invocation
from operations.follow import Backoff
from operations.tracker import Tracker, TrackerSettings
from operations.watch import Watcher
from tests.support import RecordingNotifier


async def run(bot, line, user="U0ALICE", channel="C0DEV"):  # type: ignore[no-untyped-def]
    return await bot.run(Invocation(user=user, channel=channel, text=line))


def delivery(bot, notifier):  # type: ignore[no-untyped-def]
    return Tracker(
        bot.db,
        bot.services.providers,
        notifier,
        permissions=bot.services.permissions,
        settings=TrackerSettings(backoff=Backoff(0.0, 1.0, 0.0)),
    )


def watcher(bot):  # type: ignore[no-untyped-def]
    return Watcher(bot.db, bot.services.providers, permissions=bot.services.permissions)


async def test_watch_posts_each_change_once(bot, console_sim, clock):
    reply = await run(bot, "watch sandbox-db")
    assert reply.status == "ok" and "Watching sandbox-db" in (reply.title or "")
    again = await run(bot, "watch sandbox-db")
    assert again.status == "info" and "already watches" in again.text
    notifier = RecordingNotifier()
    tracker = delivery(bot, notifier)
    assert await watcher(bot).run_once() == 0  # the first look is the baseline
    await run(bot, "pause sandbox-db")
    assert await watcher(bot).run_once() == 1
    assert await watcher(bot).run_once() == 0  # nothing new: nothing queued
    clock.advance(10)
    await watcher(bot).run_once()
    await tracker.deliver()
    texts = notifier.texts("C0DEV")
    assert texts == [
        "sandbox-db: running → pausing; pending: yes",
        "sandbox-db: pausing → paused; pending: no",
    ]
    listing = await run(bot, "watches")
    assert listing.tables[0].rows[0][0] == "sandbox-db"
    assert listing.tables[0].rows[0][2] == "paused"


async def test_entering_incident_is_announced(bot, console_sim):
    await run(bot, "watch sandbox-db")
    notifier = RecordingNotifier()
    await watcher(bot).run_once()
    console_sim.set_incident(console_sim.find_database("sandbox-db").id, True)
    await watcher(bot).run_once()
    await delivery(bot, notifier).deliver()
    assert notifier.texts("C0DEV") == ["sandbox-db: incident: yes"]
    (incident,) = [r for c, _, r in notifier.posts if c == "C0INCIDENT"]
    assert incident.title == "Incident: sandbox-db"
    assert "environment development, provider console" in incident.text


async def test_unwatch_and_a_terminated_database(bot, console_sim, clock):
    await run(bot, "watch sandbox-db")
    await run(bot, "watch orders-db")
    await watcher(bot).run_once()
    assert (await run(bot, "unwatch orders-db")).status == "ok"
    assert (await run(bot, "unwatch orders-db")).status == "info"
    card = await run(bot, "terminate sandbox-db", channel="C0DEV")
    await run(bot, next(a.command for a in card.actions if a.action_id == "approval.approve"))
    clock.advance(10)
    notifier = RecordingNotifier()
    await watcher(bot).run_once()
    await watcher(bot).run_once()
    await delivery(bot, notifier).deliver()
    assert notifier.texts("C0DEV") == ["sandbox-db no longer exists; watch ended."]
    assert bot.services.watches.active() == []


async def test_watch_needs_a_binding(bot, console_sim):
    reply = await run(bot, "watch orders-db", channel="C0NOWHERE")
    assert reply.status == "denied"
    assert console_sim.requests == []


async def test_incidents_are_announced_without_a_watch_once_each(bot, console_sim):
    notifier = RecordingNotifier()
    scanner = watcher(bot)
    assert await scanner.scan_incidents() == 0  # the first look only records the flags
    billing = console_sim.find_database("billing-db").id
    console_sim.set_incident(billing, True)
    assert await scanner.scan_incidents() == 1
    assert await watcher(bot).scan_incidents() == 0  # a restarted watcher does not repeat it
    console_sim.set_incident(billing, False)
    assert await scanner.scan_incidents() == 1
    await delivery(bot, notifier).deliver()
    assert [r.title for c, _, r in notifier.posts if c == "C0INCIDENT"] == [
        "Incident: billing-db",
        "Incident over: billing-db",
    ]
    assert notifier.texts("C0DEV") == []  # nobody watches it: only the incident channel hears


async def test_no_incident_channel_means_no_scan(bot, console_sim):
    bot.services.permissions.set_incident_channel("console", "*", None)
    before = len(console_sim.requests)
    assert await watcher(bot).scan_incidents() == 0
    assert len(console_sim.requests) == before
