"""Fixtures: a Console simulator on a real loopback port with a manual clock."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from simulators.base import ManualClock
from simulators.graphenedb import TOKEN_PATH, ConsoleSimulator


@pytest.fixture
async def sim(clock: ManualClock) -> AsyncIterator[ConsoleSimulator]:
    s = ConsoleSimulator(step_seconds=1.0)
    s.clock = clock
    await s.start()
    try:
        yield s
    finally:
        await s.stop()


@pytest.fixture
async def client(sim: ConsoleSimulator) -> AsyncIterator[httpx.AsyncClient]:
    """An unauthenticated client."""
    async with httpx.AsyncClient(base_url=sim.base_url, timeout=5) as c:
        yield c


@pytest.fixture
async def api(sim: ConsoleSimulator) -> AsyncIterator[httpx.AsyncClient]:
    """A client carrying a valid bearer token."""
    async with httpx.AsyncClient(base_url=sim.base_url, timeout=5) as c:
        creds = {
            "client_id": sim.client_id,
            "client_secret": sim.client_secret,
            "grant_type": "client_credentials",
        }
        r = await c.post(TOKEN_PATH, data=creds)
        assert r.status_code == 201
        c.headers["Authorization"] = f"Bearer {r.json()['access_token']}"
        yield c
