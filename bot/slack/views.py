"""Modals: opened at once, filled in after, and the typed-name confirmation.

A trigger id is good for 3 seconds and once (api.slack.com/docs/triggers), and the
checks behind a modal (the approver's right, user groups from usergroups.users.list,
which may answer 429) can take longer. So a modal is opened at once with a loading
view (`open_loading`), and then `views.update` replaces it with the real one or with
the reason nothing can be done (api.slack.com/surfaces/modals: "update a view").

Approving a terminate asks for the database's name. The modal carries the approval id
and channel in `private_metadata`. On submit the name is checked inside the ack: a
wrong name is answered with `response_action: errors` on the input field and nothing
runs; a right one closes the modal and the approval is decided after the ack.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext
from slack_sdk.errors import SlackApiError

from bot.slack import decisions
from bot.slack.blocks import EMOJI, cut, mrkdwn, safe_cut, section
from bot.slack.edge import Origin, installation, interaction_workspace
from bot.slack.notifier import slack_error
from bot.slack.runtime import SlackRuntime
from core.reply import Reply

log = logging.getLogger("graphops.slack")

CONFIRM_CALLBACK = "approval.confirm"
LOADING_CALLBACK = "graphops.loading"
INPUT_BLOCK = "confirm"
INPUT_ACTION = "name"
TITLE = 24  # characters of a modal title, submit and close (Block Kit)


def _modal(title: str, blocks: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {
        "type": "modal",
        "title": {"type": "plain_text", "text": cut(title, TITLE)},
        "close": {"type": "plain_text", "text": "Close"},
        "blocks": blocks,
        **extra,
    }


def loading_view(title: str) -> dict[str, Any]:
    """What a modal shows while its checks run."""
    return _modal(
        title,
        [section(f"{EMOJI['pending']} Checking…")],
        callback_id=LOADING_CALLBACK,
    )


def message_view(title: str, reply: Reply) -> dict[str, Any]:
    """A modal that only says something (a refusal, an error)."""
    text = mrkdwn("\n".join(p for p in (reply.title or "", reply.text) if p))
    return _modal(title, [section(f"{EMOJI[reply.status]} {text}")])


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
    """A modal with a short text (rendered mrkdwn) and one text input (read back by
    `view_submission`)."""
    element: dict[str, Any] = {"type": "plain_text_input", "action_id": action}
    if placeholder:
        element["placeholder"] = {"type": "plain_text", "text": cut(placeholder, 150)}
    return _modal(
        title,
        [
            {"type": "section", "text": {"type": "mrkdwn", "text": safe_cut(intro, 3000)}},
            {
                "type": "input",
                "block_id": block,
                "label": {"type": "plain_text", "text": cut(label, 2000)},
                "element": element,
            },
        ],
        callback_id=callback_id,
        private_metadata=json.dumps(metadata),
        submit={"type": "plain_text", "text": cut(submit, TITLE)},
    ) | {"close": {"type": "plain_text", "text": "Cancel"}}


def confirm_modal(summary: str, expected: str, approval_id: str, channel: str) -> dict[str, Any]:
    """The modal asking the approver to type `expected`."""
    return input_modal(
        callback_id=CONFIRM_CALLBACK,
        metadata={"approval_id": approval_id, "channel": channel},
        title="Confirm approval",
        submit="Approve",
        intro=f"{mrkdwn(summary)}\nThis cannot be undone. "
        f"Type the database name {mrkdwn(f'`{expected}`')} to approve.",
        block=INPUT_BLOCK,
        action=INPUT_ACTION,
        label="Database name",
        placeholder=expected,
    )


async def open_loading(rt: SlackRuntime, origin: Origin, title: str) -> dict[str, Any] | None:
    """Open a loading modal with the origin's trigger; the view (id, hash) or None (logged,
    and the requester told) when Slack refused the trigger."""
    try:
        response = await rt.client.views_open(
            trigger_id=origin.trigger_id, view=loading_view(title)
        )
    except SlackApiError as exc:
        log.warning("views.open failed: %s", slack_error(exc))
        await rt.delivery.say(
            origin, "Slack did not let me open the dialog in time; click again.", "error"
        )
        return None
    view = response.get("view")
    return view if isinstance(view, dict) else None


async def fill(rt: SlackRuntime, opened: dict[str, Any], view: dict[str, Any]) -> None:
    """Replace the loading modal `opened` with `view` (failures logged: the person may
    have closed it)."""
    try:
        await rt.client.views_update(
            view_id=str(opened.get("id")), hash=opened.get("hash"), view=view
        )
    except SlackApiError as exc:
        log.info("views.update failed: %s", slack_error(exc))


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

    def origin_of(body: dict[str, Any], context: AsyncBoltContext) -> Origin:
        user, channel, _, _ = submitted(body)
        return Origin(
            user=user,
            channel=channel,
            via="modal",
            workspace=interaction_workspace(body),
            home=installation(context),
        )

    async def approve(origin: Origin, body: dict[str, Any]) -> None:
        _, _, approval_id, typed = submitted(body)
        await decisions.settle_approval(rt, approval_id, origin=origin, approve=True, confirm=typed)

    async def check_name(ack: AsyncAck, body: dict[str, Any], context: AsyncBoltContext) -> None:
        if name_is_right(body):
            origin = origin_of(body, context)
            _, _, approval_id, _ = submitted(body)
            await rt.accept(
                origin, rt.bot.pipeline.read(f"approve {approval_id}"), approve(origin, body)
            )
            await ack()
            return
        _, _, approval_id, _ = submitted(body)
        expected = rt.bot.pipeline.confirmation_needed(approval_id) or ""
        await ack(
            response_action="errors",
            errors={INPUT_BLOCK: cut(f"Type the name exactly: {expected}", 150)},
        )

    async def closed(ack: AsyncAck) -> None:
        await ack()

    app.view(CONFIRM_CALLBACK)(check_name)
    app.view(LOADING_CALLBACK)(closed)
