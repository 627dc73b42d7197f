"""HTTP: an aiohttp server for Slack's requests (HTTP mode), health and metrics.

Routes:
- `POST /slack/events`: slash commands, interactivity and events. The signature is
  checked here first (v0 HMAC-SHA256 of `v0:{timestamp}:{body}`, at most 5 minutes
  old: docs.slack.dev/authentication/verifying-requests-from-slack): 401 otherwise,
  logged in one line without the body (Bolt's own check would log the whole body;
  it is off, bot/slack/app.py). Slack's `ssl_check=1` probe is answered 200 with
  nothing done. The body is then read by bot/slack/edge.py: 400 with the reason for anything Slack
  would not send; the rest is dispatched to the Bolt app.
- `GET /healthz`: 200 `{"status": "ok", "store": true, ...}`; 503 when the SQLite
  store does not answer within a second (another process holding its write lock
  counts), or when Socket Mode is on and not connected (`socket_mode` tells its state).
- `GET /metrics`: Prometheus text (see bot/slack/metrics.py).
The approval expiry sweep, and the refresh of the user groups the policy names
(bot/slack/groups.py), run while the server does.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response
from slack_bolt.async_app import AsyncApp
from slack_sdk.signature import SignatureVerifier

from bot.slack.app import runtime
from bot.slack.edge import MalformedPayload, SlackRequest, payload_problem
from bot.slack.metrics import CONTENT_TYPE
from bot.slack.sweep import DEFAULT_SWEEP_SECONDS, sweep_forever
from bot.store import check_database, writable_within

log = logging.getLogger("graphops.slack")

EVENTS_PATH = "/slack/events"
STORE_SECONDS = 1.0


def _is_ssl_check(body: bytes) -> bool:
    """Slack's check of the certificate of a slash command's URL: a form with
    `ssl_check=1` and no command, answered 200 with nothing done (Slack's slash command
    docs: "you may ignore these requests, but please do respond with a HTTP 200 OK";
    Bolt's SslCheck middleware answers it before its signature check too)."""
    if len(body) > 1024 or b"ssl_check=1" not in body:
        return False
    fields = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
    return fields.get("ssl_check") == "1" and "command" not in fields


def store_answers(path: str, seconds: float = STORE_SECONDS) -> bool:
    """Whether the SQLite file at `path` takes a write lock within `seconds` (its own
    short connection: a busy store must not hold the bot's connection)."""
    return writable_within(path, seconds)


class SlackServer:
    """The Bolt app behind aiohttp, with /healthz, /metrics and the expiry sweep."""

    def __init__(
        self,
        app: AsyncApp,
        *,
        signing_secret: str | None = None,
        sweep_seconds: float | None = DEFAULT_SWEEP_SECONDS,
        socket_healthy: Callable[[], Awaitable[bool]] | None = None,
    ) -> None:
        """Serve `app` (made by build_app); requests are checked with `signing_secret`
        (default: the app's; empty: every request is refused); sweep every
        `sweep_seconds` (None: never); `socket_healthy` says whether Socket Mode is
        connected (None: HTTP mode)."""
        self.app = app
        self.rt = runtime(app)
        secret = signing_secret if signing_secret is not None else self.rt.signing_secret
        self.verifier = SignatureVerifier(secret) if secret else None
        self.sweep_seconds = sweep_seconds
        self.socket_healthy = socket_healthy
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
        """Everything Slack sends: signature, then shape, then the Bolt app. Only a
        signed request counts as an ack in flight (`AckGate.pending`): a connection that
        stalls before its body is read, or one that is not Slack's, never holds back
        command work (found by an attack: one stalled POST made every command wait the
        gate's 0.5 s at each step)."""
        data = await request.read()
        if _is_ssl_check(data):
            return web.Response(status=200)
        raw = self._signed_text(data, request.headers)
        if raw is None:
            log.info("refused a request with a bad or stale signature (%d bytes)", len(data))
            return web.json_response({"error": "invalid request"}, status=401)
        with self.rt.acks.pending():
            try:
                bolt_request = SlackRequest(
                    body=raw, query=request.query_string, headers=dict(request.headers)
                )
            except MalformedPayload as exc:
                log.warning("refused a malformed Slack request: %s", exc)
                return web.Response(status=400, text=f"malformed request: {exc}")
            problem = payload_problem(bolt_request.body)
            if problem is not None:
                log.warning("refused a malformed Slack request: %s", problem)
                return web.Response(status=400, text=f"malformed request: {problem}")
            bolt_response = await self.app.async_dispatch(bolt_request)
            return await to_aiohttp_response(bolt_response)

    def _signed_text(self, body: bytes, headers: Any) -> str | None:
        """`body` as text when it carries a valid v0 signature at most 5 minutes old,
        else None. What could not have come from Slack is refused before slack_sdk
        reads it, as its `int()`, float clock and `compare_digest` raise on it (a 500):
        a timestamp that is not a short number, a signature that is not ASCII, a body
        that is not UTF-8 (Slack's are; slack_sdk signs text)."""
        timestamp = headers.get("X-Slack-Request-Timestamp", "")
        signature = headers.get("X-Slack-Signature", "")
        if self.verifier is None or not signature.isascii():
            return None
        if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 12):
            return None
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            return None
        return text if self.verifier.is_valid(text, timestamp, signature) else None

    async def healthz(self, request: web.Request) -> web.Response:
        """200 when the store answers within a second (and Socket Mode, if on, is
        connected), else 503."""
        path = str(self.rt.bot.config.bot.database)
        if path == ":memory:":
            check = asyncio.to_thread(check_database, self.rt.bot.db)
        else:
            check = asyncio.to_thread(store_answers, path)
        try:
            store = await asyncio.wait_for(check, STORE_SECONDS + 0.5)
        except TimeoutError:
            store = False
        body: dict[str, Any] = {"store": store}
        healthy = store
        if self.socket_healthy is not None:
            connected = await self.socket_healthy()
            status = self.rt.socket_mode
            body["socket_mode"] = status.as_dict() if status else {"state": "unknown"}
            healthy = healthy and connected
        body["status"] = "ok" if healthy else "failing"
        return web.json_response(body, status=200 if healthy else 503)

    async def metrics(self, request: web.Request) -> web.Response:
        """The Prometheus exposition."""
        return web.Response(
            body=self.rt.metrics.exposition(), headers={"Content-Type": CONTENT_TYPE}
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
        self.rt.start_background()
        return self.url

    async def stop(self, seconds: float = 5.0, idle_seconds: float | None = None) -> None:
        """Stop the sweep and the server; let running listener work finish for
        `idle_seconds` (default `seconds`; `serve` has drained it already), then cancel it."""
        if self._sweep is not None:
            self._sweep.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweep
            self._sweep = None
        if not await self.rt.idle(seconds if idle_seconds is None else idle_seconds):
            for task in list(self.rt.tasks):
                task.cancel()
        self.rt.forget_later()  # answered requests whose rows met a locked store
        await self.rt.directory.aclose()
        await self.rt.stop_background()
        if self._runner is not None:
            await asyncio.wait_for(self._runner.cleanup(), seconds)
            self._runner = None
