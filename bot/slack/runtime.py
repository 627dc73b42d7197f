"""What the Slack listeners share: the bot, the Web API client, and how a Reply
reaches Slack.

`deliver` is the one place that decides where a Reply goes: `channel` replies
with chat.postMessage (so there is a ts to thread under), `ephemeral` ones and
every `private_text` with chat.postEphemeral to the requester only. It also
remembers the message of an approval card and hands operations to the tracker.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import traceback
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.slack.blocks import cut, render
from bot.slack.groups import UserGroups
from bot.slack.metrics import Metrics
from bot.slack.notifier import SlackNotifier, slack_error
from bot.slack.pages import PageStore
from bot.wiring import Bot
from commands.grammar import GrammarError, parse
from core.invocation import Invocation
from core.reply import Action, Reply
from operations.notify import TrackerPort

log = logging.getLogger("graphops.slack")

OPEN_SECRET_ACTION = "secret.open"
OOPS = "Something went wrong inside graphops; the error is in the bot's log."


def tracked_count(tracker: Any) -> int:
    """How many operations `tracker` follows (its `running()`), 0 without a tracker."""
    counter = getattr(tracker, "running", None)
    return int(counter()) if callable(counter) else 0


def approval_id_of(reply: Reply) -> str | None:
    """The approval a pending card stands for (the value of its Approve button)."""
    if reply.status != "pending":
        return None
    for action in reply.actions:
        if action.action_id == "approval.approve" and action.value:
            return action.value
    return None


def with_secret_button(reply: Reply) -> Reply:
    """The reply with an "Enter ..." button for its secret prompt (if it has one)."""
    prompt = reply.secret_prompt
    if prompt is None or any(a.action_id == OPEN_SECRET_ACTION for a in reply.actions):
        return reply
    button = Action(
        label=cut(f"Enter {prompt.label}", 75),
        command=prompt.command,
        action_id=OPEN_SECRET_ACTION,
        value=prompt.command,
    )
    return reply.model_copy(update={"actions": [*reply.actions, button]})


class AckGate:
    """Acks first: command work waits while Slack requests are still being acknowledged.

    Every request Slack sends must be answered within 3 seconds, and the work a
    command starts (permission look-ups, audit writes) shares the event loop with
    the acks still queued. Work therefore waits until no request is in flight,
    but never longer than `max_wait` seconds.
    """

    def __init__(self, max_wait: float = 0.5) -> None:
        self.max_wait = max_wait
        self._in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()

    @contextlib.contextmanager
    def pending(self) -> Iterator[None]:
        """Mark a Slack request as being answered."""
        self._in_flight += 1
        self._idle.clear()
        try:
            yield
        finally:
            self._in_flight -= 1
            if self._in_flight == 0:
                self._idle.set()

    async def wait(self) -> None:
        """Return once no ack is pending (or after `max_wait`)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), self.max_wait)


@dataclass
class SlackRuntime:
    """The bot plus everything the Slack listeners need."""

    bot: Bot
    client: AsyncWebClient
    pages: PageStore = field(default_factory=PageStore)
    metrics: Metrics = field(default_factory=Metrics)
    tracker: TrackerPort | None = None
    page_rows: int = 40
    groups: UserGroups = field(init=False)
    notifier: SlackNotifier = field(init=False)
    tasks: set[asyncio.Task[Any]] = field(default_factory=set)
    acks: AckGate = field(default_factory=AckGate)

    def __post_init__(self) -> None:
        self.groups = UserGroups(self.client)
        self.notifier = SlackNotifier(self.client, pages=self.pages)

    # -- building invocations ---------------------------------------------------

    async def invocation(self, user: str, channel: str, text: str) -> Invocation:
        """An Invocation for `user` in `channel`, with the user groups that matter there.

        Only groups named as approvers in the channel's bindings are looked up
        (usually none, so no API call).
        """
        policy = self.bot.services.permissions.policy_for(channel)
        candidates = [a for b in policy.bindings for a in b.approvers if a.startswith("S")]
        groups = await self.groups.of(user, candidates) if candidates else frozenset()
        return Invocation(
            user=user, channel=channel, text=text, user_groups=groups, transport="slack"
        )

    def verb_label(self, text: str) -> str:
        """The registry's name of the verb in `text` (a bounded metrics label)."""
        try:
            verb = self.bot.registry.get(parse(text, self.bot.services.slash_command).verb)
        except GrammarError:
            return "unknown"
        return verb.name if verb is not None else "unknown"

    # -- delivering replies -------------------------------------------------------

    async def ephemeral(self, channel: str, user: str, reply: Reply) -> None:
        """Show `reply` to `user` only (failures are logged)."""
        try:
            await self.notifier.post_ephemeral(channel, user, reply)
        except SlackApiError as exc:
            log.warning("chat.postEphemeral in %s failed: %s", channel, slack_error(exc))

    async def say(self, channel: str, user: str, text: str, status: str = "info") -> None:
        """A short ephemeral line for `user`."""
        await self.ephemeral(channel, user, Reply.model_validate({"status": status, "text": text}))

    async def deliver(
        self,
        reply: Reply,
        *,
        channel: str,
        user: str,
        thread_ts: str | None = None,
        requester: str | None = None,
    ) -> str | None:
        """Send `reply` where it belongs; return the ts of a channel message, if any.

        Operations are handed to the tracker under that message (or `thread_ts`);
        `requester` (default `user`) is who the tracker reports to.
        """
        reply = with_secret_button(reply)
        ts: str | None = None
        if reply.visibility == "channel":
            ts = await self._post(reply, channel, user, thread_ts)
        else:
            await self.ephemeral(channel, user, reply)
        if reply.attachment is not None:
            await self._attach(reply, channel, user, ts or thread_ts, shared=ts is not None)
        if reply.private_text:
            private = Reply(status="info", text=reply.private_text, visibility="ephemeral")
            await self.ephemeral(channel, user, private)
        approval_id = approval_id_of(reply)
        if approval_id and ts:
            self.bot.services.approvals.set_message_ts(approval_id, ts)
        if self.tracker is not None:
            for ref in reply.operations:
                await self.tracker.track(
                    ref,
                    channel=channel,
                    thread_ts=ts or thread_ts,
                    user=requester or user,
                    origin=reply,
                )
        return ts

    async def _attach(
        self, reply: Reply, channel: str, user: str, thread_ts: str | None, shared: bool
    ) -> None:
        """Upload a long text as a file in the thread; ephemeral replies get a cut-down copy."""
        attachment = reply.attachment
        assert attachment is not None
        if shared:
            try:
                await self.client.files_upload_v2(
                    channel=channel,
                    thread_ts=thread_ts,
                    content=attachment.content,
                    filename=attachment.filename,
                    title=attachment.title or attachment.filename,
                )
                return
            except SlackApiError as exc:
                log.warning("files.upload in %s failed: %s", channel, slack_error(exc))
        limit = 2800
        text = attachment.content
        shown = text if len(text) <= limit else text[:limit] + "\n… (cut; ask in a channel "
        "the bot may post files to for the whole file)"
        await self.ephemeral(
            channel,
            user,
            Reply(
                status="info",
                title=attachment.filename,
                text=f"```{shown}```",
                visibility="ephemeral",
            ),
        )

    async def _post(
        self, reply: Reply, channel: str, user: str, thread_ts: str | None
    ) -> str | None:
        rendered = render(reply, pages=self.pages, page_rows=self.page_rows)
        try:
            response = await self.client.chat_postMessage(
                channel=channel, blocks=rendered.blocks, text=rendered.text, thread_ts=thread_ts
            )
        except SlackApiError as exc:
            reason = slack_error(exc)
            log.warning("chat.postMessage in %s failed: %s", channel, reason)
            await self.say(
                channel,
                user,
                f"I could not post in this channel ({reason}); invite me with `/invite`. "
                "Here is the answer, for you only:",
                status="error",
            )
            await self.ephemeral(channel, user, reply)
            return None
        ts = response.get("ts")
        return str(ts) if ts else None

    # -- running commands ---------------------------------------------------------

    async def run_command(self, user: str, channel: str, text: str) -> None:
        """Run a command line typed by `user` in `channel` and deliver its answer."""
        line = text.strip() or "help"
        await self.acks.wait()
        invocation = await self.invocation(user, channel, line)
        reply = await self.bot.run(invocation)
        self.metrics.command(self.verb_label(line), reply.status)
        await self.deliver(reply, channel=channel, user=user)

    @contextlib.asynccontextmanager
    async def shielded(self, channel: str | None, user: str | None) -> AsyncIterator[None]:
        """Log any exception (redacted) and tell `user` plainly; never a trace in Slack."""
        try:
            yield
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.error(self.bot.redact(f"Slack listener failed: {exc!r}\n{traceback.format_exc()}"))
            if channel and user:
                with contextlib.suppress(Exception):
                    await self.say(channel, user, OOPS, status="error")

    def spawn(self, coroutine: Any) -> asyncio.Task[Any]:
        """Run `coroutine` in the background, keeping a reference until it ends."""
        task = asyncio.ensure_future(coroutine)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task
