"""The tracker: follows every async operation to its end, across restarts.

Each tracked operation is a row in SQLite (provider, database, operation, who
asked, where, the thread, how many steps were reported). Each operation is polled
when it is due, with its own backoff (fast at first, slower later, capped; each
interval counted from when the previous poll was due, so latency does not add up),
through the shared provider clients: one token and one connection pool per
provider however many operations are followed. In the background, a dispatch
loop starts the polls of due operations in the order they fell due, each on its
own, while fewer than `concurrency` are in flight, so a slow answer holds up
nobody; each wait is shortened by a random part of up to `spread` of it, so
operations started together drift apart instead of all polling at the same
instant. Delivery runs in a loop of its own, woken as soon as a poll queued a
message: it sends each thread as a task of its own (one at a time per thread, in
order), so a new message never waits for other threads' sends. Polls are
background API requests: the audit log counts them per interval
(core.audit_context.polling).

Every tracked operation ends: after `FollowLimits.max_failures` failed polls
in a row (an unusable answer, 404, 5xx, no connection, or anything else that
goes wrong) or once the deadline of its kind has passed, it is recorded as
lost, and one final message says what is known (the last status and step
seen, the operation id, `ops <db>` to check) in the thread and in the
incident channel. A lost operation is never polled again.

What the tracker has to say goes to the outbox (operations/store.py) under a
key per operation (`step:<index>`, `final`, `status`, `incident`), so a step is
queued once even if a restarted bot sees it again. The delivery loop sends the
outbox through the transport's Notifier in order; when it falls behind (Slack
rate limits), consecutive step messages of one thread are coalesced into one
message: late, never lost.
"""

from __future__ import annotations

import asyncio
import logging
import random
import sqlite3
import time
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

import sqlite_utils

from clients.errors import ApiError
from core.audit_context import polling
from core.provider import Provider
from core.redaction import redact, redact_reply
from core.refs import UserRef, posted_in
from core.reply import OperationRef, Reply
from core.words import duration
from operations.follow import Backoff, FollowLimits, failed_polls, last_seen, past_deadline
from operations.incidents import Incidents
from operations.locked import pause_a_second, write_when_free
from operations.loop import BackgroundLoop
from operations.migrations import migrate
from operations.notify import Notifier
from operations.store import Outbox, OutboxRow
from permissions.store import PermissionStore

log = logging.getLogger("graphops.tracker")

#: How long a thread waits after failed sends in a row before the next try: 0.5 s,
#: doubling, at most 30 s (a transport that keeps failing, a closed terminal, is not
#: tried thousands of times a second; Slack's 429s carry their own Retry-After, which
#: its client waits out first).
RESEND_BACKOFF = Backoff(first=0.5, factor=2.0, cap=30.0)

# Verbs whose successful end is announced in the incident channel too.
ANNOUNCED_VERBS = frozenset({"terminate", "switch", "switch-back", "dr", "restore", "import"})


@dataclass(frozen=True)
class TrackerSettings:
    """How the tracker polls and delivers, and when it gives up (``limits``).

    ``concurrency``: polls in flight at once (they also wait for a connection of the
    provider's pool); ``deliveries``: messages being sent at once; ``spread``: each
    wait before a poll is shortened by a random fraction of up to this much (0 = none);
    ``tick_seconds``: how often the loops look for due work when nothing woke them.
    """

    backoff: Backoff = field(default_factory=Backoff)
    concurrency: int = 100
    deliveries: int = 64
    tick_seconds: float = 0.2
    limits: FollowLimits = field(default_factory=FollowLimits)
    batch: int = 500
    spread: float = 0.1


def who_ran(requester: str | None, approver: str | None) -> str:
    """`Requested by @a, approved by @b` (or `Run by @a`), with refs the transport renders."""
    asked = str(UserRef(requester)) if requester else "someone"
    if approver:
        return f"Requested by {asked}, approved by {UserRef(approver)}"
    return f"Run by {asked}"


class Tracker:
    """Follows operations and reports their progress through a Notifier."""

    def __init__(
        self,
        db: sqlite_utils.Database,
        providers: Mapping[str, Provider],
        notifier: Notifier,
        *,
        permissions: PermissionStore | None = None,
        settings: TrackerSettings | None = None,
        clock: Callable[[], float] = time.time,
        ready: Callable[[], Awaitable[bool]] = pause_a_second,
    ) -> None:
        self.db = db
        self._ready = ready  # waits for another process's write lock (operations/locked.py)
        self.providers = providers
        self.notifier = notifier
        self.permissions = permissions
        self.settings = settings or TrackerSettings()
        self._clock = clock
        self.outbox = Outbox(db, clock)
        self.incidents = Incidents(db, permissions, clock) if permissions is not None else None
        self._semaphore = asyncio.Semaphore(self.settings.concurrency)
        self._sends = asyncio.Semaphore(self.settings.deliveries)
        self._random = random.Random()
        self._inflight: dict[int, asyncio.Task[None]] = {}
        self._sending: dict[tuple[str, str | None], asyncio.Task[int]] = {}
        # Threads whose last send failed: (failures in a row, not before this time).
        self._resend: dict[tuple[str, str | None], tuple[int, float]] = {}
        self._loop = BackgroundLoop("graphops-tracker", self.dispatch, self.settings.tick_seconds)
        self._delivery = BackgroundLoop(
            "graphops-tracker-delivery", self.dispatch_deliveries, self.settings.tick_seconds
        )
        self.polls = 0
        migrate(db)

    # -- intake -------------------------------------------------------------------

    async def track(
        self,
        ref: OperationRef,
        *,
        channel: str,
        thread_ts: str | None,
        user: str,
        origin: Reply | None = None,
        approver: str | None = None,
    ) -> int:
        """Start following an operation; returns its tracking id (same id if already tracked).

        `approver` is who approved the command that started it (named in incident posts).
        """
        tracked = await write_when_free(
            lambda: self._record(ref, channel, thread_ts, user, origin, approver),
            f"following operation {ref.operation_id} of {ref.label or ref.database_id}",
            self._ready,
        )
        self._loop.wake()
        return tracked

    def _record(
        self,
        ref: OperationRef,
        channel: str,
        thread_ts: str | None,
        user: str,
        origin: Reply | None,
        approver: str | None,
    ) -> int:
        """Write the row of a followed operation (once: same id if it is there); its id."""
        now = self._clock()
        self.db.execute(
            "INSERT OR IGNORE INTO tracked_operations (provider, database_id, root_operation_id, "
            "operation_id, label, verb, environment_id, environment_name, requester, channel, "
            "thread_ts, origin, started_at, next_poll_at, approver) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                ref.provider,
                ref.database_id,
                ref.operation_id,
                ref.operation_id,
                ref.label,
                ref.verb,
                ref.environment_id,
                ref.environment_name,
                user,
                channel,
                thread_ts,
                redact_reply(origin).model_dump_json() if origin else None,
                now,
                now + self._spread(self.settings.backoff.first),
                approver,
            ],
        )
        row = self.db.execute(
            "SELECT id FROM tracked_operations WHERE provider = ? AND root_operation_id = ?",
            [ref.provider, ref.operation_id],
        ).fetchone()
        return int(row[0])

    def announce(
        self,
        provider: str,
        environment_id: str,
        environment_name: str,
        reply: Reply,
        *,
        tracked_id: int | None = None,
        key: str = "incident",
    ) -> bool:
        """Queue a message for the environment's incident channel, if one is set."""
        if self.incidents is None:
            return False
        queued = self.incidents.announce(
            provider, environment_id, environment_name, reply, key=key, tracked_id=tracked_id
        )
        self._delivery.wake()
        return queued

    # -- polling --------------------------------------------------------------------

    def running(self) -> int:
        """How many operations are being followed."""
        row = self.db.execute(
            "SELECT COUNT(*) FROM tracked_operations WHERE state = 'running'"
        ).fetchone()
        return int(row[0])

    def state(self, tracked_id: int) -> str:
        """running | finished | failed | lost (or "unknown")."""
        row = self.db.execute(
            "SELECT state FROM tracked_operations WHERE id = ?", [tracked_id]
        ).fetchone()
        return str(row[0]) if row else "unknown"

    def _spread(self, delay: float) -> float:
        """`delay` shortened by a random fraction of up to `spread` (never lengthened, so
        an operation is polled at least as often as its backoff says)."""
        return delay * (1 - self.settings.spread * self._random.random())

    def _due(self, limit: int, skip: Collection[int] = ()) -> list[dict[str, Any]]:
        """Running operations due now, oldest due first, leaving out the ids in `skip`."""
        cursor = self.db.execute(
            "SELECT * FROM tracked_operations WHERE state = 'running' AND next_poll_at <= ? "
            f"AND id NOT IN ({', '.join('?' * len(skip))}) ORDER BY next_poll_at LIMIT ?",
            [self._clock(), *skip, limit],
        )
        columns = [c[0] for c in cursor.description]
        return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]

    async def poll_due(self) -> int:
        """Poll every operation that is due (up to `batch`), at most `concurrency` at a
        time, and wait for all of them; returns how many were polled."""
        due = self._due(self.settings.batch)

        async def bounded(row: dict[str, Any]) -> None:
            async with self._semaphore:
                await self._poll_guarded(row)

        await asyncio.gather(*(bounded(row) for row in due))
        return len(due)

    async def dispatch(self) -> int:
        """Start a poll for each due operation not being polled already, oldest due
        first, while fewer than `concurrency` are in flight; returns how many started.

        Each poll runs as a task of its own and, when it ends, wakes this loop (a slot
        is free) and the delivery loop (it may have queued a message).
        """
        free = self.settings.concurrency - len(self._inflight)
        if free <= 0:
            return 0
        due = self._due(free, skip=list(self._inflight))
        for row in due:
            self._inflight[row["id"]] = asyncio.create_task(
                self._poll_task(row), name=f"graphops-poll-{row['id']}"
            )
        return len(due)

    async def _poll_task(self, row: dict[str, Any]) -> None:
        queued = self.outbox.queued
        try:
            await self._poll_guarded(row)
        finally:
            self._inflight.pop(row["id"], None)
            self._loop.wake()
            if self.outbox.queued != queued:  # most polls see no new step: nothing to send
                self._delivery.wake()

    async def _poll_guarded(self, row: dict[str, Any]) -> None:
        with polling("tracker"):
            try:
                await self._poll(row)
            except sqlite3.OperationalError as exc:  # another process holds the lock
                log.warning("operation %s waits for the store: %s", row["operation_id"], exc)
            except Exception:  # one broken operation must not stop the others
                log.exception("tracking operation %s failed", row["operation_id"])
                self._failed(row, "an internal error while reading it (in the bot's log)")

    def _failed(self, row: dict[str, Any], reason: str) -> None:
        """Count a failed poll; after too many in a row, the operation is lost."""
        errors = row["errors"] + 1
        if errors >= self.settings.limits.max_failures:
            self._finish({**row, "errors": errors}, "lost", failed_polls(errors, reason))
        else:
            self._reschedule(row, errors=errors)

    def _reschedule(self, row: dict[str, Any], *, errors: int | None = None) -> None:
        """Set the next poll one backoff interval after this one was *due* (not after its
        answer came), so neither the API's latency nor a wait for a free slot pushes every
        later poll back; but never sooner than `backoff.first` from now, so a poll that
        was very late is not followed by a burst of catching up."""
        polls = row["polls"] + 1
        delay = self.settings.backoff.delay(polls)
        now = self._clock()
        next_poll_at = max(
            row["next_poll_at"] + self._spread(delay),
            now + min(delay, self.settings.backoff.first),
        )
        self.db.execute(
            "UPDATE tracked_operations SET polls = ?, errors = ?, next_poll_at = ? WHERE id = ?",
            [polls, row["errors"] if errors is None else errors, next_poll_at, row["id"]],
        )

    async def _poll(self, row: dict[str, Any]) -> None:
        deadline = self.settings.limits.deadline(row["verb"])
        if self._clock() - row["started_at"] > deadline:
            self._finish(row, "lost", past_deadline(deadline))
            return
        provider = self.providers.get(row["provider"])
        if provider is None or provider.operations is None:
            self._finish(row, "lost", f"provider {row['provider']!r} has no such operations")
            return
        self.polls += 1
        try:
            op = await provider.operations.operation(row["database_id"], row["operation_id"])
        except ApiError as exc:  # NotFound and UnusableAnswer included
            self._failed(row, exc.describe())
            return
        reported, offset = row["steps_reported"], row["steps_offset"]
        last_step = row["last_step"]
        elapsed = self._clock() - row["started_at"]
        for position, step in enumerate(op.steps):
            index = offset + position
            if index == reported and step.reached:
                text = f"{step.name}" + (" (failed)" if step.status == "failed" else "")
                self.outbox.put(
                    row["id"],
                    f"step:{index}",
                    row["channel"],
                    Reply(status="info", text=f"{text} · {duration(elapsed)}").model_dump(),
                    thread_ts=row["thread_ts"],
                )
                reported += 1
                last_step = step.name
        if op.status == "finished" and op.next_operation_id:
            offset += len(op.steps)
            self.db.execute(
                "UPDATE tracked_operations SET operation_id = ?, steps_offset = ?, "
                "steps_reported = ?, errors = 0, next_poll_at = ?, last_status = ?, "
                "last_step = ? WHERE id = ?",
                [
                    op.next_operation_id,
                    offset,
                    max(reported, offset),
                    self._clock(),
                    op.status,
                    last_step,
                    row["id"],
                ],
            )
            return
        self.db.execute(
            "UPDATE tracked_operations SET steps_reported = ?, errors = 0, last_status = ?, "
            "last_step = ? WHERE id = ?",
            [reported, op.status, last_step, row["id"]],
        )
        seen = {"steps_reported": reported, "last_status": op.status, "last_step": last_step}
        if op.status in ("finished", "failed"):
            self._finish({**row, **seen}, op.status, op.error)
        else:
            self._reschedule({**row, **seen, "errors": 0})

    def _finish(self, row: dict[str, Any], state: str, error: str | None) -> None:
        """Record the end and queue the final message, the status line and any announcement.

        All in one transaction, under keys unique per tracked operation: the final
        message is queued once, even if a restarted tracker finishes it again.
        """
        now = self._clock()
        elapsed = duration(now - row["started_at"])
        ok = state == "finished"
        error = None if error is None else redact(error)  # the API's words may echo a secret
        with self.db.atomic():
            self.db.execute(
                "UPDATE tracked_operations SET state = ?, finished_at = ?, error = ? WHERE id = ?",
                [state, now, error, row["id"]],
            )
            title = (
                f"{row['label']}: finished in {elapsed}"
                if ok
                else f"{row['label']}: {'failed' if state == 'failed' else 'lost track'} "
                f"after {elapsed}"
            )
            if state == "lost":
                error = (
                    f"{error or 'no reason given'}. Operation {row['operation_id']} "
                    f"({last_seen(row.get('last_status'), row.get('last_step'))}). "
                    f"`ops {row['database_id']}` shows whether it finished."
                )
            final = Reply(status="ok" if ok else "error", title=title, text=error or "")
            self.outbox.put(
                row["id"], "final", row["channel"], final.model_dump(), thread_ts=row["thread_ts"]
            )
            if row["thread_ts"] and row["origin"]:
                origin = Reply.model_validate_json(row["origin"])
                origin.status = "ok" if ok else "error"
                origin.text = ("Finished" if ok else "Failed") + f" in {elapsed}."
                origin.operations = []
                self.outbox.put(
                    row["id"],
                    "status",
                    row["channel"],
                    origin.model_dump(),
                    thread_ts=row["thread_ts"],
                    action="update",
                )
            if not ok or row["verb"] in ANNOUNCED_VERBS:
                who = who_ran(row["requester"], row.get("approver"))
                notice = Reply(
                    status="ok" if ok else "error",
                    title=("" if ok else "Failed: ") + title,
                    text=f"{who} {posted_in(row['channel'], row['thread_ts'])}"
                    + (f"\n{error}" if error else ""),
                )
                self.announce(
                    row["provider"],
                    row["environment_id"],
                    row["environment_name"],
                    notice,
                    tracked_id=row["id"],
                )

    # -- delivery -------------------------------------------------------------------

    async def deliver(self) -> int:
        """Send pending messages: threads side by side, each thread in order.

        A backlog of steps of one thread is coalesced into one message. When a
        send fails, that thread stops here and is tried again next time; the
        other threads go on.
        """
        threads: dict[tuple[str, str | None], list[OutboxRow]] = {}
        for row in self.outbox.pending(limit=self.settings.batch):
            threads.setdefault((row.channel, row.thread_ts), []).append(row)
        results = await asyncio.gather(*(self._deliver_thread(rows) for rows in threads.values()))
        return sum(results)

    async def dispatch_deliveries(self) -> int:
        """Start sending each thread that has pending messages and is not being sent
        already, each thread as a task of its own; returns how many threads started.

        Unlike `deliver`, this does not wait: a thread whose message arrives while
        others are being sent (or wait out a 429's Retry-After) starts at once
        instead of after the slowest thread of a pass. Each task, when it ends,
        wakes this loop (its thread may have more by then).
        """
        threads: dict[tuple[str, str | None], list[OutboxRow]] = {}
        now = time.monotonic()
        for row in self.outbox.pending(limit=self.settings.batch):
            key = (row.channel, row.thread_ts)
            if key not in self._sending and self._resend.get(key, (0, 0.0))[1] <= now:
                threads.setdefault(key, []).append(row)
        for key, rows in threads.items():
            self._sending[key] = asyncio.create_task(
                self._send_task(key, rows), name="graphops-delivery"
            )
        return len(threads)

    async def _send_task(self, key: tuple[str, str | None], rows: list[OutboxRow]) -> int:
        sent = 0
        try:
            sent = await self._deliver_thread(rows)
            return sent
        finally:
            self._sending.pop(key, None)
            if sent < len(rows):  # a send failed: this thread waits before it tries again
                failures = self._resend.get(key, (0, 0.0))[0] + 1
                wait = RESEND_BACKOFF.delay(failures - 1)
                self._resend[key] = (failures, time.monotonic() + wait)
            else:
                self._resend.pop(key, None)
            self._delivery.wake()

    async def _deliver_thread(self, pending: list[OutboxRow]) -> int:
        sent = index = 0
        while index < len(pending):
            group = [pending[index]]
            while index + len(group) < len(pending) and _coalescable(
                group[0], pending[index + len(group)]
            ):
                group.append(pending[index + len(group)])
            async with self._sends:
                try:
                    await self._send(group)
                except Exception as exc:  # the traceback only at debug: an outage repeats it
                    log.warning("delivery failed (%s); will retry", type(exc).__name__)
                    log.debug("delivery failure", exc_info=True)
                    self.outbox.mark_attempt(group[0].id)
                    return sent  # keep this thread's order: retry from here next time
            self.outbox.mark_sent([row.id for row in group])
            sent += len(group)
            index += len(group)
        return sent

    async def _send(self, group: list[OutboxRow]) -> None:
        first = group[0]
        reply = Reply.model_validate(first.reply)
        if len(group) > 1:
            reply.text = "\n".join(Reply.model_validate(row.reply).text for row in group)
        if first.action == "update" and first.thread_ts:
            await self.notifier.update(first.channel, first.thread_ts, reply)
        else:
            await self.notifier.post(first.channel, reply, first.thread_ts)

    # -- the loop ---------------------------------------------------------------------

    async def run_once(self) -> None:
        """One pass: poll what is due, then deliver."""
        await self.poll_due()
        await self.deliver()

    def start(self) -> None:
        """Poll and deliver in the background (picks up unfinished work from the store)."""
        self._loop.start()
        self._delivery.start()

    async def stop(self) -> None:
        """Stop the background loops and the polls in flight (their operations stay
        running in the store and are polled again after a restart)."""
        await self._loop.stop()
        tasks = list(self._inflight.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._inflight.clear()
        await self._delivery.stop()
        sending = list(self._sending.values())
        for send in sending:
            send.cancel()
        await asyncio.gather(*sending, return_exceptions=True)
        self._sending.clear()

    async def wait_idle(self, timeout: float = 3600.0) -> bool:
        """Wait until nothing is running and the outbox is empty; False on timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.running() == 0 and not self.outbox.pending(limit=1):
                return True
            await asyncio.sleep(0.05)
        return False


def _coalescable(first: OutboxRow, other: OutboxRow) -> bool:
    return (
        first.key.startswith("step:")
        and other.key.startswith("step:")
        and first.action == other.action == "post"
        and (first.channel, first.thread_ts) == (other.channel, other.thread_ts)
    )
