"""Running a due schedule through the pipeline: the `ScheduleRunner` bot/ gives the
Scheduler (operations/schedules.py), and the refresh's newest snapshot.

Every run is a command of the schedule's owner in its channel, run with
`preapproved=True`: the rights are checked again (a refusal sends no API
request), only "needs approval" is waived (the schedule was approved once).
A refresh first checks the right to restore into its target, then the right to
copy data out of its source's environment (at least operator), then finds the
newest finished manual snapshot of its source, then runs
`restore <snapshot> into <db>` (which the pipeline decides again, source included).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any

from clients.errors import ApiError
from commands.adapters.console import console_client
from commands.context import Context
from commands.pipeline import Pipeline, decide_targets, refuse
from commands.resolve import Found
from commands.targets import CONSOLE, find, target_of
from core.audit_context import acting_as
from core.errors import UserError
from core.invocation import Invocation
from core.reply import Reply, error
from operations.schedules import Schedule
from permissions.roles import Role

# -- refresh: the newest snapshot ------------------------------------------------------

_NOT_READY = frozenset({"working", "pending", "creating", "failed", "error", "deleting"})


def _snapshot_time(created_at: str | None) -> float:
    if not created_at:
        return float("-inf")
    try:
        return datetime.fromisoformat(created_at.replace("Z", "+00:00")).timestamp()
    except ValueError:
        pass
    try:
        return parsedate_to_datetime(created_at).timestamp()
    except (TypeError, ValueError):
        return float("-inf")


def newest_snapshot(snapshots: Sequence[Any]) -> Any | None:
    """The newest finished snapshot (by `created_at`, ISO or HTTP date; later listed wins ties)."""
    ready = [(i, s) for i, s in enumerate(snapshots) if (s.status or "").lower() not in _NOT_READY]
    if not ready:
        return None
    return max(ready, key=lambda item: (_snapshot_time(item[1].created_at), item[0]))[1]


async def newest_snapshot_of(ctx: Context, source: Found) -> str:
    """The id of the newest finished manual snapshot of `source` (UserError if none)."""
    api = console_client(ctx, source.scope.provider.name)
    snap = newest_snapshot(await api.snapshots(source.database.id))
    if snap is None:
        raise UserError(f"{source.database.name} has no finished manual snapshot to restore")
    return str(snap.id)


@dataclass(frozen=True)
class PipelineRunner:
    """The `operations.schedules.ScheduleRunner` bot/ gives the Scheduler: every run goes
    through the pipeline, as its owner in its channel, with the rights checked again."""

    pipeline: Pipeline

    async def run_schedule(self, schedule: Schedule) -> Reply:
        """Run `schedule`'s command now (approved once for all runs); never raises."""
        invocation = await self._as_owner(schedule)
        try:
            with acting_as(invocation):
                line = await _command_line(self.pipeline.context(invocation), schedule)
        except (UserError, ApiError) as exc:
            text = exc.describe() if isinstance(exc, ApiError) else str(exc)
            return error(text, title="Cannot do that")
        if isinstance(line, Reply):
            return line
        scheduled = dataclasses.replace(invocation, text=line)
        return await self.pipeline.run(scheduled, preapproved=True)

    async def _as_owner(self, schedule: Schedule) -> Invocation:
        """The schedule's owner in its channel, with the user groups the channel's bindings
        name that they belong to now (their role may come from one: `users=`)."""
        invocation = Invocation(
            user=schedule.owner, channel=schedule.channel, text="", transport="schedule"
        )
        services = self.pipeline.services
        named = services.permissions.groups_named(schedule.channel)
        if services.memberships is None or not named:
            return invocation
        member, unknown = await services.memberships(schedule.owner, named)
        return dataclasses.replace(invocation, user_groups=member, unresolved_groups=unknown)


async def _command_line(ctx: Context, schedule: Schedule) -> str | Reply:
    """The line to run; for refresh, checks the right on the target first (no request
    when refused), then looks the source up and checks the right to copy data out of
    its environment (at least operator), and only then lists its snapshots."""
    if schedule.verb != "refresh":
        return schedule.command_line()
    decision = decide_targets(ctx, "restore", schedule.role, True, [schedule.target])
    if decision.outcome == "denied":
        return refuse(ctx, "restore", decision.reason)
    source = await find(ctx, CONSOLE, Role.VIEWER, schedule.source or "")
    decision = decide_targets(
        ctx, "refresh", schedule.role, True, [schedule.target], sources=[target_of(source.scope)]
    )
    if decision.outcome == "denied":
        return refuse(ctx, "restore", decision.reason)
    return schedule.command_line(await newest_snapshot_of(ctx, source))
