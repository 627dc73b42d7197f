"""Waiting in tests: bounded polls that fail saying what was awaited.

Never `sleep` to "give it a chance": wait for the condition itself, or, to
show that something does NOT happen, wait for the event after which it could
no longer happen (the work that could do it has finished), then check.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


def wait_until(
    condition: Callable[[], bool], timeout: float = 10.0, what: str = "", interval: float = 0.05
) -> None:
    """Poll `condition` (from synchronous code) until true; AssertionError after `timeout` s."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out after {timeout}s waiting for {what}"
        time.sleep(interval)


async def until(
    condition: Callable[[], bool], timeout: float = 10.0, what: str = "", interval: float = 0.02
) -> None:
    """Poll `condition` (in the event loop) until true; AssertionError after `timeout` s."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out after {timeout}s waiting for {what}"
        await asyncio.sleep(interval)
