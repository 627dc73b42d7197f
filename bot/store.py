"""The one SQLite file: opened here, migrated by each room that owns tables."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import sqlite_utils


def open_database(path: str | Path) -> sqlite_utils.Database:
    """Open (creating if needed) the SQLite file in WAL mode, safe for several processes."""
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
