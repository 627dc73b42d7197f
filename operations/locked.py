"""Writes that must land although another process holds the store's write lock.

A command that has not sent anything yet is refused plainly when the store is
locked (commands.pipeline.Pipeline.run): nothing happened. A write made *after*
something happened outside cannot be refused that way: the operation a `pause`
started must be followed, the approval card that was posted must be known by its
ts. Such a write waits for the store off the event loop (`ready`, bot.store.StoreGate:
at most 30 s a try) and is tried again, `attempts` times in all, then fails with the
last sqlite3.OperationalError. Meanwhile the request's inbox row (operations/inbox.py)
is not deleted, so a kill during the wait is taken up by the next start.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Awaitable, Callable
from typing import TypeVar

log = logging.getLogger("graphops.store")

T = TypeVar("T")

WRITE_ATTEMPTS = 10  # with bot.store.StoreGate's 30 s a wait: about 5 minutes in all
# For a write that records what already happened outside (a request's answer): it
# waits as long as the lock is held (until shutdown cancels it), since giving up
# would lose what only this process knows.
UNTIL_FREE = 1_000_000


async def pause_a_second() -> bool:
    """The wait between tries when no store gate is given (tests, tools)."""
    await asyncio.sleep(1.0)
    return True


async def write_when_free(
    write: Callable[[], T],
    what: str,
    ready: Callable[[], Awaitable[bool]] = pause_a_second,
    attempts: int | None = None,
) -> T:
    """`write()`'s result; while it fails with sqlite3.OperationalError (another process
    holds the lock past the connection's busy timeout), wait for `ready()` and try
    again, `attempts` times in all (default `WRITE_ATTEMPTS`). `what` names the write in
    the log (one line a try, no traceback). Raises the last sqlite3.OperationalError."""
    attempts = attempts or WRITE_ATTEMPTS
    for attempt in range(1, attempts + 1):
        try:
            return write()
        except sqlite3.OperationalError as exc:
            if attempt >= attempts:
                raise
            log.warning("%s waits for the store (%s); try %d of %d", what, exc, attempt, attempts)
            await ready()
    raise AssertionError("unreachable")  # pragma: no cover
