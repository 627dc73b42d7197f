"""Acks first: command work waits while a Slack request is being acknowledged."""

from __future__ import annotations

import asyncio

from bot.slack.runtime import AckGate


async def test_work_waits_for_pending_acks_then_goes():
    gate = AckGate(max_wait=5.0)
    order: list[str] = []

    async def work() -> None:
        await gate.wait()
        order.append("work")

    with gate.pending():
        task = asyncio.create_task(work())
        await asyncio.sleep(0.05)
        order.append("ack")
    await task
    assert order == ["ack", "work"]


async def test_work_never_waits_longer_than_the_bound():
    gate = AckGate(max_wait=0.05)
    with gate.pending():
        await asyncio.wait_for(gate.wait(), 1.0)  # returns although the ack is still pending


async def test_no_pending_ack_means_no_wait():
    gate = AckGate(max_wait=5.0)
    await asyncio.wait_for(gate.wait(), 0.5)
