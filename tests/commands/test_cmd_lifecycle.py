"""Approved work as a persisted state machine (commands/execution.py), in-process.

A "kill" is a `Killed` (a BaseException, like the end of a process: nothing catches
it) raised by the store at its n-th write of the journal; the next "process" is a
new bot on the same SQLite file, whose approvals show a runner that is gone. Every
point of a production switch (safety snapshot, then switch) is tried: the work ends
exactly once, never sending a request twice (the simulator's request log).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.config import BotSettings, Config, V1Provider
from bot.demo import apply_demo_policy
from bot.wiring import Bot, build_bot
from clients.graphenedb_v1 import V1Client
from core.invocation import Invocation
from core.reply import Reply
from operations.store import Outbox
from permissions.approvals import ApprovalStore
from permissions.roles import Role
from simulators.graphenedb import ConsoleSimulator
from simulators.graphenedb_v1 import V1Simulator
from tests.support import ENVIRON, make_config

ONCALL = "C0ONCALL"
GONE = "999999999:1"  # a runner whose process is not running
V1_KEY = "sentinel-v1-key-0c7e"


class Killed(BaseException):
    """The process died here."""


pytestmark = pytest.mark.usefixtures("fast_waits")


def new_bot(sim: ConsoleSimulator, path: Path, **operations: Any) -> Bot:
    config = make_config(sim.base_url, path, snapshot_before_destroy="protected")
    if operations:
        config = config.model_copy(
            update={"operations": config.operations.model_copy(update=operations)}
        )
    bot = build_bot(config, environ=ENVIRON)
    apply_demo_policy(bot)
    return bot


async def run(bot: Bot, line: str, user: str = "U0ALICE", channel: str = ONCALL) -> Reply:
    return await bot.run(Invocation(user=user, channel=channel, text=line))


def approve_line(card: Reply) -> str:
    return next(a.command for a in card.actions if a.action_id == "approval.approve")


def count(sim: ConsoleSimulator, pattern: str) -> int:
    return len(sim.requests_to("POST", pattern))


SNAPSHOTS, SWITCHES = r".*/snapshots/manual$", r".*/connections/switch$"


@pytest.fixture
def kill_at(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """`kill_at.append(n)`: the n-th journal write of this test raises Killed first."""
    plan: list[int] = []
    seen = {"writes": 0}
    original = ApprovalStore.save_step

    def save_step(self: ApprovalStore, approval_id: str, step: str, journal: Any) -> None:
        seen["writes"] += 1
        if plan and seen["writes"] == plan[0]:
            plan.clear()
            raise Killed(f"killed before journal write {seen['writes']} ({step})")
        original(self, approval_id, step, journal)

    monkeypatch.setattr(ApprovalStore, "save_step", save_step)
    yield plan


def die(bot: Bot, approval_id: str) -> None:
    """What a dead process leaves: its runner is gone."""
    bot.db.execute("UPDATE approvals SET runner = ? WHERE id = ?", [GONE, approval_id])


async def resume(sim: ConsoleSimulator, path: Path, approval_id: str) -> tuple[Reply, Bot]:
    bot = new_bot(sim, path)
    approval = bot.services.approvals.get(approval_id)
    assert approval is not None and bot.services.approvals.take_over(approval)
    return await bot.pipeline.resume_approved(approval), bot


# The journal writes of a protected switch: 1 snapshot begun, 2 snapshot done, 3 switch
# begun, 4 switch done. Killed before write n: what happened before it happened.
@pytest.mark.parametrize("killed_before", [1, 2, 3, 4])
async def test_a_switch_killed_at_any_step_ends_exactly_once(
    console_sim: ConsoleSimulator, tmp_path: Path, ticking: None, kill_at: list[int], killed_before
):
    path = tmp_path / "g.sqlite3"
    bot = new_bot(console_sim, path)
    card = await run(bot, "switch orders-db to orders-replica")
    approval_id = card.actions[0].value
    kill_at.append(killed_before)
    with pytest.raises(Killed):
        await run(bot, approve_line(card), user="U0BOB")
    left = bot.services.approvals.get(approval_id)
    assert left is not None and left.state == "executing"
    assert count(console_sim, SNAPSHOTS) == (0 if killed_before == 1 else 1)
    assert count(console_sim, SWITCHES) == (1 if killed_before == 4 else 0)
    die(bot, approval_id)
    await bot.aclose()

    reply, again = await resume(console_sim, path, approval_id)
    try:
        assert reply.status == "ok", reply.text
        assert "graphops restarted while running this" in reply.text
        assert count(console_sim, SNAPSHOTS) == 1
        assert count(console_sim, SWITCHES) == 1
        done = again.services.approvals.get(approval_id)
        assert done is not None and done.state == "executed" and done.reply
        assert dict(reply.fields)["Safety snapshot"]
        assert reply.operations and reply.operations[0].verb == "switch"
    finally:
        await again.aclose()


async def test_killed_between_the_click_and_the_first_step(
    console_sim: ConsoleSimulator, tmp_path: Path, ticking: None, monkeypatch
):
    path = tmp_path / "g.sqlite3"
    bot = new_bot(console_sim, path)
    card = await run(bot, "switch orders-db to orders-replica")
    approval_id = card.actions[0].value

    def killed(self: ApprovalStore, approval_id: str) -> bool:
        raise Killed("killed after the claim")

    with monkeypatch.context() as patch:
        patch.setattr(ApprovalStore, "start", killed)
        with pytest.raises(Killed):
            await run(bot, approve_line(card), user="U0BOB")
    assert bot.services.approvals.get(approval_id).state == "approved"  # type: ignore[union-attr]
    # a second click is told it is running, not "approved" as if all were well
    again = await run(bot, approve_line(card), user="U0BOB")
    assert "it is running" in again.text
    die(bot, approval_id)
    await bot.aclose()
    reply, resumed = await resume(console_sim, path, approval_id)
    await resumed.aclose()
    assert reply.status == "ok", reply.text
    assert (count(console_sim, SNAPSHOTS), count(console_sim, SWITCHES)) == (1, 1)


async def test_a_live_runner_is_not_taken_over(console_sim: ConsoleSimulator, tmp_path: Path):
    bot = new_bot(console_sim, tmp_path / "g.sqlite3")
    card = await run(bot, "switch orders-db to orders-replica")
    approval_id = card.actions[0].value
    bot.services.approvals.claim(approval_id, "U0BOB", "approve")  # this process runs it
    approval = bot.services.approvals.get(approval_id)
    assert approval is not None and not bot.services.approvals.take_over(approval)
    await bot.aclose()


@pytest.fixture
async def v1_sim(clock) -> AsyncIterator[V1Simulator]:  # type: ignore[no-untyped-def]
    sim = V1Simulator(api_key=V1_KEY, step_seconds=1.0)
    sim.clock = clock
    await sim.start()
    try:
        yield sim
    finally:
        await sim.stop()


def v1_bot(sim: V1Simulator, path: Path) -> Bot:
    config = Config(
        bot=BotSettings(admins=("U0ADMIN",), database=str(path)),
        providers=(
            V1Provider(
                name="legacy", kind="graphenedb-v1", base_url=sim.base_url + "/v1", api_key_env="K"
            ),
        ),
    )
    bot = build_bot(config, environ={"K": V1_KEY})
    bot.services.permissions.grant("C0DEV", "legacy", "*", Role.ADMIN)
    return bot


@pytest.mark.parametrize("killed", ["before the request", "after the request"])
async def test_a_request_outside_steps_is_never_sent_twice(
    v1_sim: V1Simulator, tmp_path: Path, kill_at: list[int], monkeypatch, killed: str
):
    """A verb without steps (v1 terminate): its request is written down before it is sent
    (core.mutations). Killed before it, the work runs again from the start; killed after
    it, the outcome is unknown and the work ends without sending it again."""
    path = tmp_path / "g.sqlite3"
    bot = v1_bot(v1_sim, path)
    card = await run(bot, "terminate legacy-sandbox", channel="C0DEV")
    approval_id = card.actions[0].value
    if killed == "before the request":
        kill_at.append(1)
    else:
        original = V1Client.delete_database

        async def sent_then_killed(self: V1Client, database_id: str) -> Any:
            await original(self, database_id)
            raise Killed("killed after the request")

        monkeypatch.setattr(V1Client, "delete_database", sent_then_killed)
    with pytest.raises(Killed):
        await run(bot, approve_line(card), channel="C0DEV")
    monkeypatch.undo()
    die(bot, approval_id)
    await bot.aclose()

    again = v1_bot(v1_sim, path)
    approval = again.services.approvals.get(approval_id)
    assert approval is not None and again.services.approvals.take_over(approval)
    reply = await again.pipeline.resume_approved(approval)
    state = again.services.approvals.get(approval_id).state  # type: ignore[union-attr]
    await again.aclose()
    assert len(v1_sim.requests_to("DELETE")) == 1
    if killed == "before the request":
        assert reply.status == "ok", reply.text
        assert state == "executed"
    else:
        assert reply.status == "error" and "outcome is unknown" in (reply.title or "")
        assert "DELETE /v1/databases/" in reply.text
        assert state == "failed"


async def test_too_old_or_from_before_the_state_machine_is_ended_not_run(
    console_sim: ConsoleSimulator, tmp_path: Path
):
    path = tmp_path / "g.sqlite3"
    bot = new_bot(console_sim, path)
    old = (await run(bot, "switch orders-db to orders-replica")).actions[0].value
    bot.services.approvals.claim(old, "U0BOB", "approve")
    bot.db.execute("UPDATE approvals SET decided_at = decided_at - 7200 WHERE id = ?", [old])
    die(bot, old)
    legacy = (await run(bot, "terminate billing-db")).actions[0].value
    bot.services.approvals.claim(legacy, "U0BOB", "approve")
    bot.db.execute("UPDATE approvals SET runner = NULL WHERE id = ?", [legacy])  # pre-upgrade
    await bot.aclose()
    late, again = await resume(console_sim, path, old)
    assert late.status == "error" and "too late to resume" in late.text
    legacy_approval = again.services.approvals.get(legacy)
    assert legacy_approval is not None and again.services.approvals.take_over(legacy_approval)
    unknown = await again.pipeline.resume_approved(legacy_approval)
    assert unknown.status == "error" and "whether it ran is unknown" in unknown.text
    assert console_sim.mutating_requests() == []
    queued = [row.key for row in Outbox(again.db).pending()]
    assert queued == [f"approval:{old}:failed", f"approval:{legacy}:failed"]
    await again.aclose()


# -- every failure after approval is told: the card's thread and the incident channel -------


def _incident(bot: Bot) -> dict[str, Any]:
    [row] = [r for r in Outbox(bot.db).pending() if r.key.startswith("approval:")]
    assert row.channel == "C0INCIDENT"
    return row.reply


async def test_a_failing_safety_snapshot_is_told_in_the_channel_and_incident_channel(
    console_sim: ConsoleSimulator, tmp_path: Path, ticking: None
):
    bot = new_bot(console_sim, tmp_path / "g.sqlite3")
    card = await run(bot, "switch orders-db to orders-replica")
    console_sim.fail_next_operation("snapshot")
    reply = await run(bot, approve_line(card), user="U0BOB")
    assert reply.status == "error" and reply.visibility == "channel"  # the thread, not a DM
    assert "safety snapshot of orders-db failed" in reply.text
    assert count(console_sim, SWITCHES) == 0
    approval = bot.services.approvals.get(card.actions[0].value)
    assert approval is not None and approval.state == "failed"
    assert "safety snapshot" in (approval.result or "")
    notice = _incident(bot)
    assert "<@U0ALICE>" not in notice["text"]  # refs, rendered by the transport
    assert "requested by" in notice["text"].lower() and "approved by" in notice["text"].lower()
    assert "U0ALICE" in notice["text"] and "U0BOB" in notice["text"]
    assert "safety snapshot" in notice["text"]
    await bot.aclose()


async def test_a_preflight_refusal_at_execution_is_told_everywhere(
    console_sim: ConsoleSimulator, tmp_path: Path, ticking: None
):
    bot = new_bot(console_sim, tmp_path / "g.sqlite3", snapshot_before_destroy="never")
    card = await run(bot, "switch orders-db to orders-replica")
    console_sim.set_locked(console_sim.find_database("orders-replica").id, True)
    reply = await run(bot, approve_line(card), user="U0BOB")
    assert reply.status == "error" and reply.visibility == "channel"
    assert "it is locked" in reply.text
    assert "it is locked" in _incident(bot)["text"]
    assert console_sim.mutating_requests() == []
    await bot.aclose()


async def test_an_unexpected_error_in_approved_work_is_told_everywhere(
    console_sim: ConsoleSimulator, tmp_path: Path, monkeypatch
):
    bot = new_bot(console_sim, tmp_path / "g.sqlite3", snapshot_before_destroy="never")
    card = await run(bot, "terminate billing-db")

    async def broken(*args: object, **kwargs: object) -> None:
        raise KeyError("something nobody expected")

    monkeypatch.setattr("clients.graphenedb.ConsoleClient.terminate", broken)
    reply = await run(bot, f"{approve_line(card)}", user="U0BOB")
    assert reply.status == "error" and reply.visibility == "channel"
    assert "failed inside graphops" in (reply.title or "")
    assert "bot's log" in _incident(bot)["text"]
    assert bot.services.approvals.get(card.actions[0].value).state == "failed"  # type: ignore[union-attr]
    await bot.aclose()


# -- switch back: once, within its window -----------------------------------------------------


async def test_switch_back_works_once(console_sim: ConsoleSimulator, tmp_path: Path, ticking):
    bot = new_bot(console_sim, tmp_path / "g.sqlite3", snapshot_before_destroy="never")
    card = await run(bot, "switch orders-db to orders-replica")
    done = await run(bot, approve_line(card), user="U0BOB")
    back = next(a for a in done.actions if a.label.startswith("Switch back"))
    await asyncio.sleep(0.2)  # the switch operation ends (simulated seconds tick)
    first = await run(bot, back.command)
    second = await run(bot, back.command)  # a second card from the same button
    assert first.status == "pending"
    assert second.status == "error" and "already waits for an approval" in second.text
    assert len(bot.services.approvals.pending()) == 1  # no doomed card to approve
    assert (await run(bot, approve_line(first), user="U0BOB")).status == "ok"
    await asyncio.sleep(0.2)
    assert count(console_sim, SWITCHES) == 2  # the switch, and one switch-back
    third = await run(bot, back.command)  # the used button, clicked again
    assert third.status == "error" and "already switched back" in third.text
    await bot.aclose()


async def test_switch_back_expires_between_its_card_and_its_approval(
    console_sim: ConsoleSimulator, tmp_path: Path, ticking
):
    bot = new_bot(console_sim, tmp_path / "g.sqlite3", snapshot_before_destroy="never")
    card = await run(bot, "switch orders-db to orders-replica")
    done = await run(bot, approve_line(card), user="U0BOB")
    back = next(a for a in done.actions if a.label.startswith("Switch back"))
    await asyncio.sleep(0.2)
    pending = await run(bot, back.command)
    bot.db.execute("UPDATE switch_backs SET expires_at = 0")
    late = await run(bot, approve_line(pending), user="U0BOB")
    assert late.status == "error" and "window to switch back has closed" in late.text
    assert count(console_sim, SWITCHES) == 1
    await bot.aclose()


async def test_a_refused_switch_back_can_be_used_again(
    console_sim: ConsoleSimulator, tmp_path: Path, ticking
):
    bot = new_bot(console_sim, tmp_path / "g.sqlite3", snapshot_before_destroy="never")
    card = await run(bot, "switch orders-db to orders-replica")
    done = await run(bot, approve_line(card), user="U0BOB")
    back = next(a for a in done.actions if a.label.startswith("Switch back"))
    await asyncio.sleep(0.2)
    pending = await run(bot, back.command)
    origin = console_sim.find_database("orders-db", "production")
    console_sim.set_locked(origin.id, True)
    refused = await run(bot, approve_line(pending), user="U0BOB")
    assert refused.status == "error" and "it is locked" in refused.text
    console_sim.set_locked(origin.id, False)
    retry = await run(bot, back.command)
    assert (await run(bot, approve_line(retry), user="U0BOB")).status == "ok"
    assert count(console_sim, SWITCHES) == 2
    await bot.aclose()
