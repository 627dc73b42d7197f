"""The ports of operations/: where messages go, who follows operations, who is told.

A transport implements `Notifier` (Slack threads, the shell);
operations/tracker.py's `Tracker` implements `TrackerPort`, which the
Scheduler and the Slack transport hand started operations to; its `Announcer`
implements `IncidentPort`, through which commands that wait themselves (`dr`, the
safety snapshot) tell an environment's incident channel when a wait gives up.
"""

from __future__ import annotations

from typing import Protocol

from core.reply import OperationRef, Reply


class Notifier(Protocol):
    """Posts and updates messages for the tracker and the incident announcer."""

    async def post(self, channel: str, reply: Reply, thread_ts: str | None = None) -> str | None:
        """Post `reply` to `channel` (in the thread `thread_ts` if given); return its ts."""
        ...

    async def update(self, channel: str, ts: str, reply: Reply) -> None:
        """Replace the message `ts` in `channel` with `reply`."""
        ...


class TrackerPort(Protocol):
    """Follows an operation and reports its progress in a thread (operations/tracker.py's
    `Tracker`); what the Scheduler and the Slack transport hand operations to."""

    async def track(
        self,
        ref: OperationRef,
        *,
        channel: str,
        thread_ts: str | None,
        user: str,
        origin: Reply | None = None,
    ) -> int:
        """Start following `ref`, reporting in `channel` under `thread_ts`; its tracking id."""
        ...


class IncidentPort(Protocol):
    """Tells an environment's incident channel (operations/tracker.py's `Announcer`)."""

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
        """Queue `reply` for the environment's incident channel; False when it has none
        (or, for a tracked operation, when this key was queued before)."""
        ...
