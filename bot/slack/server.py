"""HTTP mode: an aiohttp server for Slack's requests, health and metrics.

Routes:
- `POST /slack/events`: slash commands, interactivity and events, dispatched to
  the Bolt app through its aiohttp adapter; Bolt verifies the signature and
  answers 401 to a forged one or one older than 5 minutes;
- `GET /healthz`: 200 `{"status": "ok", "store": true}`, or 503 when the SQLite
  store does not answer;
- `GET /metrics`: Prometheus text (see bot/slack/metrics.py).
The approval expiry sweep runs while the server does.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncApp

from bot.slack.app import runtime
from bot.slack.metrics import CONTENT_TYPE
from bot.slack.sweep import DEFAULT_SWEEP_SECONDS, sweep_forever
from bot.store import check_database

EVENTS_PATH = "/slack/events"


class SlackServer:
    """The Bolt app behind aiohttp, with /healthz, /metrics and the expiry sweep."""

    def __init__(
        self, app: AsyncApp, *, sweep_seconds: float | None = DEFAULT_SWEEP_SECONDS
    ) -> None:
        """Serve `app` (made by build_app); sweep every `sweep_seconds` (None: never)."""
        self.app = app
        self.rt = runtime(app)
        self.sweep_seconds = sweep_seconds
        self._runner: web.AppRunner | None = None
        self._sweep: asyncio.Task[Any] | None = None
        self.url: str | None = None

    def make_app(self) -> web.Application:
        """The aiohttp application."""
        web_app = web.Application()
        web_app.add_routes(
            [
                web.post(EVENTS_PATH, self.events),
                web.get("/healthz", self.healthz),
                web.get("/metrics", self.metrics),
            ]
        )
        return web_app

    async def events(self, request: web.Request) -> web.Response:
        """Everything Slack sends (signature checked by Bolt)."""
        with self.rt.acks.pending():
            try:
                bolt_request = await to_bolt_request(request)
            except (ValueError, TypeError, AttributeError):  # e.g. JSON type, body not an object
                return web.Response(status=400, text="malformed request body")
            bolt_response = await self.app.async_dispatch(bolt_request)
            return await to_aiohttp_response(bolt_response)

    async def healthz(self, request: web.Request) -> web.Response:
        """200 when the store answers, else 503."""
        ok = await asyncio.to_thread(check_database, self.rt.bot.db)
        return web.json_response(
            {"status": "ok" if ok else "failing", "store": ok}, status=200 if ok else 503
        )

    async def metrics(self, request: web.Request) -> web.Response:
        """The Prometheus exposition."""
        return web.Response(
            body=self.rt.metrics.exposition().encode(), headers={"Content-Type": CONTENT_TYPE}
        )

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Listen on `host:port` (0: any free port), start the sweep; return the base URL."""
        runner = web.AppRunner(self.make_app(), access_log=None, handle_signals=False)
        await runner.setup()
        await web.TCPSite(runner, host, port).start()
        self._runner = runner
        address = runner.addresses[0]
        self.url = f"http://{address[0]}:{address[1]}"
        if self.sweep_seconds is not None:
            self._sweep = asyncio.create_task(sweep_forever(self.rt, self.sweep_seconds))
        return self.url

    async def stop(self) -> None:
        """Stop the sweep and the server; let running listener work finish briefly."""
        if self._sweep is not None:
            self._sweep.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweep
            self._sweep = None
        if self.rt.tasks:
            await asyncio.wait(list(self.rt.tasks), timeout=5.0)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
