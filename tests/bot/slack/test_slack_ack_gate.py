"""Acks first: command work waits while a Slack request is being acknowledged."""

from __future__ import annotations

import asyncio

from bot.slack.runtime import AckGate
from simulators.graphenedb import ConsoleSimulator
from tests.bot.slack.conftest import SlackHarness
from tests.waiting import until


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


async def test_steps_of_work_take_turns_after_a_request_that_arrived_meanwhile():
    """Two steps ready together: the second runs after the ack of a request read during
    the first, not straight after it (as `wait` alone would let it)."""
    gate = AckGate(max_wait=5.0)
    order: list[str] = []
    requests: list[asyncio.Task[None]] = []

    async def request() -> None:  # what SlackServer.events does while Bolt acks
        with gate.pending():
            await asyncio.sleep(0.01)
            order.append("ack")

    async def step(name: str, request_arrives: bool = False) -> None:
        await gate.turn()
        order.append(name)  # the synchronous step of work
        if request_arrives:  # a request read by the loop while this step ran
            asyncio.get_running_loop().call_soon(
                lambda: requests.append(asyncio.ensure_future(request()))
            )

    await asyncio.gather(step("step 1", request_arrives=True), step("step 2"))
    await asyncio.gather(*requests)
    assert order == ["step 1", "ack", "step 2"]


async def test_rendering_an_answer_waits_for_the_ack_in_flight(
    harness: SlackHarness, console_sim: ConsoleSimulator
) -> None:
    """A command's answer is rendered (a long table takes milliseconds of the event loop)
    only after the acks in flight: the Slack notifier takes its turn at the gate."""
    rt = harness.rt
    rt.acks.max_wait = 30.0
    rt.working_after = 60.0  # no "Working on …" notice rendered meanwhile
    order: list[str] = []
    waiting = asyncio.Event()
    take_turn = rt.notifier.turn
    assert take_turn is not None

    async def watched_turn() -> None:
        order.append("render waits")
        waiting.set()
        await take_turn()
        order.append("render goes")

    rt.notifier.turn = watched_turn
    console_sim.faults.latency = 0.3
    response = await harness.slack.slash("list")
    assert response.status_code == 200
    # The command's work is past its start (the API was asked): a request comes in now.
    await until(lambda: bool(console_sim.requests), what="the list request reached the API")
    with rt.acks.pending():
        await asyncio.wait_for(waiting.wait(), 10)
        order.append("ack sent")
    assert await rt.idle()
    assert order == ["render waits", "ack sent", "render goes"]
    assert [c for c in harness.standin.calls if c.method == "chat.postMessage"]
