"""`SlackNotifier`: posting and editing rendered Replies, never twice.

It is the `operations.notify.Notifier` of the Slack transport (the tracker posts
progress with it in the thread of the message that started an operation, and edits
messages in place) and the poster behind every channel answer (bot/slack/delivery.py).

Retries (docs.slack.dev/apis/web-api/rate-limits): a 429 means nothing happened, so it
is retried after its `Retry-After` (slack_sdk's `AsyncRateLimitErrorRetryHandler`).
A 5xx or a broken connection may come after Slack stored the message (chat.postMessage
`fatal_error` / `internal_error`: "It's possible some aspect of the operation
succeeded"), so posts are never retried blindly: every post carries message metadata
with a key made from its content, and after an uncertain answer the channel's history
(or the thread's replies) is read (`include_all_metadata`) for that key before sending
again. When the history cannot be read, the post is not re-sent (a lost duplicate is
better than a double post of a destructive step's result) and the caller is told.
Edits (chat.update) and reads are idempotent and retried on 5xx as well.

A post or edit still failing with 429/5xx raises, so the tracker's outbox keeps the
message and retries it later; other Slack errors are logged and reported as a
missing ts (the tracker goes on).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.async_handler import AsyncRetryHandler
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState
from slack_sdk.web.async_client import AsyncWebClient

from bot.slack.blocks import Overflow, Rendered, render
from bot.slack.directory import Directory, table_refs
from bot.slack.pages import PageStore
from core.reply import Reply

log = logging.getLogger("graphops.slack")

RATE_LIMIT_RETRIES = 10
SERVER_ERROR_RETRIES = 3
POST_ATTEMPTS = 3
METADATA_EVENT = "graphops_post"
# `find` reads the history since a post in pages of FIND_PAGE messages ("we recommend no
# more than 200", docs.slack.dev/reference/methods/conversations.history), at most
# FIND_PAGES of them: 2,000 messages in a channel since the post is past looking for it.
FIND_PAGE = 200
FIND_PAGES = 10
# Calls whose effect may have happened before a 5xx or a dropped connection: never
# retried by the HTTP client (posts are checked against the history instead).
NOT_IDEMPOTENT = (
    "chat.postMessage",
    "chat.postEphemeral",
    "files.completeUploadExternal",
    "views.open",
    "views.push",
)


def _not_idempotent(request: HttpRequest) -> bool:
    return request.url.rstrip("/").rsplit("/", 1)[-1] in NOT_IDEMPOTENT


class IdempotentServerErrorRetryHandler(AsyncServerErrorRetryHandler):
    """Retries 5xx answers, except of calls that may have taken effect."""

    async def _can_retry_async(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        if _not_idempotent(request) or response is None:
            return False
        return response.status_code >= 500


class IdempotentConnectionErrorRetryHandler(AsyncConnectionErrorRetryHandler):
    """Retries dropped connections, except of calls that may have taken effect."""

    async def _can_retry_async(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        if _not_idempotent(request):
            return False
        return await super()._can_retry_async(
            state=state, request=request, response=response, error=error
        )


def add_rate_limit_retries(client: AsyncWebClient, retries: int = RATE_LIMIT_RETRIES) -> None:
    """Give `client` graphops' retry handlers (idempotent): 429 always, after its
    Retry-After; 5xx and dropped connections only for calls that cannot double."""
    if any(isinstance(h, IdempotentServerErrorRetryHandler) for h in client.retry_handlers):
        return
    handlers: list[AsyncRetryHandler] = [
        AsyncRateLimitErrorRetryHandler(max_retry_count=retries),
        IdempotentServerErrorRetryHandler(max_retry_count=SERVER_ERROR_RETRIES),
        IdempotentConnectionErrorRetryHandler(max_retry_count=1),
    ]
    client.retry_handlers = handlers


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


class Uncertain(Exception):
    """A post may or may not have landed, and the history could not tell."""


def post_key(channel: str, thread_ts: str | None, rendered: Rendered) -> str:
    """The idempotency key of a post: its place and content."""
    content = json.dumps([channel, thread_ts, rendered.text, rendered.blocks], sort_keys=True)
    return hashlib.sha256(content.encode("utf-8")).hexdigest()[:32]


class SlackNotifier:
    """Posts, edits and uploads rendered Replies (private_text is never posted)."""

    def __init__(
        self,
        client: AsyncWebClient,
        *,
        pages: PageStore | None = None,
        directory: Directory | None = None,
        page_rows: int = 40,
        turn: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        """Use `client` (given graphops' retries), `pages` for the "More" of long tables
        and `directory` for people's names in tables; rendering (long tables take
        milliseconds) waits for `turn` (bot/slack/runtime.py `AckGate.turn`) if given."""
        add_rate_limit_retries(client)
        self.client = client
        self.pages = pages
        self.directory = directory
        self.page_rows = page_rows
        self.turn = turn
        self._uncertain: dict[str, float] = {}  # key -> when the first uncertain try began

    async def render(
        self, reply: Reply, menu: str | None = None, *, private: bool = False
    ) -> Rendered:
        """`reply` as Block Kit (redacted; `private` for its requester alone, see
        blocks.render), with the names of people in its tables when known soon
        (`menu`: the key its Choice is stored under, bot/slack/menus.py)."""
        wanted = table_refs(reply)
        names = await self.directory.names(wanted) if wanted and self.directory else None
        if self.turn is not None:
            await self.turn()
        return render(
            reply,
            pages=self.pages,
            page_rows=self.page_rows,
            names=names,
            menu=menu,
            private=private,
        )

    # -- the Notifier protocol -----------------------------------------------------------

    async def post(self, channel: str, reply: Reply, thread_ts: str | None = None) -> str | None:
        """Post `reply` to `channel` (in the thread `thread_ts` if given); return its ts.
        Files that did not fit go beside it, in its thread."""
        rendered = await self.render(reply)
        try:
            ts = await self.post_rendered(channel, rendered, thread_ts)
        except SlackApiError as exc:
            log.warning("chat.postMessage to %s failed: %s", channel, slack_error(exc))
            if is_transient(exc):
                raise  # the caller's outbox retries it later
            return None
        except Uncertain:
            return None
        for overflow in rendered.files:
            await self.upload(channel, thread_ts or ts, overflow)
        return ts

    async def update(self, channel: str, ts: str, reply: Reply) -> None:
        """Replace the message `ts` in `channel` with `reply`."""
        rendered = await self.render(reply)
        try:
            await self.client.chat_update(
                channel=channel, ts=ts, blocks=rendered.blocks, text=rendered.text
            )
        except SlackApiError as exc:
            log.warning("chat.update of %s in %s failed: %s", ts, channel, slack_error(exc))
            if is_transient(exc):
                raise  # the caller's outbox retries it later

    # -- posting once -------------------------------------------------------------------------

    async def post_rendered(
        self, channel: str, rendered: Rendered, thread_ts: str | None, key: str | None = None
    ) -> str:
        """Post once; return the ts. SlackApiError for a refusal or a 429/5xx that
        persists (nothing stored, or checked not stored); Uncertain when it may have
        landed and the history cannot tell. The message carries `key` (default
        `post_key`: its place and content) in its metadata, for `find`."""
        key = key or post_key(channel, thread_ts, rendered)
        for attempt in range(POST_ATTEMPTS):
            if key in self._uncertain:
                found = await self.find(channel, thread_ts, key, self._uncertain[key])
                if found:
                    self._uncertain.pop(key, None)
                    return found
            began = time.time()
            try:
                response = await self.client.chat_postMessage(
                    channel=channel,
                    blocks=rendered.blocks,
                    text=rendered.text,
                    thread_ts=thread_ts,
                    metadata={"event_type": METADATA_EVENT, "event_payload": {"key": key}},
                )
            except SlackApiError as exc:
                if (getattr(exc.response, "status_code", 0) or 0) < 500:
                    raise
                self._uncertain.setdefault(key, began)
                if attempt == POST_ATTEMPTS - 1:
                    raise
            except (aiohttp.ClientError, TimeoutError) as exc:
                log.warning("chat.postMessage to %s: %s", channel, type(exc).__name__)
                self._uncertain.setdefault(key, began)
                if attempt == POST_ATTEMPTS - 1:
                    raise Uncertain(type(exc).__name__) from None
            else:
                self._uncertain.pop(key, None)
                return str(response.get("ts") or "")
            await asyncio.sleep(0.2 * (attempt + 1))
        raise Uncertain("no attempt left")  # pragma: no cover (the loop returns or raises)

    async def find(self, channel: str, thread_ts: str | None, key: str, since: float) -> str | None:
        """The ts of a message carrying `key` posted since `since` (epoch seconds), in the
        channel or the thread (`posted_keys`); Uncertain when the history cannot tell.
        (`post_key` is made from the content: an identical message posted in the same
        place within a minute would be taken for this one; an approval's outcome and a
        request's answer carry keys of their own.)"""
        keys, whole = await self.posted_keys(channel, thread_ts, since)
        if key in keys:
            log.info("a post to %s had landed before; not sent again", channel)
            return keys[key]
        if not whole:
            raise Uncertain("history too long to search")
        return None

    async def posted_keys(
        self, channel: str, thread_ts: str | None, since: float
    ) -> tuple[dict[str, str], bool]:
        """The keys (`post_rendered`) of graphops' messages posted since `since` (epoch
        seconds, with a minute's margin for clocks) and their ts, and whether that is the
        whole history since then: in the channel (its top-level messages,
        conversations.history) or the thread (conversations.replies), read page by page
        (`FIND_PAGE` messages, cursor-paginated), at most `FIND_PAGES` pages (not whole
        past that). Uncertain when the history cannot be read."""
        oldest = f"{since - 60:.6f}"
        cursor = ""
        keys: dict[str, str] = {}
        for _ in range(FIND_PAGES):
            try:
                if thread_ts:
                    response = await self.client.conversations_replies(
                        channel=channel,
                        ts=thread_ts,
                        oldest=oldest,
                        limit=FIND_PAGE,
                        include_all_metadata=True,
                        cursor=cursor or None,
                    )
                else:
                    response = await self.client.conversations_history(
                        channel=channel,
                        oldest=oldest,
                        limit=FIND_PAGE,
                        include_all_metadata=True,
                        cursor=cursor or None,
                    )
            except SlackApiError as exc:
                log.warning(
                    "whether a post to %s landed is unknown: its history cannot be read (%s)",
                    channel,
                    slack_error(exc),
                )
                raise Uncertain(slack_error(exc)) from None
            for message in response.get("messages") or []:
                metadata = message.get("metadata") if isinstance(message, dict) else None
                if not isinstance(metadata, dict) or metadata.get("event_type") != METADATA_EVENT:
                    continue
                payload = metadata.get("event_payload")
                key = payload.get("key") if isinstance(payload, dict) else None
                if isinstance(key, str):
                    keys.setdefault(key, str(message.get("ts") or ""))
            cursor = str((response.get("response_metadata") or {}).get("next_cursor") or "")
            if not cursor:
                return keys, True
        log.warning(
            "the history of %s goes on past %d pages: not searched further", channel, FIND_PAGES
        )
        return keys, False

    # -- files ---------------------------------------------------------------------------------

    async def upload(self, channel: str, thread_ts: str | None, overflow: Overflow) -> bool:
        """Share `overflow` as a file in `channel` (in the thread `thread_ts`, which must be
        a root message); False when Slack refused (logged)."""
        # a user id is the app's DM with them (`channels`, docs.slack.dev/reference/
        # methods/files.completeUploadExternal: "channel IDs or user IDs")
        where: dict[str, Any] = (
            {"channels": [channel]} if channel[:1] in "UW" else {"channel": channel}
        )
        try:
            await self.client.files_upload_v2(
                **where,
                thread_ts=thread_ts,
                content=overflow.content,
                filename=overflow.filename,
                title=overflow.title or overflow.filename,
            )
        except SlackApiError as exc:
            log.warning("files upload in %s failed: %s", channel, slack_error(exc))
            return False
        except Exception as exc:
            log.warning("files upload in %s failed: %s", channel, type(exc).__name__)
            return False
        return True
