"""Acks first: command work waits while a Slack request is being acknowledged."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from bot.slack.runtime import AckGate, OldestFirst
from clients.http import HttpApi
from simulators.graphenedb import ConsoleSimulator
from tests.bot.slack.conftest import SlackHarness


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


async def test_work_started_while_acks_are_in_flight_starts_after_them_in_order():
    """`after_acks`: under a burst, the tasks of the work (and their first steps) come
    after the acks, not between them."""
    gate = AckGate(max_wait=30.0)
    started: list[str] = []
    done = asyncio.Event()

    def start(name: str) -> None:
        started.append(name)
        if len(started) == 3:
            done.set()

    with gate.pending():
        with gate.pending():
            gate.after_acks(lambda: start("a"))
        gate.after_acks(lambda: start("b"))
        gate.after_acks(lambda: start("c"))
        await asyncio.sleep(0)
        assert started == []  # one request is still in flight
    assert started == []  # not before this request's response is written
    await asyncio.wait_for(done.wait(), 5.0)
    assert started == ["a", "b", "c"]
    gate.after_acks(lambda: started.append("now"))  # nothing in flight: at once
    assert started[-1] == "now"


async def test_work_starts_after_the_bound_while_requests_keep_arriving():
    gate = AckGate(max_wait=0.05)
    done = asyncio.Event()
    with gate.pending():  # never answered within the bound
        gate.after_acks(done.set)
        await asyncio.wait_for(done.wait(), 5.0)


async def test_a_listeners_work_is_not_started_while_its_ack_is_in_flight(
    harness: SlackHarness,
) -> None:
    rt = harness.rt
    ran = asyncio.Event()

    async def work() -> None:
        ran.set()

    with rt.acks.pending():
        rt.work(None, work())
        await asyncio.sleep(0)
        assert not rt.tasks and not ran.is_set()
    await asyncio.wait_for(ran.wait(), 5.0)


async def test_a_stalled_connection_that_is_not_slack_holds_back_no_work(
    harness: SlackHarness,
) -> None:
    """Found by an attack: a POST that stalls before its body is read counted as an ack
    in flight, so every command waited the gate's bound at each step. Only a signed
    request counts: with the bound out of reach, a command is still answered."""
    rt = harness.rt
    rt.acks.max_wait = 600.0  # were the stalled POST counted, nothing would run
    assert harness.server.url is not None
    host, port = harness.server.url.removeprefix("http://").split(":")
    _, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(b"POST /slack/events HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nab")
        await writer.drain()
        await harness.slack.slash("help")
        await harness.standin.wait_for("response_url", timeout=20)
        assert await rt.idle(20)
    finally:
        writer.close()


async def test_a_drain_waits_for_work_held_back_for_the_acks(harness: SlackHarness) -> None:
    """Found by an attack: SIGTERM's drain (`idle`) saw no task for work that
    `after_acks` still held back, and the store was closed under it once it started."""
    rt = harness.rt
    rt.acks.max_wait = 600.0
    ran = asyncio.Event()

    async def work() -> None:
        ran.set()

    with rt.acks.pending():  # a request still in flight when the drain begins
        rt.work(None, work())
        drained = asyncio.create_task(rt.idle(20))
    assert await drained
    assert ran.is_set()  # waited for, not found idle before it started


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


async def test_the_work_after_an_api_answer_waits_for_the_ack_in_flight(
    harness: SlackHarness, console_sim: ConsoleSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A command's work goes on after its API answer (the models, audit rows, the reply
    and its rendering: milliseconds of the event loop) only after the acks in flight:
    it takes its turn at the gate (core.turns, clients/http.py), and nothing is posted
    before the ack."""
    rt = harness.rt
    rt.acks.max_wait = 30.0
    rt.working_after = 60.0  # no "Working on …" notice meanwhile
    order: list[str] = []
    armed = False
    waiting = asyncio.Event()
    turn = rt.acks.turn

    async def watched_turn() -> None:
        if not armed or waiting.is_set():
            await turn()
            return
        order.append("work waits")
        waiting.set()
        await turn()
        order.append("work goes")

    rt.acks.turn = watched_turn  # type: ignore[method-assign]

    def posted() -> bool:
        return any(c.method == "chat.postMessage" for c in harness.standin.calls)

    asked = asyncio.Event()
    send_once = HttpApi._send_once

    async def watched_send(self: HttpApi, method: str, path: str, **kwargs: Any) -> Any:
        if path.endswith("/databases"):
            asked.set()
        return await send_once(self, method, path, **kwargs)

    monkeypatch.setattr(HttpApi, "_send_once", watched_send)
    console_sim.faults.latency = 0.3
    response = await harness.slack.slash("list")
    assert response.status_code == 200
    # The command's work is past its start (the API is being asked): a request comes in.
    await asyncio.wait_for(asked.wait(), 10)
    with rt.acks.pending():
        armed = True
        await asyncio.wait_for(waiting.wait(), 10)
        order.append("ack sent")
        assert not posted()
    assert await rt.idle()
    assert order == ["work waits", "ack sent", "work goes"]
    assert posted()


def lane_users(lane: OldestFirst, release: asyncio.Event, order: list[str]) -> tuple[Any, Any]:
    """A holder of `lane` until `release` is set, and steps that note their name in
    `order` once they hold it."""

    async def holder() -> None:
        async with lane.held(0):
            await release.wait()

    async def step(name: str, seniority: float) -> None:
        async with lane.held(seniority):
            order.append(name)

    return holder, step


async def test_turns_go_to_the_oldest_work_first():
    """Steps waiting for a turn get it oldest work first (then first come), not in the
    order they asked: a command further along answers before newer ones."""
    lane, release, order = OldestFirst(), asyncio.Event(), list[str]()
    holder, step = lane_users(lane, release, order)
    first = asyncio.create_task(holder())
    await asyncio.sleep(0)
    waiting = [
        asyncio.create_task(step(name, seniority))
        for name, seniority in (("new", 5), ("old", 1), ("background", float("inf")), ("new2", 5))
    ]
    await asyncio.sleep(0)
    assert order == []  # all wait for the holder
    release.set()
    await asyncio.gather(first, *waiting)
    assert order == ["old", "new", "new2", "background"]


async def test_a_cancelled_waiter_neither_blocks_nor_loses_the_lane():
    lane, release, got = OldestFirst(), asyncio.Event(), list[str]()
    holder, step = lane_users(lane, release, got)
    first = asyncio.create_task(holder())
    await asyncio.sleep(0)
    doomed = asyncio.create_task(step("cancelled", 1))
    later = asyncio.create_task(step("later", 2))
    await asyncio.sleep(0)
    doomed.cancel()  # cancelled while waiting: skipped
    release.set()
    await first
    await asyncio.wait_for(later, 1.0)
    assert got == ["later"]
    handed = asyncio.create_task(step("handed", 1))
    async with lane.held(0):
        await asyncio.sleep(0)  # `handed` waits
    handed.cancel()  # handed the lane and cancelled before it ran: it gives it back
    await asyncio.gather(handed, return_exceptions=True)
    await asyncio.wait_for(step("after", 1), 1.0)
    assert got == ["later", "after"]


async def test_work_enlisted_first_takes_its_turn_first():
    """Work ranks in the order it was enlisted (the order Slack requests were
    accepted), whatever order its steps ask for a turn in."""
    gate = AckGate(max_wait=5.0)
    order: list[str] = []
    asks = {name: asyncio.Event() for name in "abc"}

    async def command(name: str) -> None:
        gate.enlist()
        await asks[name].wait()
        await gate.turn()
        order.append(name)

    tasks = [asyncio.create_task(command(name)) for name in "abc"]
    await asyncio.sleep(0)
    async with gate._lane.held(-1):  # a step of other work runs meanwhile
        for name in "cba":  # newest asks first
            asks[name].set()
            await asyncio.sleep(0)
    await asyncio.gather(*tasks)
    assert order == ["a", "b", "c"]  # first come (FIFO) would be c, b, a
