"""Ack latency while another process holds the SQLite write lock (issue 15, case 11).

A real second process takes the bot's write lock (`BEGIN IMMEDIATE`) and holds it
`--hold` seconds. Meanwhile a load generator (another process) sends `--waves`
waves of `--per-wave` concurrent signed slash commands (restart / list / show),
each wave once the previous one is acknowledged. Figures: ack latency during the
lock, how many acks arrived before the lock was let go, and when the answers
arrived after it. `--old` runs the bot as it was before the fix (30 s busy
timeout on the loop's connection, work started without waiting for the store),
for comparison.

Run from the repo root:  .venv/bin/python bench/ack_locked.py [--hold 10] [--old]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import CHANNEL, USER, bot_over, emit, make_sim, summary_ms, table, workdir
from bench.ack import BOT_TOKEN, MESSAGE_METHODS, SIGNING_SECRET, commands, slash_body

HOLDER = r"""
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
print(time.monotonic(), flush=True)  # the moment it lets go (CLOCK_MONOTONIC: system-wide)
conn.execute("ROLLBACK")
"""


async def client_main(spec: dict[str, Any]) -> dict[str, Any]:
    import httpx
    from slack_sdk.signature import SignatureVerifier

    verifier = SignatureVerifier(spec["secret"])
    url = spec["url"] + "/slack/events"
    texts: list[str] = spec["texts"]
    acks: list[dict[str, float]] = []

    async def one(http: httpx.AsyncClient, text: str, n: int) -> None:
        body = slash_body(text, spec["channel"], spec["user"], n)
        ts = str(int(time.time()))
        headers = {
            "X-Slack-Request-Timestamp": ts,
            "X-Slack-Signature": str(verifier.generate_signature(timestamp=ts, body=body)),
            "Content-Type": "application/x-www-form-urlencoded",
        }
        started = time.monotonic()
        response = await http.post(url, content=body, headers=headers)
        acks.append(
            {"sent": started, "acked": time.monotonic(), "status": float(response.status_code)}
        )

    per = spec["per_wave"]
    async with httpx.AsyncClient(timeout=60.0) as http:
        for wave in range(spec["waves"]):
            batch = texts[wave * per : (wave + 1) * per]
            await asyncio.gather(*(one(http, t, wave * per + i) for i, t in enumerate(batch)))
    return {"acks": acks}


async def run_client(spec: dict[str, Any]) -> dict[str, Any]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        __file__,
        "--client",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await asyncio.wait_for(proc.communicate(json.dumps(spec).encode()), 120)
    if proc.returncode != 0:
        raise RuntimeError(f"load generator failed ({proc.returncode})")
    return json.loads(out)


def messages(standin: Any) -> list[Any]:
    """The channel's messages posted so far (the stand-in runs in this process here)."""
    return [
        c
        for c in standin.calls
        if c.method in MESSAGE_METHODS and c.status == 200 and c.body.get("channel") == CHANNEL
    ]


async def main(hold: float, waves: int, per_wave: int, old: bool) -> dict[str, Any]:
    from slack_sdk.web.async_client import AsyncWebClient

    from bot.slack.app import build_app
    from bot.slack.server import SlackServer
    from bot.store import BUSY_TIMEOUT_MS, StoreGate, set_busy_timeout
    from simulators.slack import SlackStandIn

    n = waves * per_wave
    sim = make_sim(step_seconds=1.0)
    dev = sim.find_environment("development")
    for i in range(n):
        sim.add_database(dev.id, f"bench-{i:03d}")
    await sim.start()
    standin = SlackStandIn(token=BOT_TOKEN, channels=[CHANNEL])
    await standin.start()
    tmp = workdir()
    bot = bot_over(sim.base_url, Path(tmp.name))
    if old:  # as before the fix: long busy timeout on the loop, no wait off the loop
        set_busy_timeout(bot.db, BUSY_TIMEOUT_MS)
        bot.store = StoreGate(":memory:")
    web_client = AsyncWebClient(token=BOT_TOKEN, base_url=standin.api_url)
    app = build_app(bot, signing_secret=SIGNING_SECRET, token=BOT_TOKEN, client=web_client)
    server = SlackServer(app, sweep_seconds=None)
    url = await server.start()
    spec = {
        "secret": SIGNING_SECRET,
        "channel": CHANNEL,
        "user": USER,
        "url": url,
        "texts": commands(n, iter(range(n))),
        "waves": waves,
        "per_wave": per_wave,
    }
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(bot.config.bot.database), str(hold)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        line = await asyncio.to_thread(holder.stdout.readline)
        assert line.strip() == "locked", line
        result = await run_client(spec)
        released = float((await asyncio.to_thread(holder.stdout.readline)).strip())
        await asyncio.to_thread(holder.wait, 30)
        deadline = time.monotonic() + 60
        while len(messages(standin)) < n and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        answered = time.monotonic()
        got = len(messages(standin))
        busy = sum(1 for c in standin.calls if "store is busy" in json.dumps(c.body))
    finally:
        if holder.poll() is None:
            holder.kill()
        await server.stop()
        await bot.aclose()
        await standin.stop()
        await sim.stop()
        tmp.cleanup()
    acks = result["acks"]
    return {
        "n": n,
        "latencies": [a["acked"] - a["sent"] for a in acks],
        "before_release": sum(1 for a in acks if a["acked"] < released),
        "ok": sum(1 for a in acks if a["status"] == 200),
        "answers": got,
        "answers_after_release_s": round(answered - released, 2),
        "busy_messages": busy,
    }


def report(hold: float, old: bool, result: dict[str, Any]) -> None:
    acks = summary_ms(result["latencies"])
    n = result["n"]
    label = "before the fix (--old)" if old else "graphops"
    print(f"slash-command acks while another process holds the write lock {hold:g} s ({label})")
    print(
        table(
            ["acks", "HTTP 200", "before release", "p50 ms", "p99 ms", "max ms", "answers"],
            [
                [
                    str(n),
                    f"{result['ok']}/{n}",
                    f"{result['before_release']}/{n}",
                    acks["p50_ms"],
                    acks["p99_ms"],
                    acks["max_ms"],
                    f"{result['answers']}/{n}, last {result['answers_after_release_s']} s "
                    "after release",
                ]
            ],
        )
    )
    emit(
        "ack_locked",
        {
            "hold_s": hold,
            "old": old,
            "n": n,
            "ack": acks,
            "acked_before_release": result["before_release"],
            "answers": result["answers"],
            "answers_after_release_s": result["answers_after_release_s"],
            "store_busy_messages": result["busy_messages"],
        },
        save_as="ack_locked_old" if old else None,
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hold", type=float, default=10.0, help="seconds the lock is held")
    parser.add_argument("--waves", type=int, default=5)
    parser.add_argument("--per-wave", type=int, default=10)
    parser.add_argument("--old", action="store_true", help="the bot as before the fix")
    parser.add_argument("--client", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        print(json.dumps(asyncio.run(client_main(json.load(sys.stdin)))))
        sys.exit(0)
    import logging

    logging.basicConfig(level=logging.ERROR)
    result = asyncio.run(main(args.hold, args.waves, args.per_wave, args.old))
    report(args.hold, args.old, result)
