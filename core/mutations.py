"""Requests that change something, seen before they are sent.

Approved work (commands/execution.py) and accepted Slack commands
(bot/slack/runtime.py) must know, after a crash, whether a request that
changes something was already sent for them. The HTTP layer
(clients/http.py) calls `before_mutation` before each such request: any
method but GET and HEAD, except those its caller marks safe to repeat (signing
in for a token). Whoever runs the work sets a hook for its asyncio task with
`watching_mutations`; the hook writes down what is about to be sent (it may be a
coroutine function: approved work waits there while another process holds the
store's lock, operations/locked.py), and may raise to stop it: then nothing is sent.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Awaitable, Callable, Iterator
from contextvars import ContextVar

# (provider, method, path) of the request about to be sent; the request waits for an
# awaitable it returns
MutationHook = Callable[[str, str, str], Awaitable[None] | None]

_hook: ContextVar[MutationHook | None] = ContextVar("mutation_hook", default=None)


async def before_mutation(provider: str, method: str, path: str) -> None:
    """Tell the hook of this task (if any) that `method path` to `provider` is about to
    be sent, and wait for it; what it raises stops the request."""
    hook = _hook.get()
    if hook is not None:
        done = hook(provider, method, path)
        if inspect.isawaitable(done):
            await done


@contextlib.contextmanager
def watching_mutations(hook: MutationHook) -> Iterator[None]:
    """Call `hook` before every request that changes something, inside (this task and
    the tasks it starts); an inner `watching_mutations` replaces it while it lasts."""
    token = _hook.set(hook)
    try:
        yield
    finally:
        # A coroutine closed at shutdown finishes in another context; nothing to undo then.
        with contextlib.suppress(ValueError):
            _hook.reset(token)
