"""Fixtures for permissions tests: a real SQLite file in WAL mode.

The clock is the one of tests/conftest.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlite_utils

from permissions.store import PermissionStore


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "graphops.db"


@pytest.fixture
def db(db_path: Path) -> Iterator[sqlite_utils.Database]:
    database = sqlite_utils.Database(db_path)
    database.enable_wal()
    yield database
    database.close()


@pytest.fixture
def store(db: sqlite_utils.Database) -> PermissionStore:
    return PermissionStore(db, admins=frozenset({"U0BOTADMIN"}))
