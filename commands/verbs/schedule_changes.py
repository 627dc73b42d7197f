"""Listing and changing schedules: `schedules`, `unschedule`, `schedule-skip`,
`schedule-extend` (the last two are the buttons of a pause's heads-up).

Who may change a schedule: in its channel, an operator of its binding (the
pipeline's `decide_targets` on the target recorded with it); `unschedule` also
its owner and the bot admins. Every change is audited.
"""

from __future__ import annotations

import time
from typing import Any

from commands.context import Context
from commands.pipeline import decide_targets, refuse
from commands.registry import Rights, verb
from commands.verbs.schedules import (
    EXAMPLE,
    ExtendOptions,
    audit_change,
    load_schedule,
    schedules_of,
    when_both,
)
from core.refs import ChannelRef, UserRef
from core.reply import Reply, Table, error
from operations.schedules import Schedule, ScheduleStore
from operations.when import show_time, show_utc
from permissions.roles import Role


def refuse_change(ctx: Context, schedule: Schedule, verb: str) -> Reply | None:
    """Refusal unless the clicker may act on this schedule (operator on its binding)."""
    user, channel = ctx.invocation.user, ctx.invocation.channel
    if channel != schedule.channel:
        return refuse(
            ctx,
            verb,
            f"schedule {schedule.id} belongs to {ChannelRef(schedule.channel)}; act there",
        )
    if verb == "unschedule" and (user == schedule.owner or user in ctx.services.permissions.admins):
        return None
    decision = decide_targets(ctx, verb, Role.OPERATOR, False, [schedule.target])
    return None if decision.allowed else refuse(ctx, verb, decision.reason)


def refuse_unless_active(schedule: Schedule) -> Reply | None:
    """An error unless `schedule` is active (only an active one can be skipped or moved)."""
    if schedule.state == "active":
        return None
    return error(f"Schedule {schedule.id} is {schedule.state}; only an active one can change.")


def _state(ctx: Context, store: ScheduleStore, schedule: Schedule) -> str | None:
    """How a schedule is shown; None (and cancelled) when its approval was refused or lapsed."""
    if schedule.state == "pending":
        approval = ctx.services.approvals.get(schedule.approval_id or "")
        lapsed = approval is None or approval.state in ("denied", "expired", "failed")
        if approval is not None and approval.state == "pending":
            lapsed = approval.expires_at <= time.time()
        if lapsed:
            store.cancel(schedule.id)
            return None
        return f"waiting for approval {schedule.approval_id}"
    if schedule.skipped:
        return "active; skips its next run"
    if schedule.postponed_to:
        return "active; next run postponed"
    return schedule.state


@verb("schedules", example="schedules", group="Schedules", rights=(Rights(who="anyone"),))
async def list_schedules(ctx: Context, values: dict[str, Any]) -> Reply:
    """List this channel's schedules with their next run (local and UTC)

    A pending schedule whose approval was denied or lapsed is cancelled and not shown.
    """
    store = schedules_of(ctx)
    table = Table(columns=["Id", "Command", "When", "Next run", "Next run (UTC)", "State", "Owner"])
    for schedule in store.for_channel(ctx.invocation.channel):
        state = _state(ctx, store, schedule)
        if state is None:
            continue
        local, utc = when_both(schedule.due_at, schedule.tz)
        if schedule.skipped and schedule.next_run_at is not None:
            after = schedule.rule.next_after(schedule.next_run_at)
            local, utc = when_both(after, schedule.tz)
        table.rows.append(
            [
                str(schedule.id),
                schedule.what(),
                schedule.rule.describe(),
                local,
                utc,
                state,
                str(UserRef(schedule.owner)),
            ]
        )
    if not table.rows:
        table.note = f"no schedules here; e.g. `{ctx.services.slash_command} {EXAMPLE}`"
    return Reply(
        status="info",
        title=f"Schedules of {ChannelRef(ctx.invocation.channel)}",
        tables=[table],
    )


@verb(
    "unschedule",
    "<id>",
    example="unschedule 3",
    group="Schedules",
    rights=(Rights(who="its owner, an operator of its binding, or a bot admin"),),
)
async def unschedule(ctx: Context, values: dict[str, Any]) -> Reply:
    """Cancel a schedule"""
    store = schedules_of(ctx)
    schedule = load_schedule(store, values["id"])
    refusal = refuse_change(ctx, schedule, "unschedule")
    if refusal is not None:
        return refusal
    store.cancel(schedule.id)
    audit_change(ctx, "unschedule", schedule, "cancelled")
    return Reply(
        status="ok",
        title=f"Schedule {schedule.id} cancelled",
        text=f"{UserRef(ctx.invocation.user)} cancelled {schedule.what()} "
        f"{schedule.rule.describe()}; nothing more will run.",
    )


@verb(
    "schedule-skip",
    "<id>",
    example="schedule-skip 3",
    group="Schedules",
    rights=(Rights(role=Role.OPERATOR),),
)
async def skip_run(ctx: Context, values: dict[str, Any]) -> Reply:
    """Skip the next run of a schedule (the heads-up's Skip button)

    Operator of the schedule's binding, in its channel; active schedules only.
    """
    store = schedules_of(ctx)
    schedule = load_schedule(store, values["id"])
    refusal = refuse_change(ctx, schedule, "schedule-skip") or refuse_unless_active(schedule)
    if refusal is not None:
        return refusal
    changed = store.skip(schedule.id)
    assert changed is not None and changed.next_run_at is not None
    after = changed.rule.next_after(changed.next_run_at)
    audit_change(ctx, "schedule-skip", changed, f"skip the run of {show_utc(changed.next_run_at)}")
    return Reply(
        status="ok",
        title=f"Skipping the next {schedule.what()}",
        text=(
            f"{UserRef(ctx.invocation.user)} skipped the run of "
            f"{show_time(changed.next_run_at, changed.tz)} (schedule {changed.id}). "
            f"Next run: {show_time(after, changed.tz)} ({show_utc(after)})."
        ),
    )


@verb(
    "schedule-extend",
    "<id>",
    options=ExtendOptions,
    example="schedule-extend 3 hours=2",
    group="Schedules",
    rights=(Rights(role=Role.OPERATOR),),
)
async def extend_run(ctx: Context, values: dict[str, Any]) -> Reply:
    """Run the next run of a schedule later (the heads-up's Keep running button)

    Postpones only the next run (`hours=`, 2 by default); later runs keep their times.
    """
    store = schedules_of(ctx)
    schedule = load_schedule(store, values["id"])
    refusal = refuse_change(ctx, schedule, "schedule-extend") or refuse_unless_active(schedule)
    if refusal is not None:
        return refusal
    changed = store.extend(schedule.id, int(values["hours"]))
    assert changed is not None and changed.postponed_to is not None
    audit_change(ctx, "schedule-extend", changed, f"postponed to {show_utc(changed.postponed_to)}")
    return Reply(
        status="ok",
        title=f"Postponing {schedule.what()} by {values['hours']} h",
        text=(
            f"{UserRef(ctx.invocation.user)} postponed the run of "
            f"{show_time(changed.next_run_at or 0, changed.tz)} to "
            f"{show_time(changed.postponed_to, changed.tz)} "
            f"({show_utc(changed.postponed_to)}); later runs keep their times."
        ),
    )
