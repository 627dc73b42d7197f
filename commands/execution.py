"""Approved work as a persisted state machine: approved -> executing (step) -> executed | failed.

An approved plan may run for a long time (a safety snapshot is waited for, up
to 30 minutes) and the bot may be killed at any moment of it. So approved work
writes down, in its approval row (permissions/approvals.py), what it is about
to do before every request that changes something:

- A verb names its steps (`step(ctx, name, send, baseline=, find=)`): before
  `send` runs, the step is written as begun (with a `baseline`: what the API
  showed just before, e.g. the database's operation ids); once it answered, as
  done with its result. Run again after a restart (the same verb code, from the
  top), a done step returns its result without sending anything, and a begun
  step asks `find(baseline)` whether its request reached the API (a new
  operation of its kind, a database gone): found, its result is taken as
  the step's; not found, it is sent now; when nothing can tell, the work ends
  with `OutcomeUnknown` and nothing more is sent.
- Any other request that changes something (verbs without steps) is written
  down before it is sent (core.mutations). Work interrupted after one of those
  is not run again: it ends with `OutcomeUnknown`, naming the request. Work
  interrupted before any is run again from the start.

A resumed run reads everything again (pre-flights included) except what its
done steps answered, so it acts on the API's state of now, never twice.

Another process may hold the store's write lock (a backup) when a step is to be
written: before a request, the request waits, unsent, for the store
(operations/locked.py, `write_when_free`, about 5 minutes), then the work is
paused (`StorePaused`): it stays executing for this process, nothing more is
sent, and `graphops serve`'s sweep (the shell: its next command) goes on with it
once the store is free (`paused_here`). After a request, what it answered is
only in this process: that write waits as long as the lock is held
(`UNTIL_FREE`), never pauses.
Outside approved work (a command allowed at once, a preview) `step` just sends.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
from collections.abc import Awaitable, Callable, Iterator
from contextvars import ContextVar
from typing import Any, TypeVar

from commands.context import Context, StepResult
from core.errors import is_store_busy
from operations.locked import UNTIL_FREE, pause_a_second, write_when_free
from permissions.approvals import Approval, ApprovalStore, this_runner

log = logging.getLogger("graphops.commands")

T = TypeVar("T")

_inside_step: ContextVar[bool] = ContextVar("inside_step", default=False)


class OutcomeUnknown(Exception):
    """A request that changes something may or may not have been carried out (the bot
    stopped while it was being sent) and the API's state cannot tell which; nothing more
    is sent. The message says what was being sent and what to check."""


class StorePaused(Exception):
    """Approved work could not write its next step (another process held the store's
    write lock through every try); nothing more was sent, and it stays executing for
    this process until the sweep resumes it."""


# Approvals whose work runs in this process now (asyncio: checked and added with no
# await between). Work that is executing for this process but not in here was paused.
_running: set[str] = set()


def running_here(approval_id: str) -> bool:
    """Whether this process runs the work of `approval_id` now (not paused, not ended)."""
    return approval_id in _running


def paused_here(approval: Approval) -> bool:
    """Whether `approval` (one of `ApprovalStore.unfinished`) is this process's work that a
    locked store paused (`StorePaused`): run by this process, not running now. What
    `graphops serve`'s sweep and the shell (before its next command) go on with."""
    return approval.runner == this_runner() and not running_here(approval.id)


@contextlib.contextmanager
def running(approval_id: str) -> Iterator[bool]:
    """Hold `approval_id` as running in this process while inside; yields False (and
    holds nothing) when it already runs here."""
    if approval_id in _running:
        yield False
        return
    _running.add(approval_id)
    try:
        yield True
    finally:
        _running.discard(approval_id)


class Journal:
    """The steps of one approved run, kept in its approval row (`StepJournal`).

    `key` is the approval id; `interrupted` the request (`METHOD path`) outside any
    step that a stopped run had sent, if any. A write that meets another process's
    lock waits for `ready()` and is tried again, `attempts` times, then raises
    `StorePaused` (the request it precedes is not sent).
    """

    def __init__(
        self,
        approvals: ApprovalStore,
        approval: Approval,
        ready: Callable[[], Awaitable[bool]] = pause_a_second,
        attempts: int | None = None,
    ) -> None:
        self.approvals = approvals
        self.key = approval.id
        self.ready = ready
        self.attempts = attempts
        saved = approval.journal or {}
        self.steps: dict[str, dict[str, Any]] = dict(saved.get("steps") or {})
        self.sent: list[str] = list(saved.get("sent") or [])
        self.interrupted = self.sent[-1] if self.sent else None

    async def write_or_pause(self, write: Callable[[], T], what: str) -> T:
        """`write()`'s result, waiting for a store another process holds (`attempts`
        tries); `StorePaused` when it stays locked. For a write made before a request:
        pausing then leaves nothing half sent. `what` names it in the log."""
        try:
            return await write_when_free(
                write, f"approval {self.key}'s {what}", self.ready, self.attempts
            )
        except sqlite3.OperationalError as exc:
            if is_store_busy(exc):
                raise StorePaused(str(exc)) from None
            raise

    async def _save(self, step: str, *, answered: bool = False) -> None:
        """Write the journal; `answered`: it records what a request sent in this run
        answered (waits as long as the store is locked, never pauses)."""
        journal = {"steps": self.steps, "sent": self.sent}

        def save() -> None:
            self.approvals.save_step(self.key, step, journal)

        if answered:
            await write_when_free(
                save, f"approval {self.key}'s step answered", self.ready, UNTIL_FREE
            )
        else:
            await self.write_or_pause(save, "next step")

    async def before_mutation(self, provider: str, method: str, path: str) -> None:
        """core.mutations hook: write down a request outside any step before it is sent."""
        if _inside_step.get():
            return  # the step was written down as begun
        self.sent.append(f"{method} {path}")
        try:
            await self._save(f"{method} {path}")
        except StorePaused:
            self.sent.pop()  # not sent: a resumed run may send it
            raise

    async def step(
        self,
        name: str,
        send: Callable[[], Awaitable[StepResult]],
        *,
        baseline: Callable[[], Awaitable[Any]] | None = None,
        find: Callable[[Any], Awaitable[StepResult | None]] | None = None,
    ) -> StepResult:
        """`send` at most once for this approval, across restarts (see the module docstring)."""
        entry = self.steps.get(name) or {}
        if entry.get("state") == "done":
            log.info("approval %s: step %r was done before; not sent again", self.key, name)
            return dict(entry.get("result") or {})
        if entry.get("state") == "begun":
            if find is None:
                raise OutcomeUnknown(
                    f"graphops stopped while it was sending the {name} step, and nothing "
                    "tells whether it reached the API"
                )
            found = await find(entry.get("baseline"))
            if found is not None:
                log.info("approval %s: step %r had reached the API; taking it", self.key, name)
                self.steps[name] = {"state": "done", "result": found}
                await self._save(name)
                return found
            log.info("approval %s: step %r had not reached the API; sending it", self.key, name)
        base = await baseline() if baseline is not None else None
        self.steps[name] = {"state": "begun", "baseline": base}
        await self._save(name)
        with _covered():
            result = await send()
        self.steps[name] = {"state": "done", "result": result}
        await self._save(name, answered=True)
        return result


@contextlib.contextmanager
def _covered() -> Iterator[None]:
    token = _inside_step.set(True)
    try:
        yield
    finally:
        with contextlib.suppress(ValueError):
            _inside_step.reset(token)


async def step(
    ctx: Context,
    name: str,
    send: Callable[[], Awaitable[StepResult]],
    *,
    baseline: Callable[[], Awaitable[Any]] | None = None,
    find: Callable[[Any], Awaitable[StepResult | None]] | None = None,
) -> StepResult:
    """One step of a verb that changes something: journaled in approved work, else sent.

    `send` makes the request and returns its answer as JSON; `baseline` reads what the
    API shows before (JSON, stored with the step); `find(baseline)` says, after a
    restart, whether the request reached the API: its answer as `send` would have
    given it, None when it did not, or `OutcomeUnknown` when nothing can tell.
    """
    if ctx.journal is None or ctx.dry_run:
        return await send()
    return await ctx.journal.step(name, send, baseline=baseline, find=find)


def step_key(ctx: Context) -> str | None:
    """The approval whose work runs now (None outside approved work)."""
    key = getattr(ctx.journal, "key", None)
    return str(key) if key else None
