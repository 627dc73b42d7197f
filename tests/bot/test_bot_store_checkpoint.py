"""`Checkpointer`: the WAL is checkpointed from a thread, never in a commit on the loop
(a checkpoint syncs the file: tens of ms in whichever command commits then)."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from pathlib import Path

import sqlite_utils

from bot.store import AUTOCHECKPOINT_PAGES, Checkpointer, open_database

PAGE = 4096


def _autocheckpoint(db: sqlite_utils.Database) -> int:
    return int(db.execute("PRAGMA wal_autocheckpoint").fetchone()[0])


def _write_pages(db: sqlite_utils.Database, pages: int) -> None:
    """Commit `pages` WAL pages' worth of rows, one transaction each, as the bot does."""
    db.execute("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, body TEXT)")
    for _ in range(pages):
        with db.conn:
            db.execute("INSERT INTO t (body) VALUES (?)", ["x" * 3000])


def _wal_pages(path: Path) -> int:
    wal = Path(f"{path}-wal")
    return wal.stat().st_size // PAGE if wal.exists() else 0


async def test_while_it_runs_no_commit_checkpoints_and_its_own_pass_does(tmp_path: Path):
    path = tmp_path / "bot.sqlite3"
    db = open_database(path)
    checkpointer = Checkpointer(db, str(path), interval=3600)
    checkpointer.start()
    try:
        assert _autocheckpoint(db) == 0
        _write_pages(db, AUTOCHECKPOINT_PAGES + 300)
        # SQLite alone would have checkpointed and reused the log at 1,000 pages
        assert _wal_pages(path) > AUTOCHECKPOINT_PAGES + 200
        # A pass that meets a lock reports busy and copies what it could (PASSIVE); the
        # loop's next pass goes on: wait (bounded) for one that copies everything.
        deadline = time.monotonic() + 10
        while True:
            result = await checkpointer.run_once()
            assert result is not None, "the checkpoint failed"
            busy, pages, done = result
            if busy == 0 and pages == done:
                break
            assert time.monotonic() < deadline, f"no complete checkpoint: {result}"
            await asyncio.sleep(0.05)
        assert pages > AUTOCHECKPOINT_PAGES
    finally:
        await checkpointer.stop()
    assert _autocheckpoint(db) == AUTOCHECKPOINT_PAGES  # SQLite's job again
    db.close()


async def test_without_it_sqlite_checkpoints_by_itself(tmp_path: Path):
    """The control: the log stays near 1,000 pages when the connection checkpoints."""
    path = tmp_path / "bot.sqlite3"
    db = open_database(path)
    _write_pages(db, AUTOCHECKPOINT_PAGES + 300)
    assert _wal_pages(path) <= AUTOCHECKPOINT_PAGES + 10
    db.close()


async def test_a_failing_checkpoint_hands_the_job_back_to_sqlite(tmp_path: Path, caplog):
    path = tmp_path / "bot.sqlite3"
    db = open_database(path)
    checkpointer = Checkpointer(db, str(tmp_path), interval=3600)  # a folder: cannot open
    checkpointer.start()
    assert _autocheckpoint(db) == 0
    with caplog.at_level(logging.WARNING, "graphops.store"):
        assert await checkpointer.run_once() is None
    assert checkpointer.failed
    assert _autocheckpoint(db) == AUTOCHECKPOINT_PAGES
    assert "SQLite checkpoints by itself now" in caplog.text
    await checkpointer.stop()
    assert _autocheckpoint(db) == AUTOCHECKPOINT_PAGES
    db.close()


async def test_an_in_memory_store_has_nothing_to_checkpoint():
    db = open_database(":memory:")
    checkpointer = Checkpointer(db, ":memory:")
    checkpointer.start()
    await checkpointer.stop()
    assert checkpointer.failed is False
    db.close()


def test_the_store_and_its_copies_are_readable_by_their_owner_only(tmp_path: Path):
    """The store holds the audit log: created 0600, its -wal and -shm likewise (SQLite
    gives them the database file's mode), and so is a `graphops backup` copy."""
    import stat

    from bot.store import backup_database

    path = tmp_path / "bot.sqlite3"
    db = open_database(path)
    _write_pages(db, 3)
    for part in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        assert stat.S_IMODE(part.stat().st_mode) == 0o600, part.name
    backup_database(path, tmp_path / "copy.sqlite3")
    assert stat.S_IMODE((tmp_path / "copy.sqlite3").stat().st_mode) == 0o600
    db.close()


async def test_a_stop_during_a_checkpoint_waits_for_it_before_closing(tmp_path: Path) -> None:
    """`asyncio.to_thread` runs on when its task is cancelled: a stop in the middle of a
    checkpoint closed the connection under it, and SQLite crashed the process (seen in
    CI: a segmentation fault in `_checkpoint`). Now the close waits for it."""
    import threading

    path = tmp_path / "bot.sqlite3"
    db = open_database(path)
    checkpointer = Checkpointer(db, str(path), interval=3600)
    order: list[str] = []
    inside, release, straggler_done = threading.Event(), threading.Event(), threading.Event()

    class Slow:
        """The checkpointer's connection: its first checkpoint is held until released."""

        def __init__(self, real: sqlite3.Connection) -> None:
            self.real = real
            self.calls = 0

        def execute(self, sql: str) -> sqlite3.Cursor:
            self.calls += 1
            first = self.calls == 1
            if first:
                inside.set()
                release.wait(10)
            order.append("checkpoint")
            if first:
                straggler_done.set()
            return self.real.execute(sql)

        def close(self) -> None:
            order.append("close")
            self.real.close()

    class Watched:
        """The connection's lock, saying when a second user waits for it."""

        def __init__(self) -> None:
            self.lock = threading.Lock()
            self.users = 0
            self.second_waits = threading.Event()

        def __enter__(self) -> None:
            self.users += 1
            if self.users == 2:
                self.second_waits.set()
            self.lock.acquire()

        def __exit__(self, *exc: object) -> None:
            self.lock.release()

    watched = Watched()
    checkpointer._conn_lock = watched  # type: ignore[assignment]
    checkpointer._conn = Slow(sqlite3.connect(str(path), check_same_thread=False))  # type: ignore[assignment]
    running = asyncio.ensure_future(checkpointer.run_once())
    await asyncio.to_thread(inside.wait, 10)
    running.cancel()  # its thread goes on, inside the checkpoint
    stopping = asyncio.ensure_future(checkpointer.stop())
    # stop's own checkpoint waits for the connection instead of using it alongside
    assert await asyncio.to_thread(watched.second_waits.wait, 10)
    assert order == [] and not stopping.done()
    release.set()
    await asyncio.wait_for(stopping, 10)
    await asyncio.to_thread(straggler_done.wait, 10)
    # the held checkpoint ended, then stop's own, then the close (not a close under it)
    assert order == ["checkpoint", "checkpoint", "close"]
    db.close()
