"""The schedule verbs through bot.run: create, list, unschedule, rights, approvals, errors."""

from __future__ import annotations

from core.invocation import Invocation
from core.refs import plain
from core.reply import Reply
from operations.schedules import ScheduleStore

ALICE, BOB, CAROL, ADMIN = "U0ALICE", "U0BOB", "U0CAROL", "U0ADMIN"
DEV, PROD, ONCALL = "C0DEV", "C0PROD", "C0ONCALL"


async def run(bot, line: str, user: str = ALICE, channel: str = DEV) -> Reply:  # type: ignore[no-untyped-def]
    return await bot.run(Invocation(user=user, channel=channel, text=line))


def rows(reply: Reply) -> list[list[str]]:
    return reply.tables[0].rows


async def test_create_list_and_unschedule(bot, console_sim):
    made = await run(bot, 'schedule pause sandbox-db "0 20 * * 1-5" tz=Europe/Paris')
    assert made.status == "ok", made.text
    assert made.title == 'Schedule 1: pause sandbox-db "0 20 * * 1-5" (Europe/Paris)'
    fields = dict(made.fields)
    assert fields["Next run"].endswith(("CET", "CEST")) and " 20:00 " in fields["Next run"]
    assert fields["Next run (UTC)"].endswith(("19:00 UTC", "18:00 UTC"))
    assert made.actions[0].command == "/gdb unschedule 1"
    assert console_sim.requests_to("POST", r".*/pause$") == []  # checked, not run
    second = await run(bot, "schedule snapshot orders-db every monday 07:00 env=staging")
    assert second.status == "ok", second.text
    listing = await run(bot, "schedules")
    assert [r[:3] for r in rows(listing)] == [
        ["1", "pause sandbox-db", '"0 20 * * 1-5" (Europe/Paris)'],
        ["2", "snapshot orders-db", "every monday 07:00 (UTC)"],
    ]
    assert rows(listing)[1][3].startswith("Mon ") and rows(listing)[1][4].endswith("07:00 UTC")
    assert rows(await run(bot, "schedules", channel=ONCALL)) == []
    gone = await run(bot, "unschedule 1")
    assert gone.status == "ok" and "cancelled" in (gone.title or "")
    assert [r[0] for r in rows(await run(bot, "schedules"))] == ["2"]
    again = await run(bot, "unschedule 1")
    assert again.status == "error" and "no schedule '1'" in again.text
    stored = ScheduleStore(bot.db).get(2)
    assert stored.command_line() == "snapshot orders-db env=staging"
    audit = bot.db.execute(
        "SELECT verb, outcome FROM audit WHERE kind = 'command' AND outcome = 'changed'"
    ).fetchall()
    assert [tuple(r) for r in audit] == [
        ("schedule", "changed"),
        ("schedule", "changed"),
        ("unschedule", "changed"),
    ]


async def test_creating_checks_the_rights_now(bot, console_sim):
    refused = await run(bot, "schedule pause orders-db daily 20:00", channel=PROD)
    assert refused.status == "denied"
    assert "viewer" in refused.text and "operator" in refused.text
    assert console_sim.requests_to("POST") == []
    unknown = await run(bot, "schedule pause nosuch-db daily 20:00")
    assert unknown.status == "error" and "no database called 'nosuch-db'" in unknown.text
    assert ScheduleStore(bot.db).for_channel(PROD) == []
    assert ScheduleStore(bot.db).for_channel(DEV) == []


async def test_bad_input_is_explained_with_an_example(bot, console_sim):
    cases = {
        "schedule": "say what to schedule",
        "schedule stop sandbox-db daily 20:00": "pause, resume, snapshot or refresh, not `stop`",
        "schedule pause": "say which database",
        "schedule pause sandbox-db": "say when it runs",
        "schedule pause sandbox-db daily 8pm": "not a time of day",
        "schedule pause sandbox-db 0 20 * *": "5 fields",
        "schedule pause sandbox-db daily 20:00 tz=Europe/Pari": "did you mean Europe/Paris",
        "schedule refresh sandbox-db orders-db daily 20:00": "refresh needs a source",
        "schedule refresh sandbox-db from sandbox-db daily 20:00": "from itself",
    }
    for line, message in cases.items():
        reply = await run(bot, line)
        assert reply.status == "error", line
        assert message in reply.text, (line, reply.text)
        assert "Example: `/gdb schedule " in reply.text, line
    colour = await run(bot, "schedule pause sandbox-db daily 20:00 colour=red")
    assert colour.status == "error" and "unknown option colour=" in colour.text
    extend = await run(bot, "schedule-extend 1 hours=48")
    assert extend.status == "error" and "hours=" in extend.text
    assert console_sim.requests_to("POST") == []


async def test_unquoted_cron_works_too(bot):
    made = await run(bot, "schedule resume sandbox-db 30 7 * * 1-5")
    assert made.status == "ok" and '"30 7 * * 1-5" (UTC)' in (made.title or "")


async def test_who_may_unschedule(bot):
    await run(bot, "schedule pause sandbox-db daily 20:00")
    other_channel = await run(bot, "unschedule 1", user=BOB, channel=PROD)
    assert other_channel.status == "denied" and "belongs to #C0DEV" in plain(other_channel.text)
    bot.services.permissions.revoke(DEV, "console", "development")
    stranger = await run(bot, "unschedule 1", user=CAROL)
    assert stranger.status == "denied"
    assert (await run(bot, "unschedule 1", user=ALICE)).status == "ok"  # the owner always may


async def test_refresh_needs_one_approval_by_someone_else_in_production(bot, console_sim):
    card = await run(
        bot, "schedule refresh orders-replica from orders-db weekdays 02:30", channel=ONCALL
    )
    assert card.status == "pending", card.text
    assert "becomes active once approved" in card.text
    assert "INTO orders-replica" in (card.title or "")
    listing = await run(bot, "schedules", channel=ONCALL)
    assert rows(listing)[0][5].startswith("waiting for approval")
    approve = next(a for a in card.actions if a.action_id == "approval.approve")
    own = await run(bot, approve.command, channel=ONCALL)
    assert own.status == "denied"
    assert ScheduleStore(bot.db).get(1).state == "pending"
    done = await run(bot, approve.command, user=BOB, channel=ONCALL)
    assert done.status == "ok", done.text
    assert ScheduleStore(bot.db).get(1).state == "active"
    assert console_sim.requests_to("POST", r".*/restore$") == []  # nothing ran yet


async def test_refresh_is_refused_without_admin_on_the_target(bot):
    reply = await run(bot, "schedule refresh orders-db from sandbox-db daily 02:30")
    assert reply.status == "denied" and "needs admin" in reply.text
    assert ScheduleStore(bot.db).for_channel(DEV) == []


async def test_a_denied_approval_drops_the_pending_schedule(bot):
    card = await run(
        bot, "schedule refresh orders-replica from orders-db daily 02:30", channel=ONCALL
    )
    deny = next(a for a in card.actions if a.action_id == "approval.deny")
    assert (await run(bot, deny.command, user=BOB, channel=ONCALL)).status == "info"
    assert rows(await run(bot, "schedules", channel=ONCALL)) == []
    assert ScheduleStore(bot.db).get(1).state == "cancelled"


async def test_help_documents_the_verbs(bot):
    reply = await run(bot, "help schedule")
    fields = dict(reply.fields)
    assert "schedule refresh <db> from <source-db> <when>" in fields["Usage"]
    assert fields["Example"] == "/gdb schedule pause sandbox-db weekdays 20:00 tz=Europe/Paris"
    for verb in ("schedules", "unschedule", "schedule-skip", "schedule-extend"):
        assert (await run(bot, f"help {verb}")).status == "info", verb
