"""Store size over 30 simulated days: one watch, an incident channel, 1,000 commands a day.

The clock is simulated (no sleeping): every day, through the real stores on a real
SQLite file opened as `graphops serve` opens it (WAL, incremental vacuum):

- 1,000 commands, each audited as one `command` row, one `decision` row and its
  API requests, one row each (1.25 on average: every fourth command looks a name up);
- one in ten is a restart, followed by the tracker: a tracked operation, 3 step
  messages, a final message and a status update in the outbox, sent at once, and
  6 tracker polls (background: counted, not a row each);
- one in fifty needs an approval (approved, then executed; one in five of those
  is denied instead);
- one watch polled every 30 s and an incident channel scanned on the same pass:
  2 background requests per pass, 5,760 a day;
- the retention pass (operations/retention.py) every simulated hour, with the
  periods of `[retention]` (the defaults, or `--audit-days` etc.).

Figures: the file size (after a WAL checkpoint) and rows per table at the end of
each day. `--keep-everything` runs the same days with neither pruning nor poll
aggregation (every background request a row, as before issue 17), for comparison.

Run from the repo root:  .venv/bin/python bench/storage.py [--days 30] [--audit-days 180]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any, Literal

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import emit, table, workdir

TABLES = ("audit", "outbox", "tracked_operations", "approvals", "audit_poll_counts")
HOUR = 3600.0


class SimClock:
    """A simulated clock (epoch seconds) that only moves when told."""

    def __init__(self, start: float) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


def run(args: argparse.Namespace) -> dict[str, Any]:
    import asyncio

    from bot.store import open_database
    from operations.retention import Retention, RetentionPolicy, enable_incremental_vacuum
    from operations.store import Outbox
    from permissions.approvals import ApprovalStore
    from permissions.audit import AuditLog
    from permissions.roles import Role

    tmp = workdir()
    path = Path(tmp.name) / "graphops.sqlite3"
    db = open_database(path)
    enable_incremental_vacuum(db)
    clock = SimClock(1_767_225_600.0)  # 2026-01-01T00:00Z
    audit = AuditLog(db, clock=clock, poll_interval_seconds=args.poll_summary_minutes * 60)
    outbox = Outbox(db, clock)
    approvals = ApprovalStore(db, clock=clock, audit=audit)
    policy = RetentionPolicy(
        audit_days=args.audit_days,
        sent_messages_days=args.sent_messages_days,
        finished_operations_days=args.finished_operations_days,
        decided_approvals_days=args.decided_approvals_days,
    )
    retention = Retention(db, audit, policy, approvals=approvals, clock=clock)
    commands = args.commands
    per_hour = commands / 24
    days: list[dict[str, Any]] = []
    started = time.perf_counter()

    def background(source: str, path_: str) -> None:
        if args.keep_everything:
            audit.api_call("console", "GET", path_, 200, 180.0)
        else:
            audit.background_call(source, "console", "GET", 200, 180.0)

    n = 0
    for day in range(1, args.days + 1):
        for hour in range(24):
            hour_start = clock.now
            # Watch and incident scan: a pass every 30 s.
            for tick in range(120):
                clock.now = hour_start + tick * 30
                background("watch", "/databases/db-1")
                background("watch", "/environments")
            # Commands spread over the hour.
            for k in range(int(per_hour * (hour + 1)) - int(per_hour * hour)):
                clock.now = hour_start + k * (HOUR / per_hour)
                n += 1
                user, channel = f"U0USER{n % 20:02d}", "C0DEV"
                verb = "restart" if n % 10 == 0 else ("show" if n % 2 else "list")
                audit.record("command", user=user, channel=channel, verb=verb, outcome="ok")
                audit.record("decision", user=user, channel=channel, verb=verb, outcome="allow")
                for _ in range(2 if n % 4 == 0 else 1):
                    audit.api_call("console", "GET", "/databases/db-1", 200, 180.0, user=user)
                if n % 50 == 0:
                    approval = approvals.create(
                        requester=user,
                        channel=channel,
                        provider="console",
                        environment_id="env-prod",
                        environment_name="production",
                        verb="restart",
                        target="orders-db",
                        args={},
                        summary="restart orders-db",
                        required_role=Role.OPERATOR,
                    )
                    decision: Literal["approve", "deny"] = "deny" if n % 250 == 0 else "approve"
                    approvals.claim(approval.id, "U0LEAD", decision)
                    if decision == "approve":
                        approvals.mark_executed(approval.id, "ok")
                if verb == "restart":
                    cursor = db.execute(
                        "INSERT INTO tracked_operations (provider, database_id, "
                        "root_operation_id, operation_id, label, verb, channel, thread_ts, "
                        "state, started_at, next_poll_at, finished_at) VALUES ('console', "
                        "'db-1', ?, ?, 'restart orders-db', 'restart', ?, ?, 'finished', ?, "
                        "?, ?)",
                        [
                            f"op-{n}",
                            f"op-{n}",
                            channel,
                            f"{clock.now:.6f}",
                            clock.now,
                            clock.now,
                            clock.now + 45,
                        ],
                    )
                    tracked = int(cursor.lastrowid or 0)
                    for key in ("step:0", "step:1", "step:2", "final", "status"):
                        outbox.put(
                            tracked,
                            key,
                            channel,
                            {"status": "info", "text": f"restart orders-db: {key} · 15s"},
                            thread_ts=f"{clock.now:.6f}",
                        )
                    outbox.mark_sent([row.id for row in outbox.pending(limit=10)])
                    for _ in range(6):
                        background("tracker", "/operations/op")
            clock.now = hour_start + HOUR
            if not args.keep_everything:
                asyncio.run(retention.run_once())
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        size = path.stat().st_size
        rows = {t: db.execute(f"SELECT COUNT(*) FROM [{t}]").fetchone()[0] for t in TABLES}
        days.append({"day": day, "mb": size / 1e6, **rows})
    elapsed = time.perf_counter() - started
    db.close()
    tmp.cleanup()
    return {"days": days, "seconds": elapsed, "commands": commands, "policy": policy}


def report(r: dict[str, Any], args: argparse.Namespace) -> None:
    days = r["days"]
    mode = "keeping everything (before issue 17)" if args.keep_everything else "with retention"
    print(
        f"storage: {len(days)} simulated days, {r['commands']} commands a day, one watch and "
        f"an incident channel polled every 30 s, {mode} ({r['seconds']:.0f} s to run)"
    )
    if not args.keep_everything:
        print(r["policy"].describe())
    print(
        table(
            ["day", "store MB", *TABLES],
            [[d["day"], round(d["mb"], 2), *(d[t] for t in TABLES)] for d in days],
        )
    )
    last = days[-1]
    week = days[-8] if len(days) >= 8 else days[0]
    growth = (last["mb"] - week["mb"]) / max(1, last["day"] - week["day"])
    audit_per_day = (last["audit"] - week["audit"]) / max(1, last["day"] - week["day"])
    bytes_per_audit_row = last["mb"] * 1e6 / max(1, last["audit"])
    # Once audit rows are pruned too, the store holds audit_days of them: its steady size.
    steady_mb = (
        last["mb"]
        if last["day"] > args.audit_days
        else audit_per_day * args.audit_days * bytes_per_audit_row / 1e6
    )
    # Flat: once every period has passed, the last week adds under 1% of the size a day.
    longest = max(
        args.audit_days,
        args.sent_messages_days,
        args.finished_operations_days,
        args.decided_approvals_days,
    )
    flat = growth < 0.01 * last["mb"] if last["day"] > longest + 7 else None
    print(
        f"last week: +{growth:.2f} MB/day, {audit_per_day:.0f} audit rows/day; "
        f"~{bytes_per_audit_row:.0f} bytes per audit row all included; flat after the "
        f"retention periods: {'not reached in this run' if flat is None else flat}"
    )
    if not args.keep_everything:
        print(
            f"steady size once audit rows reach {args.audit_days:g} days: ~{steady_mb:.0f} MB "
            f"(target < 200 MB: {'met' if steady_mb < 200 else 'MISSED'})"
        )
    emit(
        "storage",
        {
            "days": len(days),
            "commands_per_day": r["commands"],
            "keep_everything": args.keep_everything,
            "retention_days": {
                "audit": args.audit_days,
                "sent_messages": args.sent_messages_days,
                "finished_operations": args.finished_operations_days,
                "decided_approvals": args.decided_approvals_days,
            },
            "store_mb_by_day": [round(d["mb"], 2) for d in days],
            "rows_last_day": {t: last[t] for t in TABLES},
            "growth_last_week_mb_per_day": round(growth, 3),
            "audit_rows_per_day": round(audit_per_day),
            "bytes_per_audit_row": round(bytes_per_audit_row),
            "steady_state_mb": None if args.keep_everything else round(steady_mb, 1),
            "targets": {
                "store_lt_200mb_at_end": last["mb"] < 200,
                "steady_state_lt_200mb": None if args.keep_everything else steady_mb < 200,
                "flat_after_retention": None if args.keep_everything else flat,
            },
        },
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--commands", type=int, default=1000, help="commands a day")
    parser.add_argument("--audit-days", type=float, default=180)
    parser.add_argument("--sent-messages-days", type=float, default=7)
    parser.add_argument("--finished-operations-days", type=float, default=30)
    parser.add_argument("--decided-approvals-days", type=float, default=30)
    parser.add_argument("--poll-summary-minutes", type=float, default=15)
    parser.add_argument("--keep-everything", action="store_true")
    args = parser.parse_args()
    report(run(args), args)
