"""Socket Mode end to end against the stand-in's WebSocket (issue 16, case 11): a command
and an approval over the socket, a server-initiated disconnect survived, backoff and
/healthz while Slack refuses, and SIGTERM of a real `graphops serve` within 10 s."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

import bot.slack.socket as socket_module
from bot.config import SlackSettings
from bot.slack.serve import serve
from simulators.graphenedb import ConsoleSimulator
from simulators.slack import SlackStandIn
from tests.bot.slack.conftest import make_standin
from tests.bot.slack.slack_support import BOT_TOKEN
from tests.support import ENVIRON, make_config

APP_TOKEN = "xapp-1-sentinel-app-token-90ab"


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _until(condition: Callable[[], Any], timeout: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


@pytest.fixture
async def socket_standin() -> AsyncIterator[SlackStandIn]:
    standin = make_standin(app_token=APP_TOKEN)
    await standin.start()
    try:
        yield standin
    finally:
        await standin.stop()


class Served:
    """`serve()` running in this loop in Socket Mode, until `stop()`."""

    def __init__(self, console_sim: ConsoleSimulator, standin: SlackStandIn, tmp: Path) -> None:
        self.port = _free_port()
        base = make_config(console_sim.base_url, tmp / "socket.sqlite3")
        self.config = base.model_copy(
            update={"slack": SlackSettings(api_url=standin.api_url, port=self.port)}
        )
        self.environ = {**ENVIRON, "SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_APP_TOKEN": APP_TOKEN}
        self.stopping = asyncio.Event()
        self.task: asyncio.Task[None] | None = None
        self.url = f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.task = asyncio.ensure_future(
            serve(
                self.config,
                self.environ,
                host="127.0.0.1",
                stop=self.stopping,
                sweep_seconds=3600,
                ping_interval=1.0,
            )
        )

    async def health(self) -> httpx.Response | None:
        try:
            async with httpx.AsyncClient() as http:
                return await http.get(self.url + "/healthz", timeout=5)
        except httpx.TransportError:
            return None

    async def stop(self) -> None:
        self.stopping.set()
        assert self.task is not None
        await asyncio.wait_for(self.task, 10.0)


async def test_a_command_and_an_approval_over_the_socket_and_a_disconnect_survived(
    console_sim: ConsoleSimulator, socket_standin: SlackStandIn, tmp_path: Path
) -> None:
    standin = socket_standin
    served = Served(console_sim, standin, tmp_path)
    from bot.demo import apply_demo_policy
    from bot.wiring import build_bot

    seeded = build_bot(served.config, environ=served.environ)
    apply_demo_policy(seeded)
    await seeded.aclose()
    served.start()
    try:
        await standin.wait_socket()

        async def healthy() -> bool:
            response = await served.health()
            return response is not None and response.status_code == 200

        await _until(healthy)
        health = await served.health()
        assert health is not None and health.json()["socket_mode"]["state"] == "connected"

        # a command: acknowledged over the socket, answered through the Web API
        ack = await standin.send_envelope(
            "slash_commands", standin.slash_payload("list", user="U0ALICE", channel="C0DEV")
        )
        assert ack == {"text": "Listing the databases…"}  # says what is happening
        [answer] = await standin.wait_for("chat.postMessage")
        assert "sandbox-db" in str(answer.body["blocks"])

        # an approval: card, Approve (a modal opened at once), typed name, card updated
        await standin.send_envelope(
            "slash_commands",
            standin.slash_payload("terminate sandbox-db", user="U0ALICE", channel="C0DEV"),
        )
        [_, card] = await standin.wait_for("chat.postMessage", count=2)
        [root] = [m for m in standin.messages if m.text == card.body["text"]]
        actions = next(b for b in card.body["blocks"] if b["type"] == "actions")
        approval_id = actions["elements"][0]["value"]
        click = standin.action_payload(
            "approval.approve", approval_id, user="U0BOB", channel="C0DEV", message_ts=root.ts
        )
        await standin.send_envelope("interactive", click)
        [filled] = await standin.wait_for(
            "views.update",
            where=lambda c: c.body["view"].get("callback_id") == "approval.confirm",
        )
        values = {"confirm": {"name": {"type": "plain_text_input", "value": "sandbox-db"}}}
        submission = standin.submission_payload(filled.body["view"], values, user="U0BOB")
        assert await standin.send_envelope("interactive", submission) == {}
        _, update = await standin.wait_for("chat.update", count=2)  # running, then done
        assert update.body["ts"] == root.ts and "U0BOB" in str(update.body["blocks"])
        await _until(lambda: standin.thread("C0DEV", root.ts))

        # a malformed envelope is acknowledged and dropped
        assert await standin.send_envelope("interactive", {"type": "block_actions"}) == {}

        # Slack asks for a new connection: the bot reconnects and goes on
        await standin.disconnect_sockets("refresh_requested")
        await standin.wait_socket(hellos=2)
        await standin.send_envelope(
            "slash_commands", standin.slash_payload("list", user="U0ALICE", channel="C0DEV")
        )
        await standin.wait_for("chat.postMessage", count=3)
        assert len(standin.calls_to("apps.connections.open")) == 2
    finally:
        await served.stop()


async def test_refused_connections_back_off_in_one_line_each_and_health_says_so(
    console_sim: ConsoleSimulator,
    socket_standin: SlackStandIn,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(socket_module, "FIRST_DELAY", 0.2)
    standin = socket_standin
    standin.app_token = "xapp-1-another-app"  # ours is refused: invalid_auth
    served = Served(console_sim, standin, tmp_path)
    served.start()
    try:
        await _until(lambda: len(standin.calls_to("apps.connections.open")) >= 3)
        health = await served.health()
        assert health is not None and health.status_code == 503
        assert health.json()["socket_mode"]["state"] == "retrying"
        assert "invalid_auth" in health.json()["socket_mode"]["last_error"]
        lines = [r for r in caplog.records if "cannot connect" in r.getMessage()]
        assert len(lines) >= 2 and all(r.exc_info is None for r in lines)
        assert "Traceback" not in caplog.text and APP_TOKEN not in caplog.text
        waits = [float(r.getMessage().split("next attempt in ")[1].split(" ")[0]) for r in lines]
        assert waits[1] >= waits[0]  # the delay doubles (jitter takes at most half)
        standin.app_token = APP_TOKEN  # Slack takes the token again
        await standin.wait_socket()

        async def healthy() -> bool:
            response = await served.health()
            return response is not None and response.status_code == 200

        await _until(healthy)
    finally:
        await served.stop()


# -- a real process ------------------------------------------------------------------------


def _serve_process(
    tmp: Path, standin: SlackStandIn, console: str
) -> tuple[subprocess.Popen[bytes], str, Path]:
    port = _free_port()
    config = tmp / "graphops.toml"
    config.write_text(
        f"""
[bot]
admins = ["U0ADMIN"]
database = "{tmp / "p.sqlite3"}"

[slack]
api_url = "{standin.api_url}"
port = {port}

[[providers]]
name = "console"
kind = "graphenedb"
base_url = "{console}"
client_id_env = "T_CLIENT_ID"
client_secret_env = "T_CLIENT_SECRET"
"""
    )
    env = {
        **os.environ,
        **ENVIRON,
        "GRAPHOPS_CONFIG": str(config),
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_APP_TOKEN": APP_TOKEN,
    }
    log = tmp / "serve.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "serve", "--host", "127.0.0.1"],
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    return proc, f"http://127.0.0.1:{port}", log


@pytest.mark.parametrize("connected", [True, False])
async def test_sigterm_stops_a_real_serve_process_within_10_seconds(
    console_sim: ConsoleSimulator, socket_standin: SlackStandIn, tmp_path: Path, connected: bool
) -> None:
    standin = socket_standin
    if not connected:
        standin.app_token = "xapp-1-another-app"
    proc, url, log = _serve_process(tmp_path, standin, console_sim.base_url)
    try:

        async def answering() -> bool:
            try:
                async with httpx.AsyncClient() as http:
                    response = await http.get(url + "/healthz", timeout=2)
            except httpx.TransportError:
                return False
            return response.status_code == (200 if connected else 503)

        await _until(answering, timeout=30)
        if connected:
            await standin.wait_socket()
        else:
            await _until(lambda: len(standin.calls_to("apps.connections.open")) >= 2)
        proc.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(proc.wait, 10)  # TimeoutExpired fails the test
        assert code == 0, log.read_text()[-2000:]
        text = log.read_text()
        assert "Traceback" not in text and APP_TOKEN not in text and BOT_TOKEN not in text
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    logging.getLogger(__name__).info("serve stopped")
