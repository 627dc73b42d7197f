"""Which Slack user groups a clicker belongs to, looked up only when it matters.

Approvers may be user groups (`S...` ids). At click time we ask
`usergroups.users.list` about just the groups named as approvers in the
approval's channel, and cache each member list for a few minutes. A lookup that
fails counts as "not a member" (deny when in doubt). Needs `usergroups:read`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.slack.notifier import slack_error

log = logging.getLogger("graphops.slack")


class UserGroups:
    """Cached membership of Slack user groups."""

    def __init__(
        self,
        client: AsyncWebClient,
        *,
        ttl_seconds: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Ask `client`; keep each group's members for `ttl_seconds`."""
        self.client = client
        self.ttl_seconds = ttl_seconds
        self._clock = clock
        self._members: dict[str, tuple[float, frozenset[str]]] = {}

    async def members(self, group: str) -> frozenset[str]:
        """The users of `group` (empty when Slack cannot tell)."""
        cached = self._members.get(group)
        if cached and cached[0] > self._clock():
            return cached[1]
        try:
            response = await self.client.usergroups_users_list(usergroup=group)
            users = frozenset(str(u) for u in response.get("users") or [])
        except SlackApiError as exc:
            log.warning("usergroups.users.list %s failed: %s", group, slack_error(exc))
            return frozenset()
        self._members[group] = (self._clock() + self.ttl_seconds, users)
        return users

    async def of(self, user: str, candidates: Iterable[str]) -> frozenset[str]:
        """The groups among `candidates` (ids starting with S) that `user` is in."""
        found = set()
        for group in dict.fromkeys(c for c in candidates if c.startswith("S")):
            if user in await self.members(group):
                found.add(group)
        return frozenset(found)
