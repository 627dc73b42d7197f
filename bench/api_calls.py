"""API requests per verb in a scripted session of 50 mixed commands through `bot.run`,
back to back and at a human pace.

A bot over a Console simulator (operations finish at once: step_seconds=0) runs
a fixed script of 50 commands (list, show, pause, resume, restart, snapshots,
snapshot, ops, versions, plans, clone, envs, ...) as a channel granted admin on
development and staging. Each command's requests are read from the simulator's
request log and split into token requests, name resolution (list environments,
list an environment's databases) and the command's own calls. The naive count
is the pattern of the seed examples: token + list environments + list databases
before every call.

Two paces: back to back (the 50 commands in well under a second), and human (30 s
between commands, `--pace`) on a simulated clock: the resolver's clock advances 30 s
per command (nothing sleeps), and the background work a running bot does in that
time is run and counted too: the start-up prime of the name cache and its refresh
every `name_refresh_seconds` of simulated time ("refresh" below). Before each `list`
a database is created outside the bot, and the answer must show it: a `list` that
does not is counted as stale (target: none). The ratio to the naive pattern is
reported for both paces (target at the human pace: >= 3x fewer requests).

Run from the repo root:  .venv/bin/python bench/api_calls.py [--pace 30]
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

from bench._common import CHANNEL, USER, bot_over, emit, make_sim, table, workdir
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
    """`token`, `resolve` (environments or an environment's databases) or `action`."""
    if TOKEN.search(path):
        return "token"
    if RESOLVE.search(path):
        return "resolve"
    return "action"


async def main(pace: float = 0.0) -> dict[str, Any]:
    """Run the script with `pace` simulated seconds between commands (0: back to back)."""
    sim = make_sim(step_seconds=0.0)
    await sim.start()
    tmp = workdir()
    bot = bot_over(sim.base_url, Path(tmp.name), role=Role.ADMIN)
    resolver = bot.services.resolver
    now = [0.0]
    resolver.clock = lambda: now[0]  # simulated time: nothing sleeps
    refresh_every = bot.config.bot.name_refresh_seconds
    per_verb: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    statuses: dict[str, int] = defaultdict(int)
    errors: list[str] = []
    stale: list[str] = []
    started = time.monotonic()
    background = 0
    outside = 0
    dev = sim.find_environment("development")
    try:
        if pace:  # what `graphops serve` does at start: prime the names (background pool)
            before = len(sim.requests)
            await resolver.prime(list(bot.services.providers.values()))
            background += len(sim.requests) - before
        next_refresh = refresh_every
        for line in SCRIPT:
            if pace:
                now[0] += pace
                while refresh_every and now[0] >= next_refresh:  # the background refresh
                    before = len(sim.requests)
                    await resolver.refresh()
                    background += len(sim.requests) - before
                    next_refresh += refresh_every
            if line.split()[0] == "list":  # a change made outside the bot
                outside += 1
                sim.add_database(dev.id, f"outside-{outside:02d}")
            before = len(sim.requests)
            reply = await bot.run(Invocation(user=USER, channel=CHANNEL, text=line))
            statuses[reply.status] += 1
            verb = line.split()[0]
            counts = per_verb[verb]
            counts["commands"] += 1
            if reply.status == "error":
                errors.append(f"{line}: {(reply.title or reply.text)[:80]}")
            if verb == "list" and line in ("list", "list development"):
                shown = {row[0] for table in reply.tables for row in table.rows}
                if f"outside-{outside:02d}" not in shown:
                    stale.append(line)
            own = sum(1 for r in sim.requests[before:] if classify(r.path) == "action")
            # Seed examples: token + list environments + list databases before every call;
            # a bare listing is token + environments + databases of each environment shown.
            counts["naive"] += 4 * own if own else {"envs": 2}.get(line, 4 if line == "list" else 3)
            for request in sim.requests[before:]:
                counts[classify(request.path)] += 1
            await asyncio.sleep(0)
        hits, misses = resolver.hits, resolver.misses
    finally:
        await bot.aclose()
        await sim.stop()
        tmp.cleanup()
    return {
        "pace_s": pace,
        "per_verb": {v: dict(c) for v, c in per_verb.items()},
        "statuses": dict(statuses),
        "hits": hits,
        "misses": misses,
        "tokens": sim.tokens_issued,
        "errors": errors,
        "stale": stale,
        "background": background,
        "seconds": time.monotonic() - started,
    }


def summarize(result: dict[str, Any]) -> dict[str, Any]:
    """Print one pace's table; its figures."""
    rows = []
    totals: dict[str, int] = defaultdict(int)
    for verb, c in sorted(result["per_verb"].items()):
        n = c.get("commands", 0)
        action, resolve, token = c.get("action", 0), c.get("resolve", 0), c.get("token", 0)
        naive = c.get("naive", 0)
        total = action + resolve + token
        rows.append([verb, n, action, resolve, token, total, round(total / n, 2), naive])
        for key, value in (
            ("commands", n),
            ("action", action),
            ("resolve", resolve),
            ("token", token),
            ("naive", naive),
        ):
            totals[key] += value
    background = result["background"]
    total = totals["action"] + totals["resolve"] + totals["token"] + background
    rows.append(["(background refresh)", "", "", background, "", background, "", ""])
    rows.append(
        [
            "TOTAL",
            totals["commands"],
            totals["action"],
            totals["resolve"] + background,
            totals["token"],
            total,
            round(total / totals["commands"], 2),
            totals["naive"],
        ]
    )
    pace = result["pace_s"]
    title = f"{pace:g} s between commands (simulated clock)" if pace else "back to back"
    print(f"API requests, scripted session of {totals['commands']} commands via bot.run, {title}")
    print(
        table(
            ["verb", "cmds", "own calls", "name lookups", "token", "total", "per cmd", "naive"],
            rows,
        )
    )
    ratio = totals["naive"] / max(1, total)
    print(f"reply statuses: {result['statuses']} {result['errors']}")
    print(
        f"resolver cache: {result['hits']} hits / {result['misses']} misses; "
        f"tokens issued {result['tokens']}; `list` answers missing an outside change: "
        f"{len(result['stale'])} {result['stale']}"
    )
    print(
        f"total requests: {total} vs {totals['naive']} naive -> {ratio:.2f}x fewer "
        f"(target >= 3x: {'met' if ratio >= 3 else 'MISSED'}); session took "
        f"{result['seconds']:.2f} s"
    )
    print()
    return {
        "pace_s": pace,
        "commands": totals["commands"],
        "requests_total": total,
        "requests_naive": totals["naive"],
        "ratio_vs_naive": round(ratio, 2),
        "own_calls": totals["action"],
        "name_lookups": totals["resolve"],
        "background_refresh": background,
        "token_requests": totals["token"],
        "tokens_issued": result["tokens"],
        "resolver_hits": result["hits"],
        "resolver_misses": result["misses"],
        "stale_lists": len(result["stale"]),
        "statuses": result["statuses"],
        "per_verb": result["per_verb"],
    }


async def both(pace: float) -> list[dict[str, Any]]:
    return [await main(0.0), await main(pace)]


if __name__ == "__main__":
    import argparse
    import logging

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pace", type=float, default=30.0, help="human pace, s between commands")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    fast, human = (summarize(r) for r in asyncio.run(both(args.pace)))
    emit(
        "api_calls",
        {
            "back_to_back": fast,
            "human_pace": human,
            "targets": {
                "human_pace_ratio_ge_3": human["ratio_vs_naive"] >= 3,
                "no_stale_list": fast["stale_lists"] == 0 and human["stale_lists"] == 0,
                "one_token_per_lifetime": human["tokens_issued"] == 1,
            },
        },
    )
