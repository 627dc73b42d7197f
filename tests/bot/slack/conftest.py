"""Fixtures: the Slack Web API stand-in, and the real Bolt app served over HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
from slack_sdk.web.async_client import AsyncWebClient

from bot.slack.app import build_app, runtime
from bot.slack.runtime import SlackRuntime
from bot.slack.server import SlackServer
from bot.wiring import Bot
from simulators.slack import SlackStandIn
from tests.bot.slack.slack_support import BOT_TOKEN, SIGNING_SECRET, SlackClient, validate_calls


@dataclass
class SlackHarness:
    """The running app, its stand-in Web API and a signed-request client."""

    server: SlackServer
    standin: SlackStandIn
    slack: SlackClient
    rt: SlackRuntime


@pytest.fixture
async def standin() -> AsyncIterator[SlackStandIn]:
    server = SlackStandIn(token=BOT_TOKEN, channels=["C0DEV", "C0ONCALL"])
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
async def harness(bot: Bot, standin: SlackStandIn) -> AsyncIterator[SlackHarness]:
    client = AsyncWebClient(token=BOT_TOKEN, base_url=standin.api_url)
    app = build_app(bot, signing_secret=SIGNING_SECRET, token=BOT_TOKEN, client=client)
    server = SlackServer(app, sweep_seconds=None)
    url = await server.start()
    async with httpx.AsyncClient(timeout=30.0) as http:
        try:
            yield SlackHarness(server, standin, SlackClient(url, http), runtime(app))
        finally:
            await server.stop()
    validate_calls(standin)
    for call in standin.calls:
        assert call.authorized, f"{call.method} without the bot token"
        assert BOT_TOKEN not in str(call.body) and SIGNING_SECRET not in str(call.body)
