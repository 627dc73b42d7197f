"""Shared fixtures: a Console simulator on a real loopback port, its client, a bot.

Shape variants: `console_sim` serves the documented/observed shapes unless the
test selects variants through the `console_shapes` fixture, e.g.
``@pytest.mark.parametrize("console_shapes", [("steps-named", "chains")])``;
tests/clients/ runs every client test against each variant (its conftest
parametrizes `console_shapes` and `v1_shapes` with `shape_params`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from bot.wiring import Bot, build_bot
from clients.graphenedb import ConsoleClient
from simulators.base import ManualClock, SimulatorServer
from simulators.graphenedb import ConsoleSimulator
from tests.support import ENVIRON, FAST_RETRY, SECRET, SECRET_ID, make_config


@pytest.fixture
def clock() -> ManualClock:
    """The one test clock: the simulators', the stores' and the trackers' (`.advance(s)`)."""
    return ManualClock()


def shape_params(simulator: type[SimulatorServer]) -> list[Any]:
    """The documented shapes, then each variant of `simulator` alone, as pytest params."""
    return [pytest.param((), id="documented")] + [
        pytest.param((name,), id=name) for name in simulator.SHAPES
    ]


@pytest.fixture
def console_shapes() -> tuple[str, ...]:
    """Shape variants the Console simulator serves (none: the documented shapes)."""
    return ()


@pytest.fixture
def v1_shapes() -> tuple[str, ...]:
    """Shape variants the v1 simulator serves (none: the documented shapes)."""
    return ()


@pytest.fixture
async def console_sim(
    clock: ManualClock, console_shapes: tuple[str, ...]
) -> AsyncIterator[ConsoleSimulator]:
    sim = ConsoleSimulator(
        client_id=SECRET_ID, client_secret=SECRET, step_seconds=1.0, shapes=console_shapes
    )
    sim.clock = clock
    await sim.start()
    try:
        yield sim
    finally:
        await sim.stop()


@pytest.fixture
async def console(console_sim: ConsoleSimulator) -> AsyncIterator[ConsoleClient]:
    client = ConsoleClient(
        "console",
        console_sim.base_url,
        SecretStr(SECRET_ID),
        SecretStr(SECRET),
        retry=FAST_RETRY,
        timeout=5.0,
    )
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
async def bot(console_sim: ConsoleSimulator, tmp_path: Path) -> AsyncIterator[Bot]:
    """A bot over the simulator with the demo policy (see bot/demo.py)."""
    from bot.demo import apply_demo_policy

    built = build_bot(
        make_config(console_sim.base_url, tmp_path / "bot.sqlite3"),
        environ=ENVIRON,
    )
    apply_demo_policy(built)
    try:
        yield built
    finally:
        await built.aclose()


@pytest.fixture
def fast_waits(monkeypatch: pytest.MonkeyPatch) -> None:
    """Waits inside commands (dr, the safety snapshot) poll every 10 ms."""
    from operations.follow import Backoff

    monkeypatch.setattr("commands.context.WAIT_BACKOFF", Backoff(first=0.01, factor=1.0, cap=0.01))


@pytest.fixture
async def ticking(clock: ManualClock) -> AsyncIterator[None]:
    """The simulators' clock advances 1 s every 5 ms while the test runs."""
    import asyncio

    async def tick() -> None:
        while True:
            await asyncio.sleep(0.005)
            clock.advance(1)

    task = asyncio.create_task(tick())
    yield
    task.cancel()
