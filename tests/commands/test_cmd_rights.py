"""Rights that depend on more than one environment (issue 15): moving data out of an
environment needs rights there, and a name bound twice is ambiguous for every verb.

The demo policy of tests/conftest.py's `bot`, plus the channels made here:
#mixed (C0MIXED) is viewer on production and admin on development, the case the
issue reports; #split (C0SPLIT) is operator on production and viewer on staging.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.store import open_database
from commands.scheduled import PipelineRunner
from core.invocation import Invocation
from core.reply import Reply
from operations.schedules import ScheduleStore
from permissions.roles import Role
from permissions.store import PermissionStore

ALICE, BOB = "U0ALICE", "U0BOB"
MIXED, SPLIT = "C0MIXED", "C0SPLIT"


@pytest.fixture
def mixed(bot):
    """#mixed: viewer on production, admin on development (the issue's channel)."""
    bot.services.permissions.grant(MIXED, "console", "production", Role.VIEWER)
    bot.services.permissions.grant(MIXED, "console", "development", Role.ADMIN)
    return bot


async def run(bot, line: str, channel: str = MIXED, user: str = ALICE) -> Reply:
    return await bot.run(Invocation(user=user, channel=channel, text=line))


def approve_line(reply: Reply) -> str:
    (action,) = [a for a in reply.actions if a.action_id == "approval.approve"]
    return action.command


def prod_snapshot(console_sim) -> str:
    """The id of the seeded snapshot of production's orders-db."""
    orders = console_sim.find_database("orders-db", "production")
    (snap,) = [s for s in console_sim.snapshots if s.database_id == orders.id]
    return snap.id


def denial_rows(bot) -> list[dict]:
    return [r for r in bot.services.audit.query(kind="decision") if r["outcome"] == "denied"]


# -- case 2: moving data out of an environment needs rights on that environment ---------


async def test_data_cannot_leave_an_environment_the_channel_only_views(mixed, console_sim):
    snap = prod_snapshot(console_sim)
    lines = [
        "clone orders-db prod-copy env=development",
        f"restore {snap[:8]} as prod-copy env=development",
        f"restore {snap[:8]} into sandbox-db",
        f"restore {snap[:8]} as prod-copy env=development source=orders-db",
    ]
    for line in lines:
        reply = await run(mixed, line)
        assert reply.status == "denied", (line, reply.text)
        assert "production (console)" in reply.text and "viewer" in reply.text, reply.text
        assert "needs at least operator" in reply.text, reply.text
    assert console_sim.mutating_requests() == []  # no clone, no restore, no safety snapshot
    assert len(denial_rows(mixed)) == len(lines)


async def test_a_refresh_from_a_viewed_environment_is_refused(mixed, console_sim):
    reply = await run(mixed, "schedule refresh sandbox-db from orders-db daily 02:30")
    assert reply.status == "denied", reply.text
    assert "production (console)" in reply.text and "needs at least operator" in reply.text
    assert ScheduleStore(mixed.db).for_channel(MIXED) == []
    assert mixed.services.approvals.pending(MIXED) == []
    assert console_sim.mutating_requests() == []


async def test_plan_shows_the_source_and_the_target_decisions(mixed, console_sim):
    snap = prod_snapshot(console_sim)
    reply = await run(mixed, f"plan restore {snap[:8]} as prod-copy env=development")
    fields = dict(reply.fields)
    assert fields["Data from"] == "production"
    assert fields["Decision (source production)"].startswith("would be refused")
    assert "needs at least operator" in fields["Decision (source production)"]
    assert fields["Decision (target development)"].startswith("would run now")
    assert fields["Decision"].startswith("would be refused")
    assert reply.tables[0].note == "nothing would be sent"
    mixed.services.permissions.grant(MIXED, "console", "production", Role.OPERATOR)
    allowed = await run(mixed, f"plan restore {snap[:8]} as prod-copy env=development")
    fields = dict(allowed.fields)
    assert fields["Decision (source production)"].startswith("would run now")
    assert fields["Decision"].startswith("would run now")
    assert console_sim.mutating_requests() == []


async def test_operator_on_the_source_lets_data_move(mixed, console_sim):
    mixed.services.permissions.grant(MIXED, "console", "production", Role.OPERATOR)
    snap = prod_snapshot(console_sim)
    created = await run(mixed, f"restore {snap[:8]} as prod-copy env=development")
    assert created.status == "ok", created.text
    cloned = await run(mixed, "clone orders-db prod-clone env=development")
    assert cloned.status == "ok", cloned.text
    card = await run(mixed, f"restore {snap[:8]} into sandbox-db")
    assert card.status == "pending", card.text
    assert dict(card.fields)["Data from"] == "production"


async def test_the_source_is_checked_again_when_the_approval_is_clicked(mixed, console_sim):
    permissions = mixed.services.permissions
    permissions.grant(MIXED, "console", "production", Role.OPERATOR)
    card = await run(mixed, f"restore {prod_snapshot(console_sim)[:8]} into sandbox-db")
    assert card.status == "pending", card.text
    permissions.grant(MIXED, "console", "production", Role.VIEWER)
    reply = await run(mixed, approve_line(card), user=BOB)
    assert reply.status == "denied", reply.text
    assert "no longer be approved" in reply.text and "production (console)" in reply.text
    assert console_sim.mutating_requests() == []


async def test_a_scheduled_refresh_stops_when_the_source_right_is_gone(
    mixed, console_sim, tmp_path: Path
):
    mixed.services.permissions.grant(MIXED, "console", "production", Role.OPERATOR)
    card = await run(mixed, "schedule refresh sandbox-db from orders-db daily 02:30")
    assert card.status == "pending", card.text
    assert dict(card.fields)["Data from"] == "production"
    assert (await run(mixed, approve_line(card), user=BOB)).status == "ok"
    (schedule,) = ScheduleStore(mixed.db).for_channel(MIXED)
    # Another process (`graphops access grant ... viewer`) lowers the right on the source.
    other = open_database(mixed.config.bot.database)
    try:
        PermissionStore(other).grant(MIXED, "console", "production", Role.VIEWER)
    finally:
        other.close()
    listed_before = len(console_sim.requests_to("GET", r"/snapshots"))
    reply = await PipelineRunner(mixed.pipeline).run_schedule(schedule)
    assert reply.status == "denied", reply.text
    assert "production (console)" in reply.text and "needs at least operator" in reply.text
    assert len(console_sim.requests_to("GET", r"/snapshots")) == listed_before  # not even listed
    assert console_sim.mutating_requests() == []


# -- case 7: a name in two bound environments is ambiguous for every verb ------------------


@pytest.mark.parametrize(
    "line",
    [
        "show orders-db",
        "snapshots orders-db",
        "restart orders-db",
        "pause orders-db",
        "snapshot orders-db",
        "clone orders-db orders-copy",
        "schedule pause orders-db daily 20:00",
    ],
)
async def test_a_name_bound_twice_is_ambiguous_whatever_the_role(bot, console_sim, line):
    bot.services.permissions.grant(SPLIT, "console", "production", Role.OPERATOR)
    bot.services.permissions.grant(SPLIT, "console", "staging", Role.VIEWER)
    reply = await run(bot, line, channel=SPLIT)
    assert reply.status == "error", reply.text
    assert "ambiguous" in reply.text, reply.text
    assert "production" in reply.text and "staging" in reply.text and "env=" in reply.text
    assert console_sim.mutating_requests() == []


async def test_env_settles_an_ambiguous_name(bot, console_sim):
    bot.services.permissions.grant(SPLIT, "console", "production", Role.OPERATOR)
    bot.services.permissions.grant(SPLIT, "console", "staging", Role.VIEWER)
    there = await run(bot, "restart orders-db env=production", channel=SPLIT)
    assert there.status == "ok", there.text
    (restart,) = console_sim.requests_to("POST", r"/restart$")
    assert console_sim.find_database("orders-db", "production").id in restart.path
    viewed = await run(bot, "restart orders-db env=staging", channel=SPLIT)
    assert viewed.status == "denied"
    assert "staging/console" in viewed.text and "viewer" in viewed.text
    assert "needs operator" in viewed.text
    assert len(console_sim.mutating_requests()) == 1


# -- case 6: another channel's bindings and approvers only for its members and bot admins --

ONCALL, DEV, ADMIN = "C0ONCALL", "C0DEV", "U0ADMIN"


class Members:
    """A transport's membership answer (the `Membership` port), as a test sets it."""

    def __init__(self, members: dict[str, set[str]]) -> None:
        self.members = members
        self.asked: list[tuple[str, str]] = []

    async def is_member(self, user: str, channel: str) -> bool:
        self.asked.append((user, channel))
        return user in self.members.get(channel, set())


def shows_oncall(reply: Reply) -> bool:
    rows = [" ".join(row) for table in reply.tables for row in table.rows]
    return any("production" in row and "U0BOB" in row for row in rows)


async def test_another_channels_access_is_refused_to_a_non_member(bot):
    reply = await run(bot, f"access channel={ONCALL}", channel=DEV)
    assert reply.status == "denied", reply.text
    assert not shows_oncall(reply) and "U0BOB" not in reply.text
    assert "members" in reply.text and "bot admin" in reply.text
    assert len(denial_rows(bot)) == 1  # audited like any refusal
    shown = await run(bot, f"access channel={ONCALL}", channel=DEV, user=ADMIN)
    assert shown.status == "info" and shows_oncall(shown)
    here = await run(bot, "access", channel=ONCALL)
    assert here.status == "info" and shows_oncall(here)
    same = await run(bot, f"access channel={ONCALL}", channel=ONCALL)
    assert same.status == "info" and shows_oncall(same)


async def test_a_member_of_the_other_channel_may_see_it(bot):
    bot.services.membership = Members({ONCALL: {BOB}})
    member = await run(bot, f"access channel={ONCALL}", channel=DEV, user=BOB)
    assert member.status == "info" and shows_oncall(member)
    stranger = await run(bot, f"access channel={ONCALL}", channel=DEV)
    assert stranger.status == "denied" and not shows_oncall(stranger)
    assert bot.services.membership.asked == [(BOB, ONCALL), (ALICE, ONCALL)]


async def test_approvers_of_another_channel_follow_the_same_rule(bot):
    refused = await run(bot, f"approvers console production channel={ONCALL}", channel=DEV)
    assert refused.status == "denied" and "U0BOB" not in refused.text
    bot.services.membership = Members({ONCALL: {ALICE}})
    shown = await run(bot, f"approvers console production channel={ONCALL}", channel=DEV)
    assert shown.status == "info" and "U0BOB" in shown.text


# -- case 9: `approvers <provider> <env>` shows; clearing needs users=none -----------------


def approvers_of(bot, channel: str) -> tuple[str, ...]:
    (binding,) = [b for b in bot.services.permissions.bindings(channel)]
    return binding.approvers


async def test_approvers_without_users_shows_them_and_changes_nothing(bot):
    for user in (ADMIN, ALICE):  # a bot admin, and anyone in the channel
        reply = await run(bot, "approvers console production", channel=ONCALL, user=user)
        assert reply.status == "info", reply.text
        assert "U0BOB" in reply.text and "users=none" in reply.text
    assert approvers_of(bot, ONCALL) == ("U0BOB",)
    changes = [r for r in bot.services.audit.query(kind="command") if r["outcome"] == "changed"]
    assert changes == []


async def test_clearing_approvers_needs_users_none(bot):
    empty = await run(bot, "approvers console production users=", channel=ONCALL, user=ADMIN)
    assert empty.status == "error" and "users=none" in empty.text
    mixed = await run(
        bot, "approvers console production users=none,U0CAROL", channel=ONCALL, user=ADMIN
    )
    assert mixed.status == "error"
    assert approvers_of(bot, ONCALL) == ("U0BOB",)
    not_admin = await run(bot, "approvers console production users=none", channel=ONCALL)
    assert not_admin.status == "denied"
    assert approvers_of(bot, ONCALL) == ("U0BOB",)
    cleared = await run(bot, "approvers console production users=none", channel=ONCALL, user=ADMIN)
    assert cleared.status == "ok", cleared.text
    assert approvers_of(bot, ONCALL) == ()
    shown = await run(bot, "approvers console production", channel=ONCALL)
    assert "none set" in shown.text
    set_again = await run(
        bot, "approvers console production users=U0BOB,S0DBTEAM", channel=ONCALL, user=ADMIN
    )
    assert set_again.status == "ok" and approvers_of(bot, ONCALL) == ("U0BOB", "S0DBTEAM")


async def test_approvers_of_a_missing_binding_is_a_clear_error(bot):
    reply = await run(bot, "approvers console staging", channel=ONCALL, user=ADMIN)
    assert reply.status == "error" and "no binding" in reply.text
