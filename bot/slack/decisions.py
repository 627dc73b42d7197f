"""Deciding an approval from Slack (a button, the typed-name modal, or `/gdb approve
<id>` typed as text) and showing it.

The decision itself is `Pipeline.decide_approval`, whose `ApprovalStore.claim`
is atomic: double clicks and replays execute at most once. This module only
tells the clicker about a refusal (privately), or, when this click made the
decision, edits the card in place (who asked, who decided, when, no buttons: first
"running", then the end, a failure with its reason) and posts the outcome in the
card's thread, naming requester and approver (`report_outcome`, also used after a
restart by bot/slack/recovery.py). An expired approval's card is edited to say so,
here and by the expiry sweep.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import time
from typing import TYPE_CHECKING

from slack_sdk.errors import SlackApiError

from bot.slack.blocks import cut
from bot.slack.edge import Origin
from bot.slack.notifier import Uncertain
from commands.context import reporting_progress
from core.audit_context import acting_as
from core.refs import UserRef
from core.reply import Reply
from operations.locked import write_when_free
from permissions.approvals import UNFINISHED, Approval
from permissions.audit import iso_time

if TYPE_CHECKING:
    from bot.slack.runtime import SlackRuntime

log = logging.getLogger("graphops.slack")


def decided_card(approval: Approval) -> Reply:
    """The card of an approval that is no longer pending (no buttons): running, or its end
    (executed, failed with the reason, denied, expired)."""
    when = iso_time(approval.decided_at or approval.expires_at)
    decider = UserRef(approval.decided_by or "")
    result = cut(approval.result or "", 400)
    if approval.state == "expired":
        title, status = f"Expired: {approval.summary}", "info"
        text = f"Nobody decided before {iso_time(approval.expires_at)}; nothing was run."
    elif approval.state == "denied":
        title, status = f"Denied: {approval.summary}", "denied"
        text = f"Denied by {decider} at {when}; nothing was run."
    elif approval.state in UNFINISHED:
        title, status = f"Approved: {approval.summary}", "pending"
        doing = f" ({approval.step})" if approval.step and approval.step != "start" else ""
        text = f"Approved by {decider} at {when}. Running{doing}; the outcome follows below."
    elif approval.state == "failed":
        title, status = f"Approved, then failed: {approval.summary}", "error"
        text = f"Approved by {decider} at {when}. It failed: {result or 'see the thread'}."
    else:
        title, status = f"Approved: {approval.summary}", "ok"
        text = f"Approved by {decider} at {when}. Done: {result or 'see the thread'}."
        text += " The result is in the thread."
    return Reply.model_validate(
        {
            "status": status,
            "title": title,
            "text": text,
            "fields": [
                ("Requested by", str(UserRef(approval.requester))),
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


async def refusal(rt: SlackRuntime, approval_id: str, origin: Origin) -> Reply | None:
    """Why `origin`'s user may not approve now (None when they may), checked by the
    executor without claiming anything: `decide_approval` without the typed name
    checks the clicker's right first and stops at the name check."""
    started = time.perf_counter()
    invocation = await rt.invocation(origin, f"approve {approval_id}")
    reply = await rt.bot.pipeline.decide_approval(invocation, approval_id, True, None)
    approval = rt.bot.services.approvals.get(approval_id)
    if reply.status == "denied" or approval is None or not is_live(approval):
        rt.metrics.approval("refused")
        rt.bot.log(invocation, reply, started)  # the click's one line: refused
        return reply
    return None


async def settle_approval(
    rt: SlackRuntime,
    approval_id: str,
    *,
    origin: Origin,
    approve: bool,
    confirm: str | None,
) -> None:
    """Approve (and run) or deny for `origin`'s user, then show the outcome in Slack: the
    card shows "running" (no buttons) once approved, then its end; the thread gets the
    outcome."""
    started = time.perf_counter()
    approvals = rt.bot.services.approvals
    user = origin.user
    text = f"approve {approval_id}" if approve else f"deny {approval_id}"
    invocation = await rt.invocation(origin, text)

    async def claimed(approval: Approval) -> None:
        await update_card(rt, approvals.get(approval.id) or approval)

    async def progress(text: str) -> None:  # in the card's thread, as the tracker's steps
        approval = approvals.get(approval_id)
        if approval is not None and approval.message_ts:
            await rt.notifier.post(
                approval.channel, Reply(status="info", text=text), approval.message_ts
            )

    with acting_as(invocation), reporting_progress(progress):  # audited with the approver
        reply = await rt.bot.pipeline.decide_approval(
            invocation, approval_id, approve, confirm, on_claimed=claimed if approve else None
        )
    rt.bot.log(invocation, reply, started)  # one line per decision, as for a command
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
            await mark_reported(rt, after.id)
        await rt.delivery.to_requester(reply, origin)
        return
    rt.metrics.approval("approved" if approve else "denied")
    if not approve:
        await update_card(rt, after)
        await mark_reported(rt, after.id)
        return
    await report_outcome(rt, after, reply, origin)


async def report_outcome(
    rt: SlackRuntime, approval: Approval, reply: Reply | None = None, origin: Origin | None = None
) -> None:
    """Show the end of approved work: the card edited in place, the outcome in its thread
    (naming requester and approver; its operations followed there), then recorded as
    reported. `reply` defaults to the one kept in the approval row (after a restart):
    then an outcome a killed process had posted (its message carries the key
    `outcome_key`) is found in the thread and followed, not posted again.
    Work not ended yet (another process runs it) is only told to the clicker."""
    if approval.state not in ("executed", "failed"):
        if reply is not None and origin is not None:
            await rt.delivery.to_requester(reply, origin)
        return
    after_restart = reply is None
    if reply is None:
        reply = (
            Reply.model_validate_json(approval.reply)
            if approval.reply
            else Reply(status="ok", text=approval.result or "")
        )
    reply = reply.model_copy(
        update={
            "context": f"Requested by {UserRef(approval.requester)}, "
            f"approved by {UserRef(approval.decided_by or '')} (approval `{approval.id}`)"
        }
    )
    await update_card(rt, approval)
    decider = approval.decided_by or approval.requester
    in_channel = Origin(
        user=decider,
        channel=approval.channel,
        response_url=origin.response_url if origin and origin.user == decider else "",
        received_at=origin.received_at if origin else time.monotonic(),
        response_uses=origin.response_uses if origin else 0,
        via=origin.via if origin else "button",
        workspace=origin.workspace if origin else None,
        home=origin.home if origin else None,
    )
    key = outcome_key(approval.id)
    posted = await _posted_before(rt, approval, key) if after_restart else None
    if posted is not None:
        await rt.delivery.follow(
            reply,
            in_channel,
            ts=posted,
            root=approval.message_ts,
            first=False,
            requester=approval.requester,
            approver=approval.decided_by,
        )
    else:
        await rt.delivery.deliver(
            reply,
            in_channel,
            thread_ts=approval.message_ts,
            requester=approval.requester,
            approver=approval.decided_by,
            key=key,
        )
    await mark_reported(rt, approval.id)


def outcome_key(approval_id: str) -> str:
    """The key the outcome message of an approval carries in its metadata."""
    return f"approval-outcome:{approval_id}"


async def _posted_before(rt: SlackRuntime, approval: Approval, key: str) -> str | None:
    """The ts of the approval's outcome message in its card's thread, when a process
    killed before recording it as reported had posted it (conversations.replies,
    channels:history / groups:history); None when it is not there or the history cannot
    tell (then it is posted: a repeat rather than nothing)."""
    if not approval.message_ts:
        return None
    since = approval.decided_at or approval.created_at
    try:
        return await rt.notifier.find(approval.channel, approval.message_ts, key, since)
    except Uncertain:
        return None


async def mark_reported(rt: SlackRuntime, approval_id: str) -> None:
    """Record that the card and its thread show the approval's end, waiting for a store
    another process holds (operations/locked.py); a lock held through every try leaves it
    for the next start, which tells the card again (logged)."""
    approvals = rt.bot.services.approvals
    try:
        await write_when_free(
            lambda: approvals.mark_reported(approval_id),
            f"approval {approval_id}'s report",
            rt.bot.store.ready,
        )
    except sqlite3.OperationalError as exc:
        log.warning("approval %s: its report is not recorded (%s)", approval_id, exc)
