"""One way to run a periodic job in the background: the tracker, the scheduler, the watcher."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections.abc import Awaitable, Callable
from typing import Any

log = logging.getLogger("graphops.loop")


class BackgroundLoop:
    """Calls `step` every `interval` seconds until stopped; a failing pass is logged, not fatal.

    `wake()` starts the next pass at once (e.g. when new work was queued).
    """

    def __init__(self, name: str, step: Callable[[], Awaitable[Any]], interval: float) -> None:
        self.name = name
        self.step = step
        self.interval = interval
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def wake(self) -> None:
        """Run the next pass now rather than after the interval."""
        self._wake.set()

    async def _run(self) -> None:
        while True:
            self._wake.clear()  # a wake() during the pass runs the next one at once
            try:
                await self.step()
            except sqlite3.OperationalError as exc:  # another process holds the lock
                log.warning("%s pass met a busy store (%s); the next tries again", self.name, exc)
            except Exception:
                log.exception("%s pass failed", self.name)
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for returns normally
            # when it is cancelled just as the event is set (a wake() right before
            # stop()), and the cancellation is lost: stop() waited forever.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.interval):
                    await self._wake.wait()

    def start(self) -> None:
        """Start in the background (once)."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        """Stop and wait until the current pass is cancelled."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
