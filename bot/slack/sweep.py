"""The approval expiry sweep: expire what is due and edit the cards to say so; take over
approved work whose process is gone (bot/slack/recovery.py)."""

from __future__ import annotations

import asyncio
import logging
import traceback

from bot.slack.decisions import mark_reported, update_card
from bot.slack.recovery import resume_orphans
from bot.slack.runtime import SlackRuntime
from permissions.approvals import Approval

log = logging.getLogger("graphops.slack")

DEFAULT_SWEEP_SECONDS = 30.0


async def sweep_once(rt: SlackRuntime) -> list[Approval]:
    """Expire due approvals (atomically, in the store) and update their cards; resume
    approved work whose process is gone; delete the inbox rows of answered requests
    that met a locked store."""
    if not rt.draining:
        resume_orphans(rt)
    rt.forget_later()  # answered requests whose inbox rows met a locked store
    expired = rt.bot.services.approvals.expire_due()
    for approval in expired:
        rt.metrics.approval("expired")
        await update_card(rt, approval)
        await mark_reported(rt, approval.id)
    return expired


async def sweep_forever(rt: SlackRuntime, every_seconds: float = DEFAULT_SWEEP_SECONDS) -> None:
    """Run `sweep_once` every `every_seconds` until cancelled; errors are logged."""
    while True:
        try:
            await sweep_once(rt)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.error(rt.bot.redact(f"approval sweep failed: {exc!r}\n{traceback.format_exc()}"))
        await asyncio.sleep(every_seconds)
