"""Real processes for the reliability suite: `graphops simulate` and `graphops serve`."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx

from tests.bot.slack.slack_support import signed_headers
from tests.waiting import wait_until

GRAPHOPS = [sys.executable, "-m", "bot.cli"]
BOT_TOKEN = "xoxb-rel-bot-token-5d1c"
SIGNING = "rel-signing-secret-2a9f"
GDB_ID, GDB_SECRET = "demo-client", "demo-secret"  # what `graphops simulate` accepts


def _get_json(url: str) -> Any:
    return json.loads(urllib.request.urlopen(url, timeout=5).read())


class Simulate:
    """`graphops simulate` on ports the system picks; it writes its URLs to a file."""

    def __init__(self, step_seconds: float = 0.3) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix="graphops-sim-")
        urls_file = Path(self._dir.name) / "urls.json"
        self.proc = subprocess.Popen(
            [
                *GRAPHOPS,
                "simulate",
                "--port",
                "0",
                "--urls-file",
                str(urls_file),
                "--step-seconds",
                str(step_seconds),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

        def started() -> bool:
            assert self.proc.poll() is None, "simulate exited"
            return urls_file.exists()

        wait_until(started, 20, "graphops simulate to start")
        self.urls: dict[str, str] = json.loads(urls_file.read_text())
        self.console = self.urls["console"]
        self.slack = self.urls["slack"]

    def requests(self) -> list[dict[str, Any]]:
        return _get_json(self.console + "/_sim/requests")

    def mutating(self) -> list[dict[str, Any]]:
        return [
            r
            for r in self.requests()
            if r["method"] not in ("GET", "HEAD") and "oauth/token" not in r["path"]
        ]

    def calls(self) -> list[dict[str, Any]]:
        return _get_json(self.slack + "/_standin/calls")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._dir.cleanup()


def write_config(
    tmp: Path,
    sim: Simulate,
    port: int,
    extra: str = "",
    *,
    snapshot_before_destroy: str = "never",
    bot_extra: str = "",
) -> Path:
    config = tmp / "graphops.toml"
    config.write_text(
        f"""
[bot]
admins = ["U0ADMIN"]
database = "{tmp / "g.sqlite3"}"
{bot_extra}

[slack]
api_url = "{sim.slack}/api/"
port = {port}

[operations]
poll_first_seconds = 0.1
poll_factor = 1.2
poll_cap_seconds = 0.3
snapshot_before_destroy = "{snapshot_before_destroy}"

[[providers]]
name = "console"
kind = "graphenedb"
base_url = "{sim.console}"
client_id_env = "GDB_ID"
client_secret_env = "GDB_SECRET"
timeout_seconds = 5
{extra}
"""
    )
    return config


def bot_env(config: Path, **more: str) -> dict[str, str]:
    return {
        **os.environ,
        "GRAPHOPS_CONFIG": str(config),
        "GDB_ID": GDB_ID,
        "GDB_SECRET": GDB_SECRET,
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING,
        **more,
    }


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*GRAPHOPS, *args], capture_output=True, text=True, env=env, timeout=60)


class Serve:
    """`graphops serve` in HTTP mode; stderr goes to a file (checked for secrets)."""

    def __init__(self, env: dict[str, str], port: int, log: Path, *, health: int = 200) -> None:
        """Start it and wait until /healthz answers `health` (503: the store is locked)."""
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log = log
        self._log = log.open("ab")
        self.proc = subprocess.Popen(
            [*GRAPHOPS, "serve", "--host", "127.0.0.1"],
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

        def healthy() -> bool:
            try:
                # /healthz takes up to 1.5 s to say 503 (it waits a second for the lock)
                return httpx.get(self.url + "/healthz", timeout=3).status_code == health
            except httpx.HTTPError:
                assert self.proc.poll() is None, "serve exited: " + log.read_text()[-2000:]
                return False

        wait_until(healthy, 30, "graphops serve to answer /healthz", interval=0.1)

    def kill(self) -> None:
        """SIGKILL: no cleanup at all."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)
        self._log.close()

    def terminate(self, timeout: float = 60) -> int:
        """SIGTERM, then wait for the process to exit (it drains first); its exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=timeout)
        self._log.close()
        return code

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._log.close()

    def rss_kb(self) -> int:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return 0

    def post(
        self, body: str, content_type: str, *, timestamp: int | None = None, secret: str = SIGNING
    ) -> httpx.Response:
        headers = signed_headers(body, timestamp=timestamp, secret=secret)
        headers["Content-Type"] = content_type
        return httpx.post(self.url + "/slack/events", content=body, headers=headers, timeout=30)

    def slash(
        self, text: str, *, user: str = "U0ALICE", channel: str = "C0DEV", secret: str = SIGNING
    ) -> httpx.Response:
        body = urlencode(
            {
                "team_id": "T0STANDIN",
                "channel_id": channel,
                "user_id": user,
                "command": "/gdb",
                "text": text,
                "trigger_id": "1.2.3",
                "response_url": "http://127.0.0.1:9/response",
            }
        )
        return self.post(body, "application/x-www-form-urlencoded", secret=secret)


def rows(db: Path, sql: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(db, timeout=10) as conn:
        return conn.execute(sql).fetchall()


class SimThread:
    """The three API simulators and a Slack stand-in, with chosen credentials, served from
    a background thread of the test process (`graphops simulate` has fixed demo ones).

    `run(coro_fn)` runs a coroutine function on the simulators' loop (to read their state);
    `stop()` stops the servers and joins the thread.
    """

    def __init__(
        self,
        *,
        client_id: str,
        client_secret: str,
        api_key: str,
        typedb_password: str,
        bot_token: str,
        step_seconds: float = 0.3,
    ) -> None:
        import asyncio
        import threading

        from simulators.graphenedb import ConsoleSimulator
        from simulators.graphenedb_v1 import V1Simulator
        from simulators.slack import SlackStandIn
        from simulators.typedb import TypeDBSimulator

        self.console_sim = ConsoleSimulator(
            client_id=client_id, client_secret=client_secret, step_seconds=step_seconds
        )
        self.v1_sim = V1Simulator(api_key=api_key, step_seconds=step_seconds)
        self.typedb_sim = TypeDBSimulator(username="admin", password=typedb_password)
        self.standin = SlackStandIn(token=bot_token, channels=["C0DEV", "C0ONCALL"])
        self.loop = asyncio.new_event_loop()
        started = threading.Event()

        async def start() -> None:
            await self.console_sim.start()
            await self.v1_sim.start()
            await self.typedb_sim.start("127.0.0.1", 0)
            await self.standin.start()

        def main() -> None:
            asyncio.set_event_loop(self.loop)
            self.loop.run_until_complete(start())
            started.set()
            self.loop.run_forever()

        self.thread = threading.Thread(target=main, name="sims", daemon=True)
        self.thread.start()
        assert started.wait(20), "simulators did not start"
        self.console = self.console_sim.base_url
        self.v1 = self.v1_sim.base_url + "/v1"
        self.typedb = self.typedb_sim.base_url
        self.slack = self.standin.url

    def call(self, fn):  # type: ignore[no-untyped-def]
        """Run a plain function on the simulators' loop thread and return its result."""
        import asyncio

        async def wrapped():  # type: ignore[no-untyped-def]
            return fn()

        return asyncio.run_coroutine_threadsafe(wrapped(), self.loop).result(timeout=10)

    def calls(self) -> list[Any]:
        """The Slack stand-in's recorded calls (SlackCall objects), copied."""
        return self.call(lambda: list(self.standin.calls))

    def stop(self) -> None:
        import asyncio

        async def stop_all() -> None:
            for sim in (self.standin, self.typedb_sim, self.v1_sim, self.console_sim):
                await sim.stop()

        if self.thread.is_alive():
            asyncio.run_coroutine_threadsafe(stop_all(), self.loop).result(timeout=15)
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(timeout=15)
        if not self.loop.is_running():
            self.loop.close()
