"""API requests per verb in a scripted session of 50 mixed commands through `bot.run`.

A bot over a Console simulator (operations finish at once: step_seconds=0) runs
a fixed script of 50 commands (list, show, pause, resume, restart, snapshots,
snapshot, ops, versions, plans, clone, envs, ...) as a channel granted admin on
development and staging. Each command's requests are read from the simulator's
request log and split into token requests, name resolution (list environments,
list an environment's databases) and the command's own calls. The naive count
is the pattern of the seed examples: token + list environments + list databases
before every call.

Run from the repo root:  .venv/bin/python bench/api_calls.py
"""

from __future__ import annotations

import asyncio
import re
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import CHANNEL, USER, emit, make_bot, make_sim, table, workdir
from core.invocation import Invocation
from permissions.roles import Role

TOKEN = re.compile(r"/oauth/token$")
RESOLVE = re.compile(r"^/deployments/environments(/[^/]+/databases)?$")

SCRIPT_ONCE = [
    "envs",
    "list",
    "versions",
    "plans",
    "regions",
    "show sandbox-db",
    "show orders-db",
    "snapshots sandbox-db",
    "ops sandbox-db",
    "restart sandbox-db",
    "show sandbox-db",
    "ops sandbox-db",
    "resume catalog-db",
    "pause catalog-db",
    "show catalog-db",
    "snapshot sandbox-db",
    "snapshots sandbox-db",
    "clone sandbox-db sandbox-copy",
    "show sandbox-copy",
    "list development",
    "pause sandbox-copy",
    "resume sandbox-copy",
    "restart sandbox-copy",
    "show orders-db",
    "list staging",
]
SCRIPT = [
    *SCRIPT_ONCE,
    "list",
    "show sandbox-db",
    "restart sandbox-db",
    "ops sandbox-db",
    "snapshots orders-db",
    "versions",
    "show sandbox-copy",
    "pause sandbox-copy",
    "resume sandbox-copy",
    "snapshot orders-db",
    "show catalog-db",
    "list development",
    "restart orders-db",
    "ops orders-db",
    "show orders-db",
    "envs",
    "clone orders-db orders-copy",
    "show orders-copy",
    "list",
    "restart orders-copy",
    "snapshots sandbox-db",
    "show sandbox-db",
    "ops sandbox-copy",
    "list staging",
    "show catalog-db",
][:50]


def classify(path: str) -> str:
    if TOKEN.search(path):
        return "token"
    if RESOLVE.search(path):
        return "resolve"
    return "action"


async def main() -> dict[str, Any]:
    sim = make_sim(step_seconds=0.0)
    await sim.start()
    tmp = workdir()
    bot = make_bot(sim, Path(tmp.name), role=Role.ADMIN)
    per_verb: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    statuses: dict[str, int] = defaultdict(int)
    errors: list[str] = []
    started = time.monotonic()
    try:
        for line in SCRIPT:
            before = len(sim.requests)
            reply = await bot.run(Invocation(user=USER, channel=CHANNEL, text=line))
            statuses[reply.status] += 1
            verb = line.split()[0]
            counts = per_verb[verb]
            counts["commands"] += 1
            if reply.status == "error":
                errors.append(f"{line}: {(reply.title or reply.text)[:80]}")
            own = sum(1 for r in sim.requests[before:] if classify(r.path) == "action")
            # Seed examples: token + list environments + list databases before every call;
            # a bare listing is token + environments + databases of each environment shown.
            counts["naive"] += 4 * own if own else {"envs": 2}.get(line, 4 if line == "list" else 3)
            for request in sim.requests[before:]:
                counts[classify(request.path)] += 1
            await asyncio.sleep(0)
        resolver = bot.services.resolver
        hits, misses = resolver.hits, resolver.misses
    finally:
        await bot.aclose()
        await sim.stop()
        tmp.cleanup()
    return {
        "per_verb": {v: dict(c) for v, c in per_verb.items()},
        "statuses": dict(statuses),
        "hits": hits,
        "misses": misses,
        "tokens": sim.tokens_issued,
        "errors": errors,
        "seconds": time.monotonic() - started,
    }


def report(result: dict[str, Any]) -> None:
    rows = []
    totals = defaultdict(int)
    for verb, c in sorted(result["per_verb"].items()):
        n = c.get("commands", 0)
        action, resolve, token = c.get("action", 0), c.get("resolve", 0), c.get("token", 0)
        naive = c.get("naive", 0)
        rows.append(
            [
                verb,
                n,
                action,
                resolve,
                token,
                action + resolve + token,
                round((action + resolve + token) / n, 2),
                naive,
            ]
        )
        for key, value in (
            ("commands", n),
            ("action", action),
            ("resolve", resolve),
            ("token", token),
            ("naive", naive),
        ):
            totals[key] += value
    total = totals["action"] + totals["resolve"] + totals["token"]
    rows.append(
        [
            "TOTAL",
            totals["commands"],
            totals["action"],
            totals["resolve"],
            totals["token"],
            total,
            round(total / totals["commands"], 2),
            totals["naive"],
        ]
    )
    print(f"API requests, scripted session of {totals['commands']} commands via bot.run")
    print(
        table(
            [
                "verb",
                "cmds",
                "own calls",
                "name lookups",
                "token",
                "total",
                "per cmd",
                "naive (seed)",
            ],
            rows,
        )
    )
    naive_lookups = totals["naive"] - totals["action"] - totals["commands"]  # minus calls, tokens
    saved = naive_lookups - totals["resolve"]
    print()
    print(f"reply statuses: {result['statuses']} {result['errors']}")
    print(
        f"resolver cache: {result['hits']} hits / {result['misses']} misses "
        f"({result['hits'] / max(1, result['hits'] + result['misses']):.0%} hit rate)"
    )
    print(f"name-lookup requests: {totals['resolve']} vs {naive_lookups} naive -> {saved} saved")
    print(
        f"token requests: {totals['token']} (sim.tokens_issued={result['tokens']}; target: 1 "
        f"per provider per token lifetime: {'met' if result['tokens'] == 1 else 'MISSED'})"
    )
    print(
        f"total requests: {total} vs {totals['naive']} naive "
        f"({1 - total / max(1, totals['naive']):.0%} fewer); session took {result['seconds']:.2f} s"
    )
    emit(
        "api_calls",
        {
            "commands": totals["commands"],
            "requests_total": total,
            "requests_naive": totals["naive"],
            "own_calls": totals["action"],
            "name_lookups": totals["resolve"],
            "name_lookups_naive": naive_lookups,
            "name_lookups_saved": saved,
            "token_requests": totals["token"],
            "tokens_issued": result["tokens"],
            "resolver_hits": result["hits"],
            "resolver_misses": result["misses"],
            "statuses": result["statuses"],
            "per_verb": result["per_verb"],
            "targets": {"one_token_per_lifetime": result["tokens"] == 1},
        },
    )


if __name__ == "__main__":
    import logging

    logging.basicConfig(level=logging.ERROR)
    report(asyncio.run(main()))
