"""Who is in a channel, from Slack: the `commands.context.Membership` port for Slack.

`conversations.members` (docs.slack.dev/reference/methods/conversations.members:
"Retrieve members of a conversation"; `channel`, cursor pagination with `limit`
and `response_metadata.next_cursor`; scope `channels:read` / `groups:read` by
conversation type; `channel_not_found` for a private channel the bot is not in).
A channel's members are cached for `ttl_seconds`, and concurrent questions about
one channel share one look-up. Anything Slack does not answer (an error, a
private channel the bot is not in, more than `max_pages` pages) counts as "not a
member": in doubt, another channel's settings stay hidden.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

log = logging.getLogger("graphops.slack")

PAGE_LIMIT = 200  # members per page (Slack recommends no more than 200)


class ChannelMembers:
    """`Membership` over Slack's Web API, with a short cache per channel."""

    def __init__(
        self,
        client: AsyncWebClient,
        *,
        ttl_seconds: float = 60.0,
        max_pages: int = 50,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.ttl_seconds = ttl_seconds
        self.max_pages = max_pages
        self._clock = clock
        self._members: dict[str, tuple[float, frozenset[str]]] = {}
        self._running: dict[str, asyncio.Future[frozenset[str]]] = {}

    async def is_member(self, user: str, channel: str) -> bool:
        """Whether Slack lists `user` among `channel`'s members (False when it cannot say)."""
        return user in await self.members(channel)

    async def members(self, channel: str) -> frozenset[str]:
        """The member ids of `channel` (cached `ttl_seconds`; empty when Slack cannot say)."""
        cached = self._members.get(channel)
        if cached is not None and cached[0] > self._clock():
            return cached[1]
        running = self._running.get(channel)
        if running is None:
            running = asyncio.ensure_future(self._look_up(channel))
            self._running[channel] = running
            running.add_done_callback(lambda _: self._running.pop(channel, None))
        return await asyncio.shield(running)

    async def _look_up(self, channel: str) -> frozenset[str]:
        found: set[str] = set()
        cursor = ""
        try:
            for _ in range(self.max_pages):
                response = await self.client.conversations_members(
                    channel=channel, limit=PAGE_LIMIT, **({"cursor": cursor} if cursor else {})
                )
                members = response.get("members")
                found.update(m for m in members or [] if isinstance(m, str))
                metadata = response.get("response_metadata") or {}
                cursor = str(metadata.get("next_cursor") or "")
                if not cursor:
                    break
            else:
                log.info(
                    "members of %s: more than %d pages; the rest not read", channel, self.max_pages
                )
        except SlackApiError as exc:
            error = (exc.response.data or {}).get("error") if exc.response else None
            log.info("members of %s unknown: %s", channel, error or "error")
            return frozenset()  # not cached: the next question asks again
        except Exception as exc:  # a look-up failure must not fail the command
            log.info("members of %s unknown: %s", channel, type(exc).__name__)
            return frozenset()
        members = frozenset(found)
        self._members[channel] = (self._clock() + self.ttl_seconds, members)
        return members
