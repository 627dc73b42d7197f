"""Permission decisions over 10,000 channels x 5 bindings in a real SQLite file.

Bindings are written with PermissionStore.grant inside one transaction; one in
five names who holds its role (`users=`: a user and a user group, fallback
viewer). A decision is timed as the command layer makes it
(`policy_for(channel, invocation)`, which resolves the bindings for the person
acting, then `decide(...)`, commands/pipeline.py) and `decide` alone, over
random channels.

Run from the repo root:  .venv/bin/python bench/decide.py [--channels 10000] [--n 20000]
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import emit, summary_ms, table, workdir
from bot.store import open_database
from core.invocation import Invocation
from permissions.policy import Target, decide
from permissions.roles import Role
from permissions.store import PermissionStore

ENVS = ["production", "staging", "development", "qa", "sandbox"]


def main(channels: int, n: int) -> None:
    tmp = workdir()
    path = Path(tmp.name) / "bot.sqlite3"
    db = open_database(path)
    store = PermissionStore(db, admins=frozenset({"U0ADMIN"}))
    rng = random.Random(0)
    started = time.perf_counter()
    with db.atomic():
        for c in range(channels):
            for e, env in enumerate(ENVS):
                store.grant(f"C{c:08d}", "console", env, Role((c + e) % 3 + 1), by="bench")
                if (c + e) % 5 == 0:
                    store.set_users(f"C{c:08d}", "console", env, ["U0BENCH", "S0TEAM"])
    fill_s = time.perf_counter() - started
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    size = sum(os.path.getsize(p) for p in path.parent.iterdir() if p.name.startswith(path.name))

    targets = [Target("console", f"env-{env}", env, env == "production") for env in ENVS]
    verbs = [
        ("list", Role.VIEWER, False),
        ("restart", Role.OPERATOR, False),
        ("terminate", Role.ADMIN, True),
    ]
    picks = [
        (f"C{rng.randrange(channels):08d}", rng.choice(targets), rng.choice(verbs))
        for _ in range(n)
    ]
    end_to_end: list[float] = []
    alone: list[float] = []
    outcomes: dict[str, int] = {}
    people = [
        Invocation(user=user, channel="", text="", user_groups=groups)
        for user, groups in (("U0BENCH", frozenset()), ("U0OTHER", frozenset({"S0TEAM"})))
    ] + [Invocation(user="U0GUEST", channel="", text="")]
    for channel, target, (verb, role, destructive) in picks[:200]:  # warm-up
        decide(store.policy_for(channel, people[0]), "U0BENCH", verb, role, destructive, target)
    for index, (channel, target, (verb, role, destructive)) in enumerate(picks):
        who = people[index % len(people)]
        t0 = time.perf_counter()
        policy = store.policy_for(channel, who)
        t1 = time.perf_counter()
        decision = decide(policy, who.user, verb, role, destructive, target)
        t2 = time.perf_counter()
        end_to_end.append(t2 - t0)
        alone.append(t2 - t1)
        outcomes[decision.outcome] = outcomes.get(decision.outcome, 0) + 1
    db.close()
    tmp.cleanup()
    e2e, only = summary_ms(end_to_end), summary_ms(alone)
    print(
        f"permission decisions: {channels} channels x {len(ENVS)} bindings "
        f"({channels * len(ENVS)} rows), {n} random decisions"
    )
    print(
        table(
            ["measure", "p50 ms", "p95 ms", "p99 ms", "max ms", "mean ms"],
            [
                [
                    "policy_for + decide",
                    e2e["p50_ms"],
                    e2e["p95_ms"],
                    e2e["p99_ms"],
                    e2e["max_ms"],
                    e2e["mean_ms"],
                ],
                [
                    "decide alone",
                    only["p50_ms"],
                    only["p95_ms"],
                    only["p99_ms"],
                    only["max_ms"],
                    only["mean_ms"],
                ],
            ],
        )
    )
    print(
        f"outcomes: {outcomes}; grants written in {fill_s:.2f} s (one transaction); "
        f"store on disk: {size / 1e6:.2f} MB"
    )
    met = e2e["p99_ms"] < 1.0
    print(f"target: decision p99 < 1 ms: {'met' if met else 'MISSED'} ({e2e['p99_ms']:.3f} ms)")
    emit(
        "decide",
        {
            "channels": channels,
            "bindings": channels * len(ENVS),
            "decisions": n,
            "end_to_end": e2e,
            "decide_alone": only,
            "outcomes": outcomes,
            "fill_s": round(fill_s, 2),
            "store_bytes": size,
            "targets": {"p99_lt_1ms": met},
        },
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--channels", type=int, default=10_000)
    parser.add_argument("--n", type=int, default=20_000, help="decisions to time")
    args = parser.parse_args()
    main(args.channels, args.n)
