"""What a stopped graphops left unfinished, taken up when `graphops serve` starts.

1. Approved work whose process is gone (permissions/approvals.py: approved or
   executing): taken over, then resumed or ended with a clear failure
   (`Pipeline.resume_approved`, commands/execution.py); its card ends in its
   final state and its thread gets the outcome, naming requester and approver
   (failures also go to the environment's incident channel).
2. Approvals that ended while their card and thread were not told yet (a kill
   between the two): told now.
3. Slack requests acknowledged but not finished (operations/inbox.py): an answer
   that was posted has its operations followed under its message (its ts kept in
   the row, or found in the channel's history by the key it carries,
   `Inbox.answer_key`: a kill between the post and keeping its ts; when the history
   cannot be read, it is shown to the requester alone); every other
   requester is answered in the command's place (its response_url while it
   lasts, else privately in the channel, else a DM). A command is never run
   again: "nothing was done" when it had sent nothing that changes anything,
   "its outcome is unknown" (naming the request) when it had, and its kept
   answer when it had one. A click on an approval that was not recorded is told
   the card still waits; one that was is answered by the card itself (1).

The work runs in the background as listener work (`SlackRuntime.work`), so a
SIGTERM drains it like any other; `graphops serve` starts it once the store can be
written (`recover_when_free`), listening meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import Awaitable, Callable
from functools import partial

from bot.slack.decisions import mark_reported, report_outcome, update_card
from bot.slack.delivery import approval_id_of, requester_line
from bot.slack.edge import Origin
from bot.slack.notifier import Uncertain
from bot.slack.runtime import SlackRuntime
from commands.execution import paused_here
from commands.grammar import GrammarError, approval_command, parse
from commands.targets import how_to_check
from core.reply import Reply
from operations.inbox import AcceptedRequest, sent_provider
from permissions.approvals import Approval
from permissions.audit import iso_time
from permissions.model import is_direct

log = logging.getLogger("graphops.slack")


def resume_orphans(rt: SlackRuntime) -> int:
    """Take over approved work whose process is gone and resume it in the background (at
    start, and from the expiry sweep: a `graphops shell` killed while running an
    approval), and go on with this process's own work that a locked store paused
    (commands/execution.py, `StorePaused`) once the store is free; how many."""
    approvals = rt.bot.services.approvals
    count = 0
    for approval in approvals.unfinished():
        paused = paused_here(approval)
        if paused or approvals.take_over(approval):
            log.info("resuming approved work %s (%s)", approval.id, approval.verb)
            rt.work(None, _resume(rt, approval.id, paused))
            count += 1
    return count


# Cards told and requests answered at once after a restart: each edits or posts in Slack,
# whose chat.update and chat.postMessage are rate-limited (Tier 3, "50+ per minute";
# docs.slack.dev/apis/web-api/rate-limits): a hundred at once is a storm of 429s.
RECOVERY_AT_ONCE = 4


def recover(rt: SlackRuntime) -> int:
    """Start taking up what a stopped process left (in the background); how many items.
    Approved work resumes at once; the cards and requests to tell go `RECOVERY_AT_ONCE`
    at a time."""
    approvals = rt.bot.services.approvals
    count = resume_orphans(rt)
    at_once = asyncio.Semaphore(RECOVERY_AT_ONCE)
    for approval in approvals.unreported():
        rt.work(None, _paced(at_once, partial(_report, rt, approval.id)))
        count += 1
    requests = rt.inbox.left_over()
    landed = Landed(rt, requests)
    for request in requests:
        rt.work(None, _paced(at_once, partial(_answer, rt, request, landed)))
        count += 1
    if count:
        log.info("taking up %d item(s) left unfinished by the last run", count)
    return count


async def _paced(at_once: asyncio.Semaphore, work: Callable[[], Awaitable[None]]) -> None:
    """`work()` once one of `at_once` is free (made only then: nothing is left unawaited
    when the task is dropped at shutdown before it starts)."""
    async with at_once:
        await work()


def start_recovery(rt: SlackRuntime) -> asyncio.Task[int]:
    """`recover_when_free` in the background, for `graphops serve` once it listens. Not
    listener work (`SlackRuntime.work` gives up after one wait for the store): it waits
    as long as the store stays locked (found by an attack: a lock held past 30 s at
    start, and nothing the last run left was taken up until the next restart)."""

    async def recovering() -> int:
        async with rt.shielded(None):  # anything unexpected: logged, never lost silently
            return await recover_when_free(rt)
        return 0

    return rt.spawn(recovering())


async def recover_when_free(rt: SlackRuntime) -> int:
    """`recover` once the store can be written: `graphops serve` listens at once, even
    while another process holds the store's write lock (a backup), and takes up what
    the last run left when the lock is let go (waiting as long as it is held, until a
    SIGTERM). Taken up once: a lock taken again in the middle leaves the rest for the
    next start (logged). How many items (0 when it did not run)."""
    while not await rt.bot.store.ready():
        if rt.draining:
            return 0
        log.warning("taking up what the last run left waits for the store (locked)")
    try:
        return recover(rt)
    except sqlite3.OperationalError as exc:
        log.error("taking up what the last run left stopped (%s); the next start goes on", exc)
        return 0


async def _resume(rt: SlackRuntime, approval_id: str, paused: bool) -> None:
    approvals = rt.bot.services.approvals
    approval = approvals.get(approval_id)
    if approval is None:
        return
    reply = await rt.bot.pipeline.resume_approved(approval, paused=paused)
    after = approvals.get(approval_id) or approval
    rt.metrics.approval("resumed")
    await report_outcome(rt, after, reply)


async def _report(rt: SlackRuntime, approval_id: str) -> None:
    approval = rt.bot.services.approvals.get(approval_id)
    if approval is None:
        return
    if approval.state in ("executed", "failed"):
        await report_outcome(rt, approval)
        return

    await update_card(rt, approval)
    await mark_reported(rt, approval.id)


def _delivered(rt: SlackRuntime, reply: Reply) -> bool:
    """Whether a kept answer was delivered before the kill (after delivery only the
    inbox row was left): its approval card was posted, or its operations are followed."""
    approval_id = approval_id_of(reply)
    if approval_id is not None:
        approval = rt.bot.services.approvals.get(approval_id)
        return approval is not None and approval.message_ts is not None
    history = rt.bot.services.history
    if not reply.operations or history is None:
        return False
    return all(
        any(
            op.operation_id == ref.operation_id
            for op in history.for_database(ref.provider, ref.database_id, limit=50)
        )
        for ref in reply.operations
    )


class Landed:
    """Which answers of left-over requests were posted before the kill (their key,
    `Inbox.answer_key`, found in the history since the oldest of them): each place's history
    (a channel, or a mention's thread) is read once for all of them
    (conversations.history and .replies are rate-limited), when the first asks."""

    def __init__(self, rt: SlackRuntime, requests: list[AcceptedRequest]) -> None:
        self._rt = rt
        self._since: dict[tuple[str, str | None], float] = {}
        for request in requests:
            if request.stage == "answered" and not request.posted_ts and request.channel:
                place = (request.channel, request.thread_ts)
                self._since[place] = min(
                    self._since.get(place, request.received_at), request.received_at
                )
        self._read: dict[
            tuple[str, str | None], asyncio.Task[tuple[dict[str, str], bool] | None]
        ] = {}

    async def look(self, request: AcceptedRequest, reply: Reply) -> tuple[str | None, bool]:
        """(the ts of the message that answered `request` in its channel or thread: the
        one its row kept, else one posted by a process killed before keeping it
        (`Inbox.posted`), or None; whether that is known). An answer shown privately
        outside a DM (response_url, ephemeral: no history): (None, True)."""
        if request.posted_ts:
            return request.posted_ts, True
        place = (request.channel, request.thread_ts)
        in_history = reply.visibility == "channel" or is_direct(request.channel)
        if not in_history or place not in self._since:
            return None, True  # shown privately elsewhere: Slack keeps no history of it
        if place not in self._read:
            self._read[place] = asyncio.ensure_future(self._keys(place))
        found = await asyncio.shield(self._read[place])
        if found is None:
            return None, False
        keys, whole = found
        ts = keys.get(self._rt.inbox.answer_key(request.id))
        return ts, ts is not None or whole

    async def _keys(self, place: tuple[str, str | None]) -> tuple[dict[str, str], bool] | None:
        channel, thread_ts = place
        try:
            return await self._rt.notifier.posted_keys(channel, thread_ts, self._since[place])
        except Uncertain:
            return None


def when_received(at: float, now: float | None = None) -> str:
    """`14:02:11 UTC` for a request of the last 20 hours, else with its date
    (`2026-11-28 14:02:11 UTC`): a time alone would read as today's."""
    now = time.time() if now is None else now
    shown = iso_time(at)
    return (shown[11:19] if 0 <= now - at < 20 * 3600 else shown[:19].replace("T", " ")) + " UTC"


def _origin(request: AcceptedRequest) -> Origin:
    age = max(0.0, time.time() - request.received_at)
    thread = request.thread_ts
    return Origin(
        user=request.user,
        channel=request.channel,
        response_url=request.response_url or "",
        command=request.text,
        received_at=time.monotonic() - age,
        thread_ts=thread,  # a mention is answered in its thread
        via="dm" if is_direct(request.channel) else "mention" if thread else "slash",
    )


def _approval_of(rt: SlackRuntime, text: str) -> Approval | None:
    try:
        decision = approval_command(parse(text, rt.bot.services.slash_command))
    except GrammarError:
        return None
    return rt.bot.services.approvals.get(decision[1]) if decision else None


async def _answer(rt: SlackRuntime, request: AcceptedRequest, landed: Landed) -> None:
    """Answer one request a stopped process had accepted, then forget it."""
    origin = _origin(request)
    shown = f"`{rt.bot.services.slash_command} {request.text}`".replace("\n", " ")
    at = when_received(request.received_at)
    approval = _approval_of(rt, request.text)
    if approval is not None:
        if approval.state == "pending":
            await rt.delivery.say(
                origin,
                f"graphops restarted before your {shown} (at {at}) was recorded: the "
                "request still waits for a decision on its card. Click again.",
            )
        # decided: the card and its thread tell the outcome (recover, step 1)
    elif request.stage == "answered" and request.reply:
        reply = Reply.model_validate_json(request.reply)
        if not _delivered(rt, reply):
            ts, told = await landed.look(request, reply)
            if ts:
                # posted before the kill: its operations are followed under that message
                # (which the tracker edits to their end; in a mention's thread, under the
                # thread), never posted a second time
                root, first = request.thread_ts or ts, request.thread_ts is None
                await rt.delivery.follow(reply, origin, ts=ts, root=root, first=first)
            else:
                asked = requester_line(origin, rt.bot.services.slash_command)
                late: dict[str, str] = {
                    "context": f"{asked} at {at}; answer delivered after graphops restarted."
                }
                if not told:
                    # It may have been posted (or, when posting failed, shown to the
                    # requester) already: shown to the requester alone rather than posted
                    # twice (nor lost).
                    late["context"] += (
                        " It may have been delivered already: the conversation's history"
                        " could not be read to check."
                    )
                    late["visibility"] = "ephemeral"
                key = rt.inbox.answer_key(request.id)
                await rt.delivery.deliver(reply.model_copy(update=late), origin, key=key)
    elif request.stage == "sent":
        await rt.delivery.say(
            origin,
            f"graphops restarted while it ran {shown} (at {at}). It had sent "
            f"`{request.sent}`, and its answer was lost: whether it was carried out is "
            f"unknown. {_check(rt, request.sent)} before running it again.",
            status="error",
        )
    else:
        await rt.delivery.say(
            origin,
            f"graphops restarted before it could run {shown} (at {at}): nothing was done. "
            "Run it again if it is still needed.",
            status="error",
        )
    rt.forget(request.id)


def _check(rt: SlackRuntime, sent: str | None) -> str:
    """How to check the outcome of a request the inbox kept as sent (`sent_line`)."""
    check = how_to_check(rt.bot.services.providers, sent_provider(sent))
    return check[:1].upper() + check[1:]
