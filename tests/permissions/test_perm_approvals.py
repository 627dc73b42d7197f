"""ApprovalStore: states, expiry with a controllable clock, at-most-once claims."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
import sqlite_utils

from core.refs import plain
from permissions.approvals import ApprovalStore
from permissions.audit import AuditLog
from permissions.roles import Role


def _create(approvals: ApprovalStore, **kw: object) -> str:
    approval = approvals.create(
        requester=str(kw.get("requester", "U0REQ")),
        channel="C0DEV",
        provider="console",
        environment_id="env-prd-1",
        environment_name="production",
        verb="terminate",
        target="orders-db",
        args={"database_id": "db-1"},
        summary="terminate orders-db",
        required_role=Role.ADMIN,
        protected=True,
        ttl_seconds=kw.get("ttl_seconds"),  # type: ignore[arg-type]
    )
    return approval.id


@pytest.fixture
def approvals(db: sqlite_utils.Database, clock: Any) -> ApprovalStore:
    return ApprovalStore(db, clock=clock, default_ttl_seconds=900)


def test_create_and_get(approvals: ApprovalStore, clock: Any) -> None:
    approval_id = _create(approvals)
    assert len(approval_id) >= 16
    approval = approvals.get(approval_id)
    assert approval is not None
    assert approval.state == "pending"
    assert approval.args == {"database_id": "db-1"}
    assert approval.expires_at == clock.now + 900
    assert approval.required_role is Role.ADMIN
    assert approval.protected is True
    assert approvals.get("nope") is None
    assert _create(approvals) != approval_id


def test_claim_once_then_already_decided(approvals: ApprovalStore, clock: Any) -> None:
    approval_id = _create(approvals)
    first = approvals.claim(approval_id, "U0ALICE", "approve")
    assert first.claimed
    assert first.approval is not None and first.approval.state == "approved"
    clock.advance(5)
    second = approvals.claim(approval_id, "U0BOB", "deny")
    assert not second.claimed
    assert second.status == "already_decided"
    assert "already approved by @U0ALICE" in plain(second.message)
    stored = approvals.get(approval_id)
    assert stored is not None and stored.decided_by == "U0ALICE"


def test_deny(approvals: ApprovalStore) -> None:
    approval_id = _create(approvals)
    assert approvals.claim(approval_id, "U0BOB", "deny").claimed
    assert approvals.get(approval_id).state == "denied"  # type: ignore[union-attr]
    again = approvals.claim(approval_id, "U0ALICE", "approve")
    assert again.status == "already_decided"
    assert "already denied by @U0BOB" in plain(again.message)
    assert approvals.mark_executed(approval_id, "done") is False


def test_unknown_id(approvals: ApprovalStore) -> None:
    result = approvals.claim("not-a-real-id", "U0ALICE", "approve")
    assert result.status == "unknown"
    assert result.approval is None


def test_claim_after_expiry_marks_expired(approvals: ApprovalStore, clock: Any) -> None:
    approval_id = _create(approvals, ttl_seconds=60)
    clock.advance(59)
    assert approvals.get(approval_id).state == "pending"  # type: ignore[union-attr]
    clock.advance(1)  # expires_at is exclusive
    result = approvals.claim(approval_id, "U0ALICE", "approve")
    assert result.status == "expired"
    assert "expired" in result.message
    assert approvals.get(approval_id).state == "expired"  # type: ignore[union-attr]
    assert approvals.claim(approval_id, "U0ALICE", "approve").status == "expired"
    assert approvals.expire_due() == []


def test_expire_due_sweep(approvals: ApprovalStore, clock: Any) -> None:
    short = _create(approvals, ttl_seconds=10)
    long = _create(approvals, ttl_seconds=1000)
    decided = _create(approvals, ttl_seconds=10)
    approvals.claim(decided, "U0ALICE", "approve")
    assert approvals.expire_due() == []
    clock.advance(11)
    expired = approvals.expire_due()
    assert [a.id for a in expired] == [short]
    assert expired[0].state == "expired"
    assert approvals.expire_due() == []
    assert [a.id for a in approvals.pending()] == [long]
    assert approvals.get(decided).state == "approved"  # type: ignore[union-attr]


def test_executed_and_failed_only_from_approved(approvals: ApprovalStore) -> None:
    pending = _create(approvals)
    assert approvals.mark_executed(pending, "ok") is False
    assert approvals.get(pending).state == "pending"  # type: ignore[union-attr]
    approvals.claim(pending, "U0ALICE", "approve")
    assert approvals.mark_executed(pending, "terminated") is True
    assert approvals.mark_executed(pending, "again") is False
    assert approvals.mark_failed(pending, "boom") is False
    done = approvals.get(pending)
    assert done is not None and done.state == "executed" and done.result == "terminated"

    other = _create(approvals)
    approvals.claim(other, "U0ALICE", "approve")
    assert approvals.mark_failed(other, "HTTP 500") is True
    assert approvals.get(other).state == "failed"  # type: ignore[union-attr]
    assert "(failed)" in approvals.claim(other, "U0BOB", "approve").message


def test_pending_recent_and_message_ts(approvals: ApprovalStore, clock: Any) -> None:
    first = _create(approvals)
    clock.advance(1)
    second = _create(approvals)
    assert approvals.set_message_ts(first, "1700000000.000100") is True
    assert approvals.get(first).message_ts == "1700000000.000100"  # type: ignore[union-attr]
    assert [a.id for a in approvals.pending("C0DEV")] == [first, second]
    assert approvals.pending("C0OTHER") == []
    assert [a.id for a in approvals.recent(1)] == [second]


def test_transitions_are_audited(db: sqlite_utils.Database, clock: Any) -> None:
    audit = AuditLog(db, clock=clock)
    approvals = ApprovalStore(db, clock=clock, audit=audit)
    approval_id = _create(approvals)
    approvals.claim(approval_id, "U0ALICE", "approve")
    approvals.claim(approval_id, "U0BOB", "approve")  # not a transition
    approvals.mark_executed(approval_id, "ok")
    rows = audit.query(kind="approval")
    assert [r["outcome"] for r in rows] == ["requested", "approved", "executed"]
    assert [r["user"] for r in rows] == ["U0REQ", "U0ALICE", "U0ALICE"]
    assert all(r["detail"]["approval_id"] == approval_id for r in rows)


CLAIM_SCRIPT = textwrap.dedent(
    """
    import os, sys, time
    import sqlite_utils
    from permissions.approvals import ApprovalStore
    path, approval_id, go, who = sys.argv[1:5]
    db = sqlite_utils.Database(path)
    store = ApprovalStore(db)
    while not os.path.exists(go):
        time.sleep(0.001)
    print(store.claim(approval_id, who, "approve").status, flush=True)
    """
)


def test_concurrent_claims_from_processes_execute_once(db_path: Path, tmp_path: Path) -> None:
    db = sqlite_utils.Database(db_path)
    db.enable_wal()
    approval_id = _create(ApprovalStore(db))
    db.close()
    go = tmp_path / "go"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", CLAIM_SCRIPT, str(db_path), approval_id, str(go), f"U0P{n}"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(8)
    ]
    time.sleep(0.5)  # let every process reach the starting line
    go.touch()
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        results.append(out.strip())
    assert sorted(results) == ["already_decided"] * 7 + ["claimed"]
    check = sqlite_utils.Database(db_path)
    approval = ApprovalStore(check).get(approval_id)
    assert approval is not None and approval.state == "approved"
    assert approval.decided_by is not None and approval.decided_by.startswith("U0P")
    check.close()


# -- approved work: the state machine ------------------------------------------------------


def test_approved_work_goes_through_executing_to_its_end(approvals: ApprovalStore) -> None:
    from permissions.approvals import LostRunner, this_runner

    approval_id = _create(approvals)
    with pytest.raises(LostRunner):  # not approved: nothing may be written for it
        approvals.save_step(approval_id, "snapshot", {})
    approvals.claim(approval_id, "U0BOB", "approve")
    claimed = approvals.get(approval_id)
    assert claimed is not None and claimed.runner == this_runner()
    assert approvals.unfinished() == [claimed]
    assert approvals.start(approval_id)
    approvals.save_step(approval_id, "safety snapshot", {"steps": {"x": {"state": "begun"}}})
    running = approvals.get(approval_id)
    assert running is not None and running.state == "executing"
    assert (running.step, running.journal) == (
        "safety snapshot",
        {"steps": {"x": {"state": "begun"}}},
    )
    assert "it is running" in approvals.claim(approval_id, "U0EVE", "approve").message
    approvals.db.execute("UPDATE approvals SET message_ts = '1.0' WHERE id = ?", [approval_id])
    assert approvals.finish(approval_id, "executed", "switched", '{"status": "ok"}')
    assert not approvals.finish(approval_id, "failed", "again")  # once
    done = approvals.get(approval_id)
    assert done is not None and (done.state, done.result, done.journal) == (
        "executed",
        "switched",
        {},
    )
    assert approvals.unfinished() == [] and [a.id for a in approvals.unreported()] == [approval_id]
    assert approvals.mark_reported(approval_id) and not approvals.mark_reported(approval_id)
    assert approvals.unreported() == []


def test_only_work_of_a_dead_runner_is_taken_over(approvals: ApprovalStore) -> None:
    from permissions.approvals import LostRunner, runner_alive, this_runner

    approval_id = _create(approvals)
    approvals.claim(approval_id, "U0BOB", "approve")
    mine = approvals.get(approval_id)
    assert mine is not None and not approvals.take_over(mine)  # alive: this process
    # a process that ended: its pid no longer runs
    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    ended.wait()
    gone = f"{ended.pid}:1"
    assert runner_alive(this_runner()) and not runner_alive(gone) and not runner_alive("junk")
    assert not runner_alive(f"{__import__('os').getpid()}:1")  # a reused pid, another start
    approvals.db.execute("UPDATE approvals SET runner = ? WHERE id = ?", [gone, approval_id])
    left = approvals.get(approval_id)
    assert left is not None and approvals.take_over(left)
    assert not approvals.take_over(left)  # the second taker loses: the runner changed
    approvals.db.execute("UPDATE approvals SET runner = ? WHERE id = ?", [gone, approval_id])
    with pytest.raises(LostRunner):  # taken over elsewhere: this process must stop
        approvals.save_step(approval_id, "switch", {})


def test_a_killed_process_not_yet_reaped_is_not_a_live_runner() -> None:
    """A SIGKILLed `graphops serve` stays a zombie until its parent reaps it: a restart
    within that moment must still take its work up."""
    import signal
    import subprocess
    import sys

    from permissions.approvals import _process_start, runner_alive
    from tests.waiting import wait_until

    def state(pid: int) -> str:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]

    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        runner = f"{child.pid}:{_process_start(child.pid)}"
        assert runner_alive(runner)
        os.kill(child.pid, signal.SIGKILL)  # not reaped: a zombie
        wait_until(lambda: state(child.pid) == "Z", 10, "a zombie")
        assert not runner_alive(runner)
    finally:
        child.kill()
        child.wait(10)
