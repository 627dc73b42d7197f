"""Following one async operation to its end; every follow ends.

Polls with backoff (fast at first, slower later, capped), reports each step
once, in order, as it is reached (a step without a status counts as reached),
and follows ``nextOperationId`` chains to their end. The caller decides where
progress goes (a shell, a Slack thread).

Every follow ends, with an :class:`Outcome`: ``finished`` or ``failed`` as the
API says, or ``lost`` after ``FollowLimits.max_failures`` polls in a row that
failed (an answer that is not usable, 404, 5xx, no connection) or once the
deadline for the operation's kind has passed. A lost outcome says what is
known: the last status and step seen, and the operation id.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

from clients.errors import ApiError
from core.provider import OperationSource

log = logging.getLogger("graphops.follow")

HOUR = 3600.0

#: How long an operation of each kind (the verb that started it) may take before
#: graphops stops waiting for it. Creating, copying and loading data can take
#: hours on big databases; state changes take minutes.
DEFAULT_DEADLINES: Mapping[str, float] = MappingProxyType(
    {
        "create": 3 * HOUR,
        "clone": 6 * HOUR,
        "dr": 6 * HOUR,
        "restore": 6 * HOUR,
        "restore-backup": 6 * HOUR,
        "import": 12 * HOUR,
        "snapshot": 3 * HOUR,
        "backup": 3 * HOUR,
        "pause": 1 * HOUR,
        "resume": 1 * HOUR,
        "restart": 1 * HOUR,
        "terminate": 1 * HOUR,
        "switch": 1 * HOUR,
        "switch-back": 1 * HOUR,
        "empty": 2 * HOUR,
    }
)


@dataclass(frozen=True)
class FollowLimits:
    """When following an operation gives up and reports it lost.

    ``max_failures``: polls in a row that failed (unusable answer, 404, 5xx,
    timeout, no connection); ``deadlines``: seconds per operation kind, else
    ``default_deadline``.
    """

    max_failures: int = 10
    deadlines: Mapping[str, float] = field(default_factory=lambda: DEFAULT_DEADLINES)
    default_deadline: float = 3 * HOUR

    def deadline(self, kind: str) -> float:
        """Seconds an operation of this kind may run before it is reported lost."""
        return float(self.deadlines.get(kind, self.default_deadline))


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

    def delay(self, n: int) -> float:
        """The interval after `n` others (the n-th of `delays()`, counted from 0);
        past 50 it stays the 50th (the cap long before, with any factor above 1)."""
        if n <= 0:
            return self.first
        return min(self.cap, self.first * self.factor ** min(n, 50))


@dataclass(frozen=True)
class StepEvent:
    """A step newly reached: its index over the whole chain, name and status ("" if none)."""

    index: int
    name: str
    status: str
    elapsed: float


@dataclass(frozen=True)
class Outcome:
    """How a followed operation ended.

    ``status``: ``finished`` or ``failed`` (as the API said), or ``lost`` (too
    many failed polls in a row, or past the deadline); ``operation_id``: the
    last operation of the chain; ``last_status`` / ``last_step``: what was seen
    last (None if nothing was).
    """

    status: Literal["finished", "failed", "lost"]
    operation_id: str
    elapsed: float
    error: str | None = None
    last_status: str | None = None
    last_step: str | None = None

    def describe(self) -> str:
        """One line for a person, e.g. ``lost track of operation 42 (last status seen:
        started, at step copy-snapshot): 10 polls in a row failed``."""
        if self.status != "lost":
            text = f"operation {self.operation_id} {self.status}"
            return text + (f": {self.error}" if self.error and self.status == "failed" else "")
        seen = last_seen(self.last_status, self.last_step)
        text = f"lost track of operation {self.operation_id} ({seen})"
        return text + (f": {self.error}" if self.error else "")


def last_seen(status: str | None, step: str | None) -> str:
    """``last status seen: started, at step copy-snapshot`` (or ``nothing seen yet``)."""
    if status is None and step is None:
        return "no answer was usable"
    text = f"last status seen: {status or 'unknown'}"
    return text + (f", at step {step}" if step else "")


StepCallback = Callable[[StepEvent], Awaitable[None]]


async def no_progress(event: StepEvent) -> None:
    """A StepCallback for callers that report their own milestones, not each step."""


def failed_polls(count: int, last: str) -> str:
    """The reason given when too many polls in a row failed."""
    return f"{count} polls in a row failed (the last: {last})"


def past_deadline(seconds: float) -> str:
    """The reason given when the deadline passed."""
    return f"not finished after {seconds / 60:.0f} min; it may still be running"


async def follow(
    client: OperationSource,
    database_id: str,
    operation_id: str,
    on_step: StepCallback,
    *,
    backoff: Backoff | None = None,
    first_index: int = 0,
    limits: FollowLimits | None = None,
    kind: str = "",
    timeout: float | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
) -> Outcome:
    """Poll until the operation (and its chain) finishes or fails; report new steps.

    Ends ``lost`` after ``limits.max_failures`` failed polls in a row, or after
    ``timeout`` seconds (default: ``limits.deadline(kind)``); it never polls
    after returning.
    """
    limits = limits or FollowLimits()
    deadline = limits.deadline(kind) if timeout is None else timeout
    started = clock()
    delays = (backoff or Backoff()).delays()
    reported = first_index
    offset = 0  # steps of earlier operations in the chain
    failures = 0
    seen: set[str] = {operation_id}
    last_status: str | None = None
    last_step: str | None = None

    def lost(reason: str) -> Outcome:
        return Outcome("lost", operation_id, clock() - started, reason, last_status, last_step)

    while True:
        if clock() - started > deadline:
            return lost(past_deadline(deadline))
        try:
            op = await client.operation(database_id, operation_id)
        except ApiError as exc:
            failures += 1
            if failures >= limits.max_failures:
                return lost(failed_polls(failures, exc.describe()))
            await sleep(next(delays))
            continue
        except Exception as exc:  # a client bug must not make the follow endless
            log.exception("polling operation %s failed", operation_id)
            failures += 1
            if failures >= limits.max_failures:
                return lost(failed_polls(failures, type(exc).__name__))
            await sleep(next(delays))
            continue
        failures = 0
        last_status = op.status
        for position, step in enumerate(op.steps):
            index = offset + position
            if index < reported or not step.reached:
                continue
            if index == reported:
                await on_step(StepEvent(index, step.name, step.status or "", clock() - started))
                reported += 1
                last_step = step.name
        if op.status == "finished" and op.next_operation_id:
            if op.next_operation_id in seen:
                return lost(f"the chain of operations loops back to {op.next_operation_id}")
            seen.add(op.next_operation_id)
            offset += len(op.steps)
            reported = max(reported, offset)
            operation_id = op.next_operation_id
            continue
        if op.status in ("finished", "failed"):
            return Outcome(
                op.status, operation_id, clock() - started, op.error, last_status, last_step
            )
        await sleep(next(delays))
