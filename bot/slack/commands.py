"""The slash command (`/gdb` by default): ack at once, run after the ack.

The ack is sent before any database API call (the command runs as a separate task,
`SlackRuntime.accept`, which keeps it in the inbox first), so Slack's 3-second limit
holds however slow the API is. When the answer needs an API the ack says what is
happening ("Restarting sandbox-db…", `runtime.ack_notice`, shown to the requester
only; never while draining or to a person of a workspace that is not admitted);
otherwise it is empty, and an answer slower than a moment is announced
privately ("Working on …").
The text is read at the edge (bot/slack/edge.py: mentions to ids, entities decoded
once), whatever it contains. The answer then arrives through the Web API or the
response_url (see bot/slack/delivery.py).
"""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext

from bot.slack.edge import installation, slash_origin
from bot.slack.runtime import SlackRuntime, ack_notice


def register(app: AsyncApp, rt: SlackRuntime) -> None:
    """Listen to the configured slash command."""

    async def on_command(ack: AsyncAck, body: dict[str, Any], context: AsyncBoltContext) -> None:
        origin = slash_origin(body, installation(context))
        reading = rt.bot.pipeline.read(origin.command or "help")  # once, for both below
        # Nothing is promised that will not happen: not while draining (the answer is
        # "restarting"), nor to someone refused by the workspace check or the bindings.
        notice = ack_notice(rt.bot, reading, rt.foresee(origin, reading))
        await rt.accept(origin, reading, rt.run_command(origin, acked=notice is not None))
        await ack(text=notice) if notice is not None else await ack()

    app.command(rt.bot.config.bot.slash_command)(on_command)
