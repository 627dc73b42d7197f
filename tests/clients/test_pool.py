"""`clients.pool`: httpcore's pool decisions, in linear time, over real loopback sockets."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpcore
import httpx
import pytest
from aiohttp import web

from clients.http import HttpApi
from clients.pool import LeanConnectionPool, lean_transport


class Server:
    """A loopback HTTP server that answers after `delay` and records each request's
    client connection (host, port)."""

    def __init__(self, delay: float = 0.02) -> None:
        self.delay = delay
        self.peers: list[tuple[str, int]] = []
        self.in_flight = 0
        self.most_in_flight = 0
        self.runner: web.AppRunner | None = None
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        peer = request.transport.get_extra_info("peername") if request.transport else None
        self.peers.append((str(peer[0]), int(peer[1])) if peer else ("?", 0))
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await asyncio.sleep(self.delay)
        finally:
            self.in_flight -= 1
        return web.json_response({"ok": True})

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/ping", self.handle)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()


def counted(monkeypatch: pytest.MonkeyPatch, cls: type, name: str) -> list[int]:
    """Count the calls of `cls.name` from now on (the list's one item)."""
    calls = [0]
    original = getattr(cls, name)

    def counting(self: Any, *args: Any) -> Any:
        calls[0] += 1
        return original(self, *args)

    monkeypatch.setattr(cls, name, counting)
    return calls


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    s = Server()
    await s.start()
    yield s
    await s.stop()


def test_the_provider_pool_is_the_lean_one() -> None:
    api = HttpApi("console", "http://127.0.0.1:1")
    transport = api.client._transport
    assert isinstance(transport, httpx.AsyncHTTPTransport)
    assert type(transport._pool) is LeanConnectionPool


async def test_requests_beyond_the_pool_queue_and_all_succeed_on_few_connections(
    server: Server,
) -> None:
    limits = httpx.Limits(max_connections=3, max_keepalive_connections=3)
    async with httpx.AsyncClient(transport=lean_transport(limits)) as client:
        answers = await asyncio.gather(*(client.get(server.url + "/ping") for _ in range(30)))
        assert [a.status_code for a in answers] == [200] * 30
        assert server.most_in_flight <= 3
        assert len(set(server.peers)) == 3  # kept alive and reused, never more than the pool
        # later requests go over the same kept-alive connections
        for _ in range(5):
            assert (await client.get(server.url + "/ping")).status_code == 200
        assert len(set(server.peers)) == 3


async def test_surplus_idle_connections_are_closed_as_upstream(server: Server) -> None:
    """Above max_keepalive_connections, idle connections are let go (httpcore's rule)."""
    limits = httpx.Limits(max_connections=4, max_keepalive_connections=1)
    async with httpx.AsyncClient(transport=lean_transport(limits)) as client:
        await asyncio.gather(*(client.get(server.url + "/ping") for _ in range(4)))
        assert len(set(server.peers)) == 4
        pool = client._transport._pool  # type: ignore[attr-defined]
        assert isinstance(pool, LeanConnectionPool)
        await client.get(server.url + "/ping")
        assert len(pool.connections) <= 1


async def test_bookkeeping_is_linear_in_idle_connections(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With n idle connections httpcore's own pool calls `is_idle` n x n times per
    request; the lean pool looks at each connection a few times, even when the
    request falls on a sweep of the whole pool."""
    n = 40
    monkeypatch.setattr("clients.pool.SWEEP_SECONDS", 0.0)  # every pass sweeps
    limits = httpx.Limits(max_connections=n, max_keepalive_connections=n)
    async with httpx.AsyncClient(transport=lean_transport(limits)) as client:
        await asyncio.gather(*(client.get(server.url + "/ping") for _ in range(n)))
        assert len(set(server.peers)) == n
        looks = [
            counted(monkeypatch, httpcore.AsyncHTTPConnection, name)
            for name in ("is_idle", "is_closed", "is_available", "has_expired")
        ]
        assert (await client.get(server.url + "/ping")).status_code == 200
        assert 0 < sum(c[0] for c in looks) <= 8 * n, looks


async def test_a_burst_over_idle_connections_goes_round_the_pool_once_per_request(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each idle connection goes to one waiting request: no request is handed a
    connection another took (ConnectionNotAvailable) and sent round the pool again."""
    n = 30
    limits = httpx.Limits(max_connections=n, max_keepalive_connections=n)
    async with httpx.AsyncClient(transport=lean_transport(limits)) as client:
        await asyncio.gather(*(client.get(server.url + "/ping") for _ in range(n)))
        passes = counted(monkeypatch, LeanConnectionPool, "_assign_requests_to_connections")
        answers = await asyncio.gather(*(client.get(server.url + "/ping") for _ in range(n)))
        assert [a.status_code for a in answers] == [200] * n
        assert passes[0] == 2 * n  # one when queued, one when its response is closed
        assert len(set(server.peers)) == n  # the burst reused the kept-alive connections


async def test_asking_sockets_whether_the_server_closed_them_is_bounded(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`has_expired` (a poll() of the socket for an idle connection) is asked of the
    whole pool at most every SWEEP_SECONDS, and of a connection before it is handed
    out: a request over n idle connections asks a few times, not 2 x n (issue 17)."""
    n = 40
    limits = httpx.Limits(max_connections=n, max_keepalive_connections=n)
    async with httpx.AsyncClient(transport=lean_transport(limits)) as client:
        await asyncio.gather(*(client.get(server.url + "/ping") for _ in range(n)))
        await client.get(server.url + "/ping")  # the sweep of this second is done
        calls = counted(monkeypatch, httpcore.AsyncHTTPConnection, "has_expired")
        monkeypatch.setattr("clients.pool.SWEEP_SECONDS", 3600.0)
        for _ in range(5):
            assert (await client.get(server.url + "/ping")).status_code == 200
        assert 0 < calls[0] <= 5 * 2, calls


async def test_an_idle_connection_the_server_closed_is_never_handed_out(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Between sweeps, a kept-alive connection the server has closed meanwhile is
    seen before use and replaced: the request succeeds on a new connection."""
    monkeypatch.setattr("clients.pool.SWEEP_SECONDS", 3600.0)
    closers: list[asyncio.StreamWriter] = []
    peers: list[int] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peers.append(writer.get_extra_info("peername")[1])
        closers.append(writer)
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            if not head:
                return
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            await writer.drain()

    srv = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = srv.sockets[0].getsockname()[1]
    limits = httpx.Limits(max_connections=2, max_keepalive_connections=2)
    try:
        async with httpx.AsyncClient(transport=lean_transport(limits)) as client:
            assert (await client.get(f"http://127.0.0.1:{port}/")).text == "ok"
            for writer in closers:  # the server closes the kept-alive connection
                writer.close()
                await writer.wait_closed()
            assert (await client.get(f"http://127.0.0.1:{port}/")).text == "ok"
            assert len(set(peers)) == 2  # a new connection, not the closed one
    finally:
        srv.close()


async def test_requests_queued_behind_a_full_busy_pool_cost_linear_bookkeeping(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When every connection is busy and requests wait, a pass over the pool looks at
    each connection a bounded number of times however many requests wait (it used to
    sweep the pool once per waiting request: 2.6x the CPU a request under a tracker
    whose polls outnumbered the connections, bench/tracker.py)."""
    n, requests = 10, 60
    limits = httpx.Limits(max_connections=n, max_keepalive_connections=n)
    async with httpx.AsyncClient(transport=lean_transport(limits), timeout=30) as client:
        await asyncio.gather(*(client.get(server.url + "/ping") for _ in range(n)))
        looks = counted(monkeypatch, httpcore.AsyncHTTPConnection, "is_closed")
        searches = counted(monkeypatch, LeanConnectionPool, "_available")
        passes = counted(monkeypatch, LeanConnectionPool, "_assign_requests_to_connections")
        answers = await asyncio.gather(*(client.get(server.url + "/ping") for _ in range(requests)))
        assert [a.status_code for a in answers] == [200] * requests
        assert server.most_in_flight <= n
        assert 0 < looks[0] <= 2 * n * passes[0], (looks, passes)
        # a search for a free connection per request served, and one per pass that
        # finds the pool busy (not one per waiting request)
        assert searches[0] <= requests + passes[0], (searches, passes)
