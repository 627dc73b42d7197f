"""Deciding an approval from Slack (a button or the typed-name modal) and showing it.

The decision itself is `Pipeline.decide_approval`, whose `ApprovalStore.claim`
is atomic: double clicks and replays execute at most once. This module only
tells the clicker about a refusal (ephemerally), or, when this click made the
decision, edits the card in place (who, when, no buttons) and posts the
result in the card's thread. An expired approval's card is edited to say so,
here and by the expiry sweep.
"""

from __future__ import annotations

import contextlib
import time

from slack_sdk.errors import SlackApiError

from bot.slack.runtime import SlackRuntime
from core.audit_context import acting_as
from core.reply import Reply
from permissions.approvals import Approval
from permissions.audit import iso_time


def decided_card(approval: Approval) -> Reply:
    """The card of an approval that is no longer pending (no buttons)."""
    when = iso_time(approval.decided_at or approval.expires_at)
    if approval.state == "expired":
        title, status = f"Expired: {approval.summary}", "info"
        text = f"Nobody decided before {iso_time(approval.expires_at)}; nothing was run."
    elif approval.state == "denied":
        title, status = f"Denied: {approval.summary}", "denied"
        text = f"Denied by <@{approval.decided_by}> at {when}; nothing was run."
    else:
        title, status = f"Approved: {approval.summary}", "ok"
        text = f"Approved by <@{approval.decided_by}> at {when}."
        if approval.state == "failed":
            status = "error"
            text += " It failed; see the thread."
        elif approval.state == "executed":
            text += " The result is in the thread."
    return Reply.model_validate(
        {
            "status": status,
            "title": title,
            "text": text,
            "fields": [
                ("Requested by", f"<@{approval.requester}>"),
                ("Environment", approval.environment_name or approval.environment_id),
                ("Approval id", approval.id),
            ],
        }
    )


def _refused(reply: Reply) -> bool:
    """True for the claim's "already decided / expired" answer (ephemeral, no title)."""
    return reply.status == "info" and reply.visibility == "ephemeral" and not reply.title


def is_live(approval: Approval) -> bool:
    """Pending and not past its expiry time."""
    return approval.state == "pending" and approval.expires_at > time.time()


async def update_card(rt: SlackRuntime, approval: Approval) -> None:
    """Edit the approval's card (if it was posted) to show its current state."""
    if approval.message_ts:
        # A failure is already logged by the notifier; the decision stands.
        with contextlib.suppress(SlackApiError):
            await rt.notifier.update(approval.channel, approval.message_ts, decided_card(approval))


async def may_open_modal(rt: SlackRuntime, approval_id: str, user: str, channel: str) -> bool:
    """Whether `user` may approve (checked by the pipeline, nothing claimed).

    Called for approvals that need a typed name: `decide_approval` without the
    name checks the clicker's right first and stops at the name check, so a
    refusal is shown now instead of after the modal. Refusals go to the clicker.
    """
    invocation = await rt.invocation(user, channel, f"approve {approval_id}")
    reply = await rt.bot.pipeline.decide_approval(invocation, approval_id, True, None)
    approval = rt.bot.services.approvals.get(approval_id)
    if reply.status == "denied" or approval is None or not is_live(approval):
        rt.metrics.approval("refused")
        await rt.ephemeral(channel, user, reply)
        return False
    return True


async def settle_approval(
    rt: SlackRuntime,
    approval_id: str,
    *,
    user: str,
    channel: str,
    approve: bool,
    confirm: str | None,
) -> None:
    """Approve (and run) or deny for `user`, then show the outcome in Slack."""
    approvals = rt.bot.services.approvals
    text = f"approve {approval_id}" if approve else f"deny {approval_id}"
    invocation = await rt.invocation(user, channel, text)
    with acting_as(invocation):  # API calls are audited with the approver
        reply = await rt.bot.pipeline.decide_approval(invocation, approval_id, approve, confirm)
    after = approvals.get(approval_id)
    decided_here = (
        after is not None
        and after.state not in ("pending", "expired")
        and after.decided_by == user
        and not _refused(reply)
    )
    if not decided_here or after is None:
        expired = after is not None and after.state == "expired"
        rt.metrics.approval(
            "expired" if expired else "refused" if reply.status == "denied" else "not_decided"
        )
        if expired and after is not None:
            await update_card(rt, after)
        await rt.ephemeral(channel, user, reply)
        return
    rt.metrics.approval("approved" if approve else "denied")
    await update_card(rt, after)
    if approve:
        await rt.deliver(
            reply,
            channel=after.channel,
            user=user,
            thread_ts=after.message_ts,
            requester=after.requester,
        )
