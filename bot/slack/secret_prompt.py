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
from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext
from slack_sdk.errors import SlackApiError

from bot.slack.blocks import mrkdwn
from bot.slack.delivery import OPEN_SECRET_ACTION
from bot.slack.edge import Origin, action_origin, installation, interaction_workspace
from bot.slack.notifier import slack_error
from bot.slack.runtime import SlackRuntime
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
        intro=mrkdwn(
            f"Only you see what you type here. It is used once for `{command}` "
            "and never posted or logged."
        ),
        block=BLOCK,
        action=FIELD,
        label=label,
    )


def _submission(body: dict[str, Any]) -> tuple[str, str, str, str]:
    user, meta, secret = view_submission(body, BLOCK, FIELD)
    return user, str(meta.get("channel", "")), str(meta.get("command", "")), secret


def register(app: AsyncApp, rt: SlackRuntime) -> None:
    """Listen to the secret button and its modal."""

    async def open_modal(origin: Origin, command: str, label: str) -> None:
        admission = rt.admission(origin)
        if not admission.allowed:  # no dialog at all for who may not act
            await rt.delivery.say(origin, admission.reason, "denied")
            return
        view = secret_modal(label, command, origin.channel)
        try:
            await rt.client.views_open(trigger_id=origin.trigger_id, view=view)
        except SlackApiError as exc:
            await rt.delivery.say(
                origin, f"Slack did not open the dialog ({slack_error(exc)}); click again."
            )

    async def run(origin: Origin, command: str, secret: str) -> None:
        invocation = await rt.invocation(origin, command)
        invocation = dataclasses.replace(invocation, secret=SecretStr(secret))
        reply = await rt.run_invocation(invocation)
        await rt.delivery.deliver(reply, origin)

    async def check(ack: AsyncAck, body: dict[str, Any], context: AsyncBoltContext) -> None:
        user, channel, command, secret = _submission(body)
        if not secret:
            await ack(response_action="errors", errors={BLOCK: "Type a value, or Cancel."})
            return
        if command:
            origin = Origin(
                user=user,
                channel=channel,
                command=command,
                via="modal",
                workspace=interaction_workspace(body),
                home=installation(context),
            )
            await rt.accept(origin, rt.bot.pipeline.read(command), run(origin, command, secret))
        await ack()

    async def clicked(ack: AsyncAck, body: dict[str, Any], context: AsyncBoltContext) -> None:
        origin, command = action_origin(body, installation(context))
        action = (body.get("actions") or [{}])[0]
        text = action.get("text") if isinstance(action, dict) else None
        label = str((text or {}).get("text") or "") if isinstance(text, dict) else ""
        rt.work(origin, open_modal(origin, command, label.removeprefix("Enter ") or "Secret"))
        await ack()

    app.action(OPEN_SECRET_ACTION)(clicked)
    app.view(SUBMIT_CALLBACK)(check)
