"""Shared fixtures: a Console simulator on a real loopback port, its client, a bot."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from bot.wiring import Bot, build_bot
from clients.graphenedb import ConsoleClient
from simulators.base import ManualClock
from simulators.graphenedb import ConsoleSimulator
from tests.support import ENVIRON, FAST_RETRY, SECRET, SECRET_ID, make_config


@pytest.fixture
def clock() -> ManualClock:
    """The one test clock: the simulators', the stores' and the trackers' (`.advance(s)`)."""
    return ManualClock()


@pytest.fixture
async def console_sim(clock: ManualClock) -> AsyncIterator[ConsoleSimulator]:
    sim = ConsoleSimulator(client_id=SECRET_ID, client_secret=SECRET, step_seconds=1.0)
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
    from bot.files import open_local_or_url

    built = build_bot(
        make_config(console_sim.base_url, tmp_path / "bot.sqlite3"),
        environ=ENVIRON,
        open_file=open_local_or_url,
    )
    apply_demo_policy(built)
    try:
        yield built
    finally:
        await built.aclose()
