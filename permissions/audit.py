"""Append-only audit log in the ``audit`` table.

Every textual value (columns, detail keys and values) passes through the
process's redactor (core/redaction.py: every secret known at run time, then the
shapes of secrets) before it is written, and again when rows are read back for
`graphops audit` (rows written before a secret was known, or by an older
version). Mapping keys that name secrets (``password``, ``api_key``...) have
their values replaced whatever they are. Only secrets are redacted: user ids,
usernames, role and database names stay, so the log can be searched by them.

A row that meets a store locked by another process (SQLite "database is locked"
after the connection's busy timeout) is not lost and does not fail what is being
audited: it is kept in memory and written, in order, right after the next row
that could be written, or by ``flush()`` (the bot calls it when it stops).

API requests nobody typed (tracker and watch polls: ``core.audit_context.polling``)
are not a row each: ``background_call`` counts them per source, provider, method
and outcome in ``audit_poll_counts`` (one upsert, so a kill loses no count), and
``summarize_polls`` turns each finished interval (``poll_interval_seconds``, 15
minutes by default) into one ``api_call`` row with verb ``background polls`` and
the counts in its detail. Every API request made for a person (a command, a
button, a schedule) keeps its own row. ``prune`` deletes rows older than the
retention period (operations/retention.py runs it).
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any, Literal

import sqlite_utils

from core.audit_context import current_invocation
from core.errors import is_store_busy
from core.redaction import REDACTOR, Redactor
from core.refs import plain
from permissions.migrations import migrate

AuditKind = Literal["command", "decision", "approval", "api_call", "operation"]
log = logging.getLogger("graphops.audit")
KINDS: tuple[str, ...] = ("command", "decision", "approval", "api_call", "operation")
_COLUMNS = ("user", "channel", "provider", "environment", "database", "verb", "outcome", "team")


def acting_team() -> str | None:
    """The Slack workspace of whoever the work in progress is for (`T…`, `T… (E…)`), or
    None outside Slack (core.audit_context)."""
    invocation = current_invocation.get()
    if invocation is None or invocation.workspace is None:
        return None
    return invocation.workspace.label


def iso_time(ts: float) -> str:
    """UTC ISO-8601 with milliseconds for an epoch timestamp."""
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds")


class AuditLog:
    """Writes and reads audit rows; never writes a secret it can recognise."""

    def __init__(
        self,
        db: sqlite_utils.Database,
        redactor: Redactor = REDACTOR,
        clock: Callable[[], float] = time.time,
        poll_interval_seconds: float = 900.0,
    ) -> None:
        """Wrap ``db`` (migrating tables); ``redactor`` is the process's one unless a
        test gives its own; background polls are summed per ``poll_interval_seconds``."""
        self.db = db
        self.redactor = redactor
        self._clock = clock
        self.poll_interval_seconds = poll_interval_seconds
        self._deferred: list[dict[str, Any]] = []  # rows that met a locked store
        migrate(db)

    def redact(self, text: str) -> str:
        """``text`` without any secret (core.redaction)."""
        return self.redactor.redact(str(text))

    def record(
        self,
        kind: str,
        *,
        user: str | None = None,
        channel: str | None = None,
        provider: str | None = None,
        environment: str | None = None,
        database: str | None = None,
        verb: str | None = None,
        outcome: str | None = None,
        detail: dict[str, Any] | None = None,
        team: str | None = None,
    ) -> int:
        """Append one row and return its id. ``kind`` must be one of ``KINDS``.

        ``team`` is the Slack workspace of who acted; by default the one of the
        invocation being run (``acting_team``).
        """
        if kind not in KINDS:
            raise ValueError(f"unknown audit kind {kind!r}; valid kinds are: {', '.join(KINDS)}")
        ts = self._clock()
        values = {
            "user": user,
            "channel": channel,
            "provider": provider,
            "environment": environment,
            "database": database,
            "verb": verb,
            "outcome": outcome,
            "team": team if team is not None else acting_team(),
        }
        row: dict[str, Any] = {"ts": ts, "iso": iso_time(ts), "kind": kind}
        for column in _COLUMNS:
            value = values[column]
            row[column] = None if value is None else self.redact(plain(str(value)))
        row["detail"] = (  # references as @U123 / #C123 (core.refs.plain), never markers
            None
            if detail is None
            else plain(
                json.dumps(
                    self.redactor.redact_data(detail),
                    sort_keys=True,
                    default=str,
                    ensure_ascii=False,
                )
            )
        )
        try:
            row_id = self._insert(row)
        except sqlite3.OperationalError as exc:
            if not is_store_busy(exc):
                raise
            self._deferred.append(row)  # written after the next row that gets through
            return 0
        self.flush()
        return row_id

    def _insert(self, row: dict[str, Any]) -> int:
        cursor = self.db.execute(
            "INSERT INTO audit (ts, iso, kind, user, channel, provider, environment, database, "
            "verb, outcome, team, detail) VALUES (:ts, :iso, :kind, :user, :channel, "
            ":provider, :environment, :database, :verb, :outcome, :team, :detail)",
            row,
        )
        return int(cursor.lastrowid or 0)

    def flush(self) -> int:
        """Write the rows kept while the store was locked, oldest first; return how many
        still wait (the store is still locked)."""
        while self._deferred:
            try:
                self._insert(self._deferred[0])
            except sqlite3.OperationalError as exc:
                if not is_store_busy(exc):
                    raise
                break
            self._deferred.pop(0)
        return len(self._deferred)

    def api_call(
        self,
        provider: str,
        method: str,
        path: str,
        status: int | None,
        ms: float,
        user: str | None = None,
        channel: str | None = None,
        environment: str | None = None,
        database: str | None = None,
        detail: dict[str, Any] | None = None,
    ) -> int:
        """Record one API request: method, path, HTTP status (None = no response), ms."""
        info: dict[str, Any] = {
            "method": method.upper(),
            "path": path,
            "status": status,
            "ms": round(float(ms), 1),
        }
        if detail:
            info.update(detail)
        return self.record(
            "api_call",
            user=user,
            channel=channel,
            provider=provider,
            environment=environment,
            database=database,
            verb=f"{method.upper()} {path}",
            outcome=str(status) if status is not None else "no-response",
            detail=info,
        )

    def background_call(
        self, source: str, provider: str, method: str, status: int | None, ms: float
    ) -> None:
        """Count one background API request (``source``: "tracker", "watch"...) in the
        current interval. A store locked by another process drops the count (logged),
        never the poll."""
        start = self._clock() // self.poll_interval_seconds * self.poll_interval_seconds
        outcome = str(status) if status is not None else "no-response"
        try:
            self.db.execute(
                "INSERT INTO audit_poll_counts VALUES (?, ?, ?, ?, ?, 1, ?, ?) "
                "ON CONFLICT (interval_start, source, provider, method, outcome) DO UPDATE "
                "SET count = count + 1, ms_total = ms_total + excluded.ms_total, "
                "ms_max = max(ms_max, excluded.ms_max)",
                [start, source, provider, method.upper(), outcome, float(ms), float(ms)],
            )
        except sqlite3.OperationalError as exc:
            if not is_store_busy(exc):
                raise
            log.warning("store busy: one %s poll of %s not counted in the audit", source, provider)

    def summarize_polls(self, *, everything: bool = False) -> int:
        """Turn the counts of each finished interval (every interval with ``everything``)
        into one audit row; returns how many rows were written.

        Row: kind ``api_call``, verb ``background polls``, outcome ``summary``, ts the
        interval's end (or now), detail ``{"from", "to", "requests", "counts": [{"source",
        "provider", "method", "outcome", "count", "ms_avg", "ms_max"}...]}``.
        """
        now = self._clock()
        current = now // self.poll_interval_seconds * self.poll_interval_seconds
        bound = float("inf") if everything else current
        starts = [
            row[0]
            for row in self.db.execute(
                "SELECT DISTINCT interval_start FROM audit_poll_counts WHERE interval_start < ? "
                "ORDER BY interval_start",
                [bound],
            ).fetchall()
        ]
        for start in starts:
            rows = self.db.execute(
                "SELECT source, provider, method, outcome, count, ms_total, ms_max "
                "FROM audit_poll_counts WHERE interval_start = ? "
                "ORDER BY source, provider, method, outcome",
                [start],
            ).fetchall()
            end = min(now, start + self.poll_interval_seconds)
            counts = [
                {
                    "source": source,
                    "provider": provider,
                    "method": method,
                    "outcome": outcome,
                    "count": count,
                    "ms_avg": round(ms_total / count, 1),
                    "ms_max": round(ms_max, 1),
                }
                for source, provider, method, outcome, count, ms_total, ms_max in rows
            ]
            with self.db.atomic():
                row = {
                    "ts": end,
                    "iso": iso_time(end),
                    "kind": "api_call",
                    "user": None,
                    "channel": None,
                    "provider": rows[0][1] if len({r[1] for r in rows}) == 1 else None,
                    "environment": None,
                    "database": None,
                    "verb": "background polls",
                    "outcome": "summary",
                    "team": None,
                    "detail": json.dumps(
                        {
                            "from": iso_time(start),
                            "to": iso_time(end),
                            "requests": sum(c["count"] for c in counts),
                            "counts": counts,
                        },
                        sort_keys=True,
                    ),
                }
                self._insert(row)
                self.db.execute("DELETE FROM audit_poll_counts WHERE interval_start = ?", [start])
        return len(starts)

    def prune(self, before: float, *, chunk: int = 5000) -> int:
        """Delete audit rows older than ``before`` (epoch seconds), ``chunk`` rows per
        transaction so a writer never waits long; returns how many were deleted."""
        deleted = 0
        while True:
            cursor = self.db.execute(
                "DELETE FROM audit WHERE id IN (SELECT id FROM audit WHERE ts < ? LIMIT ?)",
                [before, chunk],
            )
            deleted += cursor.rowcount
            if cursor.rowcount < chunk:
                return deleted

    def query(
        self,
        since: float | None = None,
        user: str | None = None,
        database: str | None = None,
        kind: str | None = None,
        limit: int = 100,
    ) -> list[dict[str, Any]]:
        """The newest ``limit`` rows matching the filters, oldest first; detail parsed, and
        every text redacted again with what this process knows."""
        where: list[str] = []
        params: list[Any] = []
        if since is not None:
            where.append("ts >= ?")
            params.append(since)
        if user is not None:
            where.append("user = ?")
            params.append(user)
        if database is not None:
            where.append("database = ?")
            params.append(database)
        if kind is not None:
            where.append("kind = ?")
            params.append(kind)
        sql = "SELECT * FROM audit"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY id DESC LIMIT ?"
        params.append(max(0, int(limit)))
        rows = list(self.db.query(sql, params))
        rows.reverse()
        for row in rows:
            for column in (*_COLUMNS, "iso", "kind"):
                if isinstance(row.get(column), str):
                    row[column] = self.redact(row[column])
            detail = json.loads(row["detail"]) if row["detail"] else None
            row["detail"] = None if detail is None else self.redactor.redact_data(detail)
        return rows

    @staticmethod
    def export_jsonl(rows: Iterable[dict[str, Any]]) -> str:
        """Rows as JSON lines (one object per line, trailing newline when non-empty)."""
        lines = [json.dumps(row, sort_keys=True, default=str) for row in rows]
        return "".join(line + "\n" for line in lines)
