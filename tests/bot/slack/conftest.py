"""Fixtures: the strict Slack stand-in, and the real Bolt app served over HTTP."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from slack_sdk.web.async_client import AsyncWebClient

from bot.config import BotSettings, Config, ConsoleProvider, OperationsSettings, TypeDBProvider
from bot.slack.app import build_app, runtime
from bot.slack.runtime import SlackRuntime
from bot.slack.server import SlackServer
from bot.wiring import Bot, build_bot
from simulators.graphenedb import ConsoleSimulator
from simulators.slack import SlackStandIn
from simulators.typedb import TypeDBSimulator
from tests.bot.slack.slack_support import BOT_TOKEN, SIGNING_SECRET, SlackClient, validate_calls
from tests.support import ENVIRON

USERS = {"U0ALICE": "alice", "U0BOB": "bob", "U0ADMIN": "admin", "U0EVE": "eve"}
CHANNEL_NAMES = {
    "C0DEV": "dev-db",
    "C0ONCALL": "prod-oncall",
    "C0PROD": "prod-db",
    "C0INCIDENT": "db-incidents",
}
TDB_PASSWORD = "sentinel-typedb-pw-4411"


@dataclass
class SlackHarness:
    """The running app, its stand-in Web API and a signed-request client."""

    server: SlackServer
    standin: SlackStandIn
    slack: SlackClient
    rt: SlackRuntime


def make_standin(**overrides: object) -> SlackStandIn:
    """The stand-in of these tests: the bot is in #dev-db and #prod-oncall."""
    settings: dict[str, object] = {
        "token": BOT_TOKEN,
        "channels": ["C0DEV", "C0ONCALL"],
        "users": dict(USERS),
        "channel_names": dict(CHANNEL_NAMES),
        **overrides,
    }
    return SlackStandIn(**settings)  # type: ignore[arg-type]


@pytest.fixture
async def standin() -> AsyncIterator[SlackStandIn]:
    server = make_standin()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@contextlib.asynccontextmanager
async def serving(
    bot: Bot, standin: SlackStandIn, tracker: object = None
) -> AsyncIterator[SlackHarness]:
    """The real Bolt app over `bot` on loopback, talking to `standin`; on the way out
    every call is checked (Block Kit, tokens, stand-in violations)."""
    client = AsyncWebClient(token=BOT_TOKEN, base_url=standin.api_url)
    app = build_app(
        bot,
        signing_secret=SIGNING_SECRET,
        token=BOT_TOKEN,
        client=client,
        tracker=tracker,  # type: ignore[arg-type]
    )
    server = SlackServer(app, sweep_seconds=None)
    url = await server.start()
    async with httpx.AsyncClient(timeout=30.0) as http:
        try:
            yield SlackHarness(server, standin, SlackClient(url, http, standin), runtime(app))
        finally:
            await server.stop()
    validate_calls(standin)
    for call in standin.calls:
        if call.method not in ("response_url", "upload"):
            assert call.authorized, f"{call.method} without the bot token"
        assert BOT_TOKEN not in str(call.body) and SIGNING_SECRET not in str(call.body)


@pytest.fixture
async def harness(bot: Bot, standin: SlackStandIn) -> AsyncIterator[SlackHarness]:
    async with serving(bot, standin) as built:
        yield built


@pytest.fixture
async def tdb_sim() -> AsyncIterator[TypeDBSimulator]:
    sim = TypeDBSimulator(username="admin", password=TDB_PASSWORD)
    await sim.start("127.0.0.1", 0)
    try:
        yield sim
    finally:
        await sim.stop()


@pytest.fixture
async def full_bot(
    console_sim: ConsoleSimulator, tdb_sim: TypeDBSimulator, tmp_path: Path
) -> AsyncIterator[Bot]:
    """A bot over a Console simulator (`console`) and a TypeDB one (`graph`), demo policy."""
    from bot.demo import apply_demo_policy

    config = Config(
        bot=BotSettings(admins=("U0ADMIN",), database=str(tmp_path / "full.sqlite3")),
        operations=OperationsSettings(snapshot_before_destroy="never"),
        providers=(
            ConsoleProvider(
                name="console",
                kind="graphenedb",
                base_url=console_sim.base_url,
                client_id_env="T_CLIENT_ID",
                client_secret_env="T_CLIENT_SECRET",
            ),
            TypeDBProvider(
                name="graph",
                kind="typedb",
                base_url=tdb_sim.base_url,
                username_env="T_TDB_USER",
                password_env="T_TDB_PASS",
            ),
        ),
    )
    environ = {**ENVIRON, "T_TDB_USER": "admin", "T_TDB_PASS": TDB_PASSWORD}
    built = build_bot(config, environ=environ)
    apply_demo_policy(built)
    try:
        yield built
    finally:
        await built.aclose()


@pytest.fixture
async def full(full_bot: Bot, standin: SlackStandIn) -> AsyncIterator[SlackHarness]:
    async with serving(full_bot, standin) as built:
        yield built
