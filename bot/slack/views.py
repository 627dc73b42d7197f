"""The typed-name modal: approving a terminate asks for the database's name.

The modal carries the approval id and channel in `private_metadata`. On submit
the name is checked inside the ack: a wrong name is answered with
`response_action: errors` on the input field and nothing runs; a right one
closes the modal and the approval is decided after the ack.
"""

from __future__ import annotations

import json
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp

from bot.slack import decisions
from bot.slack.blocks import cut
from bot.slack.runtime import SlackRuntime

CONFIRM_CALLBACK = "approval.confirm"
INPUT_BLOCK = "confirm"
INPUT_ACTION = "name"


def input_modal(
    *,
    callback_id: str,
    metadata: dict[str, str],
    title: str,
    submit: str,
    intro: str,
    block: str,
    action: str,
    label: str,
    placeholder: str | None = None,
) -> dict[str, Any]:
    """A modal with a short text and one text input (read back by `view_submission`)."""
    element: dict[str, Any] = {"type": "plain_text_input", "action_id": action}
    if placeholder is not None:
        element["placeholder"] = {"type": "plain_text", "text": cut(placeholder, 150)}
    return {
        "type": "modal",
        "callback_id": callback_id,
        "private_metadata": json.dumps(metadata),
        "title": {"type": "plain_text", "text": title},
        "submit": {"type": "plain_text", "text": submit},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": cut(intro, 3000)}},
            {
                "type": "input",
                "block_id": block,
                "label": {"type": "plain_text", "text": cut(label, 2000)},
                "element": element,
            },
        ],
    }


def confirm_modal(summary: str, expected: str, approval_id: str, channel: str) -> dict[str, Any]:
    """The modal asking the approver to type `expected`."""
    return input_modal(
        callback_id=CONFIRM_CALLBACK,
        metadata={"approval_id": approval_id, "channel": channel},
        title="Confirm approval",
        submit="Approve",
        intro=f"*{summary}*\nThis cannot be undone. "
        f"Type the database name `{expected}` to approve.",
        block=INPUT_BLOCK,
        action=INPUT_ACTION,
        label="Database name",
        placeholder=expected,
    )


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def view_submission(
    body: dict[str, Any], block: str, action: str
) -> tuple[str, dict[str, Any], str]:
    """(user, private metadata, typed value) of a modal's view_submission.

    A forged payload may put anything anywhere: every level is checked, and
    what is missing or of the wrong type reads as empty.
    """
    view = _mapping(body.get("view"))
    try:
        meta = _mapping(json.loads(str(view.get("private_metadata") or "{}")))
    except ValueError:
        meta = {}
    values = _mapping(_mapping(view.get("state")).get("values"))
    typed = _mapping(_mapping(values.get(block)).get(action)).get("value") or ""
    user = str(_mapping(body.get("user")).get("id", ""))
    return user, meta, str(typed)


def submitted(body: dict[str, Any]) -> tuple[str, str, str, str]:
    """(user, channel, approval id, typed name) of the typed-name modal's submission."""
    user, meta, typed = view_submission(body, INPUT_BLOCK, INPUT_ACTION)
    return user, str(meta.get("channel", "")), str(meta.get("approval_id", "")), typed


def register(app: AsyncApp, rt: SlackRuntime) -> None:
    """Listen to submissions of the typed-name modal."""

    def name_is_right(body: dict[str, Any]) -> bool:
        _, _, approval_id, typed = submitted(body)
        expected = rt.bot.pipeline.confirmation_needed(approval_id)
        return expected is None or typed.strip() == expected

    async def check_name(ack: AsyncAck, body: dict[str, Any]) -> None:
        if name_is_right(body):
            await ack()
            return
        _, _, approval_id, _ = submitted(body)
        expected = rt.bot.pipeline.confirmation_needed(approval_id) or ""
        await ack(
            response_action="errors",
            errors={INPUT_BLOCK: cut(f"Type the name exactly: {expected}", 150)},
        )

    async def approve(body: dict[str, Any]) -> None:
        user, channel, approval_id, typed = submitted(body)
        if not name_is_right(body):
            return  # already answered with errors on the field
        async with rt.shielded(channel, user):
            await decisions.settle_approval(
                rt, approval_id, user=user, channel=channel, approve=True, confirm=typed
            )

    app.view(CONFIRM_CALLBACK)(ack=check_name, lazy=[approve])
