"""write_when_free: a write after something happened outside waits for a locked store."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from bot.store import open_database
from operations.locked import write_when_free


async def test_a_write_waits_for_the_lock_and_lands_once_it_is_free(tmp_path: Path) -> None:
    path = tmp_path / "bot.sqlite3"
    db = open_database(path, busy_timeout_ms=0)
    db.execute("CREATE TABLE t (x INTEGER)")
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another connection holds the write lock
    waits = 0

    async def ready() -> bool:
        nonlocal waits
        waits += 1
        if waits == 2:
            other.execute("ROLLBACK")  # let go during the second wait
        return True

    def write() -> int:
        db.execute("INSERT INTO t VALUES (1)")
        return 7

    assert await write_when_free(write, "a test row", ready) == 7
    assert waits == 2
    assert db.execute("SELECT COUNT(*) FROM t").fetchone() == (1,)


async def test_a_lock_that_outlasts_every_try_fails_with_the_last_error() -> None:
    tries = 0

    def write() -> None:
        nonlocal tries
        tries += 1
        raise sqlite3.OperationalError(f"database is locked ({tries})")

    async def ready() -> bool:
        return False

    with pytest.raises(sqlite3.OperationalError, match=r"\(3\)"):
        await write_when_free(write, "a test row", ready, attempts=3)
    assert tries == 3


async def test_other_errors_are_not_retried() -> None:
    def write() -> None:
        raise sqlite3.IntegrityError("UNIQUE constraint failed")

    with pytest.raises(sqlite3.IntegrityError):
        await write_when_free(write, "a test row")
