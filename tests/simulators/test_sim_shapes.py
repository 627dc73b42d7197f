"""Shape variants: each changes only the shape it names; unknown names are refused."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from bot.cli import main
from simulators.base import ManualClock
from simulators.graphenedb import DB, TOKEN_PATH, ConsoleSimulator
from simulators.graphenedb_v1 import V1Simulator
from simulators.suite import SimulatorSuite, shape_variants, split_shapes

CREDS = {
    "client_id": "demo-client",
    "client_secret": "demo-secret",
    "grant_type": "client_credentials",
}


async def console_api(*shapes: str) -> tuple[ConsoleSimulator, httpx.AsyncClient, int]:
    sim = ConsoleSimulator(shapes=shapes)
    sim.clock = ManualClock()
    await sim.start()
    http = httpx.AsyncClient(base_url=sim.base_url, timeout=5)
    token = await http.post(TOKEN_PATH, data=CREDS)
    http.headers["Authorization"] = f"Bearer {token.json()['access_token']}"
    return sim, http, token.status_code


@pytest.fixture
async def opened() -> AsyncIterator[list[Any]]:
    held: list[Any] = []
    yield held
    for sim, http in held:
        await http.aclose()
        await sim.stop()


async def restart_op(sim: ConsoleSimulator, http: httpx.AsyncClient) -> tuple[str, dict[str, Any]]:
    db = sim.find_database("sandbox-db")
    answer = (
        await http.post(f"{DB}/{db.id}/restart", json={"stationIds": [], "reset": True})
    ).json()
    return db.id, answer


async def test_documented_shapes(opened):
    sim, http, token_status = await console_api()
    opened.append((sim, http))
    assert token_status == 201
    envs = (await http.get("/deployments/environments")).json()
    assert isinstance(envs, list) and "label" in envs[0] and "grantType" in envs[0]
    db_id, answer = await restart_op(sim, http)
    assert answer["stationIds"] == [] and answer["operationId"]
    by_id = (await http.get(f"{DB}/{db_id}/operations/{answer['operationId']}")).json()
    assert set(by_id) == {"id", "nextOperationId", "status", "startedAt", "durationInSeconds"}
    listed = (await http.get(f"{DB}/{db_id}/operations")).json()
    assert set(listed[0]) == {"id", "operationType", "startedAt", "steps", "status"}
    assert listed[0]["steps"] == [{"state": "stopping-database", "createdAt": by_id["startedAt"]}]


async def test_steps_named_and_op_steps(opened):
    sim, http, _ = await console_api("steps-named", "op-steps")
    opened.append((sim, http))
    db_id, answer = await restart_op(sim, http)
    by_id = (await http.get(f"{DB}/{db_id}/operations/{answer['operationId']}")).json()
    assert by_id["operationType"] == "restart"
    assert [s["status"] for s in by_id["steps"]] == ["running", "pending", "pending"]


async def test_chains_split_every_operation(opened):
    sim, http, _ = await console_api("chains", "op-steps")
    opened.append((sim, http))
    db_id, answer = await restart_op(sim, http)
    sim.clock.advance(1.5)  # type: ignore[attr-defined]
    first = (await http.get(f"{DB}/{db_id}/operations/{answer['operationId']}")).json()
    assert first["status"] == "finished" and first["nextOperationId"]
    assert await state(http, db_id) == "restarting"  # the effect waits for the chain's end
    sim.clock.advance(5)  # type: ignore[attr-defined]
    second = (await http.get(f"{DB}/{db_id}/operations/{first['nextOperationId']}")).json()
    assert second["status"] == "finished" and second["nextOperationId"] is None
    assert [s["state"] for s in second["steps"]] == ["starting-database", "health-check"]
    assert await state(http, db_id) == "running"


async def state(http: httpx.AsyncClient, db_id: str) -> str:
    return str((await http.get(f"{DB}/{db_id}/status")).json()["state"])


async def test_small_variants(opened):
    sim, http, token_status = await console_api(
        "lists-wrapped", "token-200", "env-name", "restart-echo"
    )
    opened.append((sim, http))
    assert token_status == 200
    envs = (await http.get("/deployments/environments")).json()["environments"]
    assert "name" in envs[0] and "label" not in envs[0]
    _, answer = await restart_op(sim, http)
    assert answer == {"stationIds": [], "reset": True}


async def test_v1_create_variants():
    for shapes, status, keys in (
        ((), 202, {"operation"}),
        (("v1-create-201",), 201, {"id", "name", "plan"}),
        (("v1-create-empty",), 202, set()),
    ):
        sim = V1Simulator(shapes=shapes)
        await sim.start()
        try:
            async with httpx.AsyncClient(
                base_url=sim.base_url, headers={"api_key": sim.api_key}
            ) as http:
                body = {
                    "name": "new-db",
                    "version": "v3517",
                    "awsRegion": "eu-west-1",
                    "plan": "s1",
                }
                r = await http.post("/v1/databases", json=body)
                assert r.status_code == status
                assert keys <= set(r.json() if r.content else {})
                listed = (await http.get("/v1/databases")).json()
                assert all("state" not in db for db in listed)
        finally:
            await sim.stop()


def test_unknown_variants_are_refused_with_the_known_ones():
    with pytest.raises(ValueError, match=r"no shape variant 'nope'.*steps-named"):
        ConsoleSimulator(shapes=["nope"])
    with pytest.raises(ValueError, match="no shape variant 'steps-nmed'"):
        split_shapes(["steps-nmed"])
    assert split_shapes(["lists-wrapped", "steps-named", "v1-create-201"]) == (
        ("lists-wrapped", "steps-named"),
        ("lists-wrapped", "v1-create-201"),
    )
    assert (
        "Console" in shape_variants()["lists-wrapped"] and "v1" in shape_variants()["lists-wrapped"]
    )
    suite = SimulatorSuite(shapes=("steps-named", "v1-db-state"))
    assert suite.console.shapes == {"steps-named"} and suite.v1.shapes == {"v1-db-state"}


def test_graphops_simulate_refuses_an_unknown_variant(capsys):
    assert main(["simulate", "--port", "0", "--shapes", "steps-named,nope"]) == 2
    assert "no shape variant 'nope'" in capsys.readouterr().err
