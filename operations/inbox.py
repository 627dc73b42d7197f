"""Slack requests acknowledged but not finished: kept so that a restart answers them.

Slack wants an answer within 3 seconds, so a command (a slash command, a
button, a modal) is acknowledged first and run after. So that a kill between
the two never loses it silently, a row is written before the ack (`accept`):

    accepted -> sent (a request that changes something went out) -> answered -> (deleted)

`mark_sent` is called before the first such request (core.mutations), `answered`
keeps the reply once it is computed, and the row is deleted once the reply was
delivered (`done`). Whatever a stopped process left (`left_over`) is answered by
the next `graphops serve` (bot/slack/recovery.py): "nothing was done" for
`accepted`, "its outcome is unknown" for `sent`, and the kept reply for
`answered`. A command is never run again.

The text kept is what the audit keeps (a line that fits a verb's syntax, else the
verb alone); the response_url (valid 30 minutes) lives only as long as the row; a
reply's private text (one-time links) is never kept.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass

import sqlite_utils

from core.redaction import redact
from operations.migrations import migrate
from permissions.approvals import runner_alive, this_runner


@dataclass(frozen=True)
class AcceptedRequest:
    """A request a stopped process acknowledged and did not finish."""

    id: int
    user: str
    channel: str
    text: str
    response_url: str | None
    received_at: float
    stage: str  # accepted | sent | answered
    sent: str | None  # `METHOD path` of the first request that changes something
    reply: str | None  # the reply's JSON, once answered


class Inbox:
    """The `accepted_requests` table."""

    def __init__(self, db: sqlite_utils.Database, clock: Callable[[], float] = time.time):
        self.db = db
        self._clock = clock
        migrate(db)

    def accept(self, user: str, channel: str, text: str, response_url: str | None) -> int:
        """Keep a request before it is acknowledged; its row id. The text is kept
        redacted (a token pasted by mistake never reaches the file): after a restart it
        is only shown, and read for an `approve`/`deny` id, never run again."""
        return self.accept_many([(user, channel, text, response_url)])[0]

    def accept_many(self, requests: list[tuple[str, str, str, str | None]]) -> list[int]:
        """`accept` for several requests (user, channel, text, response_url) in one
        transaction: all rows or none (sqlite3.Error); their row ids, in order."""
        now, runner = self._clock(), this_runner()
        ids = []
        self.db.execute("BEGIN IMMEDIATE")  # fails here when another process holds the lock
        try:
            for user, channel, text, response_url in requests:
                cursor = self.db.execute(
                    "INSERT INTO accepted_requests (user, channel, text, response_url, "
                    "received_at, runner) VALUES (?, ?, ?, ?, ?, ?)",
                    [user, channel, redact(text), response_url, now, runner],
                )
                ids.append(int(cursor.lastrowid or 0))
            self.db.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                self.db.execute("ROLLBACK")
            raise
        return ids

    def mark_sent(self, row_id: int, what: str) -> None:
        """The request's first request that changes something is about to go out."""
        self.db.execute(
            "UPDATE accepted_requests SET stage = 'sent', sent = ? "
            "WHERE id = ? AND stage = 'accepted'",
            [what[:300], row_id],
        )

    def answered(self, row_id: int, reply_json: str) -> None:
        """The reply is computed (and about to be delivered)."""
        self.db.execute(
            "UPDATE accepted_requests SET stage = 'answered', reply = ? WHERE id = ?",
            [reply_json, row_id],
        )

    def done(self, row_id: int) -> None:
        """Delivered (or answered after a restart): forget it."""
        self.db.execute("DELETE FROM accepted_requests WHERE id = ?", [row_id])

    def left_over(self) -> list[AcceptedRequest]:
        """Requests of processes that are gone, oldest first."""
        rows = self.db.execute(
            "SELECT id, user, channel, text, response_url, received_at, stage, sent, reply, "
            "runner FROM accepted_requests ORDER BY id"
        ).fetchall()
        return [AcceptedRequest(*row[:9]) for row in rows if not runner_alive(row[9])]

    def pending(self) -> int:
        """How many rows there are (for tests and /metrics)."""
        return int(self.db.execute("SELECT COUNT(*) FROM accepted_requests").fetchone()[0])
