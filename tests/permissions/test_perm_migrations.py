from __future__ import annotations

from pathlib import Path

import sqlite_utils

from permissions.migrations import migrations
from permissions.store import migrate

TABLES = {"channel_bindings", "protected_environments", "incident_channels", "approvals", "audit"}


def test_migrate_from_empty_file(db_path: Path) -> None:
    assert not db_path.exists()
    db = sqlite_utils.Database(db_path)
    migrate(db)
    assert set(db.table_names()) >= TABLES
    applied = [m.name for m in migrations.applied(db)]
    assert applied == ["m001_initial"]
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
    assert len(migrations.applied(reopened)) == 1
    assert migrations.pending(reopened) == []
    reopened.close()


def test_migrations_leave_other_tables_alone(db_path: Path) -> None:
    db = sqlite_utils.Database(db_path)
    db.table("operations").insert({"id": 1, "state": "running"}, pk="id")
    migrate(db)
    assert db["operations"].count == 1
    db.close()
