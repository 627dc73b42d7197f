"""`approve`, `deny` and `pending`: acting on approvals (the buttons of an approval card).

The decision is the pipeline's (`commands.pipeline.decide_approval`): the
clicker's right is checked at the click (permissions.policy.may_approve), the
claim is atomic (permissions/approvals.py) so a plan runs at most once, and
the approved plan runs exactly as the card showed it.
"""

from __future__ import annotations

import time
from typing import Any

from commands.context import Context
from commands.options import NoOptions
from commands.pipeline import decide_approval
from commands.registry import Rights, verb
from core.refs import UserRef
from core.reply import Action, Reply, Table


class ConfirmOption(NoOptions):
    """`confirm=`: the database name an approver must type (terminate, empty, delete-db)."""

    confirm: str | None = None


@verb(
    "approve",
    "<id>",
    options=ConfirmOption,
    example="approve Xk2pQ9aZ confirm=sandbox-db",
    group="Approvals",
    rights=(Rights(who="an approver", note="not one's own request in a protected environment"),),
)
async def approve(ctx: Context, values: dict[str, Any]) -> Reply:
    """Approve a waiting destructive command (runs it once)

    Refused when the clicker may not approve (not an approver, or their own
    request in a protected environment), when the approval belongs to another
    channel, or without the typed name it asks for; "already decided" or
    "expired" once it is no longer pending.
    """
    return await decide_approval(ctx, values["id"], True, values.get("confirm"))


@verb(
    "deny",
    "<id>",
    example="deny Xk2pQ9aZ",
    group="Approvals",
    rights=(Rights(who="an approver, or the requester"),),
)
async def deny(ctx: Context, values: dict[str, Any]) -> Reply:
    """Deny a waiting command (the requester may also withdraw it)"""
    return await decide_approval(ctx, values["id"], False, None)


@verb("pending", example="pending", group="Approvals", rights=(Rights(who="anyone"),))
async def pending(ctx: Context, values: dict[str, Any]) -> Reply:
    """List the approvals waiting in this channel

    Id, requester, summary and minutes left, with a Deny button for the first five.
    """
    slash = ctx.services.slash_command
    table = Table(columns=["Approval", "Requested by", "What", "Expires"])
    actions = []
    for approval in ctx.services.approvals.pending(ctx.invocation.channel):
        minutes = max(0, round((approval.expires_at - time.time()) / 60))
        table.rows.append(
            [approval.id, str(UserRef(approval.requester)), approval.summary, f"in {minutes} min"]
        )
        actions.append(Action(label=f"Deny {approval.id}", command=f"{slash} deny {approval.id}"))
    if not table.rows:
        table.note = "nothing is waiting for approval here"
    return Reply(
        status="info",
        title="Pending approvals",
        tables=[table],
        actions=actions[:5],
        visibility="ephemeral",
    )
