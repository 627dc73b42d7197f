"""`PermissionStore.bindings_at`: asked by the Slack ack path for every request, so it
answers from memory while the store is unchanged, and never from a stale memory."""

from __future__ import annotations

from pathlib import Path

import sqlite_utils

from permissions.roles import Role
from permissions.store import PermissionStore


def _statements(store: PermissionStore) -> list[str]:
    seen: list[str] = []
    store.db.conn.set_trace_callback(seen.append)
    return seen


def test_a_repeated_question_reads_no_binding_while_the_store_is_unchanged(
    store: PermissionStore,
) -> None:
    store.grant("C0OPS", "console", "development", Role.OPERATOR)
    assert [b.environment for b in store.bindings_at("C0OPS")] == ["development"]
    seen = _statements(store)
    assert [b.environment for b in store.bindings_at("C0OPS")] == ["development"]
    assert store.bindings_at("C0NOWHERE") == ()
    assert store.bindings_at("C0NOWHERE") == ()
    reads = [s for s in seen if "channel_bindings" in s]
    assert len(reads) == 1, seen  # the new question only


def test_its_own_grant_and_revoke_are_seen_at_once(store: PermissionStore) -> None:
    assert store.bindings_at("C0OPS") == ()
    store.grant("C0OPS", "console", "development", Role.OPERATOR)
    assert [b.role for b in store.bindings_at("C0OPS")] == [Role.OPERATOR]
    store.set_users("C0OPS", "console", "development", ["U0BOB"], None)
    assert [b.users for b in store.bindings_at("C0OPS")] == [("U0BOB",)]
    store.revoke("C0OPS", "console", "development")
    assert store.bindings_at("C0OPS") == ()
    store.grant("U0ALICE", "console", "development", Role.VIEWER)  # a personal binding
    assert [b.role for b in store.bindings_at("U0ALICE")] == [Role.VIEWER]


def test_a_change_committed_by_another_connection_is_seen_at_once(
    store: PermissionStore, db_path: Path
) -> None:
    """`graphops access grant` in another process writes through its own connection."""
    other_db = sqlite_utils.Database(db_path)
    other = PermissionStore(other_db)
    try:
        assert store.bindings_at("C0OPS") == ()
        other.grant("C0OPS", "console", "development", Role.OPERATOR)
        assert [b.role for b in store.bindings_at("C0OPS")] == [Role.OPERATOR]
        other.grant("C0OPS", "console", "development", Role.VIEWER)
        assert [b.role for b in store.bindings_at("C0OPS")] == [Role.VIEWER]
        other.revoke("C0OPS", "console", "development")
        assert store.bindings_at("C0OPS") == ()
    finally:
        other_db.close()
