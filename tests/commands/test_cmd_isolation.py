"""One failing provider never breaks the others.

Two Console providers (`console` answers, `console-eu` answers 500 to everything), a
v1 account and two TypeDB servers (`graph-b` answers 500): every command on what
answers works, and what fails shows as one line beside the others' results.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.config import BotSettings, Config, ConsoleProvider, TypeDBProvider, V1Provider
from bot.demo import apply_demo_policy
from bot.wiring import Bot, build_bot
from core.invocation import Invocation
from core.reply import Reply
from permissions.roles import Role
from simulators.graphenedb import ConsoleSimulator
from simulators.graphenedb_v1 import V1Simulator
from simulators.typedb import TypeDBSimulator
from tests.support import ENVIRON, SECRET, SECRET_ID

V1_KEY, TDB_PASSWORD = "sentinel-v1-key-1a2b", "sentinel-tdb-pw-3c4d"
EU_DOWN = "console-eu: unreachable (500)"


async def _started(sim):  # type: ignore[no-untyped-def]
    await sim.start("127.0.0.1", 0)
    return sim


@pytest.fixture
async def world(console_sim: ConsoleSimulator) -> AsyncIterator[dict[str, object]]:
    eu = ConsoleSimulator(client_id=SECRET_ID, client_secret=SECRET)
    eu.add_environment("eu-prod", "red")
    v1 = V1Simulator(api_key=V1_KEY)
    graph = TypeDBSimulator(username="admin", password=TDB_PASSWORD)
    graph_b = TypeDBSimulator(username="admin", password=TDB_PASSWORD)
    sims = [await _started(s) for s in (eu, v1, graph, graph_b)]
    try:
        yield {"console": console_sim, "eu": eu, "v1": v1, "graph": graph, "graph_b": graph_b}
    finally:
        for sim in sims:
            await sim.stop()


def console_provider(name: str, url: str) -> ConsoleProvider:
    return ConsoleProvider(
        name=name,
        kind="graphenedb",
        base_url=url,
        client_id_env="T_CLIENT_ID",
        client_secret_env="T_CLIENT_SECRET",
    )


def tdb_provider(name: str, url: str) -> TypeDBProvider:
    return TypeDBProvider(
        name=name, kind="typedb", base_url=url, username_env="T_TDB_U", password_env="T_TDB_P"
    )


@pytest.fixture
async def bot(world, tmp_path: Path) -> AsyncIterator[Bot]:  # type: ignore[no-untyped-def]
    config = Config(
        bot=BotSettings(admins=("U0ADMIN",), database=str(tmp_path / "iso.sqlite3")),
        providers=(
            console_provider("console", world["console"].base_url),
            console_provider("console-eu", world["eu"].base_url),
            V1Provider(
                name="legacy",
                kind="graphenedb-v1",
                base_url=world["v1"].base_url + "/v1",
                api_key_env="T_V1_KEY",
            ),
            tdb_provider("graph", world["graph"].base_url),
            tdb_provider("graph-b", world["graph_b"].base_url),
        ),
    )
    environ = {**ENVIRON, "T_V1_KEY": V1_KEY, "T_TDB_U": "admin", "T_TDB_P": TDB_PASSWORD}
    built = build_bot(config, environ=environ)
    apply_demo_policy(built)
    built.services.permissions.grant("C0DEV", "console-eu", "*", Role.OPERATOR)
    built.services.permissions.grant("C0DEV", "graph-b", "*", Role.ADMIN)
    try:
        yield built
    finally:
        await built.aclose()


def fail_everything(sim) -> None:  # type: ignore[no-untyped-def]
    sim.faults.error_rate, sim.faults.error_status = 1.0, 500


async def run(bot: Bot, line: str) -> Reply:
    return await bot.run(Invocation(user="U0ALICE", channel="C0DEV", text=line))


@pytest.mark.parametrize("line", ["restart sandbox-db env=development", "restart sandbox-db"])
async def test_a_command_on_the_provider_that_answers_works(bot, world, line):
    fail_everything(world["eu"])
    reply = await run(bot, line)
    assert reply.status == "ok", reply.text
    assert reply.operations and reply.operations[0].provider == "console"
    assert len(world["console"].requests_to("POST", r"/restart$")) == 1
    assert EU_DOWN in reply.text.splitlines()


@pytest.mark.parametrize(
    ("line", "answered"),
    [
        ("list", "sandbox-db"),
        ("envs", "development"),
        ("versions", "5.24.0"),
        ("plans", "ds1"),
        ("regions", "eu-west-1"),
    ],
)
async def test_a_listing_shows_the_failing_provider_as_one_line(bot, world, line, answered):
    fail_everything(world["eu"])
    reply = await run(bot, line)
    assert reply.status == "ok", reply.text
    rows = [row for table in reply.tables for row in table.rows]
    assert any(answered in row for row in rows), rows
    assert not any("console-eu" in cell for row in rows for cell in row)
    assert reply.text.splitlines().count(EU_DOWN) == 1


async def test_v1_backups_work_while_a_console_provider_fails(bot, world):
    fail_everything(world["eu"])
    reply = await run(bot, "backups legacy-orders")
    assert reply.status == "ok", reply.text
    assert world["eu"].requests == []  # only v1 providers are asked for a v1 verb


async def test_typedb_dbs_and_health_show_the_failing_server_beside_the_other(bot, world):
    fail_everything(world["graph_b"])
    dbs = await run(bot, "dbs")
    assert dbs.status == "ok", dbs.text
    assert ["social", "graph"] in dbs.tables[0].rows
    assert "graph-b: unreachable (500)" in dbs.text.splitlines()
    health = await run(bot, "health")
    rows = {row[0]: row[1] for row in health.tables[0].rows}
    assert rows["graph"] == "yes" and rows["graph-b"].startswith("no: Server error (500)")


async def test_a_name_not_found_says_what_was_not_searched(bot, world):
    fail_everything(world["eu"])
    reply = await run(bot, "restart nowhere-db")
    assert reply.status == "error"
    assert "not searched: console-eu: unreachable (500)" in reply.text


async def test_when_nothing_answers_it_is_an_error_not_an_empty_answer(bot, world):
    fail_everything(world["eu"])
    fail_everything(world["console"])
    listing = await run(bot, "list")  # the v1 account still answers
    assert listing.status == "ok" and any("legacy-orders" in r for r in listing.tables[0].rows)
    assert {"console: unreachable (500)", EU_DOWN} <= set(listing.text.splitlines())
    reply = await run(bot, "snapshots sandbox-db")  # Console only: nothing answers
    assert reply.status == "error" and "nothing could be looked at" in reply.text
    assert "console: Server error (500) from console on " in reply.text
    assert "console-eu: Server error (500) from console-eu on " in reply.text


async def test_env_goes_straight_to_the_providers_that_can_have_it(bot, world):
    permissions = bot.services.permissions
    permissions.revoke("C0DEV", "console-eu", "*")
    permissions.grant("C0DEV", "console-eu", "eu-prod", Role.OPERATOR)
    assert (await run(bot, "envs")).status == "ok"  # both answer; environments are cached
    fail_everything(world["eu"])
    asked = len(world["eu"].requests)
    reply = await run(bot, "restart sandbox-db env=development")
    assert reply.status == "ok", reply.text
    assert len(world["eu"].requests) == asked  # console-eu has no `development` bound here
    assert "console-eu" not in reply.text
    everywhere = await run(bot, "restart catalog-db env=eu-prod")
    assert everywhere.status == "error"  # the only provider that can have it does not answer
    assert "Server error (500) from console-eu on GET" in everywhere.text


async def test_failing_providers_of_another_kind_do_not_hide_a_not_found(bot, world):
    """A name not found among v1 databases is also looked for among the Console ones (for
    a better message); that they all fail must not turn the answer into their error."""
    fail_everything(world["eu"])
    fail_everything(world["console"])
    reply = await run(bot, "backups nowhere-db")
    assert reply.status == "error" and "no database called 'nowhere-db'" in reply.text
    assert "Server error" not in reply.text
