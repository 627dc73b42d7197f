"""Versioned migrations of the tables owned by permissions/.

Tables: ``channel_bindings``, ``protected_environments``, ``incident_channels``,
``approvals``, ``audit`` and ``audit_poll_counts``. A new step is a new function at
the end; released steps never change (a file made by an older version must still open).
Environment columns compare case-insensitively (``COLLATE NOCASE``) so
``Staging`` and ``staging`` are the same key.
"""

from __future__ import annotations

import sqlite_utils
from sqlite_utils import Migrations

migrations = Migrations("permissions")


@migrations()
def m001_initial(db: sqlite_utils.Database) -> None:
    """Create bindings, protection overrides, incident channels, approvals, audit."""
    db.execute(
        """
        CREATE TABLE channel_bindings (
            channel TEXT NOT NULL,
            provider TEXT NOT NULL,
            environment TEXT NOT NULL COLLATE NOCASE,
            role INTEGER NOT NULL,
            approvers TEXT NOT NULL DEFAULT '[]',
            granted_by TEXT,
            granted_at REAL,
            PRIMARY KEY (channel, provider, environment)
        )
        """
    )
    db.execute(
        """
        CREATE TABLE protected_environments (
            provider TEXT NOT NULL,
            environment TEXT NOT NULL COLLATE NOCASE,
            protected INTEGER NOT NULL,
            PRIMARY KEY (provider, environment)
        )
        """
    )
    db.execute(
        """
        CREATE TABLE incident_channels (
            provider TEXT NOT NULL,
            environment TEXT NOT NULL COLLATE NOCASE,
            channel TEXT NOT NULL,
            PRIMARY KEY (provider, environment)
        )
        """
    )
    db.execute(
        """
        CREATE TABLE approvals (
            id TEXT PRIMARY KEY,
            requester TEXT NOT NULL,
            channel TEXT NOT NULL,
            provider TEXT NOT NULL,
            environment_id TEXT NOT NULL,
            environment_name TEXT NOT NULL,
            verb TEXT NOT NULL,
            target TEXT NOT NULL DEFAULT '',
            args TEXT NOT NULL DEFAULT '{}',
            summary TEXT NOT NULL DEFAULT '',
            required_role INTEGER NOT NULL,
            protected INTEGER NOT NULL DEFAULT 0,
            created_at REAL NOT NULL,
            expires_at REAL NOT NULL,
            state TEXT NOT NULL DEFAULT 'pending',
            decided_by TEXT,
            decided_at REAL,
            result TEXT,
            finished_at REAL,
            message_ts TEXT
        )
        """
    )
    db.execute("CREATE INDEX idx_approvals_state_expires ON approvals (state, expires_at)")
    db.execute("CREATE INDEX idx_approvals_channel_state ON approvals (channel, state)")
    db.execute("CREATE INDEX idx_approvals_created ON approvals (created_at)")
    db.execute(
        """
        CREATE TABLE audit (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            ts REAL NOT NULL,
            iso TEXT NOT NULL,
            kind TEXT NOT NULL,
            user TEXT,
            channel TEXT,
            provider TEXT,
            environment TEXT,
            database TEXT,
            verb TEXT,
            outcome TEXT,
            detail TEXT
        )
        """
    )
    db.execute("CREATE INDEX idx_audit_ts ON audit (ts)")
    db.execute("CREATE INDEX idx_audit_user_ts ON audit (user, ts)")
    db.execute("CREATE INDEX idx_audit_database_ts ON audit (database, ts)")
    db.execute("CREATE INDEX idx_audit_kind_ts ON audit (kind, ts)")


@migrations()
def m002_binding_users_and_audit_team(db: sqlite_utils.Database) -> None:
    """Roles per user inside a binding (``users``, ``fallback``: 1 viewer .. 3 admin, 0
    none) and the Slack workspace of who acted in each audit row (``team``)."""
    db.execute("ALTER TABLE channel_bindings ADD COLUMN users TEXT NOT NULL DEFAULT '[]'")
    db.execute("ALTER TABLE channel_bindings ADD COLUMN fallback INTEGER NOT NULL DEFAULT 1")
    db.execute("ALTER TABLE audit ADD COLUMN team TEXT")


@migrations()
def m003_approval_executions(db: sqlite_utils.Database) -> None:
    """Approved work as a persisted state machine (permissions/approvals.py).

    `runner`: the process running the approved work (`pid:start-time`), so a restarted
    bot resumes only work whose process is gone; `step`: what it is doing now;
    `journal`: the steps begun and done (JSON); `reply`: the outcome to show;
    `reported_at`: when the card and its thread were told. Rows decided before this
    step count as reported (their cards were edited then); an `approved` row from
    before has no runner: it is ended with a clear failure at the next start.
    """
    for column, kind in (
        ("runner", "TEXT"),
        ("step", "TEXT"),
        ("journal", "TEXT"),
        ("reply", "TEXT"),
        ("reported_at", "REAL"),
    ):
        db.execute(f"ALTER TABLE approvals ADD COLUMN {column} {kind}")
    db.execute(
        "UPDATE approvals SET reported_at = COALESCE(finished_at, decided_at, expires_at) "
        "WHERE state NOT IN ('pending', 'approved')"
    )


@migrations()
def m004_audit_poll_counts(db: sqlite_utils.Database) -> None:
    """Background API requests (tracker and watch polls) counted per interval until the
    interval ends and becomes one ``audit`` row (permissions/audit.py)."""
    db.execute(
        """
        CREATE TABLE audit_poll_counts (
            interval_start REAL NOT NULL,
            source TEXT NOT NULL,
            provider TEXT NOT NULL,
            method TEXT NOT NULL,
            outcome TEXT NOT NULL,
            count INTEGER NOT NULL,
            ms_total REAL NOT NULL,
            ms_max REAL NOT NULL,
            PRIMARY KEY (interval_start, source, provider, method, outcome)
        )
        """
    )


def migrate(db: sqlite_utils.Database) -> None:
    """Apply any pending permissions migrations (idempotent)."""
    migrations.apply(db)
