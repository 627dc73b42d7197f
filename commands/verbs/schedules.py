"""Verbs for schedules (stored and run by operations/schedules.py; each run goes through
commands/scheduled.py's `PipelineRunner`).

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
from typing import Any

from pydantic import Field

from commands.context import Context
from commands.options import NoOptions
from commands.pipeline import Pipeline, decide_targets, evaluate, refuse
from commands.plan import Plan
from commands.registry import Rights, verb
from commands.targets import CONSOLE, find, target_of
from core.errors import UserError
from core.refs import ChannelRef, UserRef
from core.reply import Reply, error
from operations.schedules import Schedule, ScheduleStore, unschedule_action
from operations.when import When, WhenError, parse_when, show_time, show_utc
from permissions.policy import Decision, Target
from permissions.roles import Role

EXAMPLE = "schedule pause sandbox-db weekdays 20:00 tz=Europe/Paris"
REFRESH_EXAMPLE = 'schedule refresh staging-db from orders-db "30 2 * * 1-5" tz=Europe/Paris'


class ScheduleOptions(NoOptions):
    """`schedule`: `tz=` the IANA time zone of `<when>`, `env=` of the database."""

    tz: str = Field(default="UTC", description="IANA time zone, e.g. Europe/Paris")
    env: str | None = Field(default=None, description="environment of the database")


class ExtendOptions(NoOptions):
    """`schedule-extend`: `hours=` later (1-12)."""

    hours: int = Field(default=2, ge=1, le=12)


def when_both(epoch: float | None, tz: str) -> tuple[str, str]:
    """(local time in `tz`, UTC time) of `epoch`, or ("-", "-")."""
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


def load_schedule(store: ScheduleStore, text: str) -> Schedule:
    """The schedule whose id is `text`; UserError when there is none (or it is cancelled)."""
    schedule = store.get(int(text)) if text.isdigit() else None
    if schedule is None or schedule.state == "cancelled":
        raise UserError(f"no schedule {text!r}; `schedules` lists those of this channel")
    return schedule


def audit_change(ctx: Context, verb: str, schedule: Schedule, change: str) -> None:
    """Audit a change of `schedule` (a `command` row with outcome `changed`)."""
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
    """Would `restore <newest snapshot of source> into <db>` be allowed here now?

    Admin on `<db>`'s environment (it loses its data) and at least operator on the
    source's (its data is copied out: `permissions.policy.decide_source`).
    """
    target = await find(ctx, CONSOLE, Role.ADMIN, db, env)
    origin = await find(ctx, CONSOLE, Role.VIEWER, source)
    where = target_of(target.scope)
    decision = decide_targets(
        ctx, "refresh", Role.ADMIN, True, [where], sources=[target_of(origin.scope)]
    )
    return where, Role.ADMIN, decision


def _created(schedule: Schedule, reason: str, slash: str) -> Reply:
    local, utc = when_both(schedule.next_run_at, schedule.tz)
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


@verb(
    "schedule",
    words="schedule pause|resume|snapshot <db> <when> [tz=] [env=] | "
    "schedule refresh <db> from <source-db> <when> [tz=] [env=]; <when>: "
    '"<cron>", hourly, daily HH:MM, weekdays HH:MM, every <day> HH:MM',
    options=ScheduleOptions,
    example=EXAMPLE,
    group="Schedules",
    rights=(
        Rights(
            form="pause|resume|snapshot <db> <when>",
            role=Role.OPERATOR,
            note="checked now and at every run",
        ),
        Rights(
            form="refresh <db> from <source-db> <when>",
            when="refresh",
            role=Role.ADMIN,
            approval=True,
            note="one approval, through schedule-activate; operator on the source's environment, "
            "checked at every run",
        ),
    ),
)
async def create_schedule(ctx: Context, values: dict[str, Any]) -> Reply:
    """Run pause, resume, snapshot or refresh (from another database's newest snapshot)
    on a schedule

    Checked now as if it ran now (the pipeline's `evaluate`); a refresh, which
    restores INTO a database, makes a pending schedule and an approval for
    `schedule-activate <id>`. Usage errors come with an example.
    """
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
    audit_change(ctx, "schedule", schedule, f"created: {schedule.what()} {when.describe()}")
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
    """The pending schedule of this channel, as the plan its approval shows."""
    store = schedules_of(ctx)
    schedule = load_schedule(store, values["id"])
    if schedule.channel != ctx.invocation.channel:
        raise UserError(f"schedule {schedule.id} belongs to {ChannelRef(schedule.channel)}")
    if schedule.state != "pending":
        raise UserError(f"schedule {schedule.id} is {schedule.state}; nothing to approve")
    local, utc = when_both(schedule.next_run_at, schedule.tz)
    origin = await find(ctx, CONSOLE, Role.VIEWER, schedule.source or "")
    return Plan(
        verb="schedule-activate",
        provider=schedule.provider,
        targets=[schedule.target],
        sources=[target_of(origin.scope)],
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


@verb(
    "schedule-activate",
    "<id>",
    role=Role.ADMIN,
    prepare=prepare_activate,
    destructive=True,
    kinds=CONSOLE,
    example="schedule-activate 3",
    group="Schedules",
)
async def activate(ctx: Context, plan: Plan) -> Reply:
    """Start a refresh schedule once it is approved (its card's button)

    Run by the approval created with the schedule; activates it (nothing in a dry run).
    """
    store = schedules_of(ctx)
    if ctx.dry_run:  # a dry run or an approval card's preview changes nothing
        return Reply(status="info", title=f"Would activate schedule {plan.params['schedule_id']}")
    schedule = store.activate(int(plan.params["schedule_id"]))
    if schedule is None:
        raise UserError("that schedule is no longer waiting for approval (cancelled?)")
    audit_change(ctx, "schedule-activate", schedule, "activated")
    return _created(schedule, "approved", ctx.services.slash_command)
