"""Buttons: Approve / Deny on approval cards, "More" of long tables, command buttons.

Every button is acked at once; the work runs after the ack. A button carries
only its value (an approval id, a page key, or a command line): who clicked and
where comes from the payload, the rest is looked up server-side.
"""

from __future__ import annotations

import re
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp

from bot.slack import decisions
from bot.slack.blocks import MORE_ACTION, render_page
from bot.slack.runtime import SlackRuntime
from bot.slack.views import confirm_modal


def clicked(body: dict[str, Any]) -> tuple[str, str, str]:
    """(user id, channel id, value of the clicked button) of a block_actions payload."""
    user = str((body.get("user") or {}).get("id", ""))
    channel = str((body.get("channel") or {}).get("id", ""))
    actions = body.get("actions") or [{}]
    return user, channel, str(actions[0].get("value") or "")


async def ack_at_once(ack: AsyncAck) -> None:
    """Acknowledge a click immediately."""
    await ack()


def register(app: AsyncApp, rt: SlackRuntime) -> None:
    """Listen to the bot's buttons."""

    async def approve(body: dict[str, Any]) -> None:
        user, channel, approval_id = clicked(body)
        async with rt.shielded(channel, user):
            approvals = rt.bot.services.approvals
            approval = approvals.get(approval_id)
            expected = rt.bot.pipeline.confirmation_needed(approval_id)
            if approval is None or not expected or not decisions.is_live(approval):
                # no name to type (or nothing left to approve): decide now
                await decisions.settle_approval(
                    rt, approval_id, user=user, channel=channel, approve=True, confirm=expected
                )
                return
            if not await decisions.may_open_modal(rt, approval_id, user, channel):
                return
            view = confirm_modal(approval.summary, expected, approval_id, channel)
            await rt.client.views_open(trigger_id=body["trigger_id"], view=view)

    async def deny(body: dict[str, Any]) -> None:
        user, channel, approval_id = clicked(body)
        async with rt.shielded(channel, user):
            await decisions.settle_approval(
                rt, approval_id, user=user, channel=channel, approve=False, confirm=None
            )

    async def more(body: dict[str, Any]) -> None:
        user, channel, value = clicked(body)
        async with rt.shielded(channel, user):
            page = render_page(rt.pages, value)
            if page is None:
                await rt.say(channel, user, "That listing expired; run the command again.")
                return
            await rt.client.chat_postEphemeral(
                channel=channel, user=user, blocks=page.blocks, text=page.text
            )

    async def command(body: dict[str, Any]) -> None:
        user, channel, line = clicked(body)
        async with rt.shielded(channel, user):
            await rt.run_command(user, channel, line)

    app.action("approval.approve")(ack=ack_at_once, lazy=[approve])
    app.action("approval.deny")(ack=ack_at_once, lazy=[deny])
    app.action(MORE_ACTION)(ack=ack_at_once, lazy=[more])
    app.action(re.compile(r"^command(\.\d+)?$"))(ack=ack_at_once, lazy=[command])

    def schedule_button(verb: str) -> Any:
        async def press(body: dict[str, Any]) -> None:
            user, channel, schedule_id = clicked(body)
            async with rt.shielded(channel, user):
                await rt.run_command(user, channel, f"{verb} {schedule_id}")

        return press

    # Heads-up before a scheduled pause: the value is only the schedule id.
    app.action("schedule.skip")(ack=ack_at_once, lazy=[schedule_button("schedule-skip")])
    app.action("schedule.extend")(ack=ack_at_once, lazy=[schedule_button("schedule-extend")])
