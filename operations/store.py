"""operations/ tables: tracked operations and the outbox of messages to deliver.

Every message the tracker wants to send is first written to `outbox` under a
key that is unique per tracked operation (`step:3`, `final`, `status`,
`incident`). Writing is `INSERT OR IGNORE`, so a restarted tracker that sees
the same step again does not queue it twice; delivery marks rows sent after the
transport accepted them. A message is redacted (core/redaction.py) before it is
written: what an API said about an operation (a step, a failure reason) may echo
a secret, and the outbox is kept on disk.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Literal

import sqlite_utils

from core.redaction import redact_data
from operations.migrations import migrate


@dataclass(frozen=True)
class OutboxRow:
    """One message waiting to be delivered; `reply` (the Reply's fields) is decoded from
    `reply_json` when first read, so listing the outbox to see which threads have work
    costs no JSON parsing."""

    id: int
    tracked_id: int | None
    key: str
    channel: str
    thread_ts: str | None
    action: str
    reply_json: str
    attempts: int

    @cached_property
    def reply(self) -> dict[str, Any]:
        """The queued Reply's fields (core.reply.Reply.model_dump())."""
        value: dict[str, Any] = json.loads(self.reply_json)
        return value


class Outbox:
    """Queue of messages, idempotent by (tracked operation, key)."""

    def __init__(self, db: sqlite_utils.Database, clock: Callable[[], float] = time.time):
        self.db = db
        self._clock = clock
        self.queued = 0  # messages queued by this process (tells a poll whether to wake delivery)
        migrate(db)

    def put(
        self,
        tracked_id: int | None,
        key: str,
        channel: str,
        reply: dict[str, Any],
        *,
        thread_ts: str | None = None,
        action: str = "post",
    ) -> bool:
        """Queue a message (redacted); False when one with this key (and tracked operation, or none)
        was queued before. SQLite's UNIQUE lets NULLs repeat, hence the NOT EXISTS."""
        cursor = self.db.execute(
            "INSERT OR IGNORE INTO outbox (tracked_id, key, channel, thread_ts, action, reply, "
            "created_at) SELECT ?, ?, ?, ?, ?, ?, ? "
            "WHERE NOT EXISTS (SELECT 1 FROM outbox WHERE tracked_id IS ? AND key = ?)",
            [
                tracked_id,
                key,
                channel,
                thread_ts,
                action,
                json.dumps(redact_data(reply)),
                self._clock(),
                tracked_id,
                key,
            ],
        )
        added = cursor.rowcount > 0
        self.queued += added
        return added

    def pending(self, limit: int = 200) -> list[OutboxRow]:
        """Unsent messages, oldest first."""
        rows = self.db.execute(
            "SELECT id, tracked_id, key, channel, thread_ts, action, reply, attempts FROM outbox "
            "WHERE sent_at IS NULL ORDER BY id LIMIT ?",
            [limit],
        ).fetchall()
        return [OutboxRow(*row) for row in rows]

    def mark_sent(self, ids: list[int]) -> None:
        """Record that these messages were delivered."""
        now = self._clock()
        with self.db.atomic():
            for row_id in ids:
                self.db.execute("UPDATE outbox SET sent_at = ? WHERE id = ?", [now, row_id])

    def mark_attempt(self, row_id: int) -> None:
        """Count a failed delivery attempt (the row stays pending)."""
        self.db.execute("UPDATE outbox SET attempts = attempts + 1 WHERE id = ?", [row_id])

    def prune_sent(self, before: float) -> int:
        """Delete messages delivered before ``before`` (epoch seconds), except those of
        an operation still running (their keys keep a restarted tracker from posting a
        step twice). Unsent messages are never deleted. Returns how many."""
        cursor = self.db.execute(
            "DELETE FROM outbox WHERE sent_at IS NOT NULL AND sent_at < ? AND (tracked_id "
            "IS NULL OR tracked_id NOT IN (SELECT id FROM tracked_operations "
            "WHERE state = 'running'))",
            [before],
        )
        return cursor.rowcount

    def sent(self, tracked_id: int) -> list[str]:
        """Keys delivered for one tracked operation, in order (for tests and App Home)."""
        rows = self.db.execute(
            "SELECT key FROM outbox WHERE tracked_id = ? AND sent_at IS NOT NULL ORDER BY id",
            [tracked_id],
        ).fetchall()
        return [row[0] for row in rows]


@dataclass(frozen=True)
class TrackedOperation:
    """An operation graphops started and followed (for `ops` where the API lists none)."""

    operation_id: str
    label: str
    state: str
    requester: str
    started_at: float
    finished_at: float | None
    error: str | None


class OperationHistory:
    """Read access to the operations the tracker followed."""

    def __init__(self, db: sqlite_utils.Database) -> None:
        self.db = db
        migrate(db)

    def prune_finished(self, before: float) -> int:
        """Delete operations that ended (finished, failed, lost) before ``before`` (epoch
        seconds) and have no message left to deliver; running ones are never deleted.
        Returns how many."""
        cursor = self.db.execute(
            "DELETE FROM tracked_operations WHERE state != 'running' AND finished_at < ? "
            "AND id NOT IN (SELECT tracked_id FROM outbox WHERE sent_at IS NULL "
            "AND tracked_id IS NOT NULL)",
            [before],
        )
        return cursor.rowcount

    def for_database(
        self, provider: str, database_id: str, limit: int = 10
    ) -> list[TrackedOperation]:
        """The newest operations on one database, newest first."""
        rows = self.db.execute(
            "SELECT root_operation_id, label, state, requester, started_at, finished_at, error "
            "FROM tracked_operations WHERE provider = ? AND database_id = ? "
            "ORDER BY started_at DESC LIMIT ?",
            [provider, database_id, limit],
        ).fetchall()
        return [TrackedOperation(*row) for row in rows]

    def label_of_thread(self, channel: str, thread_ts: str) -> str | None:
        """The label of the operation followed in this thread (`restart sandbox-db`), or
        None when no tracked operation has this thread."""
        row = self.db.execute(
            "SELECT label FROM tracked_operations WHERE channel = ? AND thread_ts = ? "
            "ORDER BY id DESC LIMIT 1",
            [channel, thread_ts],
        ).fetchone()
        return str(row[0]) if row else None


@dataclass(frozen=True)
class SwitchBack:
    """What a "Switch back" button may undo, and until when; `used_at`/`used_by` once a
    switch-back used it (`used_by`: the approval, or command, that did)."""

    id: str
    provider: str
    environment_id: str
    environment_name: str
    production: bool
    origin_id: str
    origin_name: str
    target_id: str
    target_name: str
    channel: str
    created_at: float
    expires_at: float
    used_at: float | None = None
    used_by: str | None = None


SwitchBackUse = Literal["used", "already_used", "expired", "unknown"]
_SWITCH_BACK_COLUMNS = (
    "id, provider, environment_id, environment_name, production, origin_id, origin_name, "
    "target_id, target_name, channel, created_at, expires_at, used_at, used_by"
)


class SwitchBacks:
    """Records of executed connection switches that may be undone, once, for a while."""

    def __init__(self, db: sqlite_utils.Database, clock: Callable[[], float] = time.time):
        self.db = db
        self._clock = clock
        migrate(db)

    def remember(self, minutes: int, **fields: Any) -> SwitchBack:
        """Store a switch that may be switched back within `minutes`."""
        now = self._clock()
        record = SwitchBack(
            id=secrets.token_urlsafe(9), created_at=now, expires_at=now + minutes * 60, **fields
        )
        self.db.execute(
            f"INSERT INTO switch_backs ({_SWITCH_BACK_COLUMNS}) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, NULL)",
            [
                record.id,
                record.provider,
                record.environment_id,
                record.environment_name,
                int(record.production),
                record.origin_id,
                record.origin_name,
                record.target_id,
                record.target_name,
                record.channel,
                record.created_at,
                record.expires_at,
            ],
        )
        return record

    def get(self, switch_back_id: str) -> SwitchBack | None:
        """The record, or None."""
        row = self.db.execute(
            f"SELECT {_SWITCH_BACK_COLUMNS} FROM switch_backs WHERE id = ?", [switch_back_id]
        ).fetchone()
        if row is None:
            return None
        values = list(row)
        values[4] = bool(values[4])
        return SwitchBack(*values)

    def expired(self, record: SwitchBack) -> bool:
        """True when the window to switch back has closed."""
        return self._clock() >= record.expires_at

    def use(self, switch_back_id: str, by: str) -> SwitchBackUse:
        """Mark the record used by `by` (atomic: of two switch-backs, one gets it).

        "used" also when `by` used it already (a resumed run); "already_used" when
        someone else did, "expired" past its window, "unknown" for no such record.
        """
        now = self._clock()
        cursor = self.db.execute(
            "UPDATE switch_backs SET used_at = ?, used_by = ? "
            "WHERE id = ? AND used_at IS NULL AND expires_at > ?",
            [now, by, switch_back_id, now],
        )
        if cursor.rowcount == 1:
            return "used"
        record = self.get(switch_back_id)
        if record is None:
            return "unknown"
        if record.used_at is not None:
            return "used" if record.used_by == by else "already_used"
        return "expired"

    def release(self, switch_back_id: str, by: str) -> None:
        """Undo `use` by `by` when its switch-back provably did nothing (it may be used again)."""
        self.db.execute(
            "UPDATE switch_backs SET used_at = NULL, used_by = NULL WHERE id = ? AND used_by = ?",
            [switch_back_id, by],
        )
