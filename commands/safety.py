"""Safety nets around destructive GrapheneDB commands.

- Snapshot before destroy: before terminate, restore-into and switch, a manual
  snapshot of the database that will lose data is taken and waited for, when
  policy asks (`snapshot_before_destroy`: protected environments by default);
  if it fails, the destructive step does not run.
- Switch pre-flight: the target must be running and not pending, locked or
  under incident, checked when asked and again just before switching.
- Switch back: after a switch, a button (itself an approval) undoes it, once,
  for `switch_back_minutes`.
- Every wait ends: the safety snapshot and `dr`'s waits (`wait_for`,
  `wait_until_running`) follow with the configured limits (`Services.follow_limits`,
  the deadline of the operation's kind); when one gives up or fails, the command
  stops, says what is known (`ended_text`) and tells the incident channel
  (`announce_stop`; in approved work the pipeline tells it, once, as for every
  failure after an approval).

Each Console request that changes something in approved work is a step of its
journal (`console_step`, commands/execution.py), so a restarted bot finds out
whether it reached the API before sending it again. How it finds out: before
sending, the database's operations (and, for a snapshot, its snapshots) are read
(the baseline); after a restart, an operation that is new since then and of the
step's kind is the step's. A guess: no document lists the Console's
`operationType` values; the simulator's (snapshot, switch, terminate, restore,
clone) are matched, exactly first, else as a part of the type. An operation of
no type, or several that match, cannot tell: the work ends, nothing re-sent.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from clients.errors import ApiError, NotFound
from clients.graphenedb import ConsoleClient, Started
from commands.context import Context, StepResult
from commands.execution import OutcomeUnknown, step
from commands.plan import Plan
from commands.targets import client_of, target_of
from core.errors import UserError
from core.refs import ChannelRef, UserRef
from core.reply import Action, Reply
from core.words import duration
from operations.follow import Outcome, StepEvent, follow, no_progress
from permissions.policy import is_protected


def wants_safety_snapshot(ctx: Context, scope: Any) -> bool:
    """Whether policy asks for a snapshot before destroying data in this environment."""
    mode = ctx.services.snapshot_before_destroy
    if mode in ("always", "never"):
        return mode == "always"
    policy = ctx.policy()
    return is_protected(policy, target_of(scope))


async def wait_for(
    ctx: Context, plan: Plan, database_id: str, operation_id: str, kind: str, what: str = ""
) -> Outcome:
    """Follow one operation a command waits on itself (the safety snapshot, dr's clone)
    to its end, within the configured limits (`Services.follow_limits`, deadline of
    `kind`): it ends finished, failed, or lost, and never polls after that. Each step
    reached is said through `ctx.report` as `<what>: <step> · <elapsed>` (the approval
    card's thread in Slack), so a wait of minutes is not silent."""
    source = ctx.provider(plan.provider).operations
    if source is None:
        raise UserError(f"provider {plan.provider!r} has no operations to wait on")

    async def step_reached(event: StepEvent) -> None:
        failed = " (failed)" if event.status == "failed" else ""
        await ctx.report(f"{what or kind}: {event.name}{failed} · {duration(event.elapsed)}")

    return await follow(
        source,
        database_id,
        operation_id,
        step_reached,
        backoff=ctx.services.wait_backoff,
        limits=ctx.services.follow_limits,
        kind=kind,
    )


def ended_text(what: str, outcome: Outcome, database_name: str) -> str:
    """What is known when a wait did not end well: `the safety snapshot of orders-db
    failed: ...`, or for a lost one the operation, the last status and step seen, and
    `ops <db>` to check."""
    if outcome.status == "lost":
        return f"{what}: {outcome.describe()}. `ops {database_name}` shows whether it finished"
    return f"{what} {outcome.status}: {outcome.error or 'no reason given'}"


def announce_stop(ctx: Context, plan: Plan, title: str, text: str) -> bool:
    """Tell the plan's environment's incident channel that a command stopped (a wait gave
    up or failed); False when there is nowhere to tell, in a dry run, or in approved
    work (the pipeline tells the incident channel of every failure after an approval)."""
    incidents = ctx.services.incidents
    if incidents is None or ctx.dry_run or not plan.targets or ctx.journal is not None:
        return False  # approved work (a journal): the pipeline tells of its failure
    first = plan.targets[0]
    who = UserRef(ctx.invocation.user)
    where = ChannelRef(ctx.invocation.channel)
    notice = Reply(
        status="error",
        title=f"Failed: {title}",
        text=f"Run by {who} from {where}.\n{text}",
    )
    # A key of its own: an untracked message is queued once per key (operations/store.py)
    key = f"stopped:{plan.params.get('database_id', '')}:{secrets.token_hex(6)}"
    return incidents.announce(
        plan.provider, first.environment_id, first.environment_name, notice, key=key
    )


def started_json(started: Started) -> StepResult:
    """A Console `Started` as a step's JSON result (read back by `started_of`)."""
    return {
        "operationId": started.operation_id,
        "snapshot": started.snapshot.model_dump(mode="json") if started.snapshot else None,
        "database": started.database.model_dump(mode="json") if started.database else None,
    }


def started_of(result: StepResult) -> Started:
    """The `Started` a step's JSON result stands for."""
    return Started.model_validate(result)


async def console_step(
    ctx: Context,
    name: str,
    database_id: str,
    operation_type: str,
    send: Callable[[], Awaitable[Started]],
    *,
    provider: str,
    new_database: tuple[str, str] | None = None,
) -> Started:
    """`send` as a step of approved work (see the module docstring); elsewhere just sent.

    `operation_type` is the kind of operation `send` starts on `database_id`;
    `new_database` (environment id, name) is the database it creates, looked up by
    name after a restart (a clone).
    """
    api: ConsoleClient = client_of(ctx, provider, ConsoleClient)

    async def baseline() -> dict[str, Any] | None:
        try:
            operations = [op.id for op in await api.operations(database_id)]
            snapshots = (
                [snap.id for snap in await api.snapshots(database_id)]
                if operation_type == "snapshot"
                else []
            )
        except ApiError:
            return None  # after a restart the step cannot be checked: it ends, unsent
        return {"operations": operations, "snapshots": snapshots}

    async def find(base: Any) -> StepResult | None:
        what = f"the {name} request for database {database_id}"
        if not isinstance(base, dict):
            raise OutcomeUnknown(
                f"graphops stopped while sending {what}, and its operations could not be read "
                "before it was sent, so whether it reached the API is unknown"
            )
        try:
            operations = await api.operations(database_id)
        except NotFound:
            if operation_type == "terminate":
                return {"operationId": None, "gone": True}  # the database is gone
            raise OutcomeUnknown(
                f"graphops stopped while sending {what}; the database is gone"
            ) from None
        except ApiError as exc:
            raise OutcomeUnknown(
                f"graphops stopped while sending {what}, and checking it failed ({exc.describe()})"
            ) from None
        new = [op for op in operations if op.id not in base["operations"]]
        exact = [op for op in new if (op.operation_type or "").lower() == operation_type]
        loose = [op for op in new if operation_type in (op.operation_type or "").lower()]
        mine = exact or loose
        untyped = [op for op in new if not op.operation_type]
        if not mine and not untyped:
            return None
        if len(mine) != 1 or untyped:
            raise OutcomeUnknown(
                f"graphops stopped while sending {what}; {len(new)} new operation(s) on the "
                "database do not tell whether one is its"
            )
        found = Started.model_validate({"operationId": mine[0].id})
        if operation_type == "snapshot":
            fresh = [s for s in await api.snapshots(database_id) if s.id not in base["snapshots"]]
            found.snapshot = fresh[0] if len(fresh) == 1 else None
        if new_database is not None:
            environment_id, new_name = new_database
            created = [d for d in await api.databases(environment_id) if d.name == new_name]
            found.database = created[0] if len(created) == 1 else None
        return started_json(found)

    async def sent() -> StepResult:
        return started_json(await send())

    return started_of(await step(ctx, name, sent, baseline=baseline, find=find))


async def safety_snapshot(ctx: Context, plan: Plan) -> str | None:
    """Take the plan's safety snapshot (a step of approved work) and wait; UserError
    (nothing else runs) if it fails or the wait gives up (then the incident channel is
    told too)."""
    if not plan.params.get("snapshot_first"):
        return None
    api: ConsoleClient = client_of(ctx, plan.provider, ConsoleClient)
    name = plan.params["database_name"]
    database_id = plan.params["database_id"]
    started = await console_step(
        ctx,
        "safety snapshot",
        database_id,
        "snapshot",
        lambda: api.take_snapshot(database_id),
        provider=plan.provider,
    )
    if started.operation_id:
        await ctx.report(f"Taking a safety snapshot of {name} before {plan.summary}…")
        what = f"safety snapshot of {name}"
        outcome = await wait_for(ctx, plan, database_id, started.operation_id, "snapshot", what)
        if outcome.status != "finished":
            text = ended_text(f"the safety snapshot of {name}", outcome, name)
            text += f"; nothing else was done ({plan.summary} did not run)"
            announce_stop(ctx, plan, plan.summary, text)
            raise UserError(text)
    return started.snapshot.id if started.snapshot else started.operation_id


@dataclass
class _Running:
    """A database's status read as an operation (for `follow`): finished once the
    database is running and neither pending nor locked, failed in a state it will not
    leave by itself (`_DEAD`), started otherwise; no steps."""

    status: str
    error: str | None = None
    steps: list[Any] = field(default_factory=list)
    next_operation_id: str | None = None


_DEAD = frozenset({"failed", "error", "terminated", "deleted"})


class RunningState:
    """An `OperationSource` over `GET .../status`: `wait_until_running` follows it.
    `last_state` is the state the last usable answer gave (None before one)."""

    def __init__(self, api: ConsoleClient) -> None:
        self.api = api
        self.last_state: str | None = None

    async def operation(self, database_id: str, operation_id: str) -> _Running:
        """The status now, as an operation (`operation_id` is not used)."""
        status = await self.api.status(database_id)
        self.last_state = status.state
        if status.state in _DEAD:
            return _Running("failed", f"the database is {status.state}")
        ready = status.state == "running" and not (status.is_pending or status.is_locked)
        return _Running("finished" if ready else "started")


async def wait_until_running(
    ctx: Context, plan: Plan, database_id: str, name: str
) -> tuple[bool, str]:
    """Wait, within the limits of a `resume`, until a database is running and idle:
    (True, "") or (False, what is known)."""
    api: ConsoleClient = client_of(ctx, plan.provider, ConsoleClient)
    state = RunningState(api)
    outcome = await follow(
        state,
        database_id,
        f"status of {database_id}",
        no_progress,
        backoff=ctx.services.wait_backoff,
        limits=ctx.services.follow_limits,
        kind="resume",
    )
    if outcome.status == "finished":
        return True, ""
    seen = f"last state seen: {state.last_state}" if state.last_state else "no usable status"
    why = outcome.error or "no reason given"
    return False, f"{name} did not become running ({seen}): {why}"


def with_safety(reply: Reply, snapshot_id: str | None) -> Reply:
    """Add the safety snapshot to a reply."""
    if snapshot_id:
        reply.fields.insert(0, ("Safety snapshot", snapshot_id))
    return reply


async def preflight(api: ConsoleClient, database_id: str, name: str) -> None:
    """Refuse to switch to a database that is not running, or is pending, locked or in incident."""
    status = await api.status(database_id)
    problems = [
        text
        for text, bad in (
            (f"it is {status.state}", status.state != "running"),
            ("an operation is pending on it", status.is_pending),
            ("it is locked", status.is_locked),
            ("it is under incident", status.under_incident),
        )
        if bad
    ]
    if problems:
        raise UserError(f"refusing to switch to {name}: " + ", ".join(problems))


def offer_switch_back(
    ctx: Context,
    plan: Plan,
    reply: Reply,
    origin_id: str,
    origin_name: str,
    target_id: str,
    target_name: str,
) -> None:
    """Add a "Switch back" button (itself an approval) for the configured window."""
    store, minutes = ctx.services.switch_backs, ctx.services.switch_back_minutes
    if store is None or minutes <= 0 or reply.failed or ctx.dry_run:
        return
    first = plan.targets[0]
    record = store.remember(
        minutes,
        provider=plan.provider,
        environment_id=first.environment_id,
        environment_name=first.environment_name,
        production=first.production,
        origin_id=origin_id,
        origin_name=origin_name,
        target_id=target_id,
        target_name=target_name,
        channel=ctx.invocation.channel,
    )
    reply.actions.append(
        Action(
            label=f"Switch back (for {minutes} min)",
            command=f"{ctx.services.slash_command} switch-back {record.id}",
            action_id="command",
            value=record.id,
        )
    )
