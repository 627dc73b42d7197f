"""`access channel=X` through the real Bolt app: membership of X comes from Slack's
conversations.members (bot/slack/membership.py), served by the strict stand-in."""

from __future__ import annotations

from slack_sdk.web.async_client import AsyncWebClient

from bot.slack.membership import ChannelMembers
from permissions.roles import Role
from simulators.slack import SlackStandIn
from tests.bot.slack.conftest import SlackHarness
from tests.bot.slack.slack_support import BOT_TOKEN, texts, wait_private


def members_calls(standin: SlackStandIn) -> list[object]:
    return [c for c in standin.calls if c.method == "conversations.members"]


async def test_access_of_another_channel_asks_slack_who_is_in_it(harness: SlackHarness) -> None:
    standin = harness.standin
    standin.add_conversation("C0ONCALL", bot_member=True, members=["U0BOB", "U0EVE", "U0DAVE"])
    standin.members_page = 1  # three pages: the look-up follows next_cursor to the end
    await harness.slack.slash("access channel=C0ONCALL", user="U0EVE")
    [shown] = await wait_private(standin, "U0EVE", contains="Access of")
    assert "production" in texts(shown) and "@bob" in texts(shown)  # approvers by name
    assert len(members_calls(standin)) == 3
    await harness.slack.slash("access channel=C0ONCALL", user="U0ALICE")
    [refused] = await wait_private(standin, "U0ALICE")
    assert "shown only in it" in texts(refused) and "production" not in texts(refused)
    assert len(members_calls(standin)) == 3  # the members were cached
    assert all(c.ok for c in members_calls(standin))


async def test_a_private_channel_the_bot_is_not_in_stays_hidden(harness: SlackHarness) -> None:
    harness.rt.bot.services.permissions.grant("G0SECRET", "console", "production", Role.ADMIN)
    harness.standin.add_conversation("G0SECRET", members=["U0ALICE"])  # bot not a member
    await harness.slack.slash("access channel=G0SECRET", user="U0ALICE")
    [refused] = await wait_private(harness.standin, "U0ALICE")
    assert "shown only in it" in texts(refused)
    [call] = members_calls(harness.standin)
    assert call.error == "channel_not_found"  # Slack does not say: in doubt, hidden


async def test_conversations_members_as_slack_serves_it(standin: SlackStandIn) -> None:
    standin.add_conversation("C0BIG", bot_member=True, members=[f"U0{i:03d}" for i in range(5)])
    standin.members_page = 2
    client = AsyncWebClient(token=BOT_TOKEN, base_url=standin.api_url)
    first = await client.conversations_members(channel="C0BIG", limit=100)
    assert first["members"] == ["U0000", "U0001"]
    cursor = first["response_metadata"]["next_cursor"]
    assert cursor
    second = await client.conversations_members(channel="C0BIG", cursor=cursor)
    assert second["members"] == ["U0002", "U0003"]
    for bad, code in (({"limit": 0}, "invalid_limit"), ({"cursor": "nope"}, "invalid_cursor")):
        try:
            await client.conversations_members(channel="C0BIG", **bad)
        except Exception as exc:
            assert code in str(exc)
        else:
            raise AssertionError(f"{bad} was accepted")
    members = ChannelMembers(client)
    assert await members.members("C0BIG") == frozenset(f"U0{i:03d}" for i in range(5))
    assert not await members.is_member("U0ALICE", "C0BIG")
