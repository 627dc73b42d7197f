from __future__ import annotations

from pathlib import Path

import sqlite_utils

from permissions.migrations import migrations
from permissions.store import migrate

TABLES = {"channel_bindings", "protected_environments", "incident_channels", "approvals", "audit"}
STEPS = [
    "m001_initial",
    "m002_binding_users_and_audit_team",
    "m003_approval_executions",
    "m004_audit_poll_counts",
]


def test_migrate_from_empty_file(db_path: Path) -> None:
    assert not db_path.exists()
    db = sqlite_utils.Database(db_path)
    migrate(db)
    assert set(db.table_names()) >= TABLES
    applied = [m.name for m in migrations.applied(db)]
    assert applied == STEPS
    assert migrations.pending(db) == []
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
    applied = len(migrations.applied(db))
    db.close()
    reopened = sqlite_utils.Database(db_path)
    migrate(reopened)
    assert reopened.schema == schema
    assert reopened["channel_bindings"].count == 1
    assert len(migrations.applied(reopened)) == applied == len(STEPS)
    assert migrations.pending(reopened) == []
    reopened.close()


def test_migrations_leave_other_tables_alone(db_path: Path) -> None:
    db = sqlite_utils.Database(db_path)
    db.table("operations").insert({"id": 1, "state": "running"}, pk="id")
    migrate(db)
    assert db["operations"].count == 1
    db.close()


def test_approvals_decided_before_the_state_machine_count_as_reported(db_path: Path) -> None:
    """A file from before m003: its decided approvals keep their state and count as
    reported (their cards were edited then); a stuck `approved` one has no runner, so
    the next start ends it with a clear failure instead of leaving it forever."""
    db = sqlite_utils.Database(db_path)
    migrations.apply(db, stop_before="m003_approval_executions")
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


def test_a_file_from_before_roles_per_user_opens_and_behaves_as_before(tmp_path: Path) -> None:
    """A binding made before `users=` existed names nobody: the whole channel holds its role."""
    from permissions.policy import Target, decide
    from permissions.roles import Role
    from permissions.store import PermissionStore
    from tests.permissions.old_files import copy_before_issue_19

    db = sqlite_utils.Database(copy_before_issue_19(tmp_path))
    store = PermissionStore(db)
    [binding] = store.bindings("C0DEV")
    assert binding.users == () and binding.fallback is Role.VIEWER
    target = Target("console", "env-dev", "development", False)
    policy = store.policy_for("C0DEV")
    decision = decide(policy, "U0ANYONE", "restart", Role.OPERATOR, False, target)
    assert decision.allowed and decision.role is Role.ADMIN
    assert "team" in db["audit"].columns_dict
    db.close()
