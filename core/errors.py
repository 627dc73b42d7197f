"""The one error every room may raise for the requester to read, and how a store
locked by another process is recognised."""

from __future__ import annotations

import sqlite3


class UserError(Exception):
    """A problem the requester can fix (unknown name, ambiguity, bad value); no trace shown.

    Its message is shown as is, so it says what was wrong and what would work.
    """


def is_store_busy(exc: BaseException) -> bool:
    """Whether `exc` is SQLite saying another connection held the lock a write needed
    past the connection's busy timeout ("database is locked"; see bot/store.py)."""
    if not isinstance(exc, sqlite3.OperationalError):
        return False
    text = str(exc).lower()
    return "locked" in text or "busy" in text
