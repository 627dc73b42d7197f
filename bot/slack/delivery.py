"""Where a Reply goes: the one place that decides it.

- `channel` replies are posted with chat.postMessage (so there is a ts to thread under),
  under a line naming who asked (`<@U…> ran /gdb …`: the slash command itself is seen
  by nobody else). When the channel cannot take them (`not_in_channel`,
  `channel_not_found` in a DM or a private channel the bot is not in, a refused
  message) the requester gets the answer privately, with the reason and what to do.
- `ephemeral` replies, every `private_text`, and refusals go to the requester alone:
  through the interaction's response_url (works where the bot is not a member; 5 uses
  in 30 minutes, api.slack.com/interactivity/handling#message_responses), else
  chat.postEphemeral in the channel, else the app's DM with them (a click on App Home
  has neither a channel nor a response_url).
- Files: what did not fit in a message (`Rendered.files`) and `Reply.attachment` are
  uploaded with files upload v2 in the message's thread (its root: Slack says "Never
  use a reply's ts value; use its parent instead"), or, for private answers, to the
  requester's DM with the app.
- Operations are handed to the tracker under the root of the thread they belong to;
  the write that follows one, and the one that keeps an approval card's ts, wait for a
  store another process has locked (operations/locked.py): the operation started, the
  card was posted. An operation still not followed after that is told to the requester.
- A mention (`@graphops restart x`) is answered in its thread; private answers there are
  ephemeral in that thread. In a direct message with the bot every answer is a plain
  message of that DM (only the person is in it).
- A `Reply.choice` (a question for a missing argument) is kept in the MenuStore for the
  person who asked, and shown as a select menu (bot/slack/menus.py).
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Awaitable, Callable

from slack_sdk.errors import SlackApiError
from slack_sdk.webhook.async_client import AsyncWebhookClient

from bot.slack.blocks import LOOKALIKE_BACKTICK, Overflow, Rendered, cut
from bot.slack.edge import Origin
from bot.slack.menus import MenuStore
from bot.slack.notifier import SlackNotifier, Uncertain, slack_error
from core.refs import ChannelRef, UserRef
from core.reply import Action, OperationRef, Reply
from operations.locked import pause_a_second, write_when_free
from operations.notify import TrackerPort
from permissions.approvals import ApprovalStore

log = logging.getLogger("graphops.slack")

OPEN_SECRET_ACTION = "secret.open"
PRIVATE_COPY = 2800  # characters of a file shown inline when it cannot be shared


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


def requester_line(origin: Origin, slash_command: str) -> str:
    """`<@U…> ran `/gdb pause sandbox-db`` (the command cut to 200 characters)."""
    typed = cut(f"{slash_command} {origin.command}".strip(), 200)
    return f"{UserRef(origin.user)} ran `{typed.replace('`', LOOKALIKE_BACKTICK)}`"


def why_not_posted(reason: str, channel: str) -> str:
    """What the requester is told when their answer could not go to the channel."""
    where = ChannelRef(channel)
    if reason == "not_in_channel":
        return f"I am not a member of {where}, so I cannot post there; invite me with `/invite`."
    if reason == "channel_not_found":
        return (
            "I cannot post in this conversation (a direct message, or a private channel I "
            "am not in): invite me to a channel with `/invite` to share answers and "
            "progress there."
        )
    if reason == "is_archived":
        return f"{where} is archived; I cannot post there."
    if reason in ("invalid_blocks", "msg_blocks_too_long", "msg_too_long", "no_text"):
        return f"Slack refused the message ({reason}); this is a graphops bug, in the bot's log."
    if reason == "uncertain":
        return "Slack failed while I posted this; it may or may not be in the channel."
    return f"Slack refused the post ({reason})."


def not_followed(ref: OperationRef, slash_command: str) -> str:
    """What the requester is told when an operation that started cannot be followed."""
    name = ref.label or ref.database_id
    return (
        f"The operation `{ref.operation_id}` on {name} started, but I cannot follow it: "
        "another process has held graphops' store for minutes. Its progress will not be "
        f"posted; check it with `{slash_command} ops {name}`."
    )


class Delivery:
    """Sends Replies to a channel or to their requester (see the module docstring)."""

    def __init__(
        self,
        notifier: SlackNotifier,
        approvals: ApprovalStore,
        *,
        slash_command: str = "/gdb",
        tracker: Callable[[], TrackerPort | None] = lambda: None,
        menus: MenuStore | None = None,
        ready: Callable[[], Awaitable[bool]] = pause_a_second,
        posted: Callable[[str], None] = lambda ts: None,
    ) -> None:
        self.notifier = notifier
        self.posted = posted  # told the ts of an answer posted as a new channel message
        self.client = notifier.client
        self.approvals = approvals
        self.slash_command = slash_command
        self.tracker = tracker
        self.menus = menus if menus is not None else MenuStore()
        self.ready = ready  # waits for another process's write lock (operations/locked.py)

    async def render(self, reply: Reply, origin: Origin, *, private: bool = False) -> Rendered:
        """`reply` rendered for `origin`: its Choice, if any, kept as a menu for them
        (`private`: for the requester alone, see SlackNotifier.render)."""
        menu = (
            self.menus.put(origin.user, origin.channel, reply.choice)
            if reply.choice is not None
            else None
        )
        return await self.notifier.render(reply, menu=menu, private=private)

    async def deliver(
        self,
        reply: Reply,
        origin: Origin,
        *,
        thread_ts: str | None = None,
        requester: str | None = None,
        approver: str | None = None,
        key: str | None = None,
    ) -> str | None:
        """Send `reply` where it belongs; return the ts of a channel message, if any.

        `thread_ts` is the root message to answer under; operations are handed to the
        tracker under that root (or the new message); `requester` (default the origin's
        user) is who the tracker reports to, `approver` who approved it (approved work);
        `key`: the channel message's key in its metadata (SlackNotifier.find).
        """
        reply = with_secret_button(reply)
        thread_ts = thread_ts or origin.thread_ts  # a mention is answered in its thread
        root = thread_ts
        ts: str | None = None
        first = False  # the reply is a new channel message of its own
        if reply.visibility == "channel":
            if origin.command and not reply.context and thread_ts is None and not origin.direct:
                line = requester_line(origin, self.slash_command)
                reply = reply.model_copy(update={"context": line})
            ts = await self.to_channel(reply, origin, thread_ts, key)
            root = thread_ts or ts
            first = ts is not None and thread_ts is None
            if first and ts is not None:
                self.posted(ts)  # a restart follows its operations under it, never re-posts
        else:
            await self.to_requester(reply, origin, key=key)
        if reply.attachment is not None:
            attachment = reply.attachment
            overflow = Overflow(
                attachment.filename, attachment.content, attachment.title or attachment.filename
            )
            await self._share(overflow, origin, root if ts else None)
        if reply.private_text:
            private = Reply(status="info", text=reply.private_text, visibility="ephemeral")
            await self.to_requester(private, origin, private=True)
        await self.follow(
            reply,
            origin,
            ts=ts,
            root=root,
            first=first,
            requester=requester,
            approver=approver,
        )
        return ts

    async def follow(
        self,
        reply: Reply,
        origin: Origin,
        *,
        ts: str | None,
        root: str | None,
        first: bool,
        requester: str | None = None,
        approver: str | None = None,
    ) -> None:
        """What follows a delivered `reply`: its approval card known by `ts` (the channel
        message, if any), its operations handed to the tracker under `root`, reporting to
        `requester` (default the origin's user); `first`: `ts` is the reply's own new
        message, which the tracker edits to the operation's end. Also after a restart,
        for an answer posted before the kill (bot/slack/recovery.py)."""
        approval_id = approval_id_of(reply)
        if approval_id and ts:
            await write_when_free(
                lambda: self.approvals.set_message_ts(approval_id, ts),
                f"the card of approval {approval_id}",
                self.ready,
            )
        tracker = self.tracker()
        if tracker is None:
            return
        for ref in reply.operations:
            try:
                await tracker.track(
                    ref,
                    channel=origin.channel,
                    thread_ts=root,
                    user=requester or origin.user,
                    origin=reply if first else None,
                    approver=approver,
                )
            except sqlite3.OperationalError as exc:
                log.error("operation %s is not followed: %s", ref.operation_id, exc)
                await self.say(origin, not_followed(ref, self.slash_command), "error")

    async def to_channel(
        self, reply: Reply, origin: Origin, thread_ts: str | None, key: str | None = None
    ) -> str | None:
        """Post in the origin's channel (carrying `key`, see SlackNotifier.post_rendered);
        on refusal answer the requester (None)."""
        rendered = await self.render(reply, origin)
        reason = "channel_not_found"
        if origin.channel:
            try:
                ts = await self.notifier.post_rendered(origin.channel, rendered, thread_ts, key)
            except SlackApiError as exc:
                reason = slack_error(exc)
            except Uncertain:
                reason = "uncertain"
            else:
                for overflow in rendered.files:
                    await self._share(overflow, origin, thread_ts or ts)
                return ts
        log.warning("answer not posted in %s (%s); sent to the requester", origin.channel, reason)
        note = why_not_posted(reason, origin.channel)
        private = reply.model_copy(
            update={
                "visibility": "ephemeral",
                "text": f"{note} The answer, for you only:\n{reply.text}".strip(),
            }
        )
        await self.to_requester(private, origin)
        return None

    async def to_requester(
        self, reply: Reply, origin: Origin, *, private: bool = False, key: str | None = None
    ) -> bool:
        """Show `reply` to the requester alone; False when no way worked (logged).
        `private`: it is a Reply.private_text, whose one-time links stay whole; `key`:
        carried by a message posted in the requester's DM with the bot (see `deliver`)."""
        rendered = await self.render(reply, origin, private=private)
        return await self.to_requester_rendered(rendered, origin, key)

    async def to_requester_rendered(
        self, rendered: Rendered, origin: Origin, key: str | None = None
    ) -> bool:
        """Show an already rendered message to the requester alone."""
        sent = await self._private(rendered, origin, key)
        for overflow in rendered.files:
            await self._share(overflow, origin, None)
        return sent

    async def say(self, origin: Origin, text: str, status: str = "info") -> bool:
        """A short private line for the requester."""
        reply = Reply.model_validate({"status": status, "text": text, "visibility": "ephemeral"})
        return await self.to_requester(reply, origin)

    async def _private(self, rendered: Rendered, origin: Origin, key: str | None = None) -> bool:
        if origin.response_url_usable() and await self.respond(origin, rendered):
            return True
        if origin.direct and origin.channel:
            try:  # the person's DM with the bot: a plain message is private already
                await self.notifier.post_rendered(origin.channel, rendered, None, key)
                return True
            except (SlackApiError, Uncertain) as exc:
                error = slack_error(exc) if isinstance(exc, SlackApiError) else "uncertain"
                log.info("post in the DM %s failed: %s", origin.channel, error)
        if origin.channel:
            try:
                await self.client.chat_postEphemeral(
                    channel=origin.channel,
                    user=origin.user,
                    blocks=rendered.blocks,
                    text=rendered.text,
                    thread_ts=origin.thread_ts,
                )
                return True
            except SlackApiError as exc:
                log.info("chat.postEphemeral in %s failed: %s", origin.channel, slack_error(exc))
        if origin.user:
            try:
                await self.notifier.post_rendered(origin.user, rendered, None)
                return True
            except (SlackApiError, Uncertain) as exc:
                error = slack_error(exc) if isinstance(exc, SlackApiError) else "uncertain"
                log.warning("could not answer %s privately: %s", origin.user, error)
        return False

    async def respond(
        self, origin: Origin, rendered: Rendered, response_type: str = "ephemeral"
    ) -> bool:
        """Answer through the origin's response_url; False when it did not take it."""
        try:
            response = await AsyncWebhookClient(origin.response_url, timeout=10).send(
                text=rendered.text,
                blocks=rendered.blocks,
                response_type=response_type,
                replace_original=False,
            )
        except Exception as exc:  # unreachable, timed out: the next way is tried
            log.info("response_url failed: %s", type(exc).__name__)
            return False
        if response.status_code != 200:
            log.info("response_url answered %s: %s", response.status_code, response.body[:80])
            return False
        origin.response_uses += 1
        return True

    async def _share(self, overflow: Overflow, origin: Origin, root: str | None) -> None:
        """A file in the thread `root` of the origin's channel, else in the requester's
        DM with the app, else its beginning shown privately."""
        if root and origin.channel and await self.notifier.upload(origin.channel, root, overflow):
            return
        if origin.user and await self.notifier.upload(origin.user, None, overflow):
            return
        content = overflow.content
        shown = content[:PRIVATE_COPY].replace("```", LOOKALIKE_BACKTICK * 3)
        note = (
            ""
            if len(content) <= PRIVATE_COPY
            else f"\n(first {PRIVATE_COPY:,} of {len(content):,})"
        )
        copy = Reply(
            status="info",
            title=overflow.filename,
            text=f"I could not share the file; its beginning:\n```{shown}```{note}",
            visibility="ephemeral",
        )
        await self._private(await self.notifier.render(copy), origin)
