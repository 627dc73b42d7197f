"""1,000 operations tracked at once: CPU, memory, sockets, polls, tokens, final-message delay.

A child process runs the Console simulator (1,000 extra running databases,
`--step` seconds per step; a restart has 3 steps; every request
answers after `--latency` seconds, 0.2 by default) and the Slack stand-in, so the
figures of this process are the bot's alone. This process builds the bot, starts
a restart on every database through the bot's ConsoleClient (16 at a time) while the
tracker already runs, hands each to the
real Tracker (the config defaults: backoff 1 s x1.5 capped at 15 s, 100 polls
at once, 0.2 s tick; `--pool` connections to the API, by default a provider's
`max_connections`, 100) whose Notifier is the real SlackNotifier posting over HTTP to the
stand-in, and runs until every operation is finished
and every message delivered (bounded). The delay of a final message is its
arrival at the stand-in minus the operation's end in the simulator
(started clock + steps x step_seconds; CLOCK_MONOTONIC is shared by both processes).

Run from the repo root:  .venv/bin/python bench/tracker.py [--ops 1000] [--step 5] [--latency 0.2]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import (
    CLIENT_ID,
    CLIENT_SECRET,
    ENVIRON,
    checkpoints,
    cpu_seconds,
    emit,
    make_config,
    pct,
    rss_mb,
    table,
    workdir,
)
from clients.http import DEFAULT_MAX_CONNECTIONS

BOT_TOKEN = "xoxb-bench-token"


# -- child: simulator + stand-in -----------------------------------------------------


async def child(ops: int, step: float, latency: float) -> None:
    from aiohttp import web

    from simulators.graphenedb import STEPS, ConsoleSimulator
    from simulators.slack import SlackStandIn

    standin = SlackStandIn(token=BOT_TOKEN)

    class Sim(ConsoleSimulator):
        def routes(self) -> list[web.RouteDef]:
            return [*super().routes(), web.get("/_sim/bench", self.bench_dump)]

        async def bench_dump(self, request: web.Request) -> web.Response:
            offset = time.time() - time.monotonic()
            return web.json_response(
                {
                    "ops": [
                        {
                            "id": op.id,
                            "database_id": op.database_id,
                            "status": op.status,
                            "end_wall": op.started_clock
                            + len(STEPS[op.operation_type]) * self.step_seconds
                            + offset,
                        }
                        for op in self.operations
                    ],
                    "calls": [
                        {
                            "method": c.method,
                            "status": c.status,
                            "at": c.at,
                            "thread_ts": c.body.get("thread_ts"),
                            "ts": c.body.get("ts"),
                            "text": str(c.body.get("text") or "")[:200],
                        }
                        for c in standin.calls
                    ],
                    "tokens_issued": self.tokens_issued,
                    "requests": len(self.requests),
                    "cpu_s": time.process_time(),
                }
            )

    sim = Sim(client_id=CLIENT_ID, client_secret=CLIENT_SECRET, step_seconds=step)
    sim.faults.latency = latency  # every API request answers after this many seconds
    fleet = sim.add_environment("fleet", "green")
    for i in range(ops):
        sim.add_database(fleet.id, f"fleet-{i:04d}")
    await sim.start()
    await standin.start()
    print(json.dumps({"sim": sim.base_url, "slack": standin.api_url}), flush=True)
    await asyncio.get_running_loop().run_in_executor(
        None, sys.stdin.read
    )  # until the parent closes
    await standin.stop()
    await sim.stop()


# -- parent: the bot ------------------------------------------------------------------


def open_sockets() -> int:
    """Sockets held by this process (links in /proc/self/fd)."""
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}").startswith("socket:"):
                count += 1
        except OSError:
            pass
    return count


async def main(
    ops: int,
    step: float,
    latency: float,
    pool: int,
    concurrency: int | None,
    limit: float,
    lean: bool = True,
) -> dict[str, Any]:
    import aiohttp
    import httpx
    from slack_sdk.web.async_client import AsyncWebClient

    from bot.config import OperationsSettings
    from bot.slack.notifier import SlackNotifier
    from bot.wiring import build_bot, build_tracker
    from clients.pool import lean_transport
    from core.reply import OperationRef, Reply

    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        __file__,
        "--child",
        "--ops",
        str(ops),
        "--step",
        str(step),
        "--latency",
        str(latency),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stdin is not None
    urls = json.loads(await asyncio.wait_for(proc.stdout.readline(), 30))
    tmp = workdir()
    try:
        # The provider's connection pool: `pool` connections, as `[[providers]]
        # max_connections` sizes each of the clients' own pools (100 by default).
        limits = httpx.Limits(max_connections=pool, max_keepalive_connections=pool)
        http = httpx.AsyncClient(
            timeout=httpx.Timeout(15.0, connect=5.0),
            transport=lean_transport(limits) if lean else httpx.AsyncHTTPTransport(limits=limits),
        )
        bot = build_bot(
            make_config(
                urls["sim"],
                Path(tmp.name) / "bot.sqlite3",
                OperationsSettings(
                    snapshot_before_destroy="never",
                    **({} if concurrency is None else {"concurrency": concurrency}),  # type: ignore[arg-type]
                ),
            ),
            environ=ENVIRON,
            http=http,
        )
        # One aiohttp session for every Slack call, as `graphops serve` does
        # (bot/slack/serve.py web_client).
        slack_session = aiohttp.ClientSession()
        notifier = SlackNotifier(
            AsyncWebClient(token=BOT_TOKEN, base_url=urls["slack"], session=slack_session)
        )
        tracker = build_tracker(bot, notifier)
        checkpointer = checkpoints(bot)
        settings = tracker.settings
        client: Any = bot.services.providers["console"].client  # a Console client
        envs = await client.environments()
        fleet = next(e for e in envs if e.name == "fleet")
        dbs = await client.databases(fleet.id)
        # The tracker runs all along, as in `graphops serve`: operations are followed
        # while the others are still being started.
        tracker.start()
        cpu0, wall0 = cpu_seconds(), time.monotonic()
        threads: dict[str, str] = {}
        # Start every restart (16 at a time, like a busy team), then track it.
        gate = asyncio.Semaphore(16)

        async def start(n: int, db: Any) -> None:
            async with gate:
                started = await client.restart(db.id)
            thread_ts = f"{1600000000 + n}.000100"
            threads[thread_ts] = db.id
            origin = Reply(status="info", title=f"restart {db.name}", text="Restarting…")
            await tracker.track(
                OperationRef(
                    provider="console",
                    database_id=db.id,
                    operation_id=started.operation_id,
                    label=f"restart {db.name}",
                    environment_id=fleet.id,
                    environment_name="fleet",
                    verb="restart",
                ),
                channel=f"C0FLEET{n % 50:02d}",
                thread_ts=thread_ts,
                user="U0BENCH",
                origin=origin,
            )

        await asyncio.gather(*(start(n, db) for n, db in enumerate(dbs)))
        started_s = time.monotonic() - wall0
        cpu_start = cpu_seconds() - cpu0
        cpu1, wall1 = cpu0, wall0
        max_sockets = 0
        deadline = time.monotonic() + limit
        idle = False
        while time.monotonic() < deadline:
            max_sockets = max(max_sockets, open_sockets())
            if tracker.running() == 0 and not tracker.outbox.pending(limit=1):
                idle = True
                break
            await asyncio.sleep(0.25)
        track_wall = time.monotonic() - wall1
        track_cpu = cpu_seconds() - cpu1
        await tracker.stop()
        async with httpx.AsyncClient() as http:
            answer = await http.get(urls["sim"] + "/_sim/bench", timeout=30)
            if answer.status_code != 200:
                raise RuntimeError(f"bench dump: {answer.status_code} {answer.text[:200]}")
            dump = answer.json()
        polls = tracker.polls
        # When the tracker saw each operation end (its poll), per thread.
        seen_end = {
            row[0]: row[1]
            for row in bot.db.execute(
                "SELECT thread_ts, finished_at FROM tracked_operations"
            ).fetchall()
        }
        await checkpointer.stop()
        await bot.aclose()
        await http.aclose()
        await slack_session.close()
    finally:
        proc.stdin.close()
        try:
            await asyncio.wait_for(proc.wait(), 10)
        except TimeoutError:
            proc.kill()
        tmp.cleanup()
    end_of = {
        op["database_id"]: op["end_wall"]
        for op in dump["ops"]
        if op["database_id"] in set(threads.values())
    }
    finals: dict[str, float] = {}
    for call in dump["calls"]:
        if (
            call["method"] == "chat.postMessage"
            and call["status"] == 200
            and "finished in" in call["text"]
        ):
            finals.setdefault(call["thread_ts"], call["at"])
    # Split the delay: operation end -> the poll that saw it -> the message at Slack.
    poll_lags = [
        seen_end[ts] - end_of[db]
        for ts, db in threads.items()
        if seen_end.get(ts) is not None and db in end_of
    ]
    send_lags = [finals[ts] - seen_end[ts] for ts in threads if ts in finals and seen_end.get(ts)]
    delays = [
        finals[ts] - end_of[db] for ts, db in threads.items() if ts in finals and db in end_of
    ]
    methods: dict[str, int] = {}
    for call in dump["calls"]:
        methods[call["method"]] = methods.get(call["method"], 0) + 1
    return {
        "ops": ops,
        "step": step,
        "latency": latency,
        "pool": pool,
        "lean": lean,
        "idle": idle,
        "settings": settings,
        "start_s": started_s,
        "start_cpu": cpu_start,
        "track_wall": track_wall,
        "track_cpu": track_cpu,
        "rss_mb": rss_mb(),
        "max_sockets": max_sockets,
        "polls": polls,
        "tokens": dump["tokens_issued"],
        "sim_requests": dump["requests"],
        "child_cpu": dump["cpu_s"],
        "finals": len(finals),
        "delays": delays,
        "poll_lags": poll_lags,
        "send_lags": send_lags,
        "slack_calls": methods,
    }


def lag(values: list[float]) -> str:
    return f"{pct(values, 50):.2f} / {pct(values, 99):.2f}" if values else "-"


def report(r: dict[str, Any]) -> None:
    s = r["settings"]
    b = s.backoff
    op_seconds = 3 * r["step"]
    # The poll interval in effect when an operation ends (op_seconds after it was tracked).
    t, interval = 0.0, b.first
    while t + interval < op_seconds:
        t += interval
        interval = min(b.cap, interval * b.factor)
    d = r["delays"]
    p50, p99 = pct(d, 50), pct(d, 99)
    cores = r["track_cpu"] / r["track_wall"]
    print(
        f"tracker: {r['ops']} restarts tracked at once "
        f"(3 steps x {r['step']} s = {op_seconds:.0f} s each), API latency {r['latency']} s"
    )
    print(
        f"settings: backoff first={b.first}s factor={b.factor} cap={b.cap}s, "
        f"concurrency={s.concurrency}, pool={r['pool']} connections "
        f"({'LeanConnectionPool' if r['lean'] else 'httpcore pool'}), "
        f"tick={s.tick_seconds}s, batch={s.batch}; notifier: SlackNotifier over HTTP"
    )
    print(
        table(
            ["figure", "value", "target"],
            [
                [f"start {r['ops']} restarts (s)", round(r["start_s"], 2), ""],
                ["wall time, first start to idle (s)", round(r["track_wall"], 2), ""],
                ["CPU, first start to idle (s)", round(r["track_cpu"], 2), ""],
                ["average cores used", round(cores, 3), "< 1"],
                ["peak RSS (MB)", round(r["rss_mb"], 1), "< 200"],
                ["max open sockets", r["max_sockets"], ""],
                ["polls per operation", round(r["polls"] / r["ops"], 2), ""],
                ["token requests", r["tokens"], "1"],
                ["simulator requests", r["sim_requests"], ""],
                ["simulator + stand-in CPU, whole run (s)", round(r["child_cpu"], 2), ""],
                ["final messages", f"{r['finals']}/{r['ops']}", f"{r['ops']}"],
                ["final-message delay p50 (s)", round(p50, 3), ""],
                ["final-message delay p99 (s)", round(p99, 3), f"< {interval + 1:.2f}"],
                ["final-message delay max (s)", round(max(d) if d else float("nan"), 3), ""],
                ["  of which end -> poll p50 / p99 (s)", lag(r["poll_lags"]), ""],
                ["  of which poll -> Slack p50 / p99 (s)", lag(r["send_lags"]), ""],
            ],
        )
    )
    print(f"Slack calls: {r['slack_calls']}; finished within the bound: {r['idle']}")
    targets = {
        "cpu_lt_1_core": cores < 1,
        "rss_lt_200mb": r["rss_mb"] < 200,
        "final_delay_p99_lt_interval_plus_1s": p99 < interval + 1,
        "all_finals": r["finals"] == r["ops"],
        "one_token": r["tokens"] == 1,
    }
    print("targets: " + ", ".join(f"{k}={'met' if v else 'MISSED'}" for k, v in targets.items()))
    emit(
        "tracker",
        {
            "ops": r["ops"],
            "step_seconds": r["step"],
            "api_latency_s": r["latency"],
            "settings": {
                "poll_first_s": b.first,
                "poll_factor": b.factor,
                "poll_cap_s": b.cap,
                "concurrency": s.concurrency,
                "pool_connections": r["pool"],
                "lean_pool": r["lean"],
                "tick_s": s.tick_seconds,
                "batch": s.batch,
            },
            "track_wall_s": round(r["track_wall"], 2),
            "track_cpu_s": round(r["track_cpu"], 2),
            "avg_cores": round(cores, 3),
            "peak_rss_mb": round(r["rss_mb"], 1),
            "max_open_sockets": r["max_sockets"],
            "polls_per_op": round(r["polls"] / r["ops"], 2),
            "token_requests": r["tokens"],
            "sim_requests": r["sim_requests"],
            "child_cpu_s": round(r["child_cpu"], 2),
            "final_messages": r["finals"],
            "final_delay_p50_s": round(p50, 3),
            "final_delay_p99_s": round(p99, 3),
            "end_to_poll_p99_s": round(pct(r["poll_lags"], 99), 3) if r["poll_lags"] else None,
            "poll_to_slack_p99_s": round(pct(r["send_lags"], 99), 3) if r["send_lags"] else None,
            "poll_interval_at_end_s": round(interval, 3),
            "slack_calls": r["slack_calls"],
            "targets": targets,
        },
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=1000)
    parser.add_argument("--step", type=float, default=5.0, help="simulator step_seconds")
    parser.add_argument("--latency", type=float, default=0.2, help="API latency, s")
    parser.add_argument(
        "--pool",
        type=int,
        default=DEFAULT_MAX_CONNECTIONS,
        help="connections in the provider's HTTP pool (default: max_connections's)",
    )
    parser.add_argument(
        "--concurrency", type=int, help="tracker polls in flight (default: the config's)"
    )
    parser.add_argument("--limit", type=float, default=90.0, help="max tracking time, s")
    parser.add_argument(
        "--stock-pool",
        action="store_true",
        help="httpcore's own pool instead of clients/pool.py's LeanConnectionPool",
    )
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        asyncio.run(child(args.ops, args.step, args.latency))
        sys.exit(0)
    import logging

    logging.basicConfig(level=logging.ERROR)
    report(
        asyncio.run(
            main(
                args.ops,
                args.step,
                args.latency,
                args.pool,
                args.concurrency,
                args.limit,
                lean=not args.stock_pool,
            )
        )
    )
