"""The inbox rows of accepted Slack requests, written together before their acks.

Every request a listener accepts is kept in the inbox (operations/inbox.py) before it
is acknowledged, so that a kill between the ack and the answer never loses it
silently. A burst of slash commands reaches the listeners within the same few turns
of the event loop; `Intake.keep` queues the row and the first request of a turn
schedules one write for the end of that turn (`loop.call_soon`): the rows of every
request that arrived meanwhile go in one transaction, one commit instead of one each
(bench/ack.py measures the ack path). Each listener still acks only after its own row
is committed.

On the ack path the write never waits for another process's lock (bot/store.py
`no_busy_wait`): when the store is locked, or the write fails otherwise, `keep`
returns None for every request of that turn and the caller keeps the request once the
store can be written (bot/slack/runtime.py `SlackRuntime.work`, `keep=`).
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3

from bot.store import no_busy_wait
from operations.inbox import Inbox

log = logging.getLogger("graphops.slack")

Request = tuple[str, str, str, str | None]  # user, channel, text, response_url


class Intake:
    """Batches `Inbox.accept_many` per turn of the event loop."""

    def __init__(self, inbox: Inbox) -> None:
        self.inbox = inbox
        self._queued: list[tuple[Request, asyncio.Future[int | None]]] = []

    async def keep(
        self, user: str, channel: str, text: str, response_url: str | None
    ) -> int | None:
        """The request's inbox row id once committed, or None when it could not be
        written now (the store is locked by another process, or failed)."""
        loop = asyncio.get_running_loop()
        written: asyncio.Future[int | None] = loop.create_future()
        self._queued.append(((user, channel, text, response_url), written))
        if len(self._queued) == 1:
            loop.call_soon(self._write)
        return await written

    def _write(self) -> None:
        queued, self._queued = self._queued, []
        rows: list[int | None] = [None] * len(queued)
        try:
            with no_busy_wait(self.inbox.db):
                rows = list(self.inbox.accept_many([request for request, _ in queued]))
        except Exception as exc:  # sqlite3.Error above all; never a listener left waiting
            level = logging.WARNING if isinstance(exc, sqlite3.Error) else logging.ERROR
            log.log(
                level,
                "%d accepted request(s) kept once the store can be written: %r",
                len(queued),
                exc,
            )
        finally:
            for (_, written), row in zip(queued, rows, strict=True):
                if not written.done():  # its listener may have been cancelled meanwhile
                    written.set_result(row)
