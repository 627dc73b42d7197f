"""A transport that sends nothing: it records requests and answers them synthetically.

Dry-runs execute a command's real code against clients built on this
transport, so the preview lists exactly the calls the real run would make. The
synthetic answer carries every field the clients read (an operation id, a new
database, a finished operation, a one-time link), all marked `dry-run`; it is
never shown to anyone, only the recorded requests are.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import httpx

DRY = "dry-run"

_ANSWER: dict[str, Any] = {
    # tokens
    "access_token": DRY,
    "token_type": "Bearer",
    "expires_in": 3600,
    "token": DRY,
    # async work
    "operationId": DRY,
    "operation": DRY,
    "id": DRY,
    "status": "finished",
    "currentState": "finished",
    "steps": [],
    "events": [],
    "nextOperationId": None,
    "database": {"id": DRY, "name": "(new database)", "status": {"state": "running"}},
    "snapshot": {"id": DRY, "status": "done"},
    "state": "running",
    # one-time links and the like (v1)
    "url": "https://dry-run.invalid/",
    "backupUrl": "https://dry-run.invalid/",
    "size": 0,
    "time": "0:00:00",
    "transactionId": DRY,
}


#: last path segments of the collections the clients read (answered with a list)
_COLLECTIONS = frozenset(
    {"environments", "databases", "manual", "backups", "versions", "plans", "regions", "users"}
)


def _answer(request: httpx.Request) -> Any:
    """The synthetic answer: a finished operation for an operations listing, an empty
    list for another collection, else `_ANSWER`."""
    last = request.url.path.rstrip("/").rsplit("/", 1)[-1]
    if request.method == "GET" and last == "operations":
        return [{"id": DRY, "status": "finished", "steps": [], "nextOperationId": None}]
    if request.method == "GET" and last in _COLLECTIONS:
        return []
    return _ANSWER


@dataclass(frozen=True)
class RecordedCall:
    """One request a dry-run would have sent."""

    method: str
    path: str
    body: str


class RecordingTransport(httpx.AsyncBaseTransport):
    """Records every request and answers 200 with a synthetic body; sends nothing."""

    def __init__(self) -> None:
        self.calls: list[RecordedCall] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        content_type = request.headers.get("content-type", "")
        if content_type.startswith("multipart/"):
            body = "<file upload, streamed>"
        else:
            raw = await request.aread()
            body = raw.decode("utf-8", "replace") if raw else ""
        self.calls.append(RecordedCall(request.method, request.url.path, body))
        return httpx.Response(200, json=_answer(request), request=request)


def describe_body(body: str, limit: int = 300) -> str:
    """A request body as compact text for a preview (JSON re-dumped, cut at `limit`)."""
    try:
        text = json.dumps(json.loads(body), separators=(", ", ": "))
    except ValueError:
        text = body
    return text if len(text) <= limit else text[: limit - 1] + "…"
