"""The world outside the bot, in a process of its own: a Console simulator and the Slack
stand-in, so the CPU they use (serialising listings, checking Block Kit, keeping every
message) is not charged to the bot's event loop, as in production where the API and
Slack are other machines.

The child serves the simulator's and the stand-in's usual routes plus two admin routes
on the simulator's base URL:

- ``GET /_sim/bench?calls=N&requests=M``: the stand-in's calls from the N-th on
  (``{method, status, at, channel, error}``; ``at`` is wall time, ``error`` whether the
  message's blocks mention an error) and the simulator's requests from the M-th on
  (``requests``: paths; ``answered``: wall time each answer was sent), with the totals
  ``ncalls``, ``nrequests`` and ``tokens_issued``;
- ``POST /_sim/slash`` ``{"text": ...}``: a slash command payload as Slack sends it
  (a real response_url on the stand-in) for BENCH's user and channel.

Parent side: ``async with Apart(spec) as world: ...`` with ``spec`` =
``{"step_seconds": float, "databases": {"<environment label>": [names...]}}``.
The child ends when its stdin is closed.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import CHANNEL, CLIENT_ID, CLIENT_SECRET, USER

BOT_TOKEN = "xoxb-bench-token"


async def child(spec: dict[str, Any]) -> None:
    """Serve the simulator and the stand-in until stdin closes."""
    from aiohttp import web

    from simulators.graphenedb import ConsoleSimulator
    from simulators.slack import SlackStandIn

    standin = SlackStandIn(token=BOT_TOKEN, channels=[CHANNEL])

    class Sim(ConsoleSimulator):
        def routes(self) -> list[web.RouteDef]:
            return [
                *super().routes(),
                web.get("/_sim/bench", self.bench_dump),
                web.post("/_sim/slash", self.bench_slash),
            ]

        async def bench_dump(self, request: web.Request) -> web.Response:
            calls = int(request.query.get("calls", "0"))
            requests = int(request.query.get("requests", "0"))
            wall = time.time() - time.monotonic()  # the simulator's clock is monotonic
            return web.json_response(
                {
                    "calls": [
                        {
                            "method": c.method,
                            "status": c.status,
                            "at": c.at,
                            "channel": c.body.get("channel"),
                            "error": "error" in json.dumps(c.body.get("blocks") or ""),
                        }
                        for c in standin.calls[calls:]
                    ],
                    "ncalls": len(standin.calls),
                    "requests": [r.path for r in self.requests[requests:]],
                    "answered": [r.at + wall for r in self.requests[requests:]],
                    "nrequests": len(self.requests),
                    "tokens_issued": self.tokens_issued,
                }
            )

        async def bench_slash(self, request: web.Request) -> web.Response:
            text = (await request.json())["text"]
            return web.json_response(standin.slash_payload(text, user=USER, channel=CHANNEL))

    sim = Sim(client_id=CLIENT_ID, client_secret=CLIENT_SECRET, step_seconds=spec["step_seconds"])
    for label, names in spec["databases"].items():
        environment = sim.find_environment(label)
        for name in names:
            sim.add_database(environment.id, name)
    await sim.start()
    await standin.start()
    print(json.dumps({"sim": sim.base_url, "slack": standin.api_url}), flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)  # until closed
    await standin.stop()
    await sim.stop()


class Apart:
    """The child process seen from the bench: its URLs and admin calls."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self.sim_url = ""
        self.slack_url = ""

    async def __aenter__(self) -> Apart:
        import httpx

        self.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            __file__,
            json.dumps(self.spec),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        assert self.proc.stdout is not None
        urls = json.loads(await asyncio.wait_for(self.proc.stdout.readline(), 30))
        self.sim_url, self.slack_url = urls["sim"], urls["slack"]
        self.http = httpx.AsyncClient(timeout=60.0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.http.aclose()
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        await self.proc.wait()

    async def latency(self, seconds: float) -> None:
        """Every simulator request takes `seconds` from now on."""
        await self.http.post(self.sim_url + "/_sim/faults", json={"latency": seconds})

    async def dump(self, calls: int = 0, requests: int = 0) -> dict[str, Any]:
        """See ``GET /_sim/bench`` in the module docstring."""
        query = {"calls": str(calls), "requests": str(requests)}
        return (await self.http.get(self.sim_url + "/_sim/bench", params=query)).json()

    async def slash(self, text: str) -> dict[str, Any]:
        """A slash command payload for `text` (see ``POST /_sim/slash``)."""
        answer = await self.http.post(self.sim_url + "/_sim/slash", json={"text": text})
        return dict(answer.json())


if __name__ == "__main__":
    asyncio.run(child(json.loads(sys.argv[1])))
