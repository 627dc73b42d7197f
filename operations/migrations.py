"""Versioned migrations of the tables owned by operations/, in one set (`operations`).

Tables: ``tracked_operations`` and ``outbox`` (the tracker), ``switch_backs``,
``watches`` and ``incident_flags`` (the watcher), ``schedules`` and
``schedule_runs`` (the scheduler). Every store of this room calls `migrate`
before it touches its tables; steps are applied in order, each in a
transaction, and recorded in ``_sqlite_migrations`` (sqlite-utils), so a file
made by an older version gets exactly the steps it lacks. A new step is a new
function at the end, never an edit of an old one.
"""

from __future__ import annotations

import secrets

import sqlite_utils
from sqlite_utils import Migrations

migrations = Migrations("operations")


@migrations()
def m001_tracked_and_outbox(db: sqlite_utils.Database) -> None:
    """Tracked operations (operations/tracker.py) and the outbox of messages."""
    db.execute(
        """
        CREATE TABLE tracked_operations (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            provider TEXT NOT NULL,
            database_id TEXT NOT NULL,
            root_operation_id TEXT NOT NULL,
            operation_id TEXT NOT NULL,
            label TEXT NOT NULL,
            verb TEXT NOT NULL DEFAULT '',
            environment_id TEXT NOT NULL DEFAULT '',
            environment_name TEXT NOT NULL DEFAULT '',
            requester TEXT NOT NULL DEFAULT '',
            channel TEXT NOT NULL,
            thread_ts TEXT,
            origin TEXT,
            state TEXT NOT NULL DEFAULT 'running',
            steps_reported INTEGER NOT NULL DEFAULT 0,
            steps_offset INTEGER NOT NULL DEFAULT 0,
            polls INTEGER NOT NULL DEFAULT 0,
            errors INTEGER NOT NULL DEFAULT 0,
            started_at REAL NOT NULL,
            next_poll_at REAL NOT NULL,
            finished_at REAL,
            error TEXT,
            UNIQUE (provider, root_operation_id)
        )
        """
    )
    db.execute("CREATE INDEX tracked_due ON tracked_operations (state, next_poll_at)")
    db.execute(
        """
        CREATE TABLE outbox (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            tracked_id INTEGER,
            key TEXT NOT NULL,
            channel TEXT NOT NULL,
            thread_ts TEXT,
            action TEXT NOT NULL DEFAULT 'post',
            reply TEXT NOT NULL,
            created_at REAL NOT NULL,
            sent_at REAL,
            attempts INTEGER NOT NULL DEFAULT 0,
            UNIQUE (tracked_id, key)
        )
        """
    )
    db.execute("CREATE INDEX outbox_pending ON outbox (sent_at, id)")


@migrations()
def m002_switch_backs(db: sqlite_utils.Database) -> None:
    """Connection switches that may be switched back for a while (operations/store.py)."""
    db.execute(
        """
        CREATE TABLE switch_backs (
            id TEXT PRIMARY KEY,
            provider TEXT NOT NULL,
            environment_id TEXT NOT NULL,
            environment_name TEXT NOT NULL,
            production INTEGER NOT NULL,
            origin_id TEXT NOT NULL,
            origin_name TEXT NOT NULL,
            target_id TEXT NOT NULL,
            target_name TEXT NOT NULL,
            channel TEXT NOT NULL,
            created_at REAL NOT NULL,
            expires_at REAL NOT NULL
        )
        """
    )


@migrations()
def m003_watches(db: sqlite_utils.Database) -> None:
    """Channels watching databases (operations/watch.py)."""
    db.execute(
        """
        CREATE TABLE watches (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            provider TEXT NOT NULL,
            environment_id TEXT NOT NULL,
            environment_name TEXT NOT NULL,
            database_id TEXT NOT NULL,
            database_name TEXT NOT NULL,
            channel TEXT NOT NULL,
            created_by TEXT NOT NULL,
            created_at REAL NOT NULL,
            last_state TEXT,
            changes INTEGER NOT NULL DEFAULT 0,
            active INTEGER NOT NULL DEFAULT 1,
            UNIQUE (channel, provider, database_id)
        )
        """
    )


@migrations()
def m004_incident_flags(db: sqlite_utils.Database) -> None:
    """The last `underIncident` flag seen per database (operations/watch.py)."""
    db.execute(
        """
        CREATE TABLE incident_flags (
            provider TEXT NOT NULL,
            database_id TEXT NOT NULL,
            under_incident INTEGER NOT NULL,
            changed_at REAL NOT NULL,
            PRIMARY KEY (provider, database_id)
        )
        """
    )


@migrations()
def m005_schedules(db: sqlite_utils.Database) -> None:
    """Schedules and their runs (operations/schedules.py).

    Files made before issue 19 created these tables in a migration set of their own
    (`schedules`, `m001_schedules`), hence IF NOT EXISTS: there this step only records
    itself.
    """
    db.execute(
        """
        CREATE TABLE IF NOT EXISTS schedules (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            owner TEXT NOT NULL,
            channel TEXT NOT NULL,
            verb TEXT NOT NULL,
            db TEXT NOT NULL,
            source TEXT,
            env TEXT,
            "when" TEXT NOT NULL,
            tz TEXT NOT NULL DEFAULT 'UTC',
            provider TEXT NOT NULL DEFAULT '',
            environment_id TEXT NOT NULL DEFAULT '',
            environment_name TEXT NOT NULL DEFAULT '',
            production INTEGER NOT NULL DEFAULT 0,
            role INTEGER NOT NULL DEFAULT 2,
            next_run_at REAL,
            last_run_at REAL,
            state TEXT NOT NULL DEFAULT 'active',
            skip_until REAL,
            postponed_to REAL,
            approval_id TEXT,
            created_at REAL NOT NULL
        )
        """
    )
    db.execute("CREATE INDEX IF NOT EXISTS schedules_due ON schedules (state, next_run_at)")
    db.execute(
        """
        CREATE TABLE IF NOT EXISTS schedule_runs (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            schedule_id INTEGER NOT NULL,
            run_at REAL NOT NULL,
            kind TEXT NOT NULL,
            at REAL NOT NULL,
            outcome TEXT,
            detail TEXT,
            UNIQUE (schedule_id, run_at, kind)
        )
        """
    )


def migrate(db: sqlite_utils.Database) -> None:
    """Create or upgrade the operations tables (idempotent)."""
    migrations.apply(db)


@migrations()
def m006_tracked_last_seen(db: sqlite_utils.Database) -> None:
    """What a lost operation's final message says: the last status and step seen."""
    db.execute("ALTER TABLE tracked_operations ADD COLUMN last_status TEXT")
    db.execute("ALTER TABLE tracked_operations ADD COLUMN last_step TEXT")


@migrations()
def m007_watch_failures(db: sqlite_utils.Database) -> None:
    """Status checks of a watch that failed in a row (it ends after `max_failures`)."""
    db.execute("ALTER TABLE watches ADD COLUMN failures INTEGER NOT NULL DEFAULT 0")


@migrations()
def m008_approver_and_used_switch_backs(db: sqlite_utils.Database) -> None:
    """Who approved a tracked operation (named in incident posts), and switch-backs that
    were used (a "Switch back" button works once): `used_by` is the approval (or
    command) that used it."""
    db.execute("ALTER TABLE tracked_operations ADD COLUMN approver TEXT")
    db.execute("ALTER TABLE switch_backs ADD COLUMN used_at REAL")
    db.execute("ALTER TABLE switch_backs ADD COLUMN used_by TEXT")


@migrations()
def m009_accepted_requests(db: sqlite_utils.Database) -> None:
    """Slack requests acknowledged and not finished yet (operations/inbox.py)."""
    db.execute(
        """
        CREATE TABLE accepted_requests (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            user TEXT NOT NULL,
            channel TEXT NOT NULL,
            text TEXT NOT NULL,
            response_url TEXT,
            received_at REAL NOT NULL,
            runner TEXT NOT NULL,
            stage TEXT NOT NULL DEFAULT 'accepted',
            sent TEXT,
            reply TEXT
        )
        """
    )


@migrations()
def m010_retention_index(db: sqlite_utils.Database) -> None:
    """Finished tracked operations found by age, for retention (operations/retention.py)."""
    db.execute(
        "CREATE INDEX IF NOT EXISTS tracked_finished ON tracked_operations (state, finished_at)"
    )


@migrations()
def m011_spooled_requests(db: sqlite_utils.Database) -> None:
    """The spool entry a request was first kept in, when the store was locked at its ack
    (operations/inbox.py): a restart never takes it up twice."""
    db.execute("ALTER TABLE accepted_requests ADD COLUMN spool_key TEXT")


@migrations()
def m012_spool_mac_key(db: sqlite_utils.Database) -> None:
    """The key that signs the inbox spool's lines (operations/inbox.py): a line graphops
    did not write is never taken up. Random, one per store, never shown."""
    db.execute("CREATE TABLE inbox_spool_key (key TEXT NOT NULL)")
    db.execute("INSERT INTO inbox_spool_key (key) VALUES (?)", [secrets.token_hex(32)])


@migrations()
def m013_posted_answers(db: sqlite_utils.Database) -> None:
    """The ts of the message an accepted request's answer was posted as (operations/
    inbox.py): a restart follows its operations under it instead of posting it again."""
    db.execute("ALTER TABLE accepted_requests ADD COLUMN posted_ts TEXT")


@migrations()
def m014_request_threads(db: sqlite_utils.Database) -> None:
    """The thread an accepted request was asked in (a mention; operations/inbox.py): a
    restart answers it there, and looks there for an answer posted before the kill."""
    db.execute("ALTER TABLE accepted_requests ADD COLUMN thread_ts TEXT")
