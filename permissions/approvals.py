r"""Server-side approvals for destructive actions, and the approved work they start.

States::

    pending -> approved -> executing (step) -> executed
            |                           \-> failed
            -> denied
            -> expired

Every transition is a single conditional ``UPDATE ... WHERE state = ...``
whose rowcount says whether this caller made it, so double clicks, replays and
several processes sharing the SQLite file act at most once.

Approved work is a persisted state machine (commands/execution.py drives it):
the claim records the process that will run it (`runner`, `pid:start-time`),
`start` moves it to ``executing``, and before each request that changes
something the step and its journal are written here (`save_step`). A process
that is gone leaves its work in ``approved`` or ``executing``; the next
`graphops serve` takes it over (`take_over`, atomic, only when that process is
dead) and resumes it or ends it with a clear failure. ``executed`` and
``failed`` keep the reply to show (`reply`), and `reported_at` says when the card
and its thread were told, so an outcome reached just before a kill is still shown.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import sqlite_utils

from core.refs import UserRef
from core.words import utc_text
from permissions.audit import AuditLog
from permissions.migrations import migrate
from permissions.roles import Role

ApprovalState = Literal[
    "pending", "approved", "executing", "denied", "expired", "executed", "failed"
]
UNFINISHED: tuple[str, ...] = ("approved", "executing")  # approved work not ended yet
ENDED: tuple[str, ...] = ("executed", "failed", "denied", "expired")
ClaimStatus = Literal["claimed", "already_decided", "expired", "unknown"]


@dataclass(frozen=True)
class Approval:
    """One approval request as stored."""

    id: str
    requester: str
    channel: str
    provider: str
    environment_id: str
    environment_name: str
    verb: str
    target: str
    args: dict[str, Any]
    summary: str
    required_role: Role
    protected: bool
    created_at: float
    expires_at: float
    state: ApprovalState
    decided_by: str | None = None
    decided_at: float | None = None
    result: str | None = None
    finished_at: float | None = None
    message_ts: str | None = None
    runner: str | None = None
    step: str | None = None
    journal: dict[str, Any] = field(default_factory=dict)
    reply: str | None = None
    reported_at: float | None = None


def _stat_fields(pid: int) -> list[str]:
    """The fields of `/proc/<pid>/stat` after the command name (field 3 on), or []."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
            # the command name (field 2) may hold spaces: count fields after its ")"
            return stat.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return []


def _process_start(pid: int, fields: list[str] | None = None) -> str:
    """The start time of process `pid` in clock ticks since boot (Linux `/proc`), or "0";
    from its stat `fields` when already read."""
    fields = _stat_fields(pid) if fields is None else fields
    return fields[19] if len(fields) > 19 else "0"


_runner: dict[int, str] = {}
PID_MAX_LIMIT = 4_194_304  # Linux's highest pid_max (include/linux/threads.h)


def this_runner() -> str:
    """This process as a runner of approved work: `pid:start-time` (a reused pid differs)."""
    pid = os.getpid()
    if pid not in _runner:
        _runner[pid] = f"{pid}:{_process_start(pid)}"
    return _runner[pid]


def runner_alive(runner: str | None) -> bool:
    """Whether the process `runner` names is still running (False for None or junk)."""
    if not runner:
        return False
    pid_text, _, started = runner.partition(":")
    try:
        pid = int(pid_text)
    except ValueError:
        return False
    if not 0 < pid <= PID_MAX_LIMIT:  # 0 and -n name process groups, -1 every process
        return False
    if runner == this_runner():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # another user's process: it exists
    fields = _stat_fields(pid)
    if fields and fields[0] == "Z":  # killed, not yet reaped by its parent: gone
        return False
    return started in ("", "0") or _process_start(pid, fields) == started


class LostRunner(RuntimeError):
    """This process no longer runs an approval's work (taken over, or ended): stop."""


@dataclass(frozen=True)
class ClaimResult:
    """Outcome of ``ApprovalStore.claim``."""

    status: ClaimStatus
    message: str
    approval: Approval | None = field(default=None)

    @property
    def claimed(self) -> bool:
        """True when this call made the pending -> approved/denied transition."""
        return self.status == "claimed"


def _row_to_approval(row: dict[str, Any]) -> Approval:
    return Approval(
        id=row["id"],
        requester=row["requester"],
        channel=row["channel"],
        provider=row["provider"],
        environment_id=row["environment_id"],
        environment_name=row["environment_name"],
        verb=row["verb"],
        target=row["target"],
        args=json.loads(row["args"] or "{}"),
        summary=row["summary"],
        required_role=Role(row["required_role"]),
        protected=bool(row["protected"]),
        created_at=row["created_at"],
        expires_at=row["expires_at"],
        state=row["state"],
        decided_by=row["decided_by"],
        decided_at=row["decided_at"],
        result=row["result"],
        finished_at=row["finished_at"],
        message_ts=row["message_ts"],
        runner=row.get("runner"),
        step=row.get("step"),
        journal=json.loads(row.get("journal") or "{}"),
        reply=row.get("reply"),
        reported_at=row.get("reported_at"),
    )


class ApprovalStore:
    """Create, claim and finish approvals atomically."""

    def __init__(
        self,
        db: sqlite_utils.Database,
        clock: Callable[[], float] = time.time,
        default_ttl_seconds: int = 900,
        audit: AuditLog | None = None,
    ) -> None:
        """Wrap ``db`` (migrating tables); transitions go to ``audit`` when given."""
        self.db = db
        self._clock = clock
        self.default_ttl_seconds = default_ttl_seconds
        self.audit = audit
        migrate(db)

    def _record(self, approval: Approval | None, actor: str | None, outcome: str) -> None:
        if self.audit is None or approval is None:
            return
        self.audit.record(
            "approval",
            user=actor,
            channel=approval.channel,
            provider=approval.provider,
            environment=approval.environment_name or approval.environment_id,
            database=approval.target or None,
            verb=approval.verb,
            outcome=outcome,
            detail={
                "approval_id": approval.id,
                "requester": approval.requester,
                "state": approval.state,
                "result": approval.result,
            },
        )

    def create(
        self,
        requester: str,
        channel: str,
        provider: str,
        environment_id: str,
        environment_name: str,
        verb: str,
        target: str = "",
        args: dict[str, Any] | None = None,
        summary: str = "",
        required_role: Role = Role.OPERATOR,
        protected: bool = False,
        ttl_seconds: int | None = None,
    ) -> Approval:
        """Store a new pending approval and return it (id is unguessable)."""
        now = self._clock()
        ttl = self.default_ttl_seconds if ttl_seconds is None else ttl_seconds
        approval_id = secrets.token_urlsafe(12)
        self.db.execute(
            """
            INSERT INTO approvals (id, requester, channel, provider, environment_id,
                environment_name, verb, target, args, summary, required_role, protected,
                created_at, expires_at, state)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending')
            """,
            [
                approval_id,
                requester,
                channel,
                provider,
                environment_id,
                environment_name,
                verb,
                target,
                json.dumps(args or {}, sort_keys=True, default=str),
                summary,
                int(Role(required_role)),
                int(bool(protected)),
                now,
                now + ttl,
            ],
        )
        approval = self.get(approval_id)
        assert approval is not None
        self._record(approval, requester, "requested")
        return approval

    def get(self, approval_id: str) -> Approval | None:
        """The approval with this id, or None."""
        rows = list(self.db.query("SELECT * FROM approvals WHERE id = ?", [approval_id]))
        return _row_to_approval(rows[0]) if rows else None

    def set_message_ts(self, approval_id: str, message_ts: str | None) -> bool:
        """Remember the Slack message that shows this approval."""
        cursor = self.db.execute(
            "UPDATE approvals SET message_ts = ? WHERE id = ?", [message_ts, approval_id]
        )
        return cursor.rowcount > 0

    def claim(
        self, approval_id: str, approver: str, decision: Literal["approve", "deny"]
    ) -> ClaimResult:
        """Atomically move a pending, unexpired approval to approved/denied.

        Exactly one caller ever gets ``claimed``; the others learn who decided
        and when, that it expired, or that the id is unknown.
        """
        if decision not in ("approve", "deny"):
            raise ValueError(f"decision must be 'approve' or 'deny', not {decision!r}")
        new_state = "approved" if decision == "approve" else "denied"
        now = self._clock()
        runner = this_runner() if decision == "approve" else None
        cursor = self.db.execute(
            "UPDATE approvals SET state = ?, decided_by = ?, decided_at = ?, runner = ? "
            "WHERE id = ? AND state = 'pending' AND expires_at > ?",
            [new_state, approver, now, runner, approval_id, now],
        )
        if cursor.rowcount == 1:
            approval = self.get(approval_id)
            self._record(approval, approver, new_state)
            return ClaimResult("claimed", f"{new_state} by {UserRef(approver)}", approval)
        approval = self.get(approval_id)
        if approval is None:
            return ClaimResult("unknown", "this approval does not exist (unknown id)")
        if approval.state == "pending":
            expired = self._expire(approval_id, now)
            approval = self.get(approval_id) or approval
            if expired:
                self._record(approval, None, "expired")
            if approval.state != "expired":  # someone decided in between
                return self._already(approval)
            return ClaimResult("expired", self._expired_message(approval), approval)
        if approval.state == "expired":
            return ClaimResult("expired", self._expired_message(approval), approval)
        return self._already(approval)

    @staticmethod
    def _expired_message(approval: Approval) -> str:
        return f"this approval expired at {utc_text(approval.expires_at)}"

    @staticmethod
    def _already(approval: Approval) -> ClaimResult:
        verb = "denied" if approval.state == "denied" else "approved"
        when = utc_text(approval.decided_at)
        message = f"already {verb} by {UserRef(approval.decided_by or '?')} at {when}"
        if approval.state in ("executed", "failed"):
            message += f" ({approval.state})"
        elif approval.state in UNFINISHED:
            message += " (it is running; its outcome will be in the card's thread)"
        return ClaimResult("already_decided", message, approval)

    def _expire(self, approval_id: str, now: float) -> bool:
        cursor = self.db.execute(
            "UPDATE approvals SET state = 'expired' "
            "WHERE id = ? AND state = 'pending' AND expires_at <= ?",
            [approval_id, now],
        )
        return cursor.rowcount == 1

    def finish(
        self, approval_id: str, state: Literal["executed", "failed"], text: str, reply: str = ""
    ) -> bool:
        """approved/executing -> `state`, keeping `text` (a short result) and `reply` (the
        JSON of what to show); False when the work is not unfinished any more. An
        approval without a card (never posted) has nobody to tell: it counts as reported.
        """
        now = self._clock()
        cursor = self.db.execute(
            "UPDATE approvals SET state = ?, result = ?, finished_at = ?, reply = ?, step = NULL, "
            "journal = NULL, reported_at = CASE WHEN message_ts IS NULL THEN ? END "
            "WHERE id = ? AND state IN ('approved', 'executing')",
            [state, text[:2000], now, reply or None, now, approval_id],
        )
        if cursor.rowcount == 1:
            approval = self.get(approval_id)
            self._record(approval, approval.decided_by if approval else None, state)
            return True
        return False

    def mark_executed(self, approval_id: str, result_text: str) -> bool:
        """approved/executing -> executed; False when the work is not unfinished."""
        return self.finish(approval_id, "executed", result_text)

    def mark_failed(self, approval_id: str, error_text: str) -> bool:
        """approved/executing -> failed; False when the work is not unfinished."""
        return self.finish(approval_id, "failed", error_text)

    # -- approved work: the state machine -----------------------------------------------

    def start(self, approval_id: str) -> bool:
        """approved -> executing, for the runner that holds it (this process); True also
        when it is already executing here (a resumed run). False: another runner has it."""
        cursor = self.db.execute(
            "UPDATE approvals SET state = 'executing', step = COALESCE(step, 'start') "
            "WHERE id = ? AND state IN ('approved', 'executing') AND runner = ?",
            [approval_id, this_runner()],
        )
        return cursor.rowcount == 1

    def save_step(self, approval_id: str, step: str, journal: dict[str, Any]) -> None:
        """Write the current step and the journal before a request that changes something.

        Raises LostRunner when this process no longer runs the approval (another took
        it over, or it ended): then nothing more may be sent for it.
        """
        cursor = self.db.execute(
            "UPDATE approvals SET step = ?, journal = ? "
            "WHERE id = ? AND state = 'executing' AND runner = ?",
            [step, json.dumps(journal, sort_keys=True, default=str), approval_id, this_runner()],
        )
        if cursor.rowcount != 1:
            raise LostRunner(f"approval {approval_id} is not run by this process any more")

    def take_over(self, approval: Approval) -> bool:
        """Make this process the runner of unfinished work whose runner is gone (atomic:
        of several processes starting at once, one gets it). False when its runner is
        alive, or someone else took it over first."""
        if approval.runner is not None and runner_alive(approval.runner):
            return False
        cursor = self.db.execute(
            "UPDATE approvals SET runner = ? "
            "WHERE id = ? AND state IN ('approved', 'executing') AND runner IS ?",
            [this_runner(), approval.id, approval.runner],
        )
        if cursor.rowcount != 1:
            return False
        self._record(self.get(approval.id), None, "taken over")
        return True

    def unfinished(self) -> list[Approval]:
        """Approved work not ended yet (approved or executing), oldest decision first."""
        return [
            _row_to_approval(row)
            for row in self.db.query(
                "SELECT * FROM approvals WHERE state IN ('approved', 'executing') "
                "ORDER BY decided_at"
            )
        ]

    def unreported(self) -> list[Approval]:
        """Ended approvals with a card that does not show their end yet, oldest first."""
        return [
            _row_to_approval(row)
            for row in self.db.query(
                "SELECT * FROM approvals WHERE reported_at IS NULL AND message_ts IS NOT NULL "
                "AND state IN ('executed', 'failed', 'denied', 'expired') ORDER BY created_at"
            )
        ]

    def mark_reported(self, approval_id: str) -> bool:
        """Record that the card and its thread show the end of this approval."""
        cursor = self.db.execute(
            "UPDATE approvals SET reported_at = ? WHERE id = ? AND reported_at IS NULL "
            "AND state IN ('executed', 'failed', 'denied', 'expired')",
            [self._clock(), approval_id],
        )
        return cursor.rowcount == 1

    def expire_due(self) -> list[Approval]:
        """Expire pending approvals past their time; return those this call expired."""
        now = self._clock()
        due = [
            row["id"]
            for row in self.db.query(
                "SELECT id FROM approvals WHERE state = 'pending' AND expires_at <= ?", [now]
            )
        ]
        expired: list[Approval] = []
        for approval_id in due:
            if self._expire(approval_id, now):
                approval = self.get(approval_id)
                if approval is not None:
                    self._record(approval, None, "expired")
                    expired.append(approval)
        return expired

    def prune(self, before: float) -> int:
        """Delete approvals whose story ended before ``before`` (epoch seconds): denied,
        executed or failed ones decided/finished then, expired ones that expired then.
        Pending and approved ones (work in progress) are never deleted. Returns how many."""
        cursor = self.db.execute(
            "DELETE FROM approvals WHERE "
            "(state IN ('denied', 'executed', 'failed') "
            "AND COALESCE(finished_at, decided_at, expires_at) < ?) "
            "OR (state = 'expired' AND expires_at < ?)",
            [before, before],
        )
        return cursor.rowcount

    def now(self) -> float:
        """The store's clock (epoch seconds): what `expires_at` is compared with."""
        return self._clock()

    def pending(self, channel: str | None = None) -> list[Approval]:
        """Pending approvals (optionally of one channel), oldest first."""
        sql = "SELECT * FROM approvals WHERE state = 'pending'"
        params: list[Any] = []
        if channel is not None:
            sql += " AND channel = ?"
            params.append(channel)
        sql += " ORDER BY created_at"
        return [_row_to_approval(row) for row in self.db.query(sql, params)]

    def recent(self, limit: int = 20) -> list[Approval]:
        """The most recently created approvals, newest first."""
        return [
            _row_to_approval(row)
            for row in self.db.query(
                "SELECT * FROM approvals ORDER BY created_at DESC LIMIT ?", [int(limit)]
            )
        ]
