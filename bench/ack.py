"""Ack latency of the slash command: the real Bolt app (HTTP mode) vs a bare Bolt app.

The bot (build_bot over a Console simulator whose every request takes
`--latency` seconds, build_app with the Slack stand-in as Web API, SlackServer
on 127.0.0.1:0) receives N concurrent, correctly signed `/gdb` slash commands
(restart / list / show mixed) from a channel granted operator. The same load
then goes to a bare Bolt AsyncApp whose slash handler only acks, served the same
way (aiohttp + Bolt's aiohttp adapter, same signing secret): the floor.

The load generator is a separate process (this script with `--client`), so its
CPU does not compete with the server's event loop; it measures each HTTP
round trip with httpx.AsyncClient. Afterwards the script waits (bounded) until
every command has produced its Slack message at the stand-in.

Run from the repo root:  .venv/bin/python bench/ack.py [--n 100] [--latency 2.0]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import CHANNEL, USER, emit, make_bot, make_sim, summary_ms, table, workdir

SIGNING_SECRET = "bench-signing-secret"
BOT_TOKEN = "xoxb-bench-token"
MESSAGE_METHODS = ("chat.postMessage", "chat.postEphemeral")


# -- the load generator (child process) -----------------------------------------------


def slash_body(text: str, channel: str, user: str, n: int) -> str:
    return urlencode(
        {
            "token": "legacy",
            "team_id": "T0STANDIN",
            "api_app_id": "A0GRAPHOPS",
            "channel_id": channel,
            "user_id": user,
            "command": "/gdb",
            "text": text,
            "response_url": "http://127.0.0.1:9/response",
            "trigger_id": f"trigger.{n}",
        }
    )


async def client_main(spec: dict[str, Any]) -> dict[str, Any]:
    import httpx
    from slack_sdk.signature import SignatureVerifier

    verifier = SignatureVerifier(spec["secret"])
    url = spec["url"] + "/slack/events"

    def request(text: str, n: int) -> tuple[str, dict[str, str]]:
        body = slash_body(text, spec["channel"], spec["user"], n)
        ts = str(int(time.time()))
        headers = {
            "X-Slack-Request-Timestamp": ts,
            "X-Slack-Signature": verifier.generate_signature(timestamp=ts, body=body),
            "Content-Type": "application/x-www-form-urlencoded",
        }
        return body, headers

    limits = httpx.Limits(max_connections=1000, max_keepalive_connections=1000)
    async with httpx.AsyncClient(limits=limits, timeout=30.0) as http:
        # One warm-up request (Bolt's first-request authorization, connection set-up).
        body, headers = request(spec["warmup"], 0)
        warm = await http.post(url, content=body, headers=headers)
        prepared = [request(text, n + 1) for n, text in enumerate(spec["texts"])]

        async def one(body: str, headers: dict[str, str]) -> tuple[float, int]:
            started = time.perf_counter()
            response = await http.post(url, content=body, headers=headers)
            return time.perf_counter() - started, response.status_code

        wall = time.perf_counter()
        results = await asyncio.gather(*(one(b, h) for b, h in prepared))
        wall = time.perf_counter() - wall
    return {
        "warmup_status": warm.status_code,
        "latencies": [r[0] for r in results],
        "statuses": [r[1] for r in results],
        "wall": wall,
    }


async def run_client(spec: dict[str, Any], timeout: float = 60.0) -> dict[str, Any]:
    """Run the load generator as a child process; its JSON answer."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        __file__,
        "--client",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(json.dumps(spec).encode()), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    if proc.returncode != 0:
        raise RuntimeError(f"load generator failed ({proc.returncode})")
    return json.loads(out)


# -- the servers ---------------------------------------------------------------------


async def start_floor(standin_api_url: str) -> tuple[Any, str]:
    """A bare Bolt AsyncApp whose /gdb handler only acks, behind aiohttp like SlackServer."""
    import logging

    from aiohttp import web
    from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
    from slack_bolt.async_app import AsyncAck, AsyncApp
    from slack_sdk.web.async_client import AsyncWebClient

    app = AsyncApp(
        signing_secret=SIGNING_SECRET,
        client=AsyncWebClient(token=BOT_TOKEN, base_url=standin_api_url),
        logger=logging.getLogger("bench.floor"),
        name="floor",
    )

    @app.command("/gdb")
    async def only_ack(ack: AsyncAck) -> None:
        await ack()

    async def events(request: web.Request) -> web.Response:
        bolt_response = await app.async_dispatch(await to_bolt_request(request))
        return await to_aiohttp_response(bolt_response)

    web_app = web.Application()
    web_app.add_routes([web.post("/slack/events", events)])
    runner = web.AppRunner(web_app, access_log=None, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    host, port = runner.addresses[0][:2]
    return runner, f"http://{host}:{port}"


async def start_plain() -> tuple[Any, str]:
    """aiohttp answering 200 at once (no Bolt): what the load generator and TCP cost alone."""
    from aiohttp import web

    async def events(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(status=200)

    web_app = web.Application()
    web_app.add_routes([web.post("/slack/events", events)])
    runner = web.AppRunner(web_app, access_log=None, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    host, port = runner.addresses[0][:2]
    return runner, f"http://{host}:{port}"


def commands(n: int, dbs: int) -> list[str]:
    """restart / list / show, mixed; restarts go to distinct databases (no 409 busy)."""
    texts = []
    for i in range(n):
        kind = i % 3
        if kind == 0:
            texts.append(f"restart bench-{i % dbs:03d}")
        elif kind == 1:
            texts.append("list")
        else:
            texts.append(f"show bench-{i % dbs:03d}")
    return texts


def messages(standin: Any) -> list[Any]:
    return [
        c
        for c in standin.calls
        if c.method in MESSAGE_METHODS and c.status == 200 and c.body.get("channel") == CHANNEL
    ]


async def main(n: int, latency: float, wait: float) -> dict[str, Any]:
    from slack_sdk.web.async_client import AsyncWebClient

    from bot.slack.app import build_app
    from bot.slack.server import SlackServer
    from simulators.slack import SlackStandIn

    sim = make_sim(step_seconds=1.0)
    dev = sim.find_environment("development")
    dbs = n  # one database per command at most, so restarts never collide
    for i in range(dbs):
        sim.add_database(dev.id, f"bench-{i:03d}")
    await sim.start()
    standin = SlackStandIn(token=BOT_TOKEN, channels=[CHANNEL])
    await standin.start()
    tmp = workdir()
    bot = make_bot(sim, Path(tmp.name))
    web_client = AsyncWebClient(token=BOT_TOKEN, base_url=standin.api_url)
    app = build_app(bot, signing_secret=SIGNING_SECRET, token=BOT_TOKEN, client=web_client)
    server = SlackServer(app, sweep_seconds=None)
    bot_url = await server.start()
    floor_runner, floor_url = await start_floor(standin.api_url)
    plain_runner, plain_url = await start_plain()
    texts = commands(n, dbs)
    spec = {"secret": SIGNING_SECRET, "channel": CHANNEL, "user": USER, "texts": texts}
    try:
        # The floor first, while the bot is idle.
        plain = await run_client({**spec, "url": plain_url, "warmup": "help"})
        floor = await run_client({**spec, "url": floor_url, "warmup": "help"})
        sim.faults.latency = latency
        started = time.monotonic()
        real = await run_client({**spec, "url": bot_url, "warmup": "help"})
        # Every command (and the warm-up) must produce its message, eventually.
        expected = n + 1
        deadline = time.monotonic() + wait
        while len(messages(standin)) < expected and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        got = messages(standin)
        all_done = time.monotonic() - started
        error_msgs = [
            c
            for c in got
            if "error" in json.dumps(c.body.get("blocks") or "") or c.method == "chat.postEphemeral"
        ]
        sim_requests = len(sim.requests)
        tokens = sim.tokens_issued
    finally:
        await server.stop()
        await floor_runner.cleanup()
        await plain_runner.cleanup()
        await bot.aclose()
        await standin.stop()
        await sim.stop()
        tmp.cleanup()
    return {
        "floor": floor,
        "plain": plain,
        "real": real,
        "messages": len(got),
        "expected": expected,
        "ephemeral_or_error": len(error_msgs),
        "all_messages_s": round(all_done, 2),
        "sim_requests": sim_requests,
        "tokens": tokens,
    }


def report(n: int, latency: float, result: dict[str, Any]) -> None:
    real = summary_ms(result["real"]["latencies"])
    floor = summary_ms(result["floor"]["latencies"])
    plain = summary_ms(result["plain"]["latencies"])
    ratio = real["p99_ms"] / floor["p99_ms"] if floor["p99_ms"] else float("inf")
    ok_real = sum(1 for s in result["real"]["statuses"] if s == 200)
    ok_floor = sum(1 for s in result["floor"]["statuses"] if s == 200)
    print(f"ack latency, {n} concurrent signed slash commands, API latency {latency:.1f} s")
    print(
        table(
            ["app", "HTTP 200", "p50 ms", "p95 ms", "p99 ms", "max ms", "wall s"],
            [
                [
                    "graphops (build_app)",
                    f"{ok_real}/{n}",
                    real["p50_ms"],
                    real["p95_ms"],
                    real["p99_ms"],
                    real["max_ms"],
                    result["real"]["wall"],
                ],
                [
                    "floor (bare Bolt ack)",
                    f"{ok_floor}/{n}",
                    floor["p50_ms"],
                    floor["p95_ms"],
                    floor["p99_ms"],
                    floor["max_ms"],
                    result["floor"]["wall"],
                ],
                [
                    "harness (aiohttp 200)",
                    f"{sum(1 for s in result['plain']['statuses'] if s == 200)}/{n}",
                    plain["p50_ms"],
                    plain["p95_ms"],
                    plain["p99_ms"],
                    plain["max_ms"],
                    result["plain"]["wall"],
                ],
            ],
        )
    )
    print()
    met_ratio = ratio <= 1.5
    met_abs = real["p99_ms"] < 100
    met_msgs = result["messages"] >= result["expected"]
    print(f"p99 / p99_floor = {ratio:.2f}   (target <= 1.5: {'met' if met_ratio else 'MISSED'})")
    print(f"p99 = {real['p99_ms']:.1f} ms     (target < 100 ms: {'met' if met_abs else 'MISSED'})")
    print(
        f"Slack messages: {result['messages']}/{result['expected']} (incl. warm-up `help`), "
        f"last after {result['all_messages_s']} s; ephemeral/error: {result['ephemeral_or_error']}"
        f" ({'met' if met_msgs else 'MISSED'})"
    )
    print(f"simulator requests: {result['sim_requests']}, tokens issued: {result['tokens']}")
    emit(
        "ack",
        {
            "n": n,
            "api_latency_s": latency,
            "ack": real,
            "floor": floor,
            "harness": plain,
            "p99_ratio": round(ratio, 3),
            "http_200": ok_real,
            "floor_http_200": ok_floor,
            "messages": result["messages"],
            "messages_expected": result["expected"],
            "ephemeral_or_error_messages": result["ephemeral_or_error"],
            "all_messages_s": result["all_messages_s"],
            "sim_requests": result["sim_requests"],
            "tokens_issued": result["tokens"],
            "targets": {
                "p99_ratio_le_1_5": met_ratio,
                "p99_lt_100ms": met_abs,
                "all_messages": met_msgs,
            },
        },
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100, help="concurrent slash commands")
    parser.add_argument("--latency", type=float, default=2.0, help="API latency, seconds")
    parser.add_argument("--wait", type=float, default=75.0, help="max wait for all messages, s")
    parser.add_argument("--client", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        print(json.dumps(asyncio.run(client_main(json.load(sys.stdin)))))
        sys.exit(0)
    import logging

    logging.basicConfig(level=logging.ERROR)
    report(args.n, args.latency, asyncio.run(main(args.n, args.latency, args.wait)))
