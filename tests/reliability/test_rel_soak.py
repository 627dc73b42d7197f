"""Soak: a real `graphops serve` (HTTP mode) under a steady mix of signed slash commands
from 20 users for N minutes (reads, restarts, pauses/resumes, approval cards that are
denied), simulators from a real `graphops simulate` process, Slack stand-in via
`[slack] api_url`. Every 10 s (2 s in the short run) the bot's RSS, the SQLite file size
(main file + WAL) and the audit row count are sampled; every request's ack latency is
measured.

Criteria (W = the first minute, or the first quarter of a short run):
- RSS growth from the end of W to the end < 30 MB, or < 20 % of the RSS at the end of W;
- SQLite growth proportional to the audit rows written: from the end of W to the end,
  bytes the main file grew / audit rows added < 4 KB; the WAL stays < 16 MB (checkpointed);
- no 5xx, every ack is 200;
- every command answered: one audited command row and at least one Slack answer
  (chat.postMessage / chat.postEphemeral outside a thread) per command sent.

Long: GRAPHOPS_SOAK_MINUTES=10 pytest -m slow tests/reliability/test_rel_soak.py -s
Short (default run): 20 s, same criteria on quarters; GRAPHOPS_SOAK_SHORT_SECONDS to change.
The figures are printed (pytest -s) as a table and one JSON line. The ack latency
is a timing claim, so it is measured by bench/soak.py (ack p99 of the last W within
2 x the first W + 50 ms), not asserted here.
"""

from __future__ import annotations

import json
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.reliability.rel_procs import Serve, Simulate, bot_env, cli, rows, write_config
from tests.reliability.rel_support import env_float, free_port, rel_seed

USERS = [f"U0SOAK{i:02d}" for i in range(20)]
READS = [
    "list",
    "show sandbox-db",
    "show catalog-db",
    "envs",
    "ops sandbox-db",
    "snapshots sandbox-db",
    "pending",
    "help",
    "access",
    "versions",
]
WRITES = ["restart sandbox-db", "pause catalog-db", "resume catalog-db", "restart orders-db"]
WORKERS = 4
RATE = 4.0  # commands per second, all workers together


def _p99(values: list[float]) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]


def _size(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0


def soak(tmp: Path, seconds: float, sample_every: float, window: float) -> dict[str, Any]:
    seed = rel_seed()
    sim = Simulate(step_seconds=0.3)
    serve: Serve | None = None
    try:
        port = free_port()
        config = write_config(tmp, sim, port)
        env = bot_env(config)
        for grant in (
            ("development", "admin"),
            ("staging", "operator"),
        ):
            assert cli(env, "access", "grant", "C0DEV", "console", *grant).returncode == 0
        assert (
            cli(env, "access", "grant", "C0PROD", "console", "production", "operator").returncode
            == 0
        )
        db = tmp / "g.sqlite3"
        serve = Serve(env, port, tmp / "serve.log")
        lock = threading.Lock()
        acks: list[tuple[float, float, int, str]] = []  # t since start, seconds, status, text
        samples: list[dict[str, float]] = []
        start = time.monotonic()
        end = start + seconds
        max_commands = int(seconds * RATE * 1.5) + 10

        def send(text: str, user: str, channel: str = "C0DEV") -> None:
            assert serve is not None
            sent = time.monotonic()
            try:
                status = serve.slash(text, user=user, channel=channel).status_code
            except Exception:  # a failed request counts as an error (599)
                status = 599
            with lock:
                acks.append((sent - start, time.monotonic() - sent, status, text))

        def pick(worker_rng: random.Random) -> tuple[str, str, str]:
            user = worker_rng.choice(USERS)
            roll = worker_rng.random()
            if roll < 0.6:
                return worker_rng.choice(READS), user, "C0DEV"
            if roll < 0.8:
                text = worker_rng.choice(WRITES)
                return text, user, "C0PROD" if "orders-db" in text else "C0DEV"
            if roll < 0.9:
                return "terminate sandbox-db", user, "C0DEV"  # an approval card
            pending = rows(db, "SELECT id FROM approvals WHERE state='pending' LIMIT 1")
            if pending:
                return f"deny {pending[0][0]}", user, "C0DEV"
            return "pending", user, "C0DEV"

        def worker(index: int) -> None:
            worker_rng = random.Random(seed * 100 + index)
            interval = WORKERS / RATE
            next_at = time.monotonic() + worker_rng.uniform(0, interval)
            while time.monotonic() < end:
                with lock:
                    if len(acks) >= max_commands:
                        return
                time.sleep(max(0.0, next_at - time.monotonic()))
                next_at += interval
                text, user, channel = pick(worker_rng)
                send(text, user, channel)

        def sampler() -> None:
            assert serve is not None
            while True:
                now = time.monotonic()
                audit = rows(db, "SELECT COUNT(*) FROM audit")[0][0]
                samples.append(
                    {
                        "t": now - start,
                        "rss_kb": serve.rss_kb(),
                        "db_bytes": _size(db),
                        "wal_bytes": _size(Path(str(db) + "-wal")),
                        "audit": audit,
                    }
                )
                if now >= end:
                    return
                time.sleep(min(sample_every, max(0.0, end - now) + 0.01))

        with ThreadPoolExecutor(WORKERS + 1) as pool:
            futures = [pool.submit(worker, i) for i in range(WORKERS)]
            futures.append(pool.submit(sampler))
            for future in futures:
                future.result(timeout=seconds + 120)

        sent = len(acks)
        # every command answered: audited and answered in Slack (bounded wait)
        deadline = time.monotonic() + 60
        while True:
            commands = rows(db, "SELECT COUNT(*) FROM audit WHERE kind='command'")[0][0]
            calls = sim.calls()
            answers = [
                c
                for c in calls
                if c["status"] == 200
                and (
                    (
                        c["method"] in ("chat.postMessage", "chat.postEphemeral", "response_url")
                        and not c["body"].get("thread_ts")
                    )
                    # a typed `deny <id>` is answered like the button: its card is edited
                    or (c["method"] == "chat.update" and "Denied" in json.dumps(c["body"]))
                )
            ]
            if (commands >= sent and len(answers) >= sent) or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        rss_after = serve.rss_kb()
        slack_errors = [c for c in calls if c["status"] != 200]
    finally:
        if serve is not None:
            serve.stop()
        sim.stop()

    first = [lat for t, lat, _, _ in acks if t < window]
    last = [lat for t, lat, _, _ in acks if t >= seconds - window]
    at_w = min(samples, key=lambda s: abs(s["t"] - window))
    final = samples[-1]
    statuses: dict[int, int] = {}
    for _, _, status, _ in acks:
        statuses[status] = statuses.get(status, 0) + 1
    rows_added = max(1, final["audit"] - at_w["audit"])
    figures = {
        "seed": seed,
        "seconds": round(seconds),
        "window_s": round(window),
        "commands": sent,
        "statuses": statuses,
        "audited_commands": commands,
        "slack_answers": len(answers),
        "slack_non_200": len(slack_errors),
        "rss_mb_at_w": round(at_w["rss_kb"] / 1024, 1),
        "rss_mb_end": round(final["rss_kb"] / 1024, 1),
        "rss_mb_after_drain": round(rss_after / 1024, 1),
        "rss_mb_max": round(max(s["rss_kb"] for s in samples) / 1024, 1),
        "db_mb_at_w": round(at_w["db_bytes"] / 2**20, 2),
        "db_mb_end": round(final["db_bytes"] / 2**20, 2),
        "wal_mb_max": round(max(s["wal_bytes"] for s in samples) / 2**20, 2),
        "audit_rows_at_w": at_w["audit"],
        "audit_rows_end": final["audit"],
        "bytes_per_audit_row": round((final["db_bytes"] - at_w["db_bytes"]) / rows_added),
        "ack_p50_ms": round(1000 * sorted(a[1] for a in acks)[len(acks) // 2], 1),
        "ack_p99_first_ms": round(1000 * _p99(first), 1),
        "ack_p99_last_ms": round(1000 * _p99(last), 1),
        "ack_max_ms": round(1000 * max(a[1] for a in acks), 1),
        "samples": [
            (round(s["t"]), round(s["rss_kb"] / 1024, 1), s["db_bytes"], s["wal_bytes"], s["audit"])
            for s in samples
        ],
    }
    return figures


def check(figures: dict[str, Any]) -> None:
    samples = figures.pop("samples")
    print("\nsoak samples (t s, RSS MB, SQLite bytes, WAL bytes, audit rows):")
    for sample in samples:
        print("  ", sample)
    width = max(len(k) for k in figures)
    print("soak figures:")
    for key, value in figures.items():
        print(f"  {key:<{width}}  {value}")
    print(json.dumps({"soak": figures}))

    sent = figures["commands"]
    assert sent > 0
    assert figures["statuses"] == {200: sent}, figures["statuses"]  # no 5xx, no error at all
    assert figures["audited_commands"] >= sent, figures
    assert figures["slack_answers"] >= sent, figures
    growth = figures["rss_mb_end"] - figures["rss_mb_at_w"]
    assert growth < 30 or growth < 0.2 * figures["rss_mb_at_w"], figures
    assert figures["bytes_per_audit_row"] < 4096, figures
    assert figures["wal_mb_max"] < 16, figures  # checkpoints keep the WAL bounded


def test_soak_short(tmp_path: Path) -> None:
    """20 s with the same criteria on quarters (windows of 5 s)."""
    seconds = env_float("GRAPHOPS_SOAK_SHORT_SECONDS", 20.0)
    check(soak(tmp_path, seconds, sample_every=2.0, window=seconds / 4))


@pytest.mark.slow
def test_soak(tmp_path: Path) -> None:
    """GRAPHOPS_SOAK_MINUTES (default 10) minutes; windows of one minute."""
    seconds = env_float("GRAPHOPS_SOAK_MINUTES", 10.0) * 60
    check(soak(tmp_path, seconds, sample_every=10.0, window=min(60.0, seconds / 4)))
