"""Secrets typed privately: a button opens a modal, the command runs again with the secret.

When a command needs a secret (a TypeDB password), the reply to the requester
carries an "Enter ..." button (action `secret.open`, value = the command line,
which holds no secret). The modal's text box is seen only by the person typing;
on submit the command runs again with the value attached to the Invocation,
never to any message text, log or audit row.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from pydantic import SecretStr
from slack_bolt.async_app import AsyncAck, AsyncApp

from bot.slack.actions import ack_at_once, clicked
from bot.slack.runtime import OPEN_SECRET_ACTION, SlackRuntime
from bot.slack.views import input_modal, view_submission

SUBMIT_CALLBACK = "secret.submit"
BLOCK, FIELD = "secret", "value"


def secret_modal(label: str, command: str, channel: str) -> dict[str, Any]:
    """The modal that collects one secret."""
    return input_modal(
        callback_id=SUBMIT_CALLBACK,
        metadata={"command": command, "channel": channel},
        title="Private input",
        submit="Submit",
        intro=f"Only you see what you type here. It is used once for `{command}` "
        "and never posted or logged.",
        block=BLOCK,
        action=FIELD,
        label=label,
    )


def _submission(body: dict[str, Any]) -> tuple[str, str, str, str]:
    user, meta, secret = view_submission(body, BLOCK, FIELD)
    return user, str(meta.get("channel", "")), str(meta.get("command", "")), secret


def register(app: AsyncApp, rt: SlackRuntime) -> None:
    """Listen to the secret button and its modal."""

    async def open_modal(body: dict[str, Any]) -> None:
        user, channel, command = clicked(body)
        async with rt.shielded(channel, user):
            label = command
            for action in body.get("actions") or [{}]:
                label = str((action.get("text") or {}).get("text") or command)
            await rt.client.views_open(
                trigger_id=body["trigger_id"],
                view=secret_modal(label.removeprefix("Enter "), command, channel),
            )

    async def check(ack: AsyncAck, body: dict[str, Any]) -> None:
        if _submission(body)[3]:
            await ack()
        else:
            await ack(response_action="errors", errors={BLOCK: "Type a value, or Cancel."})

    async def run(body: dict[str, Any]) -> None:
        user, channel, command, secret = _submission(body)
        if not secret or not command:
            return
        async with rt.shielded(channel, user):
            invocation = await rt.invocation(user, channel, command)
            invocation = dataclasses.replace(invocation, secret=SecretStr(secret))
            reply = await rt.bot.run(invocation)
            await rt.deliver(reply, channel=channel, user=user)

    app.action(OPEN_SECRET_ACTION)(ack=ack_at_once, lazy=[open_modal])
    app.view(SUBMIT_CALLBACK)(ack=check, lazy=[run])
