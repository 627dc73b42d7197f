"""`serve`: secrets from the environment, HTTP mode against the stand-in, clean stop."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import httpx
import pytest
from slack_sdk.web.async_client import AsyncWebClient

import bot.slack.serve as serve_module
from bot.config import Config, ConfigError, SlackSettings, slack_secrets
from bot.slack.serve import serve
from bot.store import AUTOCHECKPOINT_PAGES, Checkpointer
from simulators.graphenedb import ConsoleSimulator
from simulators.slack import SlackStandIn
from tests.bot.slack.slack_support import BOT_TOKEN, SIGNING_SECRET, signed_headers
from tests.support import ENVIRON, make_config


def test_missing_slack_variables_are_named_without_values() -> None:
    config = make_config("http://127.0.0.1:1", Path("unused.sqlite3"))
    with pytest.raises(ConfigError) as caught:
        slack_secrets(config, {"SLACK_APP_TOKEN": "", "SLACK_BOT_TOKEN": ""})
    assert "SLACK_BOT_TOKEN" in str(caught.value)
    with pytest.raises(ConfigError) as caught:
        slack_secrets(config, {"SLACK_BOT_TOKEN": BOT_TOKEN})
    assert "SLACK_SIGNING_SECRET" in str(caught.value)
    assert BOT_TOKEN not in str(caught.value)
    # Socket Mode needs no signing secret
    assert slack_secrets(config, {"SLACK_BOT_TOKEN": "b", "SLACK_APP_TOKEN": "a"}) == ("b", "", "a")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_serve_in_http_mode_until_stopped(
    console_sim: ConsoleSimulator, standin: SlackStandIn, tmp_path: Path, monkeypatch
) -> None:
    """...and while it serves, the store's WAL is checkpointed off the event loop
    (`bot.store.Checkpointer`): the bot's connection does not checkpoint in a commit."""
    seen: list[tuple[str, int]] = []

    class Recorded(Checkpointer):
        def start(self) -> None:
            super().start()
            seen.append(("start", _autocheckpoint(self)))

        async def stop(self) -> None:
            await super().stop()
            seen.append(("stop", _autocheckpoint(self)))

    monkeypatch.setattr(serve_module, "Checkpointer", Recorded)
    port = _free_port()
    base = make_config(console_sim.base_url, tmp_path / "bot.sqlite3")
    config = base.model_copy(update={"slack": SlackSettings(api_url=standin.api_url, port=port)})
    environ = {**ENVIRON, "SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_SIGNING_SECRET": SIGNING_SECRET}
    stop = asyncio.Event()
    task = asyncio.create_task(serve(config, environ, host="127.0.0.1", stop=stop))
    url = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient() as http:
        for _ in range(500):
            try:
                if (await http.get(url + "/healthz")).status_code == 200:
                    break
            except httpx.TransportError:
                await asyncio.sleep(0.01)
        body = "command=%2Fgdb&text=help&user_id=U0ALICE&channel_id=C0DEV&team_id=T0STANDIN"
        headers = {**signed_headers(body), "Content-Type": "application/x-www-form-urlencoded"}
        response = await http.post(url + "/slack/events", content=body, headers=headers)
        assert response.status_code == 200
    await standin.wait_for("chat.postEphemeral")
    stop.set()
    await asyncio.wait_for(task, 10.0)
    assert seen == [("start", 0), ("stop", AUTOCHECKPOINT_PAGES)]


def _autocheckpoint(checkpointer: Checkpointer) -> int:
    return int(checkpointer.db.execute("PRAGMA wal_autocheckpoint").fetchone()[0])


async def test_serve_sends_every_slack_call_over_one_session_closed_at_stop(
    console_sim: ConsoleSimulator,
    standin: SlackStandIn,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without a shared aiohttp session slack_sdk opens a session (a TCP connection)
    per call; serve keeps one, kept alive, and closes it when it stops."""
    made: list[AsyncWebClient] = []
    original = serve_module.web_client

    def recording_web_client(config: Config, token: str) -> AsyncWebClient:
        made.append(original(config, token))
        return made[-1]

    monkeypatch.setattr(serve_module, "web_client", recording_web_client)
    port = _free_port()
    base = make_config(console_sim.base_url, tmp_path / "bot.sqlite3")
    config = base.model_copy(update={"slack": SlackSettings(api_url=standin.api_url, port=port)})
    environ = {**ENVIRON, "SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_SIGNING_SECRET": SIGNING_SECRET}
    stop = asyncio.Event()
    task = asyncio.create_task(serve(config, environ, host="127.0.0.1", stop=stop))
    url = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient() as http:
        for _ in range(500):
            try:
                if (await http.get(url + "/healthz")).status_code == 200:
                    break
            except httpx.TransportError:
                await asyncio.sleep(0.01)
        for n in range(3):
            body = "command=%2Fgdb&text=help&user_id=U0ALICE&channel_id=C0DEV&team_id=T0STANDIN"
            headers = {**signed_headers(body), "Content-Type": "application/x-www-form-urlencoded"}
            response = await http.post(url + "/slack/events", content=body, headers=headers)
            assert response.status_code == 200
            await standin.wait_for("chat.postEphemeral", count=n + 1)
    web_calls = [c for c in standin.calls if c.method not in ("response_url", "upload")]
    assert len(web_calls) >= 3
    assert len(standin.connections) == 1, standin.connections
    assert len(made) == 1 and made[0].session is not None
    assert not made[0].session.closed
    stop.set()
    await asyncio.wait_for(task, 10.0)
    assert made[0].session.closed
