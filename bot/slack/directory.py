"""Names of people and channels, for the places where Slack cannot render a mention.

Inside a code block (a table) `<@U…>` is shown as typed, so tables show `@name`,
`#name` and `@handle` instead, looked up with users.info (`users:read`),
conversations.info (`channels:read`, `groups:read`) and, for user groups, one
usergroups.list (`usergroups:read`) that names them all, and cached. A look-up
never holds anything up for long: `names()` waits at most `wait` seconds and
returns what it knows; look-ups still running finish in the background for the
next message, and an id Slack cannot name is shown as the id. Nothing waits on
this before an ack or a modal.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from core import refs
from core.reply import Reply

log = logging.getLogger("graphops.slack")


def table_refs(reply: Reply) -> set[str]:
    """Ids of the people, groups and channels referenced in `reply`'s tables."""
    found: set[str] = set()
    for table in reply.tables:
        for row in table.rows:
            for cell in row:
                text = str(cell)
                if refs.OPEN in text:  # most cells hold no reference: skip the parse
                    found.update(p.id for p in refs.segments(text) if isinstance(p, refs.Ref))
    return found


class Directory:
    """A cache of user and channel names (`id -> name`)."""

    def __init__(
        self,
        client: AsyncWebClient,
        *,
        ttl_seconds: float = 3600.0,
        miss_seconds: float = 300.0,
        wait: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.ttl_seconds = ttl_seconds
        self.miss_seconds = miss_seconds
        self.wait = wait
        self._clock = clock
        self._names: dict[str, tuple[float, str | None]] = {}
        self._running: dict[str, asyncio.Task[None]] = {}
        self._groups_until = 0.0

    def known(self) -> dict[str, str]:
        """Every name cached and still fresh."""
        now = self._clock()
        return {k: v for k, (until, v) in self._names.items() if v and until > now}

    async def names(self, ids: Iterable[str], wait: float | None = None) -> dict[str, str]:
        """Names of `ids` known within `wait` seconds (default `self.wait`)."""
        now = self._clock()
        tasks = []
        for ident in set(ids):
            cached = self._names.get(ident)
            if cached is not None and cached[0] > now:
                continue
            if ident[:1] not in "UWCGS" or not ident:
                continue  # DMs have no name
            if ident.startswith("S") and self._groups_until > now:
                continue  # listed lately: a group not named then has no handle we know
            running = "S*" if ident.startswith("S") else ident  # one list names every group
            task = self._running.get(running)
            if task is None:
                look_up = self._look_up_groups() if running == "S*" else self._look_up(ident)
                task = asyncio.ensure_future(look_up)
                self._running[running] = task
                task.add_done_callback(self._forget)
            if task not in tasks:
                tasks.append(task)
        if tasks:
            await asyncio.wait(tasks, timeout=self.wait if wait is None else wait)
        return self.known()

    def _forget(self, task: asyncio.Task[None]) -> None:
        for ident, running in list(self._running.items()):
            if running is task:
                del self._running[ident]

    async def _look_up(self, ident: str) -> None:
        name: str | None = None
        try:
            if ident[:1] in "UW":
                response = await self.client.users_info(user=ident)
                user: dict[str, Any] = response.get("user") or {}
                profile = user.get("profile") or {}
                name = profile.get("display_name") or user.get("name") or user.get("real_name")
            else:
                response = await self.client.conversations_info(channel=ident)
                name = (response.get("channel") or {}).get("name")
        except SlackApiError as exc:
            error = (exc.response.data or {}).get("error") if exc.response else None
            log.info("no name for %s: %s", ident, error or "error")
        except Exception as exc:  # a name is a nicety: never fail a message for it
            log.info("no name for %s: %s", ident, type(exc).__name__)
        until = self._clock() + (self.ttl_seconds if name else self.miss_seconds)
        self._names[ident] = (until, str(name) if name else None)

    async def _look_up_groups(self) -> None:
        handles: dict[str, str] = {}
        try:
            response = await self.client.usergroups_list()
            for group in response.get("usergroups") or []:
                if isinstance(group, dict) and group.get("id") and group.get("handle"):
                    handles[str(group["id"])] = str(group["handle"])
        except SlackApiError as exc:
            error = (exc.response.data or {}).get("error") if exc.response else None
            log.info("no names for user groups: %s", error or "error")
        except Exception as exc:  # a name is a nicety: never fail a message for it
            log.info("no names for user groups: %s", type(exc).__name__)
        until = self._clock() + (self.ttl_seconds if handles else self.miss_seconds)
        self._groups_until = until
        for ident, handle in handles.items():
            self._names[ident] = (until, handle)

    async def aclose(self) -> None:
        """Stop look-ups still running."""
        for task in list(self._running.values()):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
