"""Where progress goes: a transport implements `Notifier` (Slack threads, the shell)."""

from __future__ import annotations

from typing import Protocol

from core.reply import Reply


class Notifier(Protocol):
    """Posts and updates messages for the tracker and the incident announcer."""

    async def post(self, channel: str, reply: Reply, thread_ts: str | None = None) -> str | None:
        """Post `reply` to `channel` (in the thread `thread_ts` if given); return its ts."""
        ...

    async def update(self, channel: str, ts: str, reply: Reply) -> None:
        """Replace the message `ts` in `channel` with `reply`."""
        ...
