"""Retention: what the store keeps, for how long, and the background prune.

Periods come from `[retention]` in graphops.toml (bot/config.py):

- `audit`: `audit_days` (180).
- `outbox` (messages to Slack): `sent_messages_days` (7) after being sent; never
  unsent ones, nor those of a running operation.
- `tracked_operations`: `finished_operations_days` (30) after their end; never
  running ones, nor those with a message still to send.
- `approvals`: `decided_approvals_days` (30) after the decision, end or expiry;
  never pending or approved ones (work in progress).

Background polls (tracker, watches) are audited as one row per
`poll_summary_minutes` with counts (permissions/audit.py); the pass that prunes
also writes those rows for the intervals that have ended.

Space: the store runs with ``PRAGMA auto_vacuum=INCREMENTAL``, and each prune
ends with ``PRAGMA incremental_vacuum``, which gives the freed pages back to the
file system. SQLite can switch an existing file to incremental vacuum only by a
full ``VACUUM`` (https://www.sqlite.org/pragma.html#pragma_auto_vacuum), so a
store made before this version is converted once, when the bot opens it
(`enable_incremental_vacuum`): that rewrites the file, taking about as long as
copying it, before the bot starts serving. New stores get the setting before
their first table.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass

import sqlite_utils

from operations.loop import BackgroundLoop
from operations.store import OperationHistory, Outbox
from permissions.approvals import ApprovalStore
from permissions.audit import AuditLog

log = logging.getLogger("graphops.retention")

DAY = 86400.0
INCREMENTAL = 2  # PRAGMA auto_vacuum: 0 none, 1 full, 2 incremental


@dataclass(frozen=True)
class RetentionPolicy:
    """How long each kind of row is kept, in days, and how often the prune runs."""

    audit_days: float = 180
    sent_messages_days: float = 7
    finished_operations_days: float = 30
    decided_approvals_days: float = 30
    prune_every_seconds: float = 3600

    def describe(self) -> str:
        """One sentence for people (`graphops audit`, README)."""
        return (
            f"Kept: audit rows {self.audit_days:g} days (background polls as one row of "
            f"counts per interval), sent messages {self.sent_messages_days:g} days, "
            f"finished operations {self.finished_operations_days:g} days, decided or "
            f"expired approvals {self.decided_approvals_days:g} days; pending approvals, "
            "approved work, unsent messages and running operations are always kept "
            "([retention] in graphops.toml)."
        )


@dataclass(frozen=True)
class Pruned:
    """Rows deleted by one pass, per table, and audit rows written for poll intervals."""

    audit: int = 0
    outbox: int = 0
    tracked_operations: int = 0
    approvals: int = 0
    poll_summaries: int = 0

    @property
    def total(self) -> int:
        """Rows deleted in all."""
        return self.audit + self.outbox + self.tracked_operations + self.approvals


def auto_vacuum(db: sqlite_utils.Database) -> int:
    """The store's `PRAGMA auto_vacuum` (0 none, 1 full, 2 incremental)."""
    return int(db.execute("PRAGMA auto_vacuum").fetchone()[0])


def enable_incremental_vacuum(db: sqlite_utils.Database) -> bool:
    """Make the store give freed pages back on `PRAGMA incremental_vacuum`.

    On a store without tables the pragma alone does it; on an existing one it takes
    a `VACUUM` (the whole file is rewritten, once). Returns True when a VACUUM ran;
    False too when another process kept it from running (tried again next start).
    Blocking: call it before serving, not from the event loop at work.
    """
    if auto_vacuum(db) == INCREMENTAL:
        return False
    db.execute("PRAGMA auto_vacuum=INCREMENTAL")
    if auto_vacuum(db) == INCREMENTAL:
        return False  # no table yet: the setting took at once
    try:
        db.execute("VACUUM")
    except sqlite3.OperationalError as exc:  # another process writes: next time
        log.warning("store not switched to incremental vacuum yet: %s", exc)
        return False
    return True


class Retention:
    """Prunes what is past its retention period, and sums background polls, periodically."""

    def __init__(
        self,
        db: sqlite_utils.Database,
        audit: AuditLog,
        policy: RetentionPolicy | None = None,
        *,
        approvals: ApprovalStore | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.db = db
        self.audit = audit
        self.policy = policy or RetentionPolicy()
        self._clock = clock
        self.outbox = Outbox(db, clock)
        self.history = OperationHistory(db)
        self.approvals = approvals or ApprovalStore(db, audit=audit, clock=clock)
        self._last_prune: float | None = None
        # Poll summaries are due when an interval ends: look at least that often.
        tick = min(self.policy.prune_every_seconds, audit.poll_interval_seconds)
        self._loop = BackgroundLoop("graphops-retention", self.run_once, tick)

    def prune(self) -> Pruned:
        """Delete every row past its period (never pending or running work), then give
        the freed pages back (incremental vacuum)."""
        now = self._clock()
        policy = self.policy
        pruned = Pruned(
            audit=self.audit.prune(now - policy.audit_days * DAY),
            outbox=self.outbox.prune_sent(now - policy.sent_messages_days * DAY),
            tracked_operations=self.history.prune_finished(
                now - policy.finished_operations_days * DAY
            ),
            approvals=self.approvals.prune(now - policy.decided_approvals_days * DAY),
        )
        if pruned.total:
            # Each step of this pragma frees one page, and Python's execute() steps once:
            # executescript runs it to the end (every free page goes back).
            self.db.conn.executescript("PRAGMA incremental_vacuum;")
            log.info(
                "retention: deleted %d audit, %d outbox, %d operation, %d approval rows",
                pruned.audit,
                pruned.outbox,
                pruned.tracked_operations,
                pruned.approvals,
            )
        return pruned

    async def run_once(self) -> Pruned:
        """Write the audit rows of ended poll intervals; prune when it is time."""
        summaries = self.audit.summarize_polls()
        now = self._clock()
        if (
            self._last_prune is not None
            and now - self._last_prune < self.policy.prune_every_seconds
        ):
            return Pruned(poll_summaries=summaries)
        self._last_prune = now
        pruned = self.prune()
        return Pruned(
            pruned.audit, pruned.outbox, pruned.tracked_operations, pruned.approvals, summaries
        )

    def start(self) -> None:
        """Run in the background (a first pass at once)."""
        self._loop.start()

    async def stop(self) -> None:
        """Stop, then write the counts of the interval in progress as a row of its own."""
        await self._loop.stop()
        try:
            self.audit.summarize_polls(everything=True)
        except sqlite3.Error:
            log.warning("could not write the last poll counts; they stay counted in the store")
