"""Safety nets around destructive GrapheneDB commands.

- Snapshot before destroy: before terminate, restore-into and switch, a manual
  snapshot of the database that will lose data is taken and waited for, when
  policy asks (`snapshot_before_destroy`: protected environments by default);
  if it fails, the destructive step does not run.
- Switch pre-flight: the target must be running and not pending, locked or
  under incident, checked when asked and again just before switching.
- Switch back: after a switch, a button (itself an approval) undoes it for
  `switch_back_minutes`.
- Every wait ends: the safety snapshot and `dr`'s waits (`wait_for`,
  `wait_until_running`) follow with the configured limits (`Services.follow_limits`,
  the deadline of the operation's kind); when one gives up or fails, the command
  stops, says what is known (`ended_text`) and tells the incident channel
  (`announce_stop`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from clients.graphenedb import ConsoleClient
from commands.context import Context
from commands.plan import Plan
from commands.targets import client_of, target_of
from core.errors import UserError
from core.refs import ChannelRef, UserRef
from core.reply import Action, Reply
from operations.follow import Outcome, follow, no_progress
from permissions.policy import is_protected


def wants_safety_snapshot(ctx: Context, scope: Any) -> bool:
    """Whether policy asks for a snapshot before destroying data in this environment."""
    mode = ctx.services.snapshot_before_destroy
    if mode in ("always", "never"):
        return mode == "always"
    policy = ctx.policy()
    return is_protected(policy, target_of(scope))


async def wait_for(
    ctx: Context, plan: Plan, database_id: str, operation_id: str, kind: str
) -> Outcome:
    """Follow one operation a command waits on itself (the safety snapshot, dr's clone)
    to its end, within the configured limits (`Services.follow_limits`, deadline of
    `kind`): it ends finished, failed, or lost, and never polls after that."""
    source = ctx.provider(plan.provider).operations
    if source is None:
        raise UserError(f"provider {plan.provider!r} has no operations to wait on")
    return await follow(
        source,
        database_id,
        operation_id,
        no_progress,
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
    up or failed); False when there is nowhere to tell (or in a dry run)."""
    incidents = ctx.services.incidents
    if incidents is None or ctx.dry_run or not plan.targets:
        return False
    first = plan.targets[0]
    who = UserRef(ctx.invocation.user)
    where = ChannelRef(ctx.invocation.channel)
    notice = Reply(
        status="error",
        title=f"Failed: {title}",
        text=f"Run by {who} from {where}.\n{text}",
    )
    return incidents.announce(
        plan.provider, first.environment_id, first.environment_name, notice, key="stopped"
    )


async def safety_snapshot(ctx: Context, plan: Plan) -> str | None:
    """Take the plan's safety snapshot and wait; UserError (nothing else runs) if it fails
    or the wait gives up (then the incident channel is told too)."""
    if not plan.params.get("snapshot_first"):
        return None
    api: ConsoleClient = client_of(ctx, plan.provider, ConsoleClient)
    name = plan.params["database_name"]
    started = await api.take_snapshot(plan.params["database_id"])
    if started.operation_id:
        outcome = await wait_for(
            ctx, plan, plan.params["database_id"], started.operation_id, "snapshot"
        )
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
