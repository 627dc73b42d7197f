"""Make tests/operations/data/graphops-before-issue-19.sqlite with the code of 7b21d8f.

Run on a checkout of that commit (`PYTHONPATH=<checkout> python make_before_issue_19.py <path>`);
the file keeps one row in each table a bot writes, under that commit's migrations.
"""

import sys

from bot.store import open_database
from operations.schedules import ScheduleStore
from operations.store import Outbox, SwitchBacks
from operations.watch import WatchStore
from operations.when import parse_when
from permissions.approvals import ApprovalStore
from permissions.audit import AuditLog
from permissions.policy import Target
from permissions.roles import Role
from permissions.store import PermissionStore

ENV = {"environment_id": "env-dev", "environment_name": "development"}

db = open_database(sys.argv[1])
audit = AuditLog(db)
PermissionStore(db, admins=frozenset({"U0ADMIN"})).grant(
    "C0DEV", "console", "development", Role.ADMIN, by="U0ADMIN"
)
ApprovalStore(db, audit=audit).create(
    requester="U0ALICE",
    channel="C0DEV",
    provider="console",
    verb="terminate",
    target="sandbox-db",
    args={},
    summary="terminate sandbox-db",
    required_role=Role.ADMIN,
    protected=False,
    ttl_seconds=900,
    **ENV,
)
audit.record("command", user="U0ALICE", channel="C0DEV", verb="list", detail={"text": "list"})
Outbox(db).put(None, "watch:1:1", "C0DEV", {"status": "info", "text": "sandbox-db: paused"})
db.execute(
    "INSERT INTO tracked_operations (provider, database_id, root_operation_id, operation_id, "
    "label, channel, started_at, next_poll_at) "
    "VALUES ('console', 'db-1', 'op-1', 'op-1', 'restart sandbox-db', 'C0DEV', 1, 1)"
)
SwitchBacks(db).remember(
    60,
    provider="console",
    production=False,
    origin_id="db-1",
    origin_name="orders-db",
    target_id="db-2",
    target_name="orders-replica",
    channel="C0DEV",
    **ENV,
)
WatchStore(db).add(
    provider="console",
    database_id="db-1",
    database_name="sandbox-db",
    channel="C0DEV",
    user="U0ALICE",
    **ENV,
)
ScheduleStore(db).create(
    owner="U0ALICE",
    channel="C0DEV",
    verb="pause",
    db="sandbox-db",
    when=parse_when(["daily", "20:00"], "UTC"),
    target=Target("console", "env-dev", "development", False),
)
db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
db.execute("PRAGMA journal_mode=DELETE")
db.execute("VACUUM")
print(db.execute("SELECT migration_set, name FROM _sqlite_migrations").fetchall())
db.close()
