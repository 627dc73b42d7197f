from __future__ import annotations

from pathlib import Path

import sqlite_utils

from permissions.migrations import migrations
from permissions.store import migrate

TABLES = {"channel_bindings", "protected_environments", "incident_channels", "approvals", "audit"}
STEPS = ["m001_initial", "m002_approval_executions"]


def test_migrate_from_empty_file(db_path: Path) -> None:
    assert not db_path.exists()
    db = sqlite_utils.Database(db_path)
    migrate(db)
    assert set(db.table_names()) >= TABLES
    applied = [m.name for m in migrations.applied(db)]
    assert applied == STEPS
    index_columns = {tuple(i.columns) for i in db["approvals"].indexes}  # type: ignore[union-attr]
    assert ("state", "expires_at") in index_columns
    audit_indexes = {tuple(i.columns) for i in db["audit"].indexes}  # type: ignore[union-attr]
    assert ("user", "ts") in audit_indexes
    db.close()


def test_rerunning_migrations_is_a_noop(db_path: Path) -> None:
    db = sqlite_utils.Database(db_path)
    migrate(db)
    db.execute(
        "INSERT INTO channel_bindings (channel, provider, environment, role) "
        "VALUES ('C0DEV', 'console', 'staging', 2)"
    )
    schema = db.schema
    migrate(db)
    db.close()
    reopened = sqlite_utils.Database(db_path)
    migrate(reopened)
    assert reopened.schema == schema
    assert reopened["channel_bindings"].count == 1
    assert len(migrations.applied(reopened)) == len(STEPS)
    assert migrations.pending(reopened) == []
    reopened.close()


def test_migrations_leave_other_tables_alone(db_path: Path) -> None:
    db = sqlite_utils.Database(db_path)
    db.table("operations").insert({"id": 1, "state": "running"}, pk="id")
    migrate(db)
    assert db["operations"].count == 1
    db.close()


def test_approvals_decided_before_the_state_machine_count_as_reported(db_path: Path) -> None:
    """A file from before m002: its decided approvals keep their state and count as
    reported (their cards were edited then); a stuck `approved` one has no runner, so
    the next start ends it with a clear failure instead of leaving it forever."""
    db = sqlite_utils.Database(db_path)
    migrations.apply(db, stop_before="m002_approval_executions")
    for approval_id, state in (("a1", "pending"), ("a2", "approved"), ("a3", "executed")):
        db.execute(
            "INSERT INTO approvals (id, requester, channel, provider, environment_id, "
            "environment_name, verb, required_role, created_at, expires_at, state, decided_at, "
            "finished_at, message_ts) "
            "VALUES (?, 'U0A', 'C0DEV', 'console', 'e', 'production', 'switch', 3, 1, 2, ?, "
            "1.5, 1.7, '1.0')",
            [approval_id, state],
        )
    migrate(db)
    got = {
        row[0]: (row[1], row[2], row[3])
        for row in db.execute("SELECT id, state, reported_at, runner FROM approvals")
    }
    assert got == {
        "a1": ("pending", None, None),
        "a2": ("approved", None, None),
        "a3": ("executed", 1.7, None),
    }
    db.close()
