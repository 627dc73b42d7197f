"""operations/migrations.py: one migration set for the room, and old files still open.

`data/graphops-before-issue-19.sqlite` was made by the code of commit 7b21d8f
(`data/make_before_issue_19.py`, run on that commit), when the tables of this
room came from three places: `operations` m001-m002 (store.py), m003-m004
(watch.py, registered only if watch.py was imported) and a `schedules` set of
its own.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import sqlite_utils

from bot.store import open_database
from bot.wiring import build_bot
from operations.migrations import migrate, migrations
from operations.schedules import ScheduleStore
from operations.store import Outbox, SwitchBacks
from operations.watch import WatchStore
from permissions.approvals import ApprovalStore
from tests.support import ENVIRON, make_config

BEFORE = Path(__file__).parent / "data" / "graphops-before-issue-19.sqlite"
TABLES = {
    "tracked_operations",
    "outbox",
    "switch_backs",
    "watches",
    "incident_flags",
    "schedules",
    "schedule_runs",
    "accepted_requests",
    "inbox_spool_key",
}
STEPS = [
    "m001_tracked_and_outbox",
    "m002_switch_backs",
    "m003_watches",
    "m004_incident_flags",
    "m005_schedules",
    "m006_tracked_last_seen",
    "m007_watch_failures",
    "m008_approver_and_used_switch_backs",
    "m009_accepted_requests",
    "m010_retention_index",
    "m011_spooled_requests",
    "m012_spool_mac_key",
    "m013_posted_answers",
    "m014_request_threads",
]


@pytest.fixture
def old_file(tmp_path: Path) -> Path:
    copy = tmp_path / "graphops.sqlite3"
    shutil.copy(BEFORE, copy)
    return copy


def test_an_empty_file_gets_every_table_in_order(tmp_path: Path) -> None:
    db = sqlite_utils.Database(tmp_path / "new.sqlite3")
    migrate(db)
    assert set(db.table_names()) >= TABLES
    assert [m.name for m in migrations.applied(db)] == STEPS
    schema = db.schema
    migrate(db)
    assert db.schema == schema and migrations.pending(db) == []


@pytest.mark.parametrize("store", [Outbox, SwitchBacks, WatchStore, ScheduleStore])
def test_any_store_alone_migrates_the_whole_room(tmp_path: Path, store: type) -> None:
    db = sqlite_utils.Database(tmp_path / "alone.sqlite3")
    store(db)
    assert set(db.table_names()) >= TABLES


async def test_a_file_made_before_issue_19_opens_migrates_and_keeps_its_rows(
    old_file: Path,
) -> None:
    before = sqlite_utils.Database(old_file)
    sets = before.execute("SELECT DISTINCT migration_set FROM _sqlite_migrations").fetchall()
    assert {row[0] for row in sets} == {"operations", "permissions", "schedules"}
    before.close()

    bot = build_bot(make_config("http://127.0.0.1:9", old_file), environ=ENVIRON)
    try:
        db = bot.db
        assert [m.name for m in migrations.applied(db)] == STEPS
        schedule = ScheduleStore(db).get(1)
        assert schedule is not None and schedule.what() == "pause sandbox-db"
        assert [w.database_name for w in WatchStore(db).active("C0DEV")] == ["sandbox-db"]
        assert [row.key for row in Outbox(db).pending()] == ["watch:1:1"]
        pending = ApprovalStore(db).pending("C0DEV")
        assert [a.summary for a in pending] == ["terminate sandbox-db"]
        assert bot.services.permissions.policy_for("C0DEV").bindings
        history = bot.services.history
        assert history is not None
        assert [op.label for op in history.for_database("console", "db-1")] == [
            "restart sandbox-db"
        ]
    finally:
        await bot.aclose()


def test_the_old_file_migrates_once(old_file: Path) -> None:
    db = open_database(old_file)
    migrate(db)
    schema = db.schema
    migrate(db)
    assert db.schema == schema
    applied = db.execute(
        "SELECT COUNT(*) FROM _sqlite_migrations WHERE migration_set = 'operations'"
    ).fetchone()
    assert applied[0] == len(STEPS)
    db.close()
