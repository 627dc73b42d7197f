"""Verbs for schedules (stored and run by operations/schedules.py).

    schedule pause|resume|snapshot <db> <when> [tz=] [env=]
    schedule refresh <db> from <source-db> <when> [tz=] [env=]
    schedules | unschedule <id> | schedule-skip <id> | schedule-extend <id> [hours=2]

`<when>` is several words (`every monday 07:00`) or one quoted cron expression,
so `schedule` binds its words itself (`WordsVerb`) and reads them with
`operations.when.parse_when`.

Rights are checked when a schedule is made, as if the command ran now: the
command's own `prepare` (name resolution within the channel's environments,
role checks) and the permission `decide`, without executing it. A command that
would need an approval (refresh = restore INTO a database) makes a *pending*
schedule and an ordinary approval for the verb `schedule-activate <id>`; the
approved execution of that verb activates the schedule (the existing approval
flow: approvers, protection, expiry, at most once). Each run then needs no new
approval, but the rights are checked again at run time.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from clients.errors import ApiError
from clients.graphenedb import ConsoleClient
from commands.context import Context
from commands.pipeline import Pipeline, decide_targets, evaluate, refuse
from commands.plan import Plan
from commands.registry import Registry, Verb, WordsVerb
from commands.targets import CONSOLE, client_of, find, target_of
from core.audit_context import acting_as
from core.errors import UserError
from core.invocation import Invocation
from core.refs import ChannelRef, UserRef
from core.reply import Reply, Table, error
from operations.schedules import Schedule, ScheduleStore, unschedule_action
from operations.when import When, WhenError, parse_when, show_time, show_utc
from permissions.policy import Decision, Target
from permissions.roles import Role

EXAMPLE = "schedule pause sandbox-db weekdays 20:00 tz=Europe/Paris"
REFRESH_EXAMPLE = 'schedule refresh staging-db from orders-db "30 2 * * 1-5" tz=Europe/Paris'


class _Options(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ScheduleOptions(_Options):
    tz: str = Field(default="UTC", description="IANA time zone, e.g. Europe/Paris")
    env: str | None = Field(default=None, description="environment of the database")


class ExtendOptions(_Options):
    hours: int = Field(default=2, ge=1, le=12)


def _when_both(epoch: float | None, tz: str) -> tuple[str, str]:
    if epoch is None:
        return "-", "-"
    return show_time(epoch, tz), show_utc(epoch)


def _split(words: list[str]) -> tuple[str, str, str | None, list[str]]:
    """(action, db, source, when words) of `schedule`'s words; WhenError if they do not fit."""
    if not words or words[0].lower() not in ("pause", "resume", "snapshot", "refresh"):
        got = f", not `{words[0]}`" if words else ""
        raise WhenError(f"say what to schedule: pause, resume, snapshot or refresh{got}")
    action = words[0].lower()
    if len(words) < 2:
        raise WhenError(f"say which database to {action}")
    if action != "refresh":
        return action, words[1], None, words[2:]
    if len(words) < 4 or words[2].lower() != "from":
        raise WhenError(
            "refresh needs a source: `schedule refresh <db> from <source-db> <when>` "
            f"(e.g. `{REFRESH_EXAMPLE}`)"
        )
    if words[3] == words[1]:
        raise WhenError("a database cannot be refreshed from itself")
    return action, words[1], words[3], words[4:]


def _load(store: ScheduleStore, text: str) -> Schedule:
    schedule = store.get(int(text)) if text.isdigit() else None
    if schedule is None or schedule.state == "cancelled":
        raise UserError(f"no schedule {text!r}; `schedules` lists those of this channel")
    return schedule


def _audit(ctx: Context, verb: str, schedule: Schedule, change: str) -> None:
    ctx.services.audit.record(
        "command",
        user=ctx.invocation.user,
        channel=ctx.invocation.channel,
        provider=schedule.provider or None,
        environment=schedule.environment_name or None,
        database=schedule.db,
        verb=verb,
        outcome="changed",
        detail={"schedule": schedule.id, "change": change},
    )


async def check_command(
    ctx: Context, action: str, db: str, env: str | None
) -> tuple[Target | None, Role, Decision]:
    """Would `<action> <db>` be allowed here now? (the pipeline's evaluate; nothing runs)."""
    verb = ctx.registry.get(action)
    assert verb is not None
    values = verb.bind((db,), {"env": env} if env else {})
    evaluation = await evaluate(ctx, verb, values)
    plan = evaluation.plan
    target = plan.targets[0] if plan is not None and plan.targets else None
    return target, evaluation.role, evaluation.decision


async def check_refresh(
    ctx: Context, db: str, source: str, env: str | None
) -> tuple[Target, Role, Decision]:
    """Would `restore <newest snapshot of source> into <db>` be allowed here now?"""
    target = await find(ctx, CONSOLE, Role.ADMIN, db, env)
    await find(ctx, CONSOLE, Role.VIEWER, source)
    where = target_of(target.scope)
    return where, Role.ADMIN, decide_targets(ctx, "restore", Role.ADMIN, True, [where])


def _may_change(ctx: Context, schedule: Schedule, verb: str) -> Reply | None:
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


def _created(schedule: Schedule, reason: str, slash: str) -> Reply:
    local, utc = _when_both(schedule.next_run_at, schedule.tz)
    return Reply(
        status="ok",
        title=f"Schedule {schedule.id}: {schedule.what()} {schedule.rule.describe()}",
        text=f"Checked now: {reason}. The rights are checked again at every run.",
        fields=[
            ("Next run", local),
            ("Next run (UTC)", utc),
            ("Runs as", f"{UserRef(schedule.owner)} in {ChannelRef(schedule.channel)}"),
        ],
        actions=[unschedule_action(schedule, slash)],
    )


def schedules_of(ctx: Context) -> ScheduleStore:
    """The schedule store of this bot; UserError when schedules are not available."""
    if ctx.services.schedules is None:
        raise UserError("schedules are not available in this bot")
    return ctx.services.schedules


async def create_schedule(ctx: Context, values: dict[str, Any]) -> Reply:
    store = schedules_of(ctx)
    slash = ctx.services.slash_command
    try:
        action, db, source, words = _split(values["words"])
        when: When = parse_when(words, values["tz"])
    except WhenError as exc:
        example = REFRESH_EXAMPLE if values["words"][:1] == ["refresh"] else EXAMPLE
        return error(f"{exc}.\nExample: `{slash} {example}`", title="Usage of schedule")
    env = values.get("env")
    target: Target | None
    if source is not None:
        target, role, decision = await check_refresh(ctx, db, source, env)
    else:
        target, role, decision = await check_command(ctx, action, db, env)
    if decision.outcome == "denied" or target is None:
        return refuse(ctx, f"schedule {action}", decision.reason)
    pending = decision.outcome == "needs_approval"
    schedule = store.create(
        owner=ctx.invocation.user,
        channel=ctx.invocation.channel,
        verb=action,
        db=db,
        source=source,
        env=env,
        when=when,
        target=target,
        role=role,
        state="pending" if pending else "active",
    )
    _audit(ctx, "schedule", schedule, f"created: {schedule.what()} {when.describe()}")
    if not pending:
        return _created(schedule, decision.reason, slash)
    invocation = dataclasses.replace(ctx.invocation, text=f"schedule-activate {schedule.id}")
    card = await Pipeline(ctx.registry, ctx.services).run(invocation)
    if card.status == "ok":
        return card
    if card.status != "pending":
        store.cancel(schedule.id)
        return card
    approval = next((a.value for a in card.actions if a.action_id == "approval.approve"), "")
    store.set_approval(schedule.id, approval)
    card.text = (
        f"Schedule {schedule.id} ({schedule.what()}, {when.describe()}) becomes active once "
        f"approved; its runs then need no further approval.\n{card.text}"
    )
    return card


async def prepare_activate(ctx: Context, values: dict[str, Any]) -> Plan:
    store = schedules_of(ctx)
    schedule = _load(store, values["id"])
    if schedule.channel != ctx.invocation.channel:
        raise UserError(f"schedule {schedule.id} belongs to {ChannelRef(schedule.channel)}")
    if schedule.state != "pending":
        raise UserError(f"schedule {schedule.id} is {schedule.state}; nothing to approve")
    local, utc = _when_both(schedule.next_run_at, schedule.tz)
    return Plan(
        verb="schedule-activate",
        provider=schedule.provider,
        targets=[schedule.target],
        params={"schedule_id": schedule.id, "database_id": "", "database_name": schedule.db},
        summary=(
            f"schedule {schedule.id}: {schedule.what()} {schedule.rule.describe()}: "
            f"restore the newest snapshot of {schedule.source} INTO {schedule.db} at every run"
        ),
        destructive=True,
        role=schedule.role,
        details=[
            ("Data lost", f"current data of {schedule.db}, at every run"),
            ("First run", f"{local} ({utc})"),
        ],
    )


async def execute_activate(ctx: Context, plan: Plan) -> Reply:
    store = schedules_of(ctx)
    if ctx.dry_run:  # a dry run or an approval card's preview changes nothing
        return Reply(status="info", title=f"Would activate schedule {plan.params['schedule_id']}")
    schedule = store.activate(int(plan.params["schedule_id"]))
    if schedule is None:
        raise UserError("that schedule is no longer waiting for approval (cancelled?)")
    _audit(ctx, "schedule-activate", schedule, "activated")
    return _created(schedule, "approved", ctx.services.slash_command)


async def list_schedules(ctx: Context, values: dict[str, Any]) -> Reply:
    store = schedules_of(ctx)
    table = Table(columns=["Id", "Command", "When", "Next run", "Next run (UTC)", "State", "Owner"])
    for schedule in store.for_channel(ctx.invocation.channel):
        state = _state(ctx, store, schedule)
        if state is None:
            continue
        local, utc = _when_both(schedule.due_at, schedule.tz)
        if schedule.skipped and schedule.next_run_at is not None:
            after = schedule.rule.next_after(schedule.next_run_at)
            local, utc = _when_both(after, schedule.tz)
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


async def unschedule(ctx: Context, values: dict[str, Any]) -> Reply:
    store = schedules_of(ctx)
    schedule = _load(store, values["id"])
    refusal = _may_change(ctx, schedule, "unschedule")
    if refusal is not None:
        return refusal
    store.cancel(schedule.id)
    _audit(ctx, "unschedule", schedule, "cancelled")
    return Reply(
        status="ok",
        title=f"Schedule {schedule.id} cancelled",
        text=f"{UserRef(ctx.invocation.user)} cancelled {schedule.what()} "
        f"{schedule.rule.describe()}; nothing more will run.",
    )


async def skip_run(ctx: Context, values: dict[str, Any]) -> Reply:
    store = schedules_of(ctx)
    schedule = _load(store, values["id"])
    refusal = _may_change(ctx, schedule, "schedule-skip") or _need_active(schedule)
    if refusal is not None:
        return refusal
    changed = store.skip(schedule.id)
    assert changed is not None and changed.next_run_at is not None
    after = changed.rule.next_after(changed.next_run_at)
    _audit(ctx, "schedule-skip", changed, f"skip the run of {show_utc(changed.next_run_at)}")
    return Reply(
        status="ok",
        title=f"Skipping the next {schedule.what()}",
        text=(
            f"{UserRef(ctx.invocation.user)} skipped the run of "
            f"{show_time(changed.next_run_at, changed.tz)} (schedule {changed.id}). "
            f"Next run: {show_time(after, changed.tz)} ({show_utc(after)})."
        ),
    )


async def extend_run(ctx: Context, values: dict[str, Any]) -> Reply:
    store = schedules_of(ctx)
    schedule = _load(store, values["id"])
    refusal = _may_change(ctx, schedule, "schedule-extend") or _need_active(schedule)
    if refusal is not None:
        return refusal
    changed = store.extend(schedule.id, int(values["hours"]))
    assert changed is not None and changed.postponed_to is not None
    _audit(ctx, "schedule-extend", changed, f"postponed to {show_utc(changed.postponed_to)}")
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


async def newest_snapshot_of(ctx: Context, source: str) -> str:
    """The id of the newest finished manual snapshot of `source` (UserError if none)."""
    found = await find(ctx, CONSOLE, Role.VIEWER, source)
    api = client_of(ctx, found.scope.provider.name, ConsoleClient)
    snapshots = await api.snapshots(found.database.id)
    snap = newest_snapshot(snapshots)
    if snap is None:
        raise UserError(f"{source} has no finished manual snapshot to restore")
    return str(snap.id)


def _need_active(schedule: Schedule) -> Reply | None:
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


def register(registry: Registry) -> None:
    """Add the schedule verbs."""
    registry.add(
        WordsVerb(
            name="schedule",
            summary="Run pause, resume, snapshot or refresh (restore the newest snapshot of "
            "another database) on a schedule",
            pattern="",
            usage_text="schedule pause|resume|snapshot <db> <when> [tz=] [env=] | "
            "schedule refresh <db> from <source-db> <when> [tz=] [env=]; <when>: "
            '"<cron>", hourly, daily HH:MM, weekdays HH:MM, every <day> HH:MM',
            example=EXAMPLE,
            role=None,
            options=ScheduleOptions,
            direct=create_schedule,
            group="Schedules",
        )
    )

    def add(**kwargs: Any) -> None:
        registry.add(Verb(role=None, group="Schedules", **kwargs))

    add(
        name="schedules",
        summary="List this channel's schedules with their next run (local and UTC)",
        pattern="",
        example="schedules",
        direct=list_schedules,
    )
    add(
        name="unschedule",
        summary="Cancel a schedule (its owner, an operator of its binding, or a bot admin)",
        pattern="<id>",
        example="unschedule 3",
        direct=unschedule,
    )
    add(
        name="schedule-skip",
        summary="Skip the next run of a schedule (the heads-up's Skip button)",
        pattern="<id>",
        example="schedule-skip 3",
        direct=skip_run,
    )
    add(
        name="schedule-extend",
        summary="Run the next run of a schedule later (the heads-up's Keep running button)",
        pattern="<id>",
        example="schedule-extend 3 hours=2",
        options=ExtendOptions,
        direct=extend_run,
    )
    registry.add(
        Verb(
            name="schedule-activate",
            summary="Approve-gated start of a schedule whose command needs approval (refresh)",
            pattern="<id>",
            example="schedule-activate 3",
            role=Role.ADMIN,
            destructive=True,
            kinds=CONSOLE,
            prepare=prepare_activate,
            execute=execute_activate,
            group="Schedules",
        )
    )


# -- running a due schedule ---------------------------------------------------------------


@dataclass(frozen=True)
class PipelineRunner:
    """The `operations.schedules.ScheduleRunner` bot/ gives the Scheduler: every run goes
    through the pipeline, as its owner in its channel, with the rights checked again."""

    pipeline: Pipeline

    async def run_schedule(self, schedule: Schedule) -> Reply:
        """Run `schedule`'s command now (approved once for all runs); never raises."""
        invocation = Invocation(
            user=schedule.owner, channel=schedule.channel, text="", transport="schedule"
        )
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


async def _command_line(ctx: Context, schedule: Schedule) -> str | Reply:
    """The line to run; for refresh, checks the right first (no request when refused),
    then finds the newest snapshot of the source."""
    if schedule.verb != "refresh":
        return schedule.command_line()
    decision = decide_targets(ctx, "restore", schedule.role, True, [schedule.target])
    if decision.outcome == "denied":
        return refuse(ctx, "restore", decision.reason)
    return schedule.command_line(await newest_snapshot_of(ctx, schedule.source or ""))
