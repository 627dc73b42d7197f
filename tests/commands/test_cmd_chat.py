"""Who acts inside a channel, and asking instead of failing, at the command layer (issue 20;
issue 15 case 5): through `bot.run(Invocation(...))` against the Console simulator.
The Slack transport's side is tests/bot/slack/test_slack_chat.py."""

from __future__ import annotations

import pytest

from core.invocation import Invocation, Workspace
from core.refs import plain
from core.reply import Reply

ALICE, BOB, CAROL, ADMIN = "U0ALICE", "U0BOB", "U0CAROL", "U0ADMIN"
HOME = Workspace("T0HOME")


async def run(bot, line: str, user: str = ALICE, channel: str = "C0DEV", **kw) -> Reply:  # type: ignore[no-untyped-def]
    return await bot.run(Invocation(user=user, channel=channel, text=line, **kw))


# -- roles per user ------------------------------------------------------------------------


async def test_users_hold_the_role_and_others_the_fallback(bot, console_sim) -> None:  # type: ignore[no-untyped-def]
    granted = await run(
        bot,
        "grant C0ONCALL console production admin users=U0BOB,S0DBA fallback=viewer",
        user=ADMIN,
    )
    assert granted.status == "ok", granted.text
    named = await run(bot, "restart orders-db env=production", user=BOB, channel="C0ONCALL")
    assert named.status == "ok"
    member = await run(
        bot,
        "restart billing-db env=production",
        user=CAROL,
        channel="C0ONCALL",
        user_groups=frozenset({"S0DBA"}),
    )
    assert member.status == "ok"
    other = await run(bot, "restart orders-db env=production", channel="C0ONCALL")
    assert other.status == "denied" and "its fallback role" in other.text
    viewing = await run(bot, "show orders-db env=production", channel="C0ONCALL")
    assert viewing.status == "ok"  # the fallback viewer still reads
    assert len([r for r in console_sim.mutating_requests() if "restart" in r.path]) == 2


async def test_fallback_none_gives_nothing_and_says_who_holds_it(bot, console_sim) -> None:  # type: ignore[no-untyped-def]
    bot.services.permissions.set_users("C0ONCALL", "console", "production", ["U0BOB"], None)
    reply = await run(bot, "show orders-db env=production", channel="C0ONCALL")
    assert reply.status == "denied"
    assert "only @U0BOB hold it (fallback none)" in plain(reply.text)
    assert console_sim.requests == []


async def test_an_unresolved_group_does_not_count_and_the_reason_says_so(bot) -> None:  # type: ignore[no-untyped-def]
    bot.services.permissions.set_users("C0ONCALL", "console", "production", ["S0DBA"])
    reply = await run(
        bot,
        "restart orders-db env=production",
        user=CAROL,
        channel="C0ONCALL",
        unresolved_groups=frozenset({"S0DBA"}),
    )
    assert reply.status == "denied"
    assert "membership of @S0DBA could not be checked" in plain(reply.text)


async def test_without_users_a_binding_behaves_as_before(bot) -> None:  # type: ignore[no-untyped-def]
    [binding] = [
        b for b in bot.services.permissions.bindings("C0DEV") if b.environment == "development"
    ]
    assert binding.users == ()
    for user in (ALICE, BOB, "U0ANYONE"):
        reply = await run(bot, "restart sandbox-db dry-run=true", user=user)
        decision = dict(reply.fields)["Decision"]
        assert plain(decision) == "would run now: #C0DEV is bound to development as admin"


async def test_only_admins_named_in_users_approve_by_default(bot) -> None:  # type: ignore[no-untyped-def]
    store = bot.services.permissions
    store.set_approvers("C0ONCALL", "console", "production", [])
    store.set_users("C0ONCALL", "console", "production", ["U0BOB", "U0CAROL"])
    card = await run(bot, "terminate orders-db env=production", user=BOB, channel="C0ONCALL")
    assert card.status == "pending"
    approval_id = card.actions[0].value
    by_fallback = await run(bot, f"approve {approval_id} confirm=orders-db", channel="C0ONCALL")
    assert by_fallback.status == "denied" and "does not hold admin" in by_fallback.text
    by_user = await run(
        bot, f"approve {approval_id} confirm=orders-db", user=CAROL, channel="C0ONCALL"
    )
    assert by_user.status == "ok", by_user.text


async def test_access_explains_the_askers_role(bot) -> None:  # type: ignore[no-untyped-def]
    bot.services.permissions.set_users("C0ONCALL", "console", "production", ["S0DBA"])
    mine = await run(
        bot, "access", user=CAROL, channel="C0ONCALL", user_groups=frozenset({"S0DBA"})
    )
    [row] = mine.tables[0].rows
    assert plain(row[4]) == "admin: a member of @S0DBA, named in its users="
    theirs = await run(bot, "access", channel="C0ONCALL")
    [row] = theirs.tables[0].rows
    assert plain(row[4]).startswith("viewer: not among its users @S0DBA")
    assert plain(row[3]) == "@S0DBA; others: viewer"


async def test_a_personal_binding_gives_the_rights_of_a_dm(bot, console_sim) -> None:  # type: ignore[no-untyped-def]
    refused = await run(bot, "list", channel="D0ALICE")
    assert refused.status == "denied" and "direct messages of @U0ALICE" in plain(refused.text)
    granted = await run(bot, "grant @U0ALICE console staging operator", user=ADMIN)
    assert granted.status == "ok"
    listed = await run(bot, "list", channel="D0ALICE")
    names = {row[0] for row in listed.tables[0].rows}
    assert names == {"orders-db", "catalog-db"}
    restarted = await run(bot, "restart orders-db", channel="D0ALICE")
    assert restarted.status == "ok"
    other = await run(bot, "list", user=BOB, channel="D0BOB")
    assert other.status == "denied"  # Alice's binding is hers alone
    in_a_dm = await run(bot, "grant console staging operator", user=ADMIN, channel="D0ADMIN")
    assert in_a_dm.status == "error" and "name them" in in_a_dm.text


# -- who may act at all: the workspace -------------------------------------------------------


async def test_a_person_of_another_workspace_is_refused_before_anything(bot, console_sim) -> None:  # type: ignore[no-untyped-def]
    foreign = {"workspace": Workspace("T0PARTNER"), "home": HOME}
    for line in ("help", "list", "restart sandbox-db"):
        reply = await run(bot, line, transport="slack", **foreign)
        assert reply.status == "denied" and "T0PARTNER" in reply.text, line
    assert console_sim.requests == []
    rows = bot.services.audit.query(kind="decision")
    assert [r["team"] for r in rows] == ["T0PARTNER"] * 3
    home = await run(bot, "list", transport="slack", workspace=HOME, home=HOME)
    assert home.status == "ok"
    unknown = await run(bot, "list", transport="slack", workspace=HOME, home=None)
    assert unknown.status == "denied" and "does not know which workspace" in unknown.text


async def test_allowed_teams_and_the_organization_admit(bot) -> None:  # type: ignore[no-untyped-def]
    org_home = Workspace("T0HOME", "E0ORG")
    sibling = await run(bot, "list", workspace=Workspace("T0SIB", "E0ORG"), home=org_home)
    assert sibling.status == "ok"
    grid_user = await run(bot, "list", workspace=Workspace("", "E0ORG"), home=org_home)
    assert grid_user.status == "ok"
    partner = Workspace("T0PARTNER")
    assert (await run(bot, "list", workspace=partner, home=HOME)).status == "denied"
    bot.services.permissions.allowed_teams = frozenset({"T0PARTNER"})
    assert (await run(bot, "list", workspace=partner, home=HOME)).status == "ok"


# -- ask, don't fail --------------------------------------------------------------------------


async def test_a_missing_database_is_asked_with_only_what_may_be_acted_on(bot, console_sim) -> None:  # type: ignore[no-untyped-def]
    asked = await run(bot, "terminate")
    assert asked.status == "info" and asked.visibility == "ephemeral" and asked.choice
    assert [o.value for o in asked.choice.options] == ["sandbox-db"]  # admin: development only
    assert asked.choice.options[0].command == "/gdb terminate sandbox-db env=development"
    shown = await run(bot, "show")
    assert {o.value for o in shown.choice.options} >= {"orders-db", "sandbox-db", "catalog-db"}
    assert console_sim.mutating_requests() == []
    refused = await run(bot, "pause", channel="C0PROD")
    assert refused.status == "denied" and refused.choice is None


async def test_catalogs_and_environments_are_asked(bot) -> None:  # type: ignore[no-untyped-def]
    plans = await run(bot, "create new-db")
    assert plans.choice and plans.choice.argument == "plan"
    plan = plans.choice.options[0]
    versions = await run(bot, plan.command)
    assert versions.choice and versions.choice.argument == "version"
    envs = await run(bot, versions.choice.options[0].command)
    assert envs.choice and envs.choice.argument == "env"
    assert {o.value for o in envs.choice.options} == {"development", "staging"}
    created = await run(bot, envs.choice.options[0].command)
    assert created.status == "ok", created.text


async def test_snapshots_are_asked_from_the_databases_in_reach(bot, console_sim) -> None:  # type: ignore[no-untyped-def]
    taken = await run(bot, "snapshot sandbox-db")
    assert taken.status == "ok"
    asked = await run(bot, "restore")
    assert asked.choice and asked.choice.argument == "snapshot"
    [option] = asked.choice.options
    assert "of sandbox-db" in option.label
    assert option.command.startswith("/gdb restore ")


async def test_free_text_is_not_asked(bot) -> None:  # type: ignore[no-untyped-def]
    reply = await run(bot, "create")  # a new name has no list of answers
    assert reply.status == "error" and "Usage of create" in (reply.title or "")


@pytest.mark.parametrize("line", ["restart dry-run=true", "plan restart"])
async def test_a_dry_run_without_its_argument_shows_the_usage(bot, line: str) -> None:  # type: ignore[no-untyped-def]
    reply = await run(bot, line)
    assert reply.status == "error" and reply.choice is None


async def test_a_scheduled_run_counts_its_owners_user_groups(bot, console_sim) -> None:  # type: ignore[no-untyped-def]
    from commands.scheduled import PipelineRunner
    from operations.schedules import ScheduleStore

    store = bot.services.permissions
    store.set_users("C0ONCALL", "console", "production", ["S0DBA"])
    made = await run(
        bot,
        "schedule snapshot orders-db daily 02:00 env=production",
        user=CAROL,
        channel="C0ONCALL",
        user_groups=frozenset({"S0DBA"}),
    )
    assert made.status == "ok", made.text
    schedule = ScheduleStore(bot.db).get(1)
    runner = PipelineRunner(bot.pipeline)
    without = await runner.run_schedule(schedule)  # no way to know her groups: fallback
    assert without.status == "denied" and "its fallback role" in plain(without.text)

    async def memberships(user: str, groups):  # type: ignore[no-untyped-def]
        return frozenset({"S0DBA"}) & set(groups) if user == CAROL else frozenset(), frozenset()

    bot.services.memberships = memberships
    ran = await runner.run_schedule(schedule)
    assert ran.status == "ok", ran.text
    assert console_sim.requests_to("POST", r".*/snapshots/manual$")
