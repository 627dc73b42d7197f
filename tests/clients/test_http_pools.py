"""Connection pools per provider (issue 17): sized by `[[providers]] max_connections`,
and a person's request never queues behind background polls (clients/http.py)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from bot.config import ConfigError, parse_config
from bot.wiring import build_bot
from clients.http import DEFAULT_MAX_CONNECTIONS, HttpApi, interactive

CONFIG = """
[bot]
admins = ["U0ADMIN"]

[[providers]]
name = "console"
kind = "graphenedb"
base_url = "https://api.db.graphenedb.com/"
client_id_env = "GDB_ID"
client_secret_env = "GDB_SECRET"
{extra}
"""


class Held:
    """A server whose /slow answers only when released; /fast answers at once."""

    def __init__(self) -> None:
        self.arrived = asyncio.Event()
        self.release = asyncio.Event()
        self.url = ""

    async def slow(self, request: web.Request) -> web.Response:
        self.arrived.set()
        await self.release.wait()
        return web.json_response({"slow": True})

    async def fast(self, request: web.Request) -> web.Response:
        return web.json_response({"fast": True})


@pytest.fixture
async def held() -> AsyncIterator[Held]:
    server = Held()
    app = web.Application()
    app.router.add_get("/slow", server.slow)
    app.router.add_get("/fast", server.fast)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    server.url = f"http://127.0.0.1:{port}"
    try:
        yield server
    finally:
        server.release.set()
        await runner.cleanup()


async def test_a_person_is_not_queued_behind_background_requests(held: Held):
    api = HttpApi("p", held.url, max_connections=1, timeout=3.0)
    try:
        poll = asyncio.ensure_future(api.request("GET", "/slow", retry=False))
        await held.arrived.wait()  # the one background connection is busy now
        with interactive():
            answer = await api.request("GET", "/fast", retry=False)
        assert answer.json() == {"fast": True}
        assert not poll.done()  # it was still holding the background pool
        held.release.set()
        assert (await poll).json() == {"slow": True}
    finally:
        await api.aclose()


def test_max_connections_default_and_setting():
    assert parse_config(CONFIG.format(extra="")).providers[0].max_connections == 100
    assert DEFAULT_MAX_CONNECTIONS == 100  # bot/config.py's default says the same
    config = parse_config(CONFIG.format(extra="max_connections = 250"))
    assert config.providers[0].max_connections == 250


@pytest.mark.parametrize("value", ["0", "-3", "5000", '"many"'])
def test_max_connections_must_be_a_sane_number(value: str):
    with pytest.raises(ConfigError) as caught:
        parse_config(CONFIG.format(extra=f"max_connections = {value}"))
    assert "providers[0].max_connections" in str(caught.value)


async def test_the_setting_reaches_the_pools(tmp_path):
    config = parse_config(CONFIG.format(extra="max_connections = 7"))
    config = config.model_copy(
        update={"bot": config.bot.model_copy(update={"database": str(tmp_path / "b.sqlite3")})}
    )
    bot = build_bot(config, environ={"GDB_ID": "i", "GDB_SECRET": "s"})
    try:
        api = bot.services.providers["console"].client.api  # type: ignore[attr-defined]
        assert api.max_connections == 7
        assert api.client is not api.interactive_client
    finally:
        await bot.aclose()
