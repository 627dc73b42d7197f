"""Schedules: commands that run by themselves, stored in SQLite, run by the Scheduler.

A schedule is a command (`pause`, `resume`, `snapshot` a database, or `refresh`
a database from the newest manual snapshot of another) plus *when* it runs: a
5-field cron expression or a plain form (`hourly`, `daily 02:30`,
`weekdays 20:00`, `weekends 09:00`, `every monday 07:00`) in an IANA time
zone (UTC by default).

Time zones and daylight saving (the rule, applied by `When.next_after`):
- times are wall-clock times in the schedule's zone, converted with zoneinfo;
- a time that does not exist on the day the clocks go forward (02:30 in
  Europe/Paris on the last Sunday of March) runs once, shifted forward by the
  gap (03:30 local, the same instant as "02:30 in winter time");
- a time that exists twice on the day the clocks go back runs once, at its
  first occurrence (summer time); the repeated hour is not run again.
  So an `hourly` schedule has one run fewer that night (as Vixie cron does).

The Scheduler (one per process, started by the transport) looks at the active
schedules every `tick_seconds`:
- before a `pause`, it posts a heads-up `heads_up_minutes` ahead, once per run,
  with the buttons "Skip tonight" (`schedule-skip <id>`) and "Keep running 2 h"
  (`schedule-extend <id>`);
- at the run time it claims the run in SQLite (a conditional UPDATE, so two
  processes never run it twice), then runs the command through the
  `ScheduleRunner` bot/ injects (the command pipeline, `preapproved=True`):
  the channel's rights are checked again at every run; a refusal (binding
  revoked) sends no API request, is posted in the channel, and the schedule
  *stays active* (a binding may come back; the message offers an Unschedule
  button);
- the reply is posted in the schedule's channel, and its operations are handed
  to the tracker with the posted message as the thread, as for a typed command;
- a run missed while the bot was down runs on start when it is at most
  `grace_seconds` late; otherwise one "missed" message is posted (however
  many runs were missed) and the next run is computed from now.
Every run, skip and miss is written to `schedule_runs` and to the audit log.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import sqlite_utils

from core.refs import UserRef
from core.reply import Action, Reply
from operations.loop import BackgroundLoop
from operations.migrations import migrate
from operations.notify import Notifier, TrackerPort
from operations.when import When, parse_when, show_time, show_utc
from permissions.audit import AuditLog
from permissions.policy import Target
from permissions.roles import Role

log = logging.getLogger("graphops.schedules")

VERBS = ("pause", "resume", "snapshot", "refresh")
HEADS_UP_VERBS = frozenset({"pause"})


# -- the store -------------------------------------------------------------------------


@dataclass(frozen=True)
class Schedule:
    """One stored schedule.

    `next_run_at` is the planned slot (UTC epoch); `postponed_to` is when that
    slot actually runs after `schedule-extend`; `skip_until` skips every slot
    up to it (`schedule-skip`). States: pending (waiting for its approval),
    active, paused (reserved), cancelled.
    """

    id: int
    owner: str
    channel: str
    verb: str
    db: str
    source: str | None
    env: str | None
    when: str
    tz: str
    provider: str
    environment_id: str
    environment_name: str
    production: bool
    role: Role
    next_run_at: float | None
    last_run_at: float | None
    state: str
    skip_until: float | None
    postponed_to: float | None
    approval_id: str | None
    created_at: float

    @property
    def rule(self) -> When:
        """The parsed `when`."""
        return parse_when(self.when.split(), self.tz)

    @property
    def due_at(self) -> float | None:
        """When the current slot runs (postponed or planned)."""
        return self.postponed_to or self.next_run_at

    @property
    def skipped(self) -> bool:
        """Whether the current slot is to be skipped."""
        return (
            self.skip_until is not None
            and self.next_run_at is not None
            and self.next_run_at <= self.skip_until
        )

    @property
    def target(self) -> Target:
        """The permission target recorded when the schedule was created."""
        return Target(self.provider, self.environment_id, self.environment_name, self.production)

    def what(self) -> str:
        """`pause sandbox-db` / `refresh staging-db from orders-db`."""
        if self.verb == "refresh":
            return f"refresh {self.db} from {self.source}"
        return f"{self.verb} {self.db}"

    def command_line(self, snapshot_id: str | None = None) -> str:
        """The command run at each slot (refresh needs the snapshot found at run time)."""
        env = f" env={self.env}" if self.env else ""
        if self.verb == "refresh":
            return f"restore {snapshot_id} into {self.db} source={self.source}{env}"
        return f"{self.verb} {self.db}{env}"


_COLUMNS = [f.name for f in Schedule.__dataclass_fields__.values()]


def _row(values: Sequence[Any]) -> Schedule:
    data = dict(zip(_COLUMNS, values, strict=True))
    data["production"] = bool(data["production"])
    data["role"] = Role(data["role"])
    return Schedule(**data)


class ScheduleStore:
    """The schedules table: create, read and change schedules atomically."""

    def __init__(self, db: sqlite_utils.Database, clock: Callable[[], float] = time.time):
        self.db = db
        self.clock = clock
        migrate(db)

    def _select(self, where: str, params: Sequence[Any]) -> list[Schedule]:
        columns = ", ".join(f'"{c}"' for c in _COLUMNS)
        rows = self.db.execute(
            f"SELECT {columns} FROM schedules WHERE {where} ORDER BY id", list(params)
        ).fetchall()
        return [_row(r) for r in rows]

    def create(
        self,
        *,
        owner: str,
        channel: str,
        verb: str,
        db: str,
        when: When,
        target: Target,
        source: str | None = None,
        env: str | None = None,
        role: Role = Role.OPERATOR,
        state: str = "active",
    ) -> Schedule:
        """Store a schedule; its next run is computed from now."""
        now = self.clock()
        cursor = self.db.execute(
            'INSERT INTO schedules (owner, channel, verb, db, source, env, "when", tz, provider, '
            "environment_id, environment_name, production, role, next_run_at, state, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                owner,
                channel,
                verb,
                db,
                source,
                env,
                when.text,
                when.tz,
                target.provider,
                target.environment_id,
                target.environment_name,
                int(target.production),
                int(role),
                when.next_after(now),
                state,
                now,
            ],
        )
        made = self.get(int(cursor.lastrowid or 0))
        assert made is not None
        return made

    def get(self, schedule_id: int) -> Schedule | None:
        """The schedule with this id, or None."""
        found = self._select("id = ?", [schedule_id])
        return found[0] if found else None

    def for_channel(self, channel: str) -> list[Schedule]:
        """Schedules of a channel that are not cancelled."""
        return self._select("channel = ? AND state != 'cancelled'", [channel])

    def active(self) -> list[Schedule]:
        """Every active schedule."""
        return self._select("state = 'active'", [])

    def set_approval(self, schedule_id: int, approval_id: str) -> None:
        """Remember the approval that activates a pending schedule."""
        self.db.execute(
            "UPDATE schedules SET approval_id = ? WHERE id = ?", [approval_id, schedule_id]
        )

    def activate(self, schedule_id: int) -> Schedule | None:
        """pending -> active, next run from now; None when it was not pending."""
        schedule = self.get(schedule_id)
        if schedule is None or schedule.state != "pending":
            return None
        cursor = self.db.execute(
            "UPDATE schedules SET state = 'active', next_run_at = ? "
            "WHERE id = ? AND state = 'pending'",
            [schedule.rule.next_after(self.clock()), schedule_id],
        )
        return self.get(schedule_id) if cursor.rowcount == 1 else None

    def cancel(self, schedule_id: int) -> bool:
        """Any state but cancelled -> cancelled."""
        cursor = self.db.execute(
            "UPDATE schedules SET state = 'cancelled' WHERE id = ? AND state != 'cancelled'",
            [schedule_id],
        )
        return cursor.rowcount == 1

    def skip(self, schedule_id: int) -> Schedule | None:
        """Skip the current slot (and undo any postponement of it)."""
        self.db.execute(
            "UPDATE schedules SET skip_until = next_run_at, postponed_to = NULL "
            "WHERE id = ? AND state = 'active'",
            [schedule_id],
        )
        return self.get(schedule_id)

    def extend(self, schedule_id: int, hours: int) -> Schedule | None:
        """Run the current slot `hours` after its planned time (not cumulative)."""
        self.db.execute(
            "UPDATE schedules SET postponed_to = next_run_at + ?, "
            "skip_until = CASE WHEN skip_until >= next_run_at THEN NULL ELSE skip_until END "
            "WHERE id = ? AND state = 'active'",
            [hours * 3600, schedule_id],
        )
        return self.get(schedule_id)

    def advance(self, schedule: Schedule, next_run_at: float, *, ran_at: float | None) -> bool:
        """Move past the current slot; False when someone else already did (claims a run)."""
        cursor = self.db.execute(
            "UPDATE schedules SET next_run_at = ?, postponed_to = NULL, "
            "last_run_at = COALESCE(?, last_run_at) "
            "WHERE id = ? AND state = 'active' AND next_run_at = ?",
            [next_run_at, ran_at, schedule.id, schedule.next_run_at],
        )
        return cursor.rowcount == 1

    def log(
        self, schedule_id: int, run_at: float, kind: str, outcome: str = "", **detail: Any
    ) -> bool:
        """Record a run/skip/miss/heads-up once per slot; False when it was recorded before."""
        cursor = self.db.execute(
            "INSERT OR IGNORE INTO schedule_runs (schedule_id, run_at, kind, at, outcome, detail) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            [schedule_id, run_at, kind, self.clock(), outcome, json.dumps(detail, default=str)],
        )
        return cursor.rowcount == 1

    def unlog(self, schedule_id: int, run_at: float, kind: str) -> None:
        """Forget a record (a heads-up that could not be posted is tried again)."""
        self.db.execute(
            "DELETE FROM schedule_runs WHERE schedule_id = ? AND run_at = ? AND kind = ?",
            [schedule_id, run_at, kind],
        )

    def runs(self, schedule_id: int) -> list[tuple[float, str, str]]:
        """(slot, kind, outcome) of a schedule, oldest first."""
        rows = self.db.execute(
            "SELECT run_at, kind, outcome FROM schedule_runs WHERE schedule_id = ? ORDER BY id",
            [schedule_id],
        ).fetchall()
        return [(r[0], r[1], r[2]) for r in rows]


# -- the scheduler ---------------------------------------------------------------------


class ScheduleRunner(Protocol):
    """Runs the command of a due schedule through the command pipeline; bot/ injects it.

    The implementation (commands/scheduled.py, `PipelineRunner`) checks the
    channel's rights again, resolves a refresh's newest snapshot, and runs the
    command line with `preapproved=True`; it answers a refusal or an error as a
    failed Reply and never raises.
    """

    async def run_schedule(self, schedule: Schedule) -> Reply:
        """The answer of this run of `schedule`'s command."""
        ...


def unschedule_action(schedule: Schedule, slash: str) -> Action:
    """The Unschedule button of a schedule."""
    return Action(label="Unschedule", command=f"{slash} unschedule {schedule.id}")


def heads_up_actions(schedule: Schedule, slash: str) -> list[Action]:
    """The two buttons of a heads-up."""
    sid = str(schedule.id)
    return [
        Action(
            label="Skip tonight",
            command=f"{slash} schedule-skip {sid}",
            action_id="schedule.skip",
            value=sid,
        ),
        Action(
            label="Keep running 2 h",
            command=f"{slash} schedule-extend {sid}",
            action_id="schedule.extend",
            value=sid,
        ),
    ]


class Scheduler:
    """Runs due schedules through a ScheduleRunner and reports them through a Notifier.

    `db` is the SQLite file (the schedules tables), `audit` where runs, skips
    and misses are recorded, `slash_command` how its buttons' commands start.
    """

    def __init__(
        self,
        runner: ScheduleRunner,
        notifier: Notifier,
        db: sqlite_utils.Database,
        audit: AuditLog,
        *,
        slash_command: str = "/gdb",
        tracker: TrackerPort | None = None,
        clock: Callable[[], float] = time.time,
        grace_seconds: float = 900.0,
        heads_up_minutes: float = 15.0,
        tick_seconds: float = 20.0,
    ) -> None:
        self.runner = runner
        self.notifier = notifier
        self.audit = audit
        self.slash_command = slash_command
        self.tracker = tracker
        self.clock = clock
        self.grace_seconds = grace_seconds
        self.heads_up_minutes = heads_up_minutes
        self.tick_seconds = tick_seconds
        self.store = ScheduleStore(db, clock)
        self._loop = BackgroundLoop("graphops-scheduler", self.run_once, tick_seconds)

    # -- the loop ------------------------------------------------------------------

    async def run_once(self) -> int:
        """Look at every active schedule once; returns how many commands ran."""
        ran = 0
        for schedule in self.store.active():
            try:
                ran += await self._visit(schedule)
            except sqlite3.OperationalError as exc:  # another process holds the lock
                log.warning("schedule %s waits for the store: %s", schedule.id, exc)
            except Exception:  # one broken schedule must not stop the others
                log.exception("schedule %s failed", schedule.id)
        return ran

    def start(self) -> None:
        """Run in the background; missed runs are handled on the first pass."""
        self._loop.start()

    async def stop(self) -> None:
        """Stop the background loop."""
        await self._loop.stop()

    # -- one schedule --------------------------------------------------------------

    async def _visit(self, schedule: Schedule) -> int:
        now = self.clock()
        due = schedule.due_at
        if due is None or schedule.next_run_at is None:
            return 0
        if now < due:
            await self._heads_up(schedule, due, now)
            return 0
        following = schedule.rule.next_after(now)
        if schedule.skipped:
            if self.store.advance(schedule, following, ran_at=None):
                self.store.log(schedule.id, schedule.next_run_at, "skipped", "asked")
                self._audit(schedule, "skipped", planned=schedule.next_run_at)
                await self._post(
                    schedule,
                    Reply(
                        status="info",
                        title=f"Skipped as asked: scheduled {schedule.what()}",
                        text=f"Next run: {self._when(following, schedule.tz)}.",
                    ),
                )
            return 0
        if now - due > self.grace_seconds:
            await self._missed(schedule, due, now, following)
            return 0
        if not self.store.advance(schedule, following, ran_at=now):
            return 0  # another scheduler took this run
        await self._run(schedule, due, following)
        return 1

    async def _heads_up(self, schedule: Schedule, due: float, now: float) -> None:
        if (
            schedule.verb not in HEADS_UP_VERBS
            or self.heads_up_minutes <= 0
            or schedule.skipped
            or due - now > self.heads_up_minutes * 60
        ):
            return
        if not self.store.log(schedule.id, due, "headsup"):
            return  # posted before
        minutes = max(1, round((due - now) / 60))
        reply = Reply(
            status="info",
            title=f"Heads-up: {schedule.what()} in {minutes} min",
            text=(
                f"At {self._when(due, schedule.tz)}, by schedule {schedule.id} "
                f"({schedule.rule.describe()}) of {UserRef(schedule.owner)}. "
                "Skip tonight's run, or keep it running 2 more hours."
            ),
            actions=heads_up_actions(schedule, self.slash_command),
        )
        try:
            await self.notifier.post(schedule.channel, reply)
        except Exception:
            log.warning("heads-up of schedule %s not posted; will retry", schedule.id)
            self.store.unlog(schedule.id, due, "headsup")

    async def _missed(self, schedule: Schedule, due: float, now: float, following: float) -> None:
        if not self.store.advance(schedule, following, ran_at=None):
            return
        count, slot = 0, schedule.next_run_at or due
        while slot <= now and count < 1000:
            count += 1
            slot = schedule.rule.next_after(slot)
        self.store.log(schedule.id, due, "missed", f"{count} missed")
        self._audit(schedule, "missed", planned=due, count=count)
        runs = "1 run was" if count == 1 else f"{count} runs were"
        await self._post(
            schedule,
            Reply(
                status="info",
                title=f"Skipped: scheduled {schedule.what()} of {self._when(due, schedule.tz)}",
                text=(
                    f"The bot was not running then and it is now more than "
                    f"{round(self.grace_seconds / 60)} min late, so it did not run "
                    f"({runs} missed). Next run: {self._when(following, schedule.tz)}."
                ),
            ),
        )

    async def _run(self, schedule: Schedule, due: float, following: float) -> None:
        reply = await self.runner.run_schedule(schedule)
        posted = self._report(schedule, reply, following)
        ts = await self._post(schedule, posted)
        if self.tracker is not None and not reply.failed:
            for ref in reply.operations:
                await self.tracker.track(
                    ref, channel=schedule.channel, thread_ts=ts, user=schedule.owner, origin=posted
                )
        self.store.log(schedule.id, due, "run", reply.status, title=reply.title or "")
        self._audit(schedule, reply.status, planned=due, title=reply.title or "")

    def _report(self, schedule: Schedule, reply: Reply, following: float) -> Reply:
        origin = (
            f"Schedule {schedule.id} ({schedule.rule.describe()}) of {UserRef(schedule.owner)}."
        )
        later = f"Next run: {self._when(following, schedule.tz)}."
        if reply.failed:
            return Reply(
                status=reply.status,
                title=f"Scheduled {schedule.what()} did not run",
                text=(
                    f"{reply.text}\n{origin} The schedule stays active; {later} "
                    f"`{self.slash_command} unschedule {schedule.id}` removes it."
                ),
                actions=[unschedule_action(schedule, self.slash_command)],
            )
        posted = reply.model_copy(deep=True)
        posted.visibility = "channel"
        posted.title = f"Scheduled: {reply.title or schedule.what()}"
        posted.text = f"{reply.text}\n{origin} {later}".strip()
        return posted

    async def _post(self, schedule: Schedule, reply: Reply) -> str | None:
        try:
            return await self.notifier.post(schedule.channel, reply)
        except Exception:
            log.warning("could not post for schedule %s", schedule.id, exc_info=True)
            return None

    def _audit(self, schedule: Schedule, outcome: str, **detail: Any) -> None:
        self.audit.record(
            "operation",
            user=schedule.owner,
            channel=schedule.channel,
            provider=schedule.provider or None,
            environment=schedule.environment_name or None,
            database=schedule.db,
            verb=f"schedule {schedule.verb}",
            outcome=outcome,
            detail={"schedule": schedule.id, "when": schedule.rule.describe(), **detail},
        )

    @staticmethod
    def _when(epoch: float, tz: str) -> str:
        return f"{show_time(epoch, tz)} ({show_utc(epoch)})"
