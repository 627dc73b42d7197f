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
