"""`SlackNotifier`: the `operations.notify.Notifier` of the Slack transport.

The tracker posts progress with it (in the thread of the message that started
an operation) and edits messages in place. HTTP 429 answers are retried after
their `Retry-After` by slack_sdk's `AsyncRateLimitErrorRetryHandler`, and 5xx
answers a few times by its `AsyncServerErrorRetryHandler`, so a burst of
progress is delayed, never dropped. A post or edit still failing with 429/5xx
raises, so the tracker's outbox keeps the message and retries it later; other
Slack errors are logged and reported as a missing ts (the tracker goes on).
"""

from __future__ import annotations

import logging

from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient

from bot.slack.blocks import render
from bot.slack.pages import PageStore
from core.reply import Reply

log = logging.getLogger("graphops.slack")

RATE_LIMIT_RETRIES = 10
SERVER_ERROR_RETRIES = 3


def add_rate_limit_retries(client: AsyncWebClient, retries: int = RATE_LIMIT_RETRIES) -> None:
    """Make `client` wait and retry on HTTP 429 and, a few times, on 5xx (idempotent)."""
    if not any(isinstance(h, AsyncRateLimitErrorRetryHandler) for h in client.retry_handlers):
        client.retry_handlers.append(AsyncRateLimitErrorRetryHandler(max_retry_count=retries))
    if not any(isinstance(h, AsyncServerErrorRetryHandler) for h in client.retry_handlers):
        client.retry_handlers.append(
            AsyncServerErrorRetryHandler(max_retry_count=SERVER_ERROR_RETRIES)
        )


def is_transient(exc: SlackApiError) -> bool:
    """A 429 or 5xx answer: worth trying again later."""
    status = getattr(exc.response, "status_code", 0) or 0
    return status == 429 or status >= 500


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
            if is_transient(exc):
                raise  # the caller's outbox retries it later
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
            if is_transient(exc):
                raise  # the caller's outbox retries it later

    async def post_ephemeral(self, channel: str, user: str, reply: Reply) -> None:
        """Show `reply` to `user` only, in `channel`."""
        rendered = render(reply, pages=self.pages)
        await self.client.chat_postEphemeral(
            channel=channel, user=user, blocks=rendered.blocks, text=rendered.text
        )
