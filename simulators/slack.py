"""A small stand-in for the Slack Web API, for tests and benchmarks.

An aiohttp server on 127.0.0.1 answering `POST /api/<method>` (form or JSON
bodies; GET with a query for the few methods slack_sdk sends so), with
`Authorization: Bearer <token>`. Every call is recorded as
`SlackCall(method, body)`; JSON-encoded form fields (`blocks`, `view`) are
parsed back. Answers are `{"ok": true, ...}` with plausible fields: increasing
`ts` for chat.postMessage, `message_ts` for chat.postEphemeral, a view id for
views.*, the configured channels for users.conversations and groups for
usergroups.users.list, a bot identity for auth.test. Unknown methods answer
`{"ok": false, "error": "unknown_method"}` (HTTP 200, as Slack does).

Faults: `fail_next(method, status=429, times=k, retry_after=N)` answers the next
k calls of a method (or "*") with that status (`Retry-After: N` on 429) and
`{"ok": false, "error": "ratelimited"}` (or "fatal_error" for 5xx); `latency`
delays every call. Point a client at it with
`AsyncWebClient(token=..., base_url=standin.api_url)`.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

JSON_FIELDS = ("blocks", "view", "attachments")


@dataclass
class SlackCall:
    """One recorded Web API call."""

    method: str
    body: dict[str, Any]
    status: int
    at: float
    authorized: bool


@dataclass
class _Fault:
    method: str
    status: int
    times: int
    retry_after: int


@dataclass
class SlackStandIn:
    """The stand-in server; see the module docstring."""

    token: str | None = None  # when set, other bearer tokens get invalid_auth
    channels: list[str] = field(default_factory=list)  # users.conversations
    usergroups: dict[str, list[str]] = field(default_factory=dict)
    latency: float = 0.0
    calls: list[SlackCall] = field(default_factory=list)
    bot_user_id: str = "U0GRAPHOPS"
    _faults: list[_Fault] = field(default_factory=list)
    _runner: web.AppRunner | None = None
    _ts: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    url: str = ""

    # -- lifecycle ------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Listen on loopback; return the base URL (the API is under `/api/`)."""
        app = web.Application()
        app.router.add_route("*", "/api/{method}", self._handle)
        app.router.add_get("/_standin/calls", self._list_calls)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        await web.TCPSite(runner, host, port).start()
        self._runner = runner
        address = runner.addresses[0]
        self.url = f"http://{address[0]}:{address[1]}"
        return self.url

    async def stop(self) -> None:
        """Stop the server (idempotent)."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def api_url(self) -> str:
        """The `base_url` for slack_sdk clients."""
        return self.url + "/api/"

    # -- faults and inspection ----------------------------------------------------------

    def fail_next(
        self, method: str, status: int = 429, times: int = 1, retry_after: int = 1
    ) -> None:
        """Answer the next `times` calls of `method` ("*" for any) with `status`."""
        self._faults.append(_Fault(method, status, times, retry_after))

    def calls_to(self, method: str) -> list[SlackCall]:
        """Recorded calls of one method (those answered ok or not)."""
        return [c for c in self.calls if c.method == method]

    async def wait_for(
        self,
        method: str,
        count: int = 1,
        timeout: float = 10.0,
        where: Callable[[SlackCall], bool] | None = None,
    ) -> list[SlackCall]:
        """Wait until at least `count` successful calls of `method` (matching `where`)."""
        deadline = time.monotonic() + timeout
        while True:
            found = [
                c for c in self.calls_to(method) if c.status == 200 and (where is None or where(c))
            ]
            if len(found) >= count:
                return found
            if time.monotonic() > deadline:
                seen = [c.method for c in self.calls]
                raise TimeoutError(f"{count} x {method} not seen in {timeout}s; calls: {seen}")
            await asyncio.sleep(0.01)

    # -- handling -------------------------------------------------------------------------

    def _take_fault(self, method: str) -> _Fault | None:
        for fault in self._faults:
            if fault.times > 0 and fault.method in (method, "*"):
                fault.times -= 1
                if fault.times <= 0:
                    self._faults.remove(fault)
                return fault
        return None

    @staticmethod
    async def _body(request: web.Request) -> dict[str, Any]:
        if request.method == "GET":  # slack_sdk sends a few methods as GET with a query
            return dict(request.query)
        if request.content_type == "application/json":
            try:
                data = await request.json()
            except ValueError:
                return {}
            return data if isinstance(data, dict) else {}
        body: dict[str, Any] = {k: str(v) for k, v in (await request.post()).items()}
        for name in JSON_FIELDS:
            if isinstance(body.get(name), str):
                with contextlib.suppress(ValueError):
                    body[name] = json.loads(body[name])
        return body

    async def _handle(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        body = await self._body(request)
        body.pop("token", None)  # never keep a token in the log
        auth = request.headers.get("Authorization", "")
        given = auth.removeprefix("Bearer ").strip() if auth.startswith("Bearer ") else ""
        authorized = bool(given) and (self.token is None or given == self.token)
        if self.latency:
            await asyncio.sleep(self.latency)
        fault = self._take_fault(method)
        if fault is not None:
            self.calls.append(SlackCall(method, body, fault.status, time.time(), authorized))
            headers = {"Retry-After": str(fault.retry_after)} if fault.status == 429 else {}
            error = "ratelimited" if fault.status == 429 else "fatal_error"
            return web.json_response(
                {"ok": False, "error": error}, status=fault.status, headers=headers
            )
        self.calls.append(SlackCall(method, body, 200, time.time(), authorized))
        if not authorized:
            return web.json_response(
                {"ok": False, "error": "invalid_auth" if given else "not_authed"}
            )
        return web.json_response(self._answer(method, body))

    async def _list_calls(self, request: web.Request) -> web.Response:
        """What the bot sent so far (for people and out-of-process tests)."""
        return web.json_response(
            [{"method": c.method, "body": c.body, "status": c.status} for c in self.calls]
        )

    def _next_ts(self) -> str:
        return f"{1700000000 + next(self._ts)}.000100"

    def _answer(self, method: str, body: dict[str, Any]) -> dict[str, Any]:
        channel = body.get("channel")
        if method == "auth.test":
            return {
                "ok": True,
                "url": "https://standin.slack.com/",
                "team": "Stand-in",
                "user": "graphops",
                "team_id": "T0STANDIN",
                "user_id": self.bot_user_id,
                "bot_id": "B0GRAPHOPS",
            }
        if method == "chat.postMessage":
            ts = self._next_ts()
            return {"ok": True, "channel": channel, "ts": ts, "message": {"ts": ts}}
        if method == "chat.postEphemeral":
            return {"ok": True, "message_ts": self._next_ts()}
        if method in ("chat.update", "chat.delete"):
            return {"ok": True, "channel": channel, "ts": body.get("ts")}
        if method in ("views.open", "views.publish", "views.update", "views.push"):
            given = body.get("view")
            view: dict[str, Any] = given if isinstance(given, dict) else {}
            return {"ok": True, "view": {**view, "id": f"V{next(self._ts):08d}"}}
        if method == "users.conversations":
            return {
                "ok": True,
                "channels": [{"id": c, "is_member": True} for c in self.channels],
                "response_metadata": {"next_cursor": ""},
            }
        if method == "usergroups.users.list":
            return {"ok": True, "users": self.usergroups.get(str(body.get("usergroup")), [])}
        if method == "usergroups.list":
            groups = [{"id": g, "users": u} for g, u in self.usergroups.items()]
            return {"ok": True, "usergroups": groups}
        return {"ok": False, "error": "unknown_method"}
