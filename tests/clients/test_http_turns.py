"""core.turns in the HTTP layer: after an answer, a command's work waits for its turn."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from clients.http import HttpApi
from core.turns import take_turn, taking_turns
from tests.waiting import until


@pytest.fixture
async def url() -> AsyncIterator[str]:
    async def ok(request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_get("/ok", ok)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield f"http://127.0.0.1:{port}"
    await runner.cleanup()


async def test_an_answer_is_handed_back_in_the_callers_turn(url: str) -> None:
    """Inside `taking_turns`, `HttpApi.request` returns only after the turn function let
    it (the Slack runtime's: after the acks in flight); outside, no turn is asked."""
    api = HttpApi("console", url)
    gate = asyncio.Event()
    turns: list[str] = []

    async def turn() -> None:
        turns.append("asked")
        await gate.wait()

    try:
        with taking_turns(turn):
            request = asyncio.ensure_future(api.request("GET", "/ok"))
            # the answer came; the request waits for its turn
            await until(lambda: bool(turns) or request.done(), what="the turn asked")
            assert turns and not request.done()
            gate.set()
            assert (await request).json() == {"ok": True}
        assert turns == ["asked"]
        assert (await api.request("GET", "/ok")).status_code == 200
        assert turns == ["asked"]  # outside taking_turns: none asked
        await take_turn()  # and take_turn alone does nothing there
    finally:
        await api.aclose()


async def test_the_time_reported_for_a_call_is_the_apis_not_the_turns(url: str) -> None:
    """The call is reported (audit, metrics: its duration) before the turn is asked, so
    waiting for acks never counts as API latency."""
    events: list[str] = []
    api = HttpApi("console", url, on_call=lambda record: events.append("reported"))

    async def turn() -> None:
        events.append("turn")

    try:
        with taking_turns(turn):
            assert (await api.request("GET", "/ok")).status_code == 200
        assert events == ["reported", "turn"]
    finally:
        await api.aclose()
