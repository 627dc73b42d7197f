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
"""

from __future__ import annotations

import contextlib
import errno
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import sqlite_utils


class StoreError(Exception):
    """The store cannot be used as asked; the message says why and what would work."""


def open_database(path: str | Path) -> sqlite_utils.Database:
    """Open (creating if needed) the SQLite file in WAL mode."""
    target = Path(path)
    if str(target) != ":memory:":
        target.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(str(target), timeout=30.0, isolation_level=None, check_same_thread=False)
    db = sqlite_utils.Database(conn)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA busy_timeout=30000")
    db.execute("PRAGMA foreign_keys=ON")
    db.execute("PRAGMA synchronous=NORMAL")
    return db


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
