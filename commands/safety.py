"""Safety nets around destructive GrapheneDB commands.

- Snapshot before destroy: before terminate, restore-into and switch, a manual
  snapshot of the database that will lose data is taken and waited for, when
  policy asks (`snapshot_before_destroy`: protected environments by default);
  if it fails, the destructive step does not run.
- Switch pre-flight: the target must be running and not pending, locked or
  under incident, checked when asked and again just before switching.
- Switch back: after a switch, a button (itself an approval) undoes it for
  `switch_back_minutes`.
"""

from __future__ import annotations

from typing import Any

from clients.graphenedb import ConsoleClient
from commands.context import Context
from commands.plan import Plan
from commands.targets import client_of, target_of
from core.errors import UserError
from core.reply import Action, Reply
from operations.follow import Backoff, follow, no_progress
from permissions.policy import is_protected

SAFETY_POLL = Backoff(first=1.0, factor=1.3, cap=10.0)
SAFETY_WAIT_SECONDS = 30 * 60


def wants_safety_snapshot(ctx: Context, scope: Any) -> bool:
    """Whether policy asks for a snapshot before destroying data in this environment."""
    mode = ctx.services.snapshot_before_destroy
    if mode in ("always", "never"):
        return mode == "always"
    policy = ctx.policy()
    return is_protected(policy, target_of(scope))


async def safety_snapshot(ctx: Context, plan: Plan) -> str | None:
    """Take the plan's safety snapshot and wait; UserError (nothing else runs) if it fails."""
    if not plan.params.get("snapshot_first"):
        return None
    api: ConsoleClient = client_of(ctx, plan.provider, ConsoleClient)
    name = plan.params["database_name"]
    started = await api.take_snapshot(plan.params["database_id"])
    if started.operation_id:
        outcome = await follow(
            api,
            plan.params["database_id"],
            started.operation_id,
            no_progress,
            backoff=SAFETY_POLL,
            timeout=SAFETY_WAIT_SECONDS,
        )
        if outcome.status != "finished":
            raise UserError(
                f"the safety snapshot of {name} {outcome.status}"
                f" ({outcome.error or 'no reason given'}); nothing else was done"
            )
    return started.snapshot.id if started.snapshot else started.operation_id


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
