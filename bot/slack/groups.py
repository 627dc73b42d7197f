"""Which Slack user groups a person belongs to, from a cache that refreshes in the background.

Bindings may name user groups (`S…` ids) as the people who hold their role
(`users=`) or as approvers. Membership comes from `usergroups.users.list`
(`usergroups:read`), cached per group:

- a fresh entry (younger than `ttl_seconds`) is used as is;
- a stale one is used as is while a refresh runs in the background;
- a group never fetched (cold) is fetched, and the caller waits at most `wait` seconds:
  past that, the group is "unresolved" (not counted, and the refusal says why), and the
  fetch goes on for the next request.

`refresh_forever` keeps the groups the policy names fresh ahead of need (every
`ttl_seconds / 2`), so a command or a click rarely waits at all. Nothing here runs
before an ack or a modal: listeners ack first and open a loading modal first (see
views.py). A lookup that fails leaves a stale entry in place (the last known
members) and a cold one unresolved (deny when in doubt).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.slack.notifier import slack_error

log = logging.getLogger("graphops.slack")

DEFAULT_WAIT_SECONDS = 10.0  # after the ack or the loading modal: bounded, never before


class UserGroups:
    """Cached membership of Slack user groups (see the module docstring)."""

    def __init__(
        self,
        client: AsyncWebClient,
        *,
        ttl_seconds: float = 300.0,
        wait: float = DEFAULT_WAIT_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Ask `client`; keep each group's members for `ttl_seconds`; make callers wait at
        most `wait` seconds for a group never fetched."""
        self.client = client
        self.ttl_seconds = ttl_seconds
        self.wait = wait
        self._clock = clock
        self._members: dict[str, tuple[float, frozenset[str]]] = {}
        self._fetching: dict[str, asyncio.Task[None]] = {}
        self.fetches = 0

    def cached(self, group: str) -> frozenset[str] | None:
        """The members last fetched (fresh or stale), None when never fetched."""
        entry = self._members.get(group)
        return entry[1] if entry else None

    def _fresh(self, group: str) -> bool:
        entry = self._members.get(group)
        return entry is not None and self._clock() - entry[0] < self.ttl_seconds

    def refresh(self, group: str) -> asyncio.Task[None]:
        """Fetch `group` in the background (one fetch per group at a time)."""
        task = self._fetching.get(group)
        if task is None or task.done():
            task = asyncio.ensure_future(self._fetch(group))
            self._fetching[group] = task
        return task

    async def _fetch(self, group: str) -> None:
        self.fetches += 1
        try:
            response = await self.client.usergroups_users_list(usergroup=group)
        except SlackApiError as exc:
            log.warning("usergroups.users.list %s failed: %s", group, slack_error(exc))
            return
        except Exception as exc:  # a dropped connection: the old entry stays
            log.warning("usergroups.users.list %s failed: %s", group, type(exc).__name__)
            return
        users = frozenset(str(u) for u in response.get("users") or [])
        self._members[group] = (self._clock(), users)

    async def members(self, group: str, wait: float | None = None) -> frozenset[str] | None:
        """The users of `group`: cached (refreshed behind when stale), or fetched within
        `wait` seconds (default `self.wait`); None when not known in time."""
        if self._fresh(group):
            return self.cached(group)
        task = self.refresh(group)
        known = self.cached(group)
        if known is not None:
            return known  # stale: used while the refresh runs
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(task), self.wait if wait is None else wait)
        return self.cached(group)

    async def of(
        self, user: str, candidates: Iterable[str], wait: float | None = None
    ) -> tuple[frozenset[str], frozenset[str]]:
        """(groups among `candidates` that `user` is in, groups whose members are not known
        in time). Only `S…` ids are looked up, all at once."""
        groups = list(dict.fromkeys(c for c in candidates if c.startswith("S")))
        answers = await asyncio.gather(*(self.members(g, wait) for g in groups))
        member = frozenset(
            g for g, users in zip(groups, answers, strict=True) if users and user in users
        )
        unknown = frozenset(g for g, users in zip(groups, answers, strict=True) if users is None)
        return member, unknown

    async def refresh_forever(self, named: Callable[[], Iterable[str]]) -> None:
        """Keep the groups `named()` returns fresh: refetch each one before it goes stale."""
        while True:
            for group in set(named()):
                entry = self._members.get(group)
                if entry is None or self._clock() - entry[0] >= self.ttl_seconds / 2:
                    with contextlib.suppress(Exception):
                        await self.refresh(group)
            await asyncio.sleep(max(1.0, self.ttl_seconds / 4))

    async def aclose(self) -> None:
        """Stop fetches still running."""
        for task in list(self._fetching.values()):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
