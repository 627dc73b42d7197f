"""Following one async operation to its end.

Polls with backoff (fast at first, slower later, capped), reports each step
once, in order, as it is reached, and follows `nextOperationId` chains. The
caller decides where progress goes (a shell, a Slack thread).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass

from clients.errors import ApiError, NotFound
from core.provider import OperationSource


@dataclass(frozen=True)
class Backoff:
    """Poll intervals: `first`, multiplied by `factor` each time, never above `cap`."""

    first: float = 1.0
    factor: float = 1.5
    cap: float = 15.0

    def delays(self) -> Iterator[float]:
        """An endless sequence of intervals."""
        delay = self.first
        while True:
            yield delay
            delay = min(self.cap, delay * self.factor)


@dataclass(frozen=True)
class StepEvent:
    """A step newly reached: its index over the whole chain, name and status."""

    index: int
    name: str
    status: str
    elapsed: float


@dataclass(frozen=True)
class Outcome:
    """How a followed operation ended."""

    status: str  # finished | failed | lost
    operation_id: str
    elapsed: float
    error: str | None = None


StepCallback = Callable[[StepEvent], Awaitable[None]]


async def no_progress(event: StepEvent) -> None:
    """A StepCallback for callers that report their own milestones, not each step."""


async def follow(
    client: OperationSource,
    database_id: str,
    operation_id: str,
    on_step: StepCallback,
    *,
    backoff: Backoff | None = None,
    first_index: int = 0,
    max_transient_errors: int = 10,
    timeout: float | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> Outcome:
    """Poll until the operation (and its chain) finishes or fails; report new steps.

    After `timeout` seconds (if given) it gives up with status "lost".
    """
    started = clock()
    delays = (backoff or Backoff()).delays()
    reported = first_index
    offset = 0  # steps of earlier operations in the chain
    errors = 0
    while True:
        try:
            op = await client.operation(database_id, operation_id)
            errors = 0
        except NotFound:
            return Outcome("lost", operation_id, clock() - started, "the operation is gone")
        except ApiError as exc:
            errors += 1
            if errors > max_transient_errors:
                return Outcome("lost", operation_id, clock() - started, exc.describe())
            await asyncio.sleep(next(delays))
            continue
        for position, step in enumerate(op.steps):
            index = offset + position
            if index < reported or step.status in (None, "pending"):
                continue
            if index == reported:
                await on_step(StepEvent(index, step.name, step.status or "", clock() - started))
                reported += 1
        if op.status == "finished" and op.next_operation_id:
            offset += len(op.steps)
            reported = max(reported, offset)
            operation_id = op.next_operation_id
            continue
        if op.status in ("finished", "failed"):
            return Outcome(op.status, operation_id, clock() - started, op.error)
        if timeout is not None and clock() - started > timeout:
            return Outcome(
                "lost",
                operation_id,
                clock() - started,
                f"not finished after {timeout:.0f}s; it may still be running",
            )
        await asyncio.sleep(next(delays))
