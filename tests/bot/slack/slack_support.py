"""Helpers for the Slack tests: signed requests and Block Kit validation."""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx
from slack_sdk.models.blocks import Block
from slack_sdk.models.views import View
from slack_sdk.signature import SignatureVerifier

from simulators.slack import SlackStandIn

SIGNING_SECRET = "sentinel-signing-secret-4b2d"
BOT_TOKEN = "xoxb-sentinel-bot-token-8e1f"


def signed_headers(
    body: str, *, timestamp: int | None = None, secret: str = SIGNING_SECRET
) -> dict[str, str]:
    """X-Slack-Request-Timestamp and X-Slack-Signature for `body`."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    signature = SignatureVerifier(secret).generate_signature(timestamp=ts, body=body)
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": signature}


def validate_blocks(blocks: list[dict[str, Any]]) -> None:
    """Parse `blocks` with slack_sdk's models (which validate) and check the limits."""
    assert len(blocks) <= 50, f"{len(blocks)} blocks"
    parsed = Block.parse_all(blocks)
    for original, block in zip(blocks, parsed, strict=True):
        assert block is not None, f"unknown block {original}"
        block.to_dict()  # raises SlackObjectFormationError when a limit is broken
        if original["type"] == "section" and "text" in original:
            assert len(original["text"]["text"]) <= 3000
        for element in original.get("elements", []):
            if element.get("type") == "button":
                assert len(element.get("value", "")) <= 2000
        if original["type"] == "actions":
            ids = [e.get("action_id") for e in original["elements"]]
            assert len(ids) == len(set(ids)), "duplicate action ids in one block"


def validate_calls(standin: SlackStandIn) -> int:
    """Validate every blocks payload and view the stand-in took (slack_sdk's models, on
    top of the stand-in's own rules); return how many. Calls the stand-in refused are
    the tests' business."""
    checked = 0
    for call in standin.calls:
        if not call.ok:
            continue
        fallback = str(call.body.get("text") or "")
        assert not re.search(r"<[^<>]*$", fallback), f"a cut mention: {fallback[-80:]!r}"
        assert not re.search(r"&[a-z]{0,4}$", fallback), f"a cut entity: {fallback[-80:]!r}"
        if isinstance(call.body.get("blocks"), list):
            validate_blocks(call.body["blocks"])
            checked += 1
        view = call.body.get("view")
        if isinstance(view, dict):
            validate_blocks(view["blocks"])
            View(**view).to_dict()
            checked += 1
    assert standin.violations == [], standin.violations
    return checked


def texts(call: Any) -> str:
    """All the text of a recorded message call (fallback text, blocks, a view), for asserts."""
    view = call.body.get("view")
    parts = [json.dumps(call.body.get("blocks") or [], ensure_ascii=False)]
    if isinstance(view, dict):
        parts.append(json.dumps(view, ensure_ascii=False))
    parts.append(str(call.body.get("text") or ""))
    return "\n".join(parts)


def answers_to(standin: SlackStandIn, user: str) -> list[Any]:
    """Successful private answers to `user`: response_url posts and chat.postEphemeral."""
    return [
        c
        for c in standin.calls
        if c.ok
        and (
            (c.method == "response_url" and c.body.get("_user") == user)
            or (c.method == "chat.postEphemeral" and c.body.get("user") == user)
        )
    ]


async def wait_private(
    standin: SlackStandIn, user: str, count: int = 1, timeout: float = 10.0, contains: str = ""
) -> list[Any]:
    """Wait for `count` private answers to `user` (containing `contains`)."""
    import asyncio

    deadline = time.monotonic() + timeout
    while True:
        found = [c for c in answers_to(standin, user) if contains in texts(c)]
        if len(found) >= count:
            return found
        assert time.monotonic() < deadline, (
            f"no private answer to {user} with {contains!r}: "
            f"{[(c.method, c.error, texts(c)[:120]) for c in standin.calls]}"
        )
        await asyncio.sleep(0.01)


@dataclass
class SlackClient:
    """Sends correctly signed Slack requests to the bot's /slack/events.

    With a `standin`, payloads are built by it as Slack builds them (command text
    entity-escaped, mentions per the manifest, fresh trigger ids and response_urls
    that the stand-in honours); without, the old hand-made shapes (raw text, an
    unreachable response_url, made-up trigger ids).
    """

    url: str
    http: httpx.AsyncClient
    standin: SlackStandIn | None = None

    async def post(
        self,
        body: str,
        content_type: str,
        *,
        timestamp: int | None = None,
        secret: str = SIGNING_SECRET,
    ) -> httpx.Response:
        headers = signed_headers(body, timestamp=timestamp, secret=secret)
        headers["Content-Type"] = content_type
        return await self.http.post(self.url + "/slack/events", content=body, headers=headers)

    async def send(self, payload: dict[str, Any]) -> httpx.Response:
        """Post a payload the way Slack posts it (form or JSON)."""
        body, content_type = SlackStandIn.form_body(payload)
        return await self.post(body, content_type)

    async def slash(
        self, text: str, *, user: str = "U0ALICE", channel: str = "C0DEV"
    ) -> httpx.Response:
        if self.standin is not None:
            return await self.send(self.standin.slash_payload(text, user=user, channel=channel))
        body = urlencode(
            {
                "token": "legacy",
                "team_id": "T0STANDIN",
                "api_app_id": "A0GRAPHOPS",
                "channel_id": channel,
                "user_id": user,
                "command": "/gdb",
                "text": text,
                "response_url": "http://127.0.0.1:9/response",
                "trigger_id": "trigger.slash",
            }
        )
        return await self.post(body, "application/x-www-form-urlencoded")

    async def interact(self, payload: dict[str, Any]) -> httpx.Response:
        body = urlencode({"payload": json.dumps(payload)})
        return await self.post(body, "application/x-www-form-urlencoded")

    async def click(
        self,
        action_id: str,
        value: str,
        *,
        user: str,
        channel: str | None,
        message_ts: str = "1700000000.000100",
    ) -> httpx.Response:
        if self.standin is not None:
            payload = self.standin.action_payload(
                action_id, value, user=user, channel=channel, message_ts=message_ts
            )
            return await self.send(payload)
        return await self.interact(
            {
                "type": "block_actions",
                "team": {"id": "T0STANDIN"},
                "user": {"id": user},
                "api_app_id": "A0GRAPHOPS",
                "token": "legacy",
                "trigger_id": f"trigger.{user}",
                "channel": {"id": channel},
                "container": {"type": "message", "message_ts": message_ts, "channel_id": channel},
                "message": {"ts": message_ts},
                "actions": [
                    {
                        "type": "button",
                        "action_id": action_id,
                        "block_id": "b1",
                        "value": value,
                        "action_ts": "1700000001.000",
                    }
                ],
            }
        )

    async def submit(
        self,
        view: dict[str, Any],
        typed: str,
        *,
        user: str,
        block: str = "confirm",
        action: str = "name",
    ) -> httpx.Response:
        values = {block: {action: {"type": "plain_text_input", "value": typed}}}
        if self.standin is not None:
            return await self.send(self.standin.submission_payload(view, values, user=user))
        return await self.interact(
            {
                "type": "view_submission",
                "team": {"id": "T0STANDIN"},
                "user": {"id": user},
                "api_app_id": "A0GRAPHOPS",
                "token": "legacy",
                "trigger_id": "trigger.view",
                "view": {
                    "id": "V0MODAL",
                    "type": "modal",
                    "callback_id": view["callback_id"],
                    "private_metadata": view["private_metadata"],
                    "state": {"values": values},
                },
            }
        )

    async def event(self, event: dict[str, Any]) -> httpx.Response:
        if self.standin is not None:
            return await self.send(self.standin.event_payload(event))
        body = json.dumps(
            {
                "token": "legacy",
                "team_id": "T0STANDIN",
                "api_app_id": "A0GRAPHOPS",
                "type": "event_callback",
                "event": event,
                "event_id": "Ev0001",
                "event_time": int(time.time()),
            }
        )
        return await self.post(body, "application/json")
