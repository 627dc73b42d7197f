"""Retention (operations/retention.py): what is pruned, what never is; background polls
audited in aggregate (permissions/audit.py); incremental vacuum on new and old stores."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import sqlite_utils

from bot.store import open_database
from bot.wiring import build_bot
from core.audit_context import acting_as
from core.invocation import Invocation
from operations.migrations import migrations as operation_migrations
from operations.retention import DAY, Retention, RetentionPolicy, auto_vacuum
from operations.watch import Watcher
from permissions.audit import AuditLog
from permissions.migrations import migrations as permission_migrations
from simulators.base import ManualClock
from tests.support import ENVIRON, make_config

BEFORE = Path(__file__).parent / "data" / "graphops-before-issue-19.sqlite"
POLICY = RetentionPolicy(
    audit_days=180, sent_messages_days=7, finished_operations_days=30, decided_approvals_days=30
)


def _tracked(db: sqlite_utils.Database, name: str, state: str, finished_at: float | None) -> int:
    cursor = db.execute(
        "INSERT INTO tracked_operations (provider, database_id, root_operation_id, "
        "operation_id, label, channel, state, started_at, next_poll_at, finished_at) "
        "VALUES ('console', 'db-1', ?, ?, ?, 'C0DEV', ?, 0, 0, ?)",
        [name, name, name, state, finished_at],
    )
    return int(cursor.lastrowid or 0)


def _message(db: sqlite_utils.Database, tracked: int | None, key: str, sent: float | None) -> None:
    db.execute(
        "INSERT INTO outbox (tracked_id, key, channel, reply, created_at, sent_at) "
        "VALUES (?, ?, 'C0DEV', '{}', 0, ?)",
        [tracked, key, sent],
    )


def _approval(db: sqlite_utils.Database, ident: str, state: str, at: float) -> None:
    db.execute(
        "INSERT INTO approvals (id, requester, channel, provider, environment_id, "
        "environment_name, verb, required_role, created_at, expires_at, state, decided_at, "
        "finished_at) VALUES (?, 'U0ALICE', 'C0DEV', 'console', 'env-1', 'staging', "
        "'restart', 2, ?, ?, ?, ?, ?)",
        [
            ident,
            at,
            at + 900,
            state,
            at if state != "pending" and state != "expired" else None,
            at if state in ("executed", "failed") else None,
        ],
    )


def _names(db: sqlite_utils.Database, sql: str) -> set[Any]:
    return {row[0] for row in db.execute(sql).fetchall()}


def test_prune_deletes_exactly_what_is_past_its_period(tmp_path: Path) -> None:
    clock = ManualClock(1_000_000.0)
    db = open_database(tmp_path / "store.sqlite3")
    audit = AuditLog(db, clock=clock)
    retention = Retention(db, audit, POLICY, clock=clock)
    start = clock()
    # Day 0: everything that will be old.
    audit.record("command", user="U0OLD", verb="restart")
    done_old = _tracked(db, "done-old", "finished", start)
    _tracked(db, "lost-old", "lost", start)
    running_old = _tracked(db, "running-old", "running", None)
    unsent_old = _tracked(db, "unsent-old", "failed", start)
    _message(db, done_old, "final", sent=start)
    _message(db, running_old, "step:0", sent=start)  # its key keeps a step from repeating
    _message(db, unsent_old, "final", sent=None)  # not delivered yet: never deleted
    _message(db, None, "watch:1:1", sent=start)
    _approval(db, "pending-old", "pending", start)  # pending past its expiry: kept
    _approval(db, "approved-old", "approved", start)  # approved work in progress: kept
    _approval(db, "denied-old", "denied", start)
    _approval(db, "expired-old", "expired", start)
    _approval(db, "executed-old", "executed", start)
    _approval(db, "failed-old", "failed", start)
    # 20 days later: recent rows.
    clock.advance(20 * DAY)
    audit.record("command", user="U0NEW", verb="restart")
    done_new = _tracked(db, "done-new", "finished", clock())
    _message(db, done_new, "final", sent=clock())
    _approval(db, "denied-new", "denied", clock())

    clock.advance(10 * DAY)
    _message(db, None, "watch:1:2", sent=clock())  # day 30: sent yesterday, kept
    clock.advance(DAY)  # day 31: messages sent before day 24, operations ended before day 1
    pruned = retention.prune()
    assert _names(db, "SELECT root_operation_id FROM tracked_operations") == {
        "running-old",
        "unsent-old",
        "done-new",
    }
    assert _names(db, "SELECT key || ':' || COALESCE(tracked_id, 0) FROM outbox") == {
        f"step:0:{running_old}",
        f"final:{unsent_old}",
        "watch:1:2:0",
    }
    assert _names(db, "SELECT id FROM approvals") == {
        "pending-old",
        "approved-old",
        "denied-new",
    }
    assert _names(db, "SELECT user FROM audit") == {"U0OLD", "U0NEW"}  # 180 days
    assert (pruned.tracked_operations, pruned.outbox, pruned.approvals, pruned.audit) == (
        2,
        3,
        4,
        0,
    )

    clock.advance(150 * DAY)  # day 181: the first audit row is past 180 days
    retention.prune()
    assert _names(db, "SELECT user FROM audit") == {"U0NEW"}
    assert "running-old" in _names(db, "SELECT root_operation_id FROM tracked_operations")
    assert {"pending-old", "approved-old"} <= _names(db, "SELECT id FROM approvals")
    db.close()


async def test_run_once_prunes_at_most_every_period_and_sums_ended_intervals(
    tmp_path: Path,
) -> None:
    clock = ManualClock(900.0 * 100)
    db = open_database(tmp_path / "store.sqlite3")
    audit = AuditLog(db, clock=clock, poll_interval_seconds=900)
    retention = Retention(
        db, audit, RetentionPolicy(audit_days=1, prune_every_seconds=3600), clock=clock
    )
    audit.record("command", user="U0OLD")
    clock.advance(2 * DAY)
    first = await retention.run_once()
    assert first.audit == 1  # the first pass prunes at once
    audit.record("command", user="U0MID")
    clock.advance(DAY + 1)
    assert (await retention.run_once()).audit == 1  # more than an hour later: again
    audit.record("command", user="U0LAST")
    clock.advance(DAY + 1)
    # Not an hour since the last prune: nothing deleted yet, although U0LAST is past.
    clock.advance(-3000)
    assert (await retention.run_once()).audit == 0
    db.close()


def test_background_polls_become_one_row_per_interval_with_counts(tmp_path: Path) -> None:
    clock = ManualClock(9000.0)  # the start of a 15-minute interval
    db = open_database(tmp_path / "store.sqlite3")
    audit = AuditLog(db, clock=clock, poll_interval_seconds=900)
    for _ in range(40):
        audit.background_call("tracker", "console", "get", 200, 12.0)
        clock.advance(10)  # 40 polls over 400 s: one interval
    audit.background_call("tracker", "console", "GET", 503, 30.0)
    audit.background_call("watch", "console", "GET", None, 5000.0)
    assert audit.query(kind="api_call") == []  # no row per poll
    assert audit.summarize_polls() == 0  # the interval has not ended
    clock.advance(900)
    audit.background_call("watch", "console", "GET", 200, 8.0)  # the next interval
    assert audit.summarize_polls() == 1
    rows = audit.query(kind="api_call")
    assert len(rows) == 1
    row = rows[0]
    assert (row["verb"], row["outcome"], row["user"], row["ts"]) == (
        "background polls",
        "summary",
        None,
        9900.0,
    )
    assert row["detail"]["requests"] == 42
    counts = {
        (c["source"], c["method"], c["outcome"]): (c["count"], c["ms_max"])
        for c in row["detail"]["counts"]
    }
    assert counts == {
        ("tracker", "GET", "200"): (40, 12.0),
        ("tracker", "GET", "503"): (1, 30.0),
        ("watch", "GET", "no-response"): (1, 5000.0),
    }
    # Counts are in the store, not in memory: a new AuditLog (a restarted bot) sums them.
    again = AuditLog(db, clock=clock, poll_interval_seconds=900)
    assert again.summarize_polls(everything=True) == 1
    assert again.query(kind="api_call")[-1]["detail"]["requests"] == 1
    assert db.execute("SELECT COUNT(*) FROM audit_poll_counts").fetchone()[0] == 0
    db.close()


async def test_watch_polls_are_counted_and_human_calls_keep_their_rows(bot, console_sim):  # type: ignore[no-untyped-def]
    reply = await bot.run(Invocation(user="U0ALICE", channel="C0DEV", text="watch sandbox-db"))
    assert reply.status == "ok"
    human = [r for r in bot.services.audit.query(kind="api_call", limit=1000)]
    assert human and all(r["user"] == "U0ALICE" for r in human)  # one row per request
    watcher = Watcher(bot.db, bot.services.providers, permissions=bot.services.permissions)
    for _ in range(3):
        await watcher.run_once()
    rows = bot.services.audit.query(kind="api_call", limit=1000)
    assert len(rows) == len(human)  # the polls added no row of their own
    counted = bot.db.execute(
        "SELECT SUM(count) FROM audit_poll_counts WHERE source = 'watch'"
    ).fetchone()[0]
    assert counted == len(console_sim.requests) - len(human)
    assert counted >= 3
    # A call made for a person inside a poll's context is still the person's.
    with acting_as(Invocation(user="U0BOB", channel="C0DEV", text="status sandbox-db")):
        await bot.run(Invocation(user="U0BOB", channel="C0DEV", text="status sandbox-db"))
    assert any(r["user"] == "U0BOB" for r in bot.services.audit.query(kind="api_call"))
    bot.services.audit.summarize_polls(everything=True)
    summary = bot.services.audit.query(kind="api_call", limit=1)[0]
    assert summary["verb"] == "background polls"
    assert summary["detail"]["requests"] == counted


async def test_an_old_store_gets_the_new_tables_and_incremental_vacuum(tmp_path: Path) -> None:
    copy = tmp_path / "graphops.sqlite3"
    shutil.copy(BEFORE, copy)
    old = sqlite_utils.Database(copy)
    assert auto_vacuum(old) == 0
    audit_rows = old.execute("SELECT COUNT(*) FROM audit").fetchone()[0]
    old.close()
    bot = build_bot(make_config("http://127.0.0.1:9", copy), environ=ENVIRON)
    try:
        assert auto_vacuum(bot.db) == 2  # converted by one VACUUM
        assert "m010_retention_index" in {m.name for m in operation_migrations.applied(bot.db)}
        assert "m004_audit_poll_counts" in {m.name for m in permission_migrations.applied(bot.db)}
        assert bot.db.execute("SELECT COUNT(*) FROM audit").fetchone()[0] == audit_rows
        assert "audit_poll_counts" in bot.db.table_names()
    finally:
        await bot.aclose()
    new = open_database(tmp_path / "new.sqlite3")
    new.execute("CREATE TABLE t (x)")
    assert auto_vacuum(new) == 2  # set before the first table
    new.close()


def test_prune_gives_space_back(tmp_path: Path) -> None:
    clock = ManualClock(1_000_000.0)
    path = tmp_path / "store.sqlite3"
    db = open_database(path)
    audit = AuditLog(db, clock=clock)
    retention = Retention(db, audit, RetentionPolicy(audit_days=1), clock=clock)
    with db.atomic():
        for n in range(3000):
            audit.record("command", user="U0X", detail={"pad": "x" * 500, "n": n})
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    pages = db.execute("PRAGMA page_count").fetchone()[0]
    clock.advance(2 * DAY)
    assert retention.prune().audit == 3000
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    assert db.execute("PRAGMA page_count").fetchone()[0] < pages / 4
    assert db.execute("PRAGMA freelist_count").fetchone()[0] == 0
    db.close()


def test_importing_the_cli_imports_no_heavy_library() -> None:
    code = (
        "import json, sys, bot.cli; "
        "print(json.dumps(sorted(m for m in ('sqlite_utils', 'pydantic', 'httpx', "
        "'slack_bolt', 'slack_sdk', 'aiohttp', 'permissions.policy_file') "
        "if m in sys.modules)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert json.loads(out) == []


def test_graphops_audit_says_what_is_kept_and_for_how_long(tmp_path: Path) -> None:
    import io

    from bot import access_cli, cli

    db = open_database(tmp_path / "store.sqlite3")
    AuditLog(db).record("command", user="U0ALICE", verb="restart")
    out = io.StringIO()
    code = access_cli.run(
        cli._parser().parse_args(["audit"]),
        db,
        frozenset(),
        out=out,
        retention=RetentionPolicy(audit_days=90).describe(),
    )
    assert code == 0
    text = out.getvalue()
    assert "U0ALICE" in text and "audit rows 90 days" in text
    assert "pending approvals" in text
    db.close()
