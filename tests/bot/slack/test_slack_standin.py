"""The Web API stand-in and the SlackNotifier's patience with rate limits."""

from __future__ import annotations

import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.slack.notifier import SlackNotifier
from core.reply import Reply
from simulators.slack import SlackStandIn
from tests.bot.slack.slack_support import BOT_TOKEN


def _client(standin: SlackStandIn, token: str = BOT_TOKEN) -> AsyncWebClient:
    return AsyncWebClient(token=token, base_url=standin.api_url)


async def test_records_calls_and_answers_plausibly(standin: SlackStandIn) -> None:
    client = _client(standin)
    first = await client.chat_postMessage(channel="C1", text="a", blocks=[])
    second = await client.chat_postMessage(channel="C1", text="b")
    assert float(second["ts"]) > float(first["ts"])
    assert (await client.auth_test())["user_id"] == "U0GRAPHOPS"
    assert [c["id"] for c in (await client.users_conversations(user="U1"))["channels"]] == [
        "C0DEV",
        "C0ONCALL",
    ]
    assert [c.method for c in standin.calls] == [
        "chat.postMessage",
        "chat.postMessage",
        "auth.test",
        "users.conversations",
    ]
    assert standin.calls[1].body["text"] == "b"


async def test_a_wrong_token_is_refused(standin: SlackStandIn) -> None:
    with pytest.raises(SlackApiError) as caught:
        await _client(standin, "xoxb-wrong").chat_postMessage(channel="C1", text="a")
    assert caught.value.response["error"] == "invalid_auth"


async def test_server_errors_are_injected(standin: SlackStandIn) -> None:
    standin.fail_next("chat.update", status=503)
    client = AsyncWebClient(token=BOT_TOKEN, base_url=standin.api_url, retry_handlers=[])
    with pytest.raises(SlackApiError):
        await client.chat_update(channel="C1", ts="1.0", text="x")
    await client.chat_update(channel="C1", ts="1.0", text="x")
    assert [c.status for c in standin.calls] == [503, 200]


async def test_the_notifier_waits_out_rate_limits(standin: SlackStandIn) -> None:
    standin.fail_next("chat.postMessage", status=429, times=2, retry_after=0)
    notifier = SlackNotifier(_client(standin))
    ts = await notifier.post("C1", Reply(title="Step", text="restarting"), thread_ts="1.0")
    assert ts is not None
    statuses = [c.status for c in standin.calls_to("chat.postMessage")]
    assert statuses == [429, 429, 200]
    assert standin.calls[-1].body["thread_ts"] == "1.0"
    await notifier.update("C1", ts, Reply(title="Done"))
    assert standin.calls_to("chat.update")[0].body["ts"] == ts
