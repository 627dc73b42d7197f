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
`no_busy_wait`): when the store is locked (or the write fails otherwise) the
requests of that turn are appended to the inbox's spool file instead, synced to disk
before the acks (`Inbox.spool_many`), and `keep` returns each one's spool key; the
caller writes the row once the store can be written (bot/slack/runtime.py
`SlackRuntime.work`, `keep=`, `spooled=`). Only when the spool cannot be written
either (an in-memory store, a full disk) is the request kept in memory alone: None.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3

from bot.store import no_busy_wait
from operations.inbox import Inbox, Request

log = logging.getLogger("graphops.slack")


class Intake:
    """Batches `Inbox.accept_many` per turn of the event loop."""

    def __init__(self, inbox: Inbox) -> None:
        self.inbox = inbox
        self._queued: list[tuple[Request, asyncio.Future[int | str | None]]] = []

    async def keep(
        self,
        user: str,
        channel: str,
        text: str,
        response_url: str | None,
        thread_ts: str | None = None,
    ) -> int | str | None:
        """Once the request is on disk: its inbox row id, or its spool key when the store
        could not be written now, or None when neither could."""
        loop = asyncio.get_running_loop()
        written: asyncio.Future[int | str | None] = loop.create_future()
        self._queued.append((Request(user, channel, text, response_url, thread_ts), written))
        if len(self._queued) == 1:
            loop.call_soon(self._write)
        return await written

    def _write(self) -> None:
        queued, self._queued = self._queued, []
        requests = [request for request, _ in queued]
        kept: list[int | str | None] = [None] * len(queued)
        try:
            with no_busy_wait(self.inbox.db):
                kept = list(self.inbox.accept_many(requests))
        except Exception as exc:  # sqlite3.Error above all; never a listener left waiting
            kept = self._spool(requests, exc)
        finally:
            for (_, written), one in zip(queued, kept, strict=True):
                if not written.done():  # its listener may have been cancelled meanwhile
                    written.set_result(one)

    def _spool(self, requests: list[Request], problem: Exception) -> list[int | str | None]:
        """The spool keys of `requests` the store could not take (None each if the spool
        could not take them either)."""
        level = logging.WARNING if isinstance(problem, sqlite3.Error) else logging.ERROR
        try:
            keys = self.inbox.spool_many(requests)
        except Exception as exc:
            log.error(
                "%d accepted request(s) kept in memory only: %r; %r", len(requests), problem, exc
            )
            return [None] * len(requests)
        where = "spooled" if keys is not None else "kept in memory"
        log.log(
            level,
            "%d accepted request(s) %s until the store can be written: %r",
            len(requests),
            where,
            problem,
        )
        return list(keys) if keys is not None else [None] * len(requests)
