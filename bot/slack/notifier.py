"""`SlackNotifier`: the `operations.notify.Notifier` of the Slack transport.

The tracker posts progress with it (in the thread of the message that started
an operation) and edits messages in place. HTTP 429 answers are retried after
their `Retry-After` by slack_sdk's `AsyncRateLimitErrorRetryHandler`, so a
burst of progress is delayed, never dropped; other Slack errors are logged and
reported as a missing ts (the tracker goes on).
"""

from __future__ import annotations

import logging

from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient

from bot.slack.blocks import render
from bot.slack.pages import PageStore
from commands.reply import Reply

log = logging.getLogger("graphops.slack")

RATE_LIMIT_RETRIES = 10


def add_rate_limit_retries(client: AsyncWebClient, retries: int = RATE_LIMIT_RETRIES) -> None:
    """Make `client` wait and retry on HTTP 429 (once; idempotent)."""
    if not any(isinstance(h, AsyncRateLimitErrorRetryHandler) for h in client.retry_handlers):
        client.retry_handlers.append(AsyncRateLimitErrorRetryHandler(max_retry_count=retries))


def slack_error(exc: SlackApiError) -> str:
    """The `error` code of a failed Web API call (or its HTTP status)."""
    data = getattr(exc.response, "data", None)
    if isinstance(data, dict):
        return str(data.get("error") or "unknown_error")
    return f"http_{getattr(exc.response, 'status_code', '?')}"


class SlackNotifier:
    """Posts and edits Replies as Block Kit messages (private_text is never posted)."""

    def __init__(self, client: AsyncWebClient, *, pages: PageStore | None = None) -> None:
        """Use `client` (given 429 retries) and `pages` for the "More" of long tables."""
        add_rate_limit_retries(client)
        self.client = client
        self.pages = pages

    async def post(self, channel: str, reply: Reply, thread_ts: str | None = None) -> str | None:
        """Post `reply` to `channel` (in the thread `thread_ts` if given); return its ts."""
        rendered = render(reply, pages=self.pages)
        try:
            response = await self.client.chat_postMessage(
                channel=channel, blocks=rendered.blocks, text=rendered.text, thread_ts=thread_ts
            )
        except SlackApiError as exc:
            log.warning("chat.postMessage to %s failed: %s", channel, slack_error(exc))
            return None
        ts = response.get("ts")
        return str(ts) if ts else None

    async def update(self, channel: str, ts: str, reply: Reply) -> None:
        """Replace the message `ts` in `channel` with `reply`."""
        rendered = render(reply, pages=self.pages)
        try:
            await self.client.chat_update(
                channel=channel, ts=ts, blocks=rendered.blocks, text=rendered.text
            )
        except SlackApiError as exc:
            log.warning("chat.update of %s in %s failed: %s", ts, channel, slack_error(exc))

    async def post_ephemeral(self, channel: str, user: str, reply: Reply) -> None:
        """Show `reply` to `user` only, in `channel`."""
        rendered = render(reply, pages=self.pages)
        await self.client.chat_postEphemeral(
            channel=channel, user=user, blocks=rendered.blocks, text=rendered.text
        )
