"""Buttons and menus: Approve / Deny on approval cards, "More" of long tables, command
buttons, and the select menus that ask for a missing argument.

Every button is acked at once; the work runs after the ack (`SlackRuntime.work`). A
button carries only its value (an approval id, a page key, or a command line): who
clicked and where comes from the payload, the rest is looked up server-side. A click
without a channel (App Home) is answered in the clicker's DM.

A menu pick carries `<menu key>:<index>`; the option (a command line) is the server's
(bot/slack/menus.py): a pick that the menu did not list, by someone else, or a second
one is refused and runs nothing; an accepted one runs through the pipeline like a
typed command. An external_select's options are asked for by `block_suggestion`
requests, answered inside the ack (Slack waits 3 seconds) from the stored menu only.

A person Slack says is of another workspace or organization (a Slack Connect channel)
is refused before any dialog opens (permissions.policy.admit, no I/O).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext

from bot.slack import decisions
from bot.slack.blocks import MORE_ACTION, menu_option, render_page
from bot.slack.edge import Origin, action_origin, installation, interaction_workspace
from bot.slack.menus import BLOCK_PREFIX, PICK_ACTION
from bot.slack.runtime import SlackRuntime
from bot.slack.views import confirm_modal, fill, message_view, open_loading
from commands.pipeline import refuse

Work = Callable[[Origin, str], Coroutine[Any, Any, None]]


# The command line a click (its origin, its value) stands for, kept before the ack; None
# for a click that is not a command (a "More" page).
Kept = Callable[[Origin, str], str | None]


def acknowledge_then(
    rt: SlackRuntime, work: Work, kept: Kept | None = None
) -> Callable[..., Awaitable[None]]:
    """An ack listener: start `work(origin, value)` in the background, then ack. With
    `kept`, the click is a command: accepted (bot/slack/runtime.py) as the line it says."""

    async def listener(ack: AsyncAck, body: dict[str, Any], context: AsyncBoltContext) -> None:
        origin, value = action_origin(body, installation(context))
        line = kept(origin, value) if kept is not None else None
        if line is not None:
            await rt.accept(origin, rt.bot.pipeline.read(line), work(origin, value))
        else:
            rt.work(origin, work(origin, value))
        await ack()

    return listener


def register(app: AsyncApp, rt: SlackRuntime) -> None:
    """Listen to the bot's buttons."""

    async def approve(origin: Origin, approval_id: str) -> None:
        admission = rt.admission(origin)
        if not admission.allowed:  # no dialog for who may not act; audited by the pipeline
            await decisions.settle_approval(
                rt, approval_id, origin=origin, approve=True, confirm=None
            )
            return
        approvals = rt.bot.services.approvals
        approval = approvals.get(approval_id)
        expected = rt.bot.pipeline.confirmation_needed(approval_id)
        if approval is None or not expected or not decisions.is_live(approval):
            # no name to type (or nothing left to approve): decide now
            await decisions.settle_approval(
                rt, approval_id, origin=origin, approve=True, confirm=expected
            )
            return
        opened = await open_loading(rt, origin, "Confirm approval")  # the trigger lives 3 s
        if opened is None:
            return
        refusal = await decisions.refusal(rt, approval_id, origin)
        if refusal is not None:
            await fill(rt, opened, message_view("Cannot approve", refusal))
            return
        await fill(
            rt, opened, confirm_modal(approval.summary, expected, approval_id, origin.channel)
        )

    async def deny(origin: Origin, approval_id: str) -> None:
        await decisions.settle_approval(rt, approval_id, origin=origin, approve=False, confirm=None)

    async def more(origin: Origin, value: str) -> None:
        page = render_page(rt.pages, value)
        if page is None:
            await rt.delivery.say(origin, "That listing expired; run the command again.")
            return
        await rt.delivery.to_requester_rendered(page, origin)

    async def command(origin: Origin, line: str) -> None:
        origin.command = line.removeprefix(rt.bot.services.slash_command).strip()
        await rt.run_command(origin)

    async def pick(origin: Origin, value: str) -> None:
        picked = rt.menus.pick(value, origin.user)
        if picked.option is None:
            invocation = await rt.invocation(origin, "(a menu pick)")
            context = rt.bot.pipeline.context(invocation)
            await rt.delivery.to_requester(refuse(context, "pick", picked.refusal), origin)
            return
        origin.command = picked.option.command.removeprefix(rt.bot.services.slash_command)
        origin.command = origin.command.strip()
        await rt.run_command(origin)

    async def suggest(ack: AsyncAck, body: dict[str, Any], context: AsyncBoltContext) -> None:
        """Options of an external_select, from the stored menu only (inside the ack)."""
        block = str(body.get("block_id") or "")
        user = str((body.get("user") or {}).get("id") or "")
        asker = Origin(user=user, workspace=interaction_workspace(body), home=installation(context))
        if not block.startswith(BLOCK_PREFIX) or not rt.admission(asker).allowed:
            await ack(options=[])
            return
        key = block.removeprefix(BLOCK_PREFIX)
        found = rt.menus.suggestions(key, user, str(body.get("value") or ""))
        await ack(options=[menu_option(key, index, option) for index, option in found])

    def schedule_button(verb: str) -> Work:
        async def press(origin: Origin, schedule_id: str) -> None:
            origin.command = f"{verb} {schedule_id}"
            await rt.run_command(origin)

        return press

    slash = rt.bot.services.slash_command

    def picked_line(origin: Origin, value: str) -> str | None:
        """The command line a menu pick stands for (the pick itself is taken by `pick`,
        after the ack); None for a pick that will be refused (it runs nothing)."""
        option = rt.menus.peek(value, origin.user).option
        return option.command.removeprefix(slash).strip() if option else None

    app.action("approval.approve")(acknowledge_then(rt, approve, lambda _, v: f"approve {v}"))
    app.action("approval.deny")(acknowledge_then(rt, deny, lambda _, v: f"deny {v}"))
    app.action(MORE_ACTION)(acknowledge_then(rt, more))
    app.action(re.compile(r"^command(\.\d+)?$"))(
        acknowledge_then(rt, command, lambda _, line: line.removeprefix(slash).strip())
    )
    app.action(PICK_ACTION)(acknowledge_then(rt, pick, picked_line))
    app.options(PICK_ACTION)(suggest)
    # Heads-up before a scheduled pause: the value is only the schedule id.
    app.action("schedule.skip")(
        acknowledge_then(rt, schedule_button("schedule-skip"), lambda _, v: f"schedule-skip {v}")
    )
    app.action("schedule.extend")(
        acknowledge_then(
            rt, schedule_button("schedule-extend"), lambda _, v: f"schedule-extend {v}"
        )
    )
