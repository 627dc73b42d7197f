"""Commands typed as messages: `@graphops restart sandbox-db` in a channel, and anything
typed in a direct message with the bot.

Events API (docs.slack.dev/reference/events/app_mention, .../message.im): an
`app_mention` event (scope `app_mentions:read`) carries the message with the bot's
mention, `<@U…>`, in its `text`; a `message` event with `channel_type: "im"` (scope
`im:history`) a message of a DM with the bot. Both are kept in the inbox before they
are acked, like a slash command (`SlackRuntime.accept`, operations/inbox.py: a kill
before the answer is answered by the next start, in the mention's thread); the text
after the mention is read like slash-command text (bot/slack/edge.py `command_text`)
and runs through the same pipeline.

A mention is answered in its thread (its progress too); a DM is answered in the DM,
with the rights of the person's personal bindings (`grant @alice ...`,
permissions/store.py). Messages from bots (the bot's own answers among them), edits
and other subtypes are ignored, and an event Slack delivers twice (a retry after a
lost ack) runs once: event ids are remembered for a while.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext

from bot.slack.edge import Origin, command_text, event_workspace, installation
from bot.slack.runtime import SlackRuntime

SEEN_EVENTS = 2048
_MENTION = re.compile(r"<@([UW][A-Z0-9]+)(?:\|[^>]*)?>")


def after_mention(text: str, bot_user_id: str | None) -> str:
    """The words after the bot's mention (`<@U0BOT> restart x` -> `restart x`); the whole
    text when the bot is not mentioned in it."""
    for match in _MENTION.finditer(text):
        if bot_user_id is None or match.group(1) == bot_user_id:
            return text[match.end() :].strip()
    return text.strip()


class SeenEvents:
    """The last event ids seen, so a redelivered event is run once."""

    def __init__(self, size: int = SEEN_EVENTS) -> None:
        self.size = size
        self._ids: OrderedDict[str, None] = OrderedDict()

    def first_time(self, event_id: str) -> bool:
        """True the first time `event_id` is seen (an empty id always counts as new)."""
        if not event_id:
            return True
        if event_id in self._ids:
            return False
        self._ids[event_id] = None
        while len(self._ids) > self.size:
            self._ids.popitem(last=False)
        return True


def _by_a_person(event: dict[str, Any], bot_user_id: str | None) -> bool:
    user = event.get("user")
    return (
        isinstance(user, str)
        and bool(user)
        and user != bot_user_id
        and not event.get("bot_id")
        and not event.get("subtype")
    )


def register(app: AsyncApp, rt: SlackRuntime) -> None:
    """Listen to mentions of the bot and to messages in its DMs."""
    seen = SeenEvents()

    def origin_of(
        body: dict[str, Any], event: dict[str, Any], context: AsyncBoltContext, via: str
    ) -> Origin:
        raw = str(event.get("text") or "")
        text = after_mention(raw, context.bot_user_id) if via == "mention" else raw.strip()
        thread = event.get("thread_ts") or (event.get("ts") if via == "mention" else None)
        return Origin(
            user=str(event.get("user")),
            channel=str(event.get("channel") or ""),
            command=command_text(text),
            thread_ts=str(thread) if thread else None,
            via=via,
            workspace=event_workspace(body),
            home=installation(context),
        )

    async def take(body: dict[str, Any], context: AsyncBoltContext, via: str) -> None:
        """Keep a command typed as a message (`rt.accept`: its inbox row is written
        before the caller acks, as a slash command's is, so a kill between the two
        never loses it: Slack does not send an acked event again)."""
        event = body.get("event") or {}
        if via == "dm" and event.get("channel_type") != "im":
            return
        if not _by_a_person(event, context.bot_user_id):
            return
        if not seen.first_time(str(body.get("event_id") or "")):
            return
        origin = origin_of(body, event, context, via)
        await rt.accept(
            origin, rt.bot.pipeline.read(origin.command or "help"), rt.run_command(origin)
        )

    async def mentioned(ack: AsyncAck, body: dict[str, Any], context: AsyncBoltContext) -> None:
        try:
            await take(body, context, "mention")
        finally:
            await ack()

    async def direct(ack: AsyncAck, body: dict[str, Any], context: AsyncBoltContext) -> None:
        try:
            await take(body, context, "dm")
        finally:
            await ack()

    app.event("app_mention")(mentioned)
    app.event("message")(direct)
