"""Safety nets: dry-run, snapshot before destroy, switch pre-flight and switch back."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.demo import apply_demo_policy
from bot.wiring import Bot, build_bot
from core.invocation import Invocation
from core.reply import Reply
from tests.support import ENVIRON, make_config

ONCALL, DEV = "C0ONCALL", "C0DEV"


@pytest.fixture
async def safe_bot(console_sim, tmp_path: Path) -> AsyncIterator[Bot]:
    """The demo policy with the default safety policy (snapshots in protected environments)."""
    config = make_config(
        console_sim.base_url, tmp_path / "s.sqlite3", snapshot_before_destroy="protected"
    )
    bot = build_bot(config, environ=ENVIRON)
    apply_demo_policy(bot)
    try:
        yield bot
    finally:
        await bot.aclose()


@pytest.fixture
async def ticking(clock) -> AsyncIterator[None]:
    """Simulated time passes quickly while a test waits on operations."""

    async def tick() -> None:
        while True:
            await asyncio.sleep(0.01)
            clock.advance(1)

    task = asyncio.create_task(tick())
    yield
    task.cancel()


async def run(bot: Bot, line: str, user: str = "U0ALICE", channel: str = DEV) -> Reply:
    return await bot.run(Invocation(user=user, channel=channel, text=line))


def approve(reply: Reply) -> str:
    return next(a.command for a in reply.actions if a.action_id == "approval.approve")


def paths(sim, method: str) -> list[str]:  # type: ignore[no-untyped-def]
    return [r.path for r in sim.mutating_requests() if r.method == method]


# -- dry-run -------------------------------------------------------------------------


@pytest.mark.parametrize("line", ["plan terminate sandbox-db", "terminate sandbox-db dry-run=true"])
async def test_dry_run_sends_nothing_and_shows_the_calls(safe_bot, console_sim, line):
    reply = await run(safe_bot, line)
    assert reply.status == "info" and (reply.title or "").startswith("Plan: terminate sandbox-db")
    assert "would need an approval" in dict(reply.fields)["Decision"]
    calls = reply.tables[0].rows
    assert [row[0] for row in calls] == ["DELETE"]
    assert calls[0][1].startswith("/deployments/databases/graphneo/")
    assert console_sim.mutating_requests() == []
    assert safe_bot.services.approvals.pending() == []


async def test_dry_run_of_a_denied_command_says_so(safe_bot, console_sim):
    reply = await run(safe_bot, "plan pause orders-db", channel="C0PROD")
    assert reply.status == "denied"  # refused before anything is resolved
    assert console_sim.requests == []


async def test_dry_run_shows_the_body_and_the_safety_snapshot(safe_bot, console_sim):
    reply = await run(safe_bot, "plan terminate orders-db", channel=ONCALL)
    methods = [row[0] for row in reply.tables[0].rows]
    assert methods == ["POST", "GET", "DELETE"]  # snapshot, wait for it, terminate
    assert reply.tables[0].rows[0][1].endswith("/snapshots/manual")
    assert "manual snapshot of orders-db" in dict(reply.fields)["Safety nets"]
    restart = await run(safe_bot, "plan restart sandbox-db reset=false")
    assert restart.tables[0].rows[0][2] == '{"stationIds": [], "reset": false}'
    assert console_sim.mutating_requests() == []


async def test_bad_dry_run_flag(safe_bot):
    reply = await run(safe_bot, "pause sandbox-db dry-run=maybe")
    assert reply.status == "error" and "true or false" in reply.text
    assert "nothing to plan" in (await run(safe_bot, "plan help")).text


async def test_approval_card_includes_the_preview(safe_bot, console_sim):
    card = await run(safe_bot, "terminate orders-db", channel=ONCALL)
    assert card.status == "pending"
    assert [row[0] for row in card.tables[0].rows] == ["POST", "GET", "DELETE"]
    assert "Safety nets" in dict(card.fields)
    assert console_sim.mutating_requests() == []


# -- snapshot before destroy --------------------------------------------------------------


async def test_snapshot_precedes_terminate_in_a_protected_environment(
    safe_bot, console_sim, ticking
):
    card = await run(safe_bot, "terminate orders-db", channel=ONCALL)
    done = await run(safe_bot, approve(card), user="U0BOB", channel=ONCALL)
    assert done.status == "ok", done.text
    mutations = console_sim.mutating_requests()
    assert [r.method for r in mutations] == ["POST", "DELETE"]
    assert mutations[0].path.endswith("/snapshots/manual")
    assert dict(done.fields)["Safety snapshot"]


async def test_failed_snapshot_blocks_the_destructive_step(safe_bot, console_sim, ticking):
    console_sim.fail_next_operation("snapshot")
    card = await run(safe_bot, "terminate orders-db", channel=ONCALL)
    done = await run(safe_bot, approve(card), user="U0BOB", channel=ONCALL)
    assert done.status == "error"
    assert "safety snapshot of orders-db failed" in done.text
    assert "nothing else was done" in done.text
    assert paths(console_sim, "DELETE") == []
    assert safe_bot.services.approvals.get(card.actions[0].value).state == "failed"


async def test_no_snapshot_in_an_unprotected_environment(safe_bot, console_sim):
    card = await run(safe_bot, "terminate sandbox-db")
    assert "Safety nets" not in dict(card.fields)
    done = await run(safe_bot, approve(card))
    assert done.status == "ok"
    assert [r.method for r in console_sim.mutating_requests()] == ["DELETE"]


async def test_restore_into_takes_a_snapshot_first(safe_bot, console_sim, ticking):
    snap = console_sim.snapshots[0].id
    card = await run(safe_bot, f"restore {snap} into billing-db", channel=ONCALL)
    done = await run(safe_bot, approve(card), user="U0BOB", channel=ONCALL)
    assert done.status == "ok", done.text
    mutations = [r.path for r in console_sim.mutating_requests()]
    assert mutations[0].endswith("/snapshots/manual") and mutations[1].endswith("/restore")


# -- switch pre-flight and switch back -----------------------------------------------------


@pytest.mark.parametrize(
    ("trouble", "reason"),
    [("incident", "under incident"), ("locked", "locked")],
)
async def test_switch_preflight_refuses(safe_bot, console_sim, trouble, reason):
    replica = console_sim.find_database("orders-replica")
    if trouble == "incident":
        console_sim.set_incident(replica.id, True)
    else:
        console_sim.set_locked(replica.id, True)
    reply = await run(safe_bot, "switch orders-db to orders-replica", channel=ONCALL)
    assert reply.status == "error"
    assert "refusing to switch to orders-replica" in reply.text and reason in reply.text
    assert safe_bot.services.approvals.pending() == []
    assert console_sim.mutating_requests() == []


async def test_switch_preflight_runs_again_at_approval(safe_bot, console_sim):
    safe_bot.services.snapshot_before_destroy = "never"
    card = await run(safe_bot, "switch orders-db to orders-replica", channel=ONCALL)
    console_sim.set_locked(console_sim.find_database("orders-replica").id, True)
    done = await run(safe_bot, approve(card), user="U0BOB", channel=ONCALL)
    assert done.status == "error" and "it is locked" in done.text
    assert console_sim.mutating_requests() == []


async def test_switch_back_is_an_approval_within_its_window(safe_bot, console_sim, clock):
    safe_bot.services.snapshot_before_destroy = "never"
    origin = console_sim.find_database("orders-db", "production")
    replica = console_sim.find_database("orders-replica")
    card = await run(safe_bot, "switch orders-db to orders-replica", channel=ONCALL)
    done = await run(safe_bot, approve(card), user="U0BOB", channel=ONCALL)
    assert done.status == "ok", done.text
    back = next(a for a in done.actions if a.label.startswith("Switch back"))
    clock.advance(10)
    again = await run(safe_bot, back.command, channel=ONCALL)
    assert again.status == "pending" and "back from orders-replica to orders-db" in (
        again.title or ""
    )
    switched = await run(safe_bot, approve(again), user="U0BOB", channel=ONCALL)
    assert switched.status == "ok", switched.text
    switches = console_sim.requests_to("POST", r".*/connections/switch$")
    assert [r.path.split("/")[4] for r in switches] == [origin.id, replica.id]
    assert switches[1].body["targetDatabase"] == origin.id


async def test_switch_back_window_closes(safe_bot, console_sim):
    safe_bot.services.snapshot_before_destroy = "never"
    safe_bot.services.switch_back_minutes = 0
    card = await run(safe_bot, "switch orders-db to orders-replica", channel=ONCALL)
    done = await run(safe_bot, approve(card), user="U0BOB", channel=ONCALL)
    assert not any(a.label.startswith("Switch back") for a in done.actions)
    record = safe_bot.services.switch_backs.remember(
        0,
        provider="console",
        environment_id="e",
        environment_name="production",
        production=True,
        origin_id="a",
        origin_name="a",
        target_id="b",
        target_name="b",
        channel=ONCALL,
    )
    late = await run(safe_bot, f"switch-back {record.id}", channel=ONCALL)
    assert late.status == "error" and "window to switch back has closed" in late.text


async def test_previews_change_nothing_outside_the_api(safe_bot, console_sim):
    safe_bot.services.snapshot_before_destroy = "never"
    card = await run(safe_bot, "switch orders-db to orders-replica", channel=ONCALL)
    assert card.status == "pending"  # its preview ran execute_switch against recording clients
    rows = safe_bot.db.execute("SELECT COUNT(*) FROM switch_backs").fetchone()
    assert rows == (0,)
