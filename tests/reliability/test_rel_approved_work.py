"""Approved work survives a kill: a production switch (safety snapshot, then switch) is
approved in a real `graphops serve`, which is killed (SIGKILL, or SIGTERM with a long or
a short drain) at a seeded point of the work: right after the Approve click, while the
safety snapshot runs, once it finished, right after the switch was sent. A new `serve`
starts on the same SQLite file, and then:

- the approval ends exactly once: executed (one snapshot and one switch at the
  simulator), or failed and said so in its thread; 0 mutating requests sent twice;
- its card ends in its final state (edited in place, no live buttons) and its thread
  names requester and approver;
- nothing is left: no unfinished approval, no unreported card, no unanswered request.

Replay one: GRAPHOPS_REL_SEED=<seed printed> pytest tests/reliability/test_rel_approved_work.py -s
More: GRAPHOPS_REL_ITERATIONS=24 pytest -m slow tests/reliability/test_rel_approved_work.py -s
"""

from __future__ import annotations

import json
import os
import random
import time
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from tests.reliability.rel_procs import Serve, Simulate, bot_env, cli, rows, write_config
from tests.reliability.rel_support import env_int, free_port, rel_seed
from tests.waiting import wait_until

POINTS = ("click", "snapshot", "snapshot-done", "switch-sent")
STOPS = ("SIGKILL", "SIGTERM-drained", "SIGTERM-short")
SNAPSHOT, SWITCH = "/snapshots/manual", "/connections/switch"
# What the bot still has to do, as one consistent snapshot of the store.
SETTLED = (
    "SELECT (SELECT COUNT(*) FROM approvals WHERE state NOT IN ('executed', 'failed') "
    "OR reported_at IS NULL), "
    "(SELECT COUNT(*) FROM tracked_operations WHERE state = 'running'), "
    "(SELECT COUNT(*) FROM outbox WHERE sent_at IS NULL), "
    "(SELECT COUNT(*) FROM accepted_requests)"
)


def _state(sim: Simulate) -> dict[str, Any]:
    return json.loads(urllib.request.urlopen(sim.console + "/_sim/state", timeout=5).read())


def _sent(sim: Simulate, suffix: str) -> list[dict[str, Any]]:
    return [r for r in sim.mutating() if r["path"].endswith(suffix)]


def _click(serve: Serve, approval_id: str, card_ts: str) -> None:
    payload = {
        "type": "block_actions",
        "team": {"id": "T0STANDIN"},
        "user": {"id": "U0BOB"},
        "api_app_id": "A0GRAPHOPS",
        "token": "legacy",
        "trigger_id": "trigger.bob",
        "channel": {"id": "C0ONCALL"},
        "container": {"type": "message", "message_ts": card_ts, "channel_id": "C0ONCALL"},
        "message": {"ts": card_ts},
        "response_url": "http://127.0.0.1:9/response",
        "actions": [
            {
                "type": "button",
                "action_id": "approval.approve",
                "block_id": "b1",
                "value": approval_id,
                "action_ts": "1700000001.000",
            }
        ],
    }
    body = urlencode({"payload": json.dumps(payload)})
    assert serve.post(body, "application/x-www-form-urlencoded").status_code == 200


def _wait_for_point(
    sim: Simulate, point: str, rng: random.Random, step: float, before_click: set[str]
) -> None:
    if point == "click":
        time.sleep(rng.uniform(0.0, 0.05))
    elif point == "snapshot":
        wait_until(lambda: bool(_sent(sim, SNAPSHOT)), 20, "the safety snapshot", interval=0.005)
        time.sleep(rng.uniform(0.0, 3 * step))  # its three steps
    elif point == "snapshot-done":

        def finished() -> bool:
            sent = _sent(sim, SNAPSHOT)
            if not sent:
                return False
            done = {s["id"] for s in _state(sim)["snapshots"] if s["status"] == "done"}
            return bool(done - before_click)

        wait_until(finished, 20, "the safety snapshot to finish", interval=0.01)
    else:
        wait_until(lambda: bool(_sent(sim, SWITCH)), 20, "the switch", interval=0.005)
        time.sleep(rng.uniform(0.0, 0.02))


def one_kill(seed: int, tmp: Path) -> dict[str, Any]:
    rng = random.Random(seed)
    point = rng.choice(POINTS)
    stop = rng.choice(STOPS)
    step = 0.4
    sim = Simulate(step_seconds=step)
    serve: Serve | None = None
    try:
        port = free_port()
        drain = "30" if stop == "SIGTERM-drained" else "0.05"
        config = write_config(
            tmp,
            sim,
            port,
            snapshot_before_destroy="protected",
            bot_extra=f"drain_seconds = {drain}",
        )
        env = bot_env(config)
        for args in (
            ("grant", "C0ONCALL", "console", "production", "admin"),
            ("approvers", "C0ONCALL", "console", "production", "U0BOB"),
            ("incident-channel", "console", "*", "C0INCIDENT"),
        ):
            done = cli(env, "access", *args)
            assert done.returncode == 0, done.stderr
        db = tmp / "g.sqlite3"
        log = tmp / "serve.log"
        serve = Serve(env, port, log)
        assert serve.slash("switch orders-db to orders-replica", channel="C0ONCALL").status_code
        wait_until(
            lambda: bool(rows(db, "SELECT id FROM approvals WHERE message_ts IS NOT NULL")),
            15,
            "the approval card",
        )
        [(approval_id, card_ts)] = rows(db, "SELECT id, message_ts FROM approvals")
        snapshots_before = {s["id"] for s in _state(sim)["snapshots"]}
        _click(serve, approval_id, card_ts)
        _wait_for_point(sim, point, rng, step, snapshots_before)
        before = (len(_sent(sim, SNAPSHOT)), len(_sent(sim, SWITCH)))
        if stop == "SIGKILL":
            serve.kill()
        else:
            assert serve.terminate() == 0, log.read_text()[-2000:]
        state = rows(db, "SELECT state, step FROM approvals")[0]
        print(
            f"seed={seed}: {stop} at {point}; snapshot/switch sent before: {before}; left: {state}"
        )

        serve = Serve(env, port, log)

        def settled() -> bool:
            # one statement, one read transaction: separate counts may straddle a write
            unfinished, running, unsent, inbox = rows(db, SETTLED)[0]
            return unfinished == running == unsent == inbox == 0

        wait_until(settled, 60, "the approved work to end and be reported")
        serve.stop()  # once it has exited, nothing more can be sent: count what was

        mutating = sim.mutating()
        again = [k for k, n in Counter((r["method"], r["path"]) for r in mutating).items() if n > 1]
        [(final_state, result)] = rows(db, "SELECT state, result FROM approvals")
        snapshots, switches = len(_sent(sim, SNAPSHOT)), len(_sent(sim, SWITCH))
        calls = sim.calls()
        edits = [
            c
            for c in calls
            if c["method"] == "chat.update" and c["status"] == 200 and c["body"]["ts"] == card_ts
        ]
        thread = [
            c
            for c in calls
            if c["method"] == "chat.postMessage"
            and c["status"] == 200
            and c["body"].get("thread_ts") == card_ts
        ]
        outcome = {
            "seed": seed,
            "point": point,
            "stop": stop,
            "state": final_state,
            "snapshots": snapshots,
            "switches": switches,
            "duplicated": again,
        }
        assert again == [], outcome  # 0 mutating requests sent twice
        if final_state == "executed":
            assert (snapshots, switches) == (1, 1), outcome
        else:
            assert final_state == "failed" and switches <= 1, (outcome, result)
        # the card ends in its final state, edited in place, no live buttons
        assert edits and "actions" not in json.dumps(edits[-1]["body"].get("blocks")), outcome
        final_words = "Done" if final_state == "executed" else "failed"
        assert final_words in json.dumps(edits[-1]["body"].get("blocks")), (outcome, edits[-1])
        # the outcome in the card's thread, naming requester and approver
        told = [c for c in thread if "approved by <@U0BOB>" in json.dumps(c["body"])]
        assert told and "<@U0ALICE>" in json.dumps(told[0]["body"]), (outcome, thread)
        text = log.read_text(errors="replace")
        assert "Traceback" not in text, text[-3000:]
        return outcome
    finally:
        if serve is not None:
            serve.stop()
        sim.stop()


def _kills(tmp_path: Path, count: int) -> None:
    base = rel_seed()
    fixed = "GRAPHOPS_REL_SEED" in os.environ
    outcomes = []
    for i in range(1 if fixed else count):
        seed = base if fixed else base + i
        print(f"approved-work kill {i}: GRAPHOPS_REL_SEED={seed}")
        folder = tmp_path / f"k{i}"
        folder.mkdir()
        outcomes.append(one_kill(seed, folder))
    by = Counter((o["stop"], o["point"], o["state"]) for o in outcomes)
    print(
        f"approved work: {len(outcomes)} kills, "
        f"{sum(o['state'] == 'executed' for o in outcomes)} executed exactly once, "
        f"{sum(o['state'] == 'failed' for o in outcomes)} failed and reported, "
        f"{sum(len(o['duplicated']) for o in outcomes)} duplicated requests; {dict(by)}"
    )


def test_approved_work_survives_kills(tmp_path: Path) -> None:
    _kills(tmp_path, env_int("GRAPHOPS_REL_APPROVED_DEFAULT", 3))


@pytest.mark.slow
def test_approved_work_survives_many_kills(tmp_path: Path) -> None:
    _kills(tmp_path, env_int("GRAPHOPS_REL_ITERATIONS", 24))
