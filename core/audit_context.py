"""Who the API calls made right now are for: the invocation being run, per asyncio task.

The clients report every call (`clients.http.CallRecord`); bot/ writes it to
the audit log with the user and channel of `current_invocation`, which the
command pipeline and the scheduler set with `acting_as` around their work.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar

from core.invocation import Invocation

current_invocation: ContextVar[Invocation | None] = ContextVar("current_invocation", default=None)


@contextlib.contextmanager
def acting_as(invocation: Invocation) -> Iterator[None]:
    """Attribute the API calls made inside to `invocation` (the audit reads it)."""
    token = current_invocation.set(invocation)
    try:
        yield
    finally:
        # A coroutine closed at shutdown finishes in another context; nothing to undo then.
        with contextlib.suppress(ValueError):
            current_invocation.reset(token)


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
