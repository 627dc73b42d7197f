"""The incident channel of an environment: announcements go through the outbox.

`permissions` says which channel an environment's incidents go to (set with
`incident-channel`); a message for it is queued in the outbox
(operations/store.py) under a key, so it is queued once however often a
restarted bot decides it again, and the tracker's delivery loop posts it.
Used by the tracker (finished or failed operations) and by approved work
(commands/execution.py: every failure after approval).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import sqlite_utils

from core.reply import Reply
from operations.store import Outbox
from permissions.store import PermissionStore


class Incidents:
    """Queues messages for the incident channel of an environment (the `IncidentPort` of
    operations/notify.py)."""

    def __init__(
        self,
        db: sqlite_utils.Database,
        permissions: PermissionStore,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.permissions = permissions
        self.outbox = Outbox(db, clock)

    def channel(self, provider: str, environment_id: str, environment_name: str) -> str | None:
        """The environment's incident channel, or None when it has none."""
        return self.permissions.incident_channel(provider, environment_id, environment_name)

    def announce(
        self,
        provider: str,
        environment_id: str,
        environment_name: str,
        reply: Reply,
        *,
        tracked_id: int | None = None,
        key: str = "incident",
    ) -> bool:
        """Queue `reply` for the environment's incident channel under `key` (once per
        `tracked_id` and `key`); False when there is no channel, or it was queued before."""
        channel = self.channel(provider, environment_id, environment_name)
        if channel is None:
            return False
        return self.outbox.put(tracked_id, key, channel, reply.model_dump())
