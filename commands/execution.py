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
Outside approved work (a command allowed at once, a preview) `step` just sends.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterator
from contextvars import ContextVar
from typing import Any

from commands.context import Context, StepResult
from permissions.approvals import Approval, ApprovalStore

log = logging.getLogger("graphops.commands")

_inside_step: ContextVar[bool] = ContextVar("inside_step", default=False)


class OutcomeUnknown(Exception):
    """A request that changes something may or may not have been carried out (the bot
    stopped while it was being sent) and the API's state cannot tell which; nothing more
    is sent. The message says what was being sent and what to check."""


class Journal:
    """The steps of one approved run, kept in its approval row (`StepJournal`).

    `key` is the approval id; `interrupted` the request (`METHOD path`) outside any
    step that a stopped run had sent, if any.
    """

    def __init__(self, approvals: ApprovalStore, approval: Approval) -> None:
        self.approvals = approvals
        self.key = approval.id
        saved = approval.journal or {}
        self.steps: dict[str, dict[str, Any]] = dict(saved.get("steps") or {})
        self.sent: list[str] = list(saved.get("sent") or [])
        self.interrupted = self.sent[-1] if self.sent else None

    def _save(self, step: str) -> None:
        self.approvals.save_step(self.key, step, {"steps": self.steps, "sent": self.sent})

    def before_mutation(self, provider: str, method: str, path: str) -> None:
        """core.mutations hook: write down a request outside any step before it is sent."""
        if _inside_step.get():
            return  # the step was written down as begun
        self.sent.append(f"{method} {path}")
        self._save(f"{method} {path}")

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
                self._save(name)
                return found
            log.info("approval %s: step %r had not reached the API; sending it", self.key, name)
        base = await baseline() if baseline is not None else None
        self.steps[name] = {"state": "begun", "baseline": base}
        self._save(name)
        with _covered():
            result = await send()
        self.steps[name] = {"state": "done", "result": result}
        self._save(name)
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
