"""The slash command (`/gdb` by default): ack at once, run after the ack.

The ack is empty and sent before any database API call (Bolt's lazy listener
runs the command as a separate task), so Slack's 3-second limit holds however
slow the API is. The answer then arrives through the Web API (see
`SlackRuntime.deliver`).
"""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp

from bot.slack.runtime import SlackRuntime


def register(app: AsyncApp, rt: SlackRuntime) -> None:
    """Listen to the configured slash command."""

    async def ack_at_once(ack: AsyncAck) -> None:
        await ack()

    async def run_command(body: dict[str, Any]) -> None:
        user, channel = body.get("user_id", ""), body.get("channel_id", "")
        async with rt.shielded(channel, user):
            await rt.run_command(user, channel, str(body.get("text") or ""))

    app.command(rt.bot.config.bot.slash_command)(ack=ack_at_once, lazy=[run_command])
