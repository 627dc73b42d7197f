"""The one SQLite file: opened here, migrated by each room that owns tables.

Each room migrates its own tables when the bot opens the store, so an upgrade
is: stop the bot, install the new version, start it (the migrations run then).

One `graphops serve` per database file: `serve_lock` takes an exclusive
`flock` on `<database>.lock` for the life of the process (the kernel drops it
when the process dies, even by SIGKILL), and a second `serve` on the same file
is refused with the first one's pid. SQLite itself would let two processes
share the file, but each would run its own tracker, schedules and watches, so
steps would be posted and schedules run twice. The command-line tools
(`access`, `audit`, `backup`, `shell -c`) may run beside a `serve`.

`backup_database` copies a live database with SQLite's online backup API
(https://www.sqlite.org/backup.html), consistent even while `serve` writes.

The store never blocks the event loop for long. Another process may hold the
write lock (a `graphops access import`, a script, a hostile `BEGIN IMMEDIATE`):
in WAL mode readers never wait for it, but a write waits up to the connection's
busy timeout, and the bot's connection is used from its event loop, where that
wait would hold up every Slack acknowledgement. So:
- `StoreGate.ready()` waits for the write lock in a thread (off the loop): the
  Slack listeners' work starts only once the store can be written (at most
  `wait_seconds`, then the requester is told the store is busy, and nothing ran);
- once the stores are built, the bot's connection gets a short busy timeout
  (`LOOP_BUSY_TIMEOUT_MS`): a lock taken by another process in the middle of a
  command makes a write fail after a quarter of a second with
  `sqlite3.OperationalError` ("database is locked", answered plainly by
  `commands.pipeline.Pipeline.run`) instead of freezing the loop; audit rows that meet a busy
  store are kept and written with the next one (`permissions.audit.AuditLog`).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import sqlite3
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import sqlite_utils

from core.files import create_private
from operations.loop import BackgroundLoop

log = logging.getLogger("graphops.store")

AUTOCHECKPOINT_PAGES = 1000  # SQLite's default `wal_autocheckpoint`
CHECKPOINT_SECONDS = 1.0  # how often `Checkpointer` checkpoints while it runs
BUSY_TIMEOUT_MS = 30_000  # command-line tools: wait for another process's write lock
LOOP_BUSY_TIMEOUT_MS = 250  # the bot's connection, used from its event loop
STORE_WAIT_SECONDS = 30.0  # how long listener work waits for the write lock (off the loop)


class StoreError(Exception):
    """The store cannot be used as asked; the message says why and what would work."""


def open_database(
    path: str | Path, busy_timeout_ms: int = BUSY_TIMEOUT_MS
) -> sqlite_utils.Database:
    """Open (creating if needed) the SQLite file in WAL mode; a write waits up to
    `busy_timeout_ms` for another process's lock, then raises sqlite3.OperationalError."""
    target = Path(path)
    if str(target) != ":memory:":
        target.parent.mkdir(parents=True, exist_ok=True)
        private_file(target)
    conn = sqlite3.connect(
        str(target),
        timeout=busy_timeout_ms / 1000,
        isolation_level=None,
        check_same_thread=False,
    )
    db = sqlite_utils.Database(conn)
    # Takes effect only on a new file (before its first table); existing stores are
    # converted once by operations.retention.enable_incremental_vacuum. Set only on a
    # new file: on an existing one it waits for another process's write lock.
    if db.execute("PRAGMA page_count").fetchone()[0] == 0:
        db.execute("PRAGMA auto_vacuum=INCREMENTAL")
    if db.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
        db.execute("PRAGMA journal_mode=WAL")
    set_busy_timeout(db, busy_timeout_ms)
    db.execute("PRAGMA foreign_keys=ON")
    db.execute("PRAGMA synchronous=NORMAL")
    return db


def private_file(path: Path) -> None:
    """Create `path` readable by its owner only (0600) if it does not exist: the store
    holds the audit log. SQLite gives its -wal and -shm files the database file's
    permissions (https://www.sqlite.org/tempfiles.html); an existing file is left as
    its owner set it."""
    with contextlib.suppress(FileExistsError):
        create_private(path).close()


def set_busy_timeout(db: sqlite_utils.Database, milliseconds: int) -> None:
    """How long a write on `db` waits for another process's lock before failing."""
    db.execute(f"PRAGMA busy_timeout={int(milliseconds)}")


@contextlib.contextmanager
def no_busy_wait(db: sqlite_utils.Database) -> Iterator[None]:
    """Inside, a write on `db` fails at once (sqlite3.OperationalError "database is
    locked") when another process holds the write lock, instead of waiting its busy
    timeout: for writes on the Slack ack path (bot/slack/runtime.py `accept`)."""
    before = int(db.execute("PRAGMA busy_timeout").fetchone()[0])
    set_busy_timeout(db, 0)
    try:
        yield
    finally:
        set_busy_timeout(db, before)


def writable_within(path: str, seconds: float) -> bool:
    """Whether the SQLite file at `path` takes a write lock within `seconds` (on its own
    short connection, so the caller's is never held; blocking: run it in a thread)."""
    try:
        conn = sqlite3.connect(path, timeout=seconds, isolation_level=None)
    except sqlite3.Error:
        return False
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("ROLLBACK")
        return True
    except sqlite3.Error:
        return False
    finally:
        conn.close()


@dataclass
class StoreGate:
    """Waits, off the event loop, until the store at `path` can be written.

    `ready()` runs `writable_within` in a thread; callers waiting at the same time
    share one probe. A free store answers at once; one locked by another process
    answers when the lock is released, or False after `wait_seconds`.
    """

    path: str
    wait_seconds: float = STORE_WAIT_SECONDS
    _probe: asyncio.Future[bool] | None = field(default=None, repr=False)

    async def ready(self) -> bool:
        """True once a write lock could be taken (then released at once); False when
        the store stayed locked for `wait_seconds`."""
        if self.path == ":memory:":
            return True
        if self._probe is None or self._probe.done():
            self._probe = asyncio.ensure_future(
                asyncio.to_thread(writable_within, self.path, self.wait_seconds)
            )
        return await asyncio.shield(self._probe)


def check_database(db: sqlite_utils.Database) -> bool:
    """True when the store answers a trivial query (used by health checks)."""
    try:
        return db.execute("SELECT 1").fetchone() == (1,)
    except sqlite3.Error:
        return False


def writable_problem(path: str | Path) -> str | None:
    """Why the database file could not be created or written, or None when it can.

    Tried for real (permission bits say little to root): the folder is created
    if missing and a file created in it, and whatever the check created is removed.
    """
    if str(path) == ":memory:":
        return None
    target = Path(path)
    if target.is_dir():
        return f"{target} is a folder, not a file"
    if target.exists():
        try:
            with open(target, "r+b"):
                return None
        except OSError as exc:
            return f"cannot write {target}: {exc.strerror}"
    created: list[Path] = []
    folder = target.parent
    while not folder.exists():
        created.append(folder)
        folder = folder.parent
    try:
        for missing in reversed(created):
            missing.mkdir()
        probe = target.parent / f".{target.name}.check-{os.getpid()}"
        probe.touch()
        probe.unlink()
        return None
    except OSError as exc:
        return f"cannot create {target}: {exc.strerror} ({exc.filename})"
    finally:
        for made in created:
            with contextlib.suppress(OSError):
                made.rmdir()


@dataclass
class ServeLock:
    """An exclusive lock on a database file for one `serve` process."""

    path: Path
    handle: IO[str]

    def release(self) -> None:
        """Drop the lock (the kernel does it anyway when the process ends)."""
        with contextlib.suppress(OSError):
            self.handle.close()


def serve_lock(database: str | Path) -> ServeLock | None:
    """Lock `database` for this process (None for ":memory:"); StoreError when taken."""
    import fcntl

    if str(database) == ":memory:":
        return None
    path = Path(f"{database}.lock")
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = open(path, "a+", encoding="utf-8")  # noqa: SIM115 (held for the process's life)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        handle.seek(0)
        holder = handle.read().strip() or "unknown"
        handle.close()
        if exc.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
            raise StoreError(f"cannot lock {path}: {exc.strerror}") from None
        raise StoreError(
            f"another graphops serve (pid {holder}) is using {database}; stop it first, "
            "or give this one its own [bot] database. One process per database: two would "
            "both post every step and run every schedule"
        ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"{os.getpid()}\n")
    handle.flush()
    return ServeLock(path, handle)


def backup_database(source: str | Path, target: str | Path) -> int:
    """Copy the live database `source` to the new file `target`; return its size in bytes.

    Uses SQLite's online backup API, so the copy is consistent while another
    process writes. StoreError: no source, target exists, or the copy failed.
    """
    source_path, target_path = Path(source), Path(target)
    if not source_path.is_file():
        raise StoreError(f"there is no database at {source_path} (check [bot] database)")
    if target_path.exists():
        raise StoreError(f"{target_path} already exists; give a new file name")
    if source_path.resolve() == target_path.resolve():
        raise StoreError("the backup must go to another file than the database")
    partial = target_path.with_name(target_path.name + ".partial")
    try:
        partial.unlink(missing_ok=True)
        private_file(partial)  # a copy of the audit log: its owner's only
        src = sqlite3.connect(str(source_path), timeout=30.0)
        try:
            dst = sqlite3.connect(str(partial))
            try:
                src.backup(dst, pages=1024)
                ok = dst.execute("PRAGMA quick_check").fetchone()
            finally:
                dst.close()
        finally:
            src.close()
        if ok != ("ok",):
            raise StoreError(f"the copy failed SQLite's quick_check: {ok}")
        partial.replace(target_path)
    except sqlite3.Error as exc:
        partial.unlink(missing_ok=True)
        raise StoreError(f"backup failed: {exc}") from None
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise StoreError(f"cannot write {target_path}: {exc.strerror}") from None
    return target_path.stat().st_size


class Checkpointer:
    """Checkpoints the store's write-ahead log from a thread, never from the event loop.

    By default SQLite checkpoints inside the commit that takes the WAL past
    `wal_autocheckpoint` pages (https://www.sqlite.org/wal.html#ckpt), and a checkpoint
    syncs the database file to disk: 10-40 ms on a VM's disk, spent in whichever
    command commits then, with every Slack ack waiting behind it (bench/ack.py). While
    this runs, the bot's connection does not checkpoint (`PRAGMA wal_autocheckpoint=0`)
    and every `interval` seconds a PASSIVE checkpoint runs in a thread on a connection
    of its own: it copies what it can without waiting for any reader or writer
    (https://www.sqlite.org/pragma.html#pragma_wal_checkpoint). A checkpoint that
    fails hands the job back to SQLite (autocheckpoint on again, a warning logged), so
    the WAL never grows unchecked; so does `stop()`, after a last checkpoint.
    """

    def __init__(
        self, db: sqlite_utils.Database, path: str, interval: float = CHECKPOINT_SECONDS
    ) -> None:
        self.db = db
        self.path = path
        self.failed = False
        self._conn: sqlite3.Connection | None = None
        # A thread of `asyncio.to_thread` runs on when its task is cancelled (a stop in the
        # middle of a checkpoint): the connection is used and closed under this lock, or
        # a close under a running checkpoint crashes the process (SQLite, use after free).
        self._conn_lock = threading.Lock()
        self._closed = False
        self._loop = BackgroundLoop("graphops-checkpoint", self.run_once, interval)

    def start(self) -> None:
        """Take checkpoints over from the bot's connection (nothing for `:memory:`)."""
        if self.path == ":memory:":
            return
        self.db.execute("PRAGMA wal_autocheckpoint=0")
        self._loop.start()

    async def stop(self) -> None:
        """A last checkpoint, then the bot's connection checkpoints by itself again."""
        await self._loop.stop()
        if self.path != ":memory:" and not self.failed:
            await self.run_once()
        self._hand_back()
        await asyncio.to_thread(self._close)  # after any checkpoint still running

    def _close(self) -> None:
        with self._conn_lock:
            self._closed = True
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    async def run_once(self) -> tuple[int, int, int] | None:
        """One PASSIVE checkpoint in a thread: SQLite's (busy, WAL pages, pages
        checkpointed), or None when it failed (then SQLite checkpoints again)."""
        if self.failed:
            return None
        try:
            return await asyncio.to_thread(self._checkpoint)
        except sqlite3.Error as exc:
            log.warning("store: checkpoint failed (%s); SQLite checkpoints by itself now", exc)
            self.failed = True
            self._hand_back()
            return None

    def _checkpoint(self) -> tuple[int, int, int]:
        with self._conn_lock:
            if self._closed:
                raise sqlite3.OperationalError("the checkpointer is stopped")
            if self._conn is None:
                self._conn = sqlite3.connect(
                    self.path, timeout=0, isolation_level=None, check_same_thread=False
                )
            busy, pages, done = self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            return int(busy), int(pages), int(done)

    def _hand_back(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self.db.execute(f"PRAGMA wal_autocheckpoint={AUTOCHECKPOINT_PAGES}")
