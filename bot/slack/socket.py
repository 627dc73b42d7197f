"""Socket Mode: the app's WebSocket to Slack, reconnected with backoff, watched by /healthz.

Built on slack_sdk's aiohttp Socket Mode client and Bolt's handler
(api.slack.com/apis/connections/socket-implement): apps.connections.open with the
app-level token gives a WebSocket URL good for one connection; Slack greets with
`hello`, sends envelopes that are acknowledged by `envelope_id`, and asks for a new
connection with `disconnect` (`refresh_requested`, `warning`...).

What graphops changes: the SDK client retries a failed connection every few seconds,
forever, each time with a full traceback. Here each attempt is one line in the log
(what failed, when the next attempt is), attempts back off exponentially (1 s doubling
to a minute, with jitter), a fresh URL is asked for each time, and the state is kept in
`SocketModeStatus` for /healthz (connected only after Slack's `hello`). The client logs
at INFO at most (its DEBUG lines would print whole payloads). Envelopes whose payload
is malformed are acknowledged and dropped with one log line, as HTTP mode answers 400.
`close()` is bounded, so SIGTERM stops the bot within seconds even mid-backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from typing import Any

import aiohttp
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.socket_mode.aiohttp import SocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse
from slack_sdk.web.async_client import AsyncWebClient

from bot.slack.edge import payload_problem
from bot.slack.notifier import slack_error
from bot.slack.runtime import SocketModeStatus

log = logging.getLogger("graphops.slack.socket")
log.setLevel(logging.INFO)  # never DEBUG: the SDK's debug lines hold whole payloads

FIRST_DELAY = 1.0
MAX_DELAY = 60.0
CLOSE_SECONDS = 3.0


def describe(exc: BaseException) -> str:
    """One line for a failed connection attempt (no body, no token)."""
    if isinstance(exc, SlackApiError):
        return f"apps.connections.open: {slack_error(exc)}"
    text = str(exc).splitlines()[0][:160] if str(exc) else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class ResilientSocketModeClient(SocketModeClient):
    """slack_sdk's aiohttp client with backoff, one-line failures and a status."""

    def __init__(
        self,
        app_token: str,
        *,
        web_client: AsyncWebClient,
        status: SocketModeStatus,
        ping_interval: float = 10,
    ) -> None:
        super().__init__(
            app_token=app_token, logger=log, web_client=web_client, ping_interval=ping_interval
        )
        self.status = status
        self.delay = FIRST_DELAY
        self.connected_at = 0.0
        self.message_listeners.append(self._on_message)

    async def _on_message(self, client: Any, message: dict[str, Any], raw: str | None) -> None:
        if message.get("type") == "hello":
            self.status.connections += 1
            self.status.set("connected")
            self.delay = FIRST_DELAY
            log.info("Socket Mode: connected (hello received)")
        elif message.get("type") == "disconnect":
            self.status.set("connecting")
            log.info("Socket Mode: Slack asked to reconnect (%s)", message.get("reason"))

    async def issue_new_wss_url(self) -> str:
        """A WebSocket URL from apps.connections.open (failures raised, logged by connect)."""
        response = await self.web_client.apps_connections_open(app_token=self.app_token)
        return str(response["url"])

    async def connect_to_new_endpoint(self, force: bool = False) -> None:
        """Reconnect (with a fresh URL) unless another reconnection did it meanwhile (Slack's
        `disconnect` and the closing of the socket both ask for one)."""
        asked_at = time.monotonic()
        acquired = False
        try:
            with contextlib.suppress(TimeoutError):
                acquired = await asyncio.wait_for(self.connect_operation_lock.acquire(), 5)
            if self.connected_at > asked_at and await self.is_connected():
                return
            if force or (acquired and not await self.is_connected()):
                self.wss_uri = None
                await self.connect()
        finally:
            if acquired:
                self.connect_operation_lock.release()

    async def connect(self) -> None:
        """Connect, retrying with backoff until connected or closed."""
        while not self.closed:
            self.status.attempts += 1
            try:
                await self._connect_once()
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if self.closed:
                    return
                wait = self.delay * (0.5 + random.random() / 2)
                self.status.set("retrying", describe(exc))
                log.warning(
                    "Socket Mode: cannot connect (%s); next attempt in %.1f s",
                    describe(exc),
                    wait,
                )
                self.wss_uri = None
                self.delay = min(MAX_DELAY, self.delay * 2)
                await asyncio.sleep(wait)

    async def _connect_once(self) -> None:
        """One attempt: a URL, a WebSocket, and the SDK's monitor and receiver on it."""
        self.status.set("connecting")
        self.auto_reconnect_enabled = False
        old = self.current_session
        if old is not None:
            with contextlib.suppress(Exception):
                await old.close()
        if self.aiohttp_client_session.closed:
            self.aiohttp_client_session = aiohttp.ClientSession()
        if self.wss_uri is None:
            self.wss_uri = await self.issue_new_wss_url()
        session = await self.aiohttp_client_session.ws_connect(
            self.wss_uri,
            autoping=False,
            heartbeat=self.ping_interval,
            proxy=self.proxy,
            ssl=self.web_client.ssl if self.web_client.ssl is not None else True,
        )
        self.wss_uri = None  # a URL is good for one connection
        self.current_session = session
        self.connected_at = time.monotonic()
        self.auto_reconnect_enabled = self.default_auto_reconnect_enabled
        self.stale = False
        await session.ping(f"sdk-ping-pong:{time.time()}".encode())
        for running in (self.current_session_monitor, self.message_receiver):
            if running is not None:
                running.cancel()
        self.current_session_monitor = asyncio.ensure_future(self.monitor_current_session())
        self.message_receiver = asyncio.ensure_future(self.receive_messages())

    async def healthy(self) -> bool:
        """Connected: greeted by Slack and the WebSocket still open."""
        return self.status.state == "connected" and await self.is_connected()


class SocketModeHandler(AsyncSocketModeHandler):
    """Bolt's Socket Mode handler over `ResilientSocketModeClient`."""

    def __init__(
        self, app: AsyncApp, app_token: str, status: SocketModeStatus, ping_interval: float = 10
    ) -> None:
        self.app = app
        self.app_token = app_token
        self.status = status
        self.resilient = ResilientSocketModeClient(
            app_token,
            web_client=app.client,
            status=status,
            ping_interval=ping_interval,
        )
        self.client = self.resilient
        self.client.socket_mode_request_listeners.append(self.handle)  # type: ignore[arg-type]
        self._connecting: asyncio.Task[None] | None = None

    async def handle(self, client: SocketModeClient, req: SocketModeRequest) -> None:  # type: ignore[override]
        """Dispatch an envelope to the app (a malformed one is acknowledged and dropped)."""
        payload = req.payload if isinstance(req.payload, dict) else None
        problem = payload_problem(payload) if payload is not None else "not a JSON object"
        if problem:
            log.warning("Socket Mode: malformed %s envelope dropped: %s", req.type, problem)
            await client.send_socket_mode_response(SocketModeResponse(envelope_id=req.envelope_id))
            return
        await super().handle(client, req)

    async def healthy(self) -> bool:
        """Connected: greeted by Slack and the WebSocket still open."""
        return await self.resilient.healthy()

    def start_connecting(self) -> None:
        """Connect in the background (retrying with backoff); returns at once."""
        self._connecting = asyncio.ensure_future(self.resilient.connect())

    async def close(self, seconds: float = CLOSE_SECONDS) -> None:
        """Stop connecting and close the connection, within `seconds`."""
        self.status.set("closed")
        self.client.closed = True
        if self._connecting is not None:
            self._connecting.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._connecting
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.client.close(), seconds)
