"""Who the API calls made right now are for: the invocation being run, per asyncio task,
and the database it concerns.

The clients report every call (`clients.http.CallRecord`); bot/ writes it to
the audit log with the user and channel of `current_invocation`, and the
database of `current_database`, which the command pipeline and the scheduler
set with `acting_as` (and `concerning`, once the database is known) around
their work. So `graphops audit --db orders-db` finds the API calls made for a
command on orders-db, beside its command, decision and outcome rows.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar

from core.invocation import Invocation

current_invocation: ContextVar[Invocation | None] = ContextVar("current_invocation", default=None)
current_database: ContextVar[str | None] = ContextVar("current_database", default=None)


@contextlib.contextmanager
def acting_as(invocation: Invocation) -> Iterator[None]:
    """Attribute the API calls made inside to `invocation` (the audit reads it); the
    database they concern is unknown until `concerning` names it."""
    token = current_invocation.set(invocation)
    database = current_database.set(None)
    try:
        yield
    finally:
        # A coroutine closed at shutdown finishes in another context; nothing to undo then.
        with contextlib.suppress(ValueError):
            current_database.reset(database)
        with contextlib.suppress(ValueError):
            current_invocation.reset(token)


def concerning(database: str | None) -> None:
    """Inside `acting_as`: the rest of the invocation's audit rows concern `database`
    (its name; None or empty leaves the one already named)."""
    if database:
        current_database.set(database)


# What background work the API calls made right now serve (a tracker poll, a watch
# check), when no invocation is being run: requests nobody typed, which the audit log
# counts per interval instead of writing a row each (permissions/audit.py).
current_background: ContextVar[str | None] = ContextVar("current_background", default=None)


@contextlib.contextmanager
def polling(source: str) -> Iterator[None]:
    """Attribute the API calls made inside to background work named `source`
    ("tracker", "watch"): audited in aggregate, counted per interval."""
    token = current_background.set(source)
    try:
        yield
    finally:
        with contextlib.suppress(ValueError):
            current_background.reset(token)
