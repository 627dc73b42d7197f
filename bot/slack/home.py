"""App Home: what the person opening the bot's Home tab may do.

Three parts: the person's channels that have bindings (with environments,
roles and approvers), the pending approvals they may act on (checked with
`may_approve`, as a click would be), and the last 10 operations from the
audit log. Channel membership comes from `users.conversations` (scopes
channels:read, groups:read); when Slack refuses, every bound channel the bot
knows is shown, and the view says so.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_sdk.errors import SlackApiError

from bot.slack.blocks import MAX_BLOCKS, context, header, mrkdwn, section, split_text
from bot.slack.notifier import slack_error
from bot.slack.runtime import SlackRuntime
from core.invocation import Invocation
from core.refs import ChannelRef, UserRef, person
from core.words import environment_label
from permissions.model import Binding
from permissions.policy import Target, may_approve

log = logging.getLogger("graphops.slack")

MAX_MEMBERSHIP_PAGES = 10


async def member_channels(rt: SlackRuntime, user: str) -> set[str] | None:
    """Channels `user` is in (as far as the bot can see), or None when Slack refuses."""
    found: set[str] = set()
    cursor: str | None = None
    try:
        for _ in range(MAX_MEMBERSHIP_PAGES):
            response = await rt.client.users_conversations(
                user=user,
                types="public_channel,private_channel",
                exclude_archived=True,
                limit=200,
                cursor=cursor,
            )
            found.update(str(c.get("id")) for c in response.get("channels") or [])
            cursor = (response.get("response_metadata") or {}).get("next_cursor") or None
            if not cursor:
                break
    except SlackApiError as exc:
        log.warning("users.conversations failed: %s", slack_error(exc))
        return None
    return found


def _binding_line(binding: Binding) -> str:
    """One binding as reply text (references and data; rendered by `mrkdwn`)."""
    approvers = ", ".join(str(person(a)) for a in binding.approvers)
    line = f"{environment_label(binding.provider, binding.environment)} as {binding.role.label}"
    if binding.users:
        line += f" for {', '.join(str(person(u)) for u in binding.users)}"
    return line + (f", approvers {approvers}" if approvers else "")


async def channel_lines(rt: SlackRuntime, user: str) -> tuple[list[str], str | None]:
    """One line per bound channel of `user`, and a note when membership was unknown."""
    bindings = rt.bot.services.permissions.bindings()
    mine = await member_channels(rt, user)
    note = None
    if mine is None:
        note = "Could not read your channel memberships; showing every bound channel."
    by_channel: dict[str, list[str]] = {}
    for binding in bindings:
        if mine is None or binding.channel in mine:
            by_channel.setdefault(binding.channel, []).append(_binding_line(binding))
    lines = [
        f"• {ChannelRef(channel)}: " + "; ".join(items) for channel, items in by_channel.items()
    ]
    return lines, note


async def approval_lines(rt: SlackRuntime, user: str) -> list[str]:
    """Pending approvals `user` may approve."""
    services = rt.bot.services
    lines = []
    for approval in services.approvals.pending():
        if approval.expires_at <= time.time():
            continue
        candidates = services.permissions.groups_named(approval.channel)
        groups, unknown = await rt.groups.of(user, candidates)
        who = Invocation(
            user=user,
            channel=approval.channel,
            text="",
            user_groups=groups,
            unresolved_groups=unknown,
        )
        policy = services.permissions.policy_for(approval.channel, who)
        target = Target(
            approval.provider,
            approval.environment_id,
            approval.environment_name,
            production=approval.protected,
        )
        decision = may_approve(
            policy, user, groups, approval.requester, approval.verb, approval.required_role, target
        )
        if decision.allowed:
            expires = time.strftime("%H:%M UTC", time.gmtime(approval.expires_at))
            lines.append(
                f"• {approval.summary}: asked by {UserRef(approval.requester)} in "
                f"{ChannelRef(approval.channel)}, expires {expires} (id `{approval.id}`)"
            )
    return lines


def operation_lines(rt: SlackRuntime, limit: int = 10) -> list[str]:
    """The last `limit` operations of the audit log, newest first."""
    rows = rt.bot.services.audit.query(kind="operation", limit=limit)
    lines = []
    for row in reversed(rows):
        what = " ".join(str(row.get(k) or "") for k in ("verb", "database")).strip()
        where = row.get("environment") or "?"
        lines.append(
            f"• {str(row.get('iso') or '')[:19]}Z {what} in {where} by "
            f"{UserRef(str(row.get('user') or ''))}: {row.get('outcome')}"
        )
    return lines


def _part(title: str, lines: list[str], empty: str) -> list[dict[str, Any]]:
    """A titled part of the Home tab: `lines` are reply text, rendered here."""
    pieces = split_text(mrkdwn("\n".join(lines))) if lines else [f"_{empty}_"]
    return [section(f"*{title}*"), *[section(p) for p in pieces[:5]]]


async def home_view(rt: SlackRuntime, user: str) -> dict[str, Any]:
    """The Home tab view for `user`."""
    slash = rt.bot.services.slash_command
    channels, note = await channel_lines(rt, user)
    blocks: list[dict[str, Any]] = [
        header("graphops"),
        context(mrkdwn(f"Type `{slash} help` in a bound channel to see every command.")),
        *_part("Your channels", channels, "none of your channels is bound yet"),
    ]
    if note:
        blocks.append(context(note))
    blocks += _part("Approvals waiting for you", await approval_lines(rt, user), "nothing waits")
    blocks += _part("Recent operations", operation_lines(rt), "no operation yet")
    return {"type": "home", "blocks": blocks[:MAX_BLOCKS]}


def register(app: AsyncApp, rt: SlackRuntime) -> None:
    """Publish the Home tab whenever someone opens it."""

    async def publish(user: str) -> None:
        view = await home_view(rt, user)
        await rt.client.views_publish(user_id=user, view=view)

    async def opened(ack: AsyncAck, event: dict[str, Any]) -> None:
        if event.get("tab", "home") == "home" and isinstance(event.get("user"), str):
            rt.work(None, publish(event["user"]))
        await ack()

    app.event("app_home_opened")(opened)
