"""ConsoleSimulator: auth, seed data, endpoints, operations, faults."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from simulators.base import REDACTED, ManualClock
from simulators.graphenedb import DB, TOKEN_PATH, ConsoleSimulator

HEX32 = r"^[0-9a-f]{32}$"
CREDS = {
    "client_id": "demo-client",
    "client_secret": "demo-secret",
    "grant_type": "client_credentials",
}


def db_id(sim: ConsoleSimulator, name: str, env: str | None = None) -> str:
    return sim.find_database(name, env).id


def env_id(sim: ConsoleSimulator, label: str) -> str:
    return sim.find_environment(label).id


async def op_of(api: httpx.AsyncClient, dbid: str, opid: str) -> dict[str, Any]:
    """The operation by id (observed shape), with type and steps from the collection."""
    r = await api.get(f"{DB}/{dbid}/operations/{opid}")
    assert r.status_code == 200, r.text
    listed = (await api.get(f"{DB}/{dbid}/operations")).json()
    return {**next(o for o in listed if o["id"] == opid), **r.json()}


async def state(api: httpx.AsyncClient, dbid: str) -> str:
    r = await api.get(f"{DB}/{dbid}/status")
    assert r.status_code == 200, r.text
    return str(r.json()["state"])


# ---- auth -------------------------------------------------------------------------


async def test_token_issued(sim: ConsoleSimulator, client: httpx.AsyncClient) -> None:
    r = await client.post(TOKEN_PATH, data=CREDS)
    assert r.status_code == 201
    body = r.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 3600
    assert isinstance(body["access_token"], str) and len(body["access_token"]) > 20
    assert sim.tokens_issued == 1


@pytest.mark.parametrize(
    ("form", "status", "error"),
    [
        ({**CREDS, "client_secret": "wrong"}, 401, "invalid client credentials"),
        ({**CREDS, "client_id": "nobody"}, 401, "invalid client credentials"),
        ({**CREDS, "grant_type": "password"}, 400, "unsupported grant_type"),
        ({"client_id": "demo-client", "grant_type": "client_credentials"}, 400, None),
    ],
)
async def test_token_refused(
    sim: ConsoleSimulator,
    client: httpx.AsyncClient,
    form: dict[str, str],
    status: int,
    error: str | None,
) -> None:
    r = await client.post(TOKEN_PATH, data=form)
    assert r.status_code == status
    assert isinstance(r.json()["error"], str)
    if error:
        assert r.json()["error"] == error
    assert sim.tokens_issued == 0


async def test_token_secret_redacted_in_log(sim: ConsoleSimulator, api: httpx.AsyncClient) -> None:
    rec = sim.requests_to("POST", TOKEN_PATH)[0]
    assert rec.body == {**CREDS, "client_secret": REDACTED}
    assert sim.mutating_requests() == []


async def test_401_variants(
    sim: ConsoleSimulator, client: httpx.AsyncClient, clock: ManualClock
) -> None:
    r = await client.get("/deployments/environments")
    assert (r.status_code, r.json()) == (401, {"error": "missing bearer token"})
    r = await client.get("/deployments/environments", headers={"Authorization": "Bearer nope"})
    assert (r.status_code, r.json()) == (401, {"error": "invalid token"})
    token = (await client.post(TOKEN_PATH, data=CREDS)).json()["access_token"]
    auth = {"Authorization": f"Bearer {token}"}
    assert (await client.get("/deployments/environments", headers=auth)).status_code == 200
    clock.advance(3601)
    r = await client.get("/deployments/environments", headers=auth)
    assert (r.status_code, r.json()) == (401, {"error": "token expired"})


async def test_expire_tokens(sim: ConsoleSimulator, api: httpx.AsyncClient) -> None:
    assert (await api.get("/deployments/plans")).status_code == 200
    assert (await api.post("/_sim/expire-tokens")).json() == {"expired": 1}
    r = await api.get("/deployments/plans")
    assert (r.status_code, r.json()) == (401, {"error": "token expired"})
    token = (await api.post(TOKEN_PATH, data=CREDS)).json()["access_token"]
    api.headers["Authorization"] = f"Bearer {token}"
    assert (await api.get("/deployments/plans")).status_code == 200
    assert sim.expire_tokens() == 1 and sim.tokens_issued == 2


# ---- seed data and reads ------------------------------------------------------------


async def test_seed_curl_sequence(api: httpx.AsyncClient) -> None:
    envs = (await api.get("/deployments/environments")).json()
    assert {(e["label"], e["grantType"]) for e in envs} == {
        ("production", "red"),
        ("staging", "amber"),
        ("development", "green"),
    }
    assert all("type" not in e and "name" not in e for e in envs)  # label, not name
    prod = next(e for e in envs if e["label"] == "production")
    assert prod["organizationId"] == "org-demo" and prod["vpcPeers"] == []
    assert prod["stoppedAt"] is None and prod["createdAt"].endswith(" GMT")
    dbs = (await api.get(f"/deployments/environments/{prod['id']}/databases")).json()
    assert sorted(d["name"] for d in dbs) == ["billing-db", "orders-db", "orders-replica"]
    db = dbs[0]
    assert db["environmentId"] == prod["id"] and db["plan"] == "ds1"
    assert db["status"]["state"] == "running" and db["status"]["isPending"] is False
    assert db["version"] == {"number": "5.24.0", "edition": "enterprise", "vendor": "graphneo"}
    assert db["domainName"].endswith(".db.graphenedb.example")
    assert db["nodes"][0]["nodeType"] == "primary"
    assert (db["httpPort"], db["boltPort"]) == (7474, 7687)


async def test_seed_shapes(sim: ConsoleSimulator, api: httpx.AsyncClient) -> None:
    import re

    assert sim.find_database("catalog-db").state == "paused"
    with pytest.raises(ValueError):
        sim.find_database("orders-db")  # in production and staging
    prod_orders = db_id(sim, "orders-db", "production")
    assert prod_orders != db_id(sim, "orders-db", "staging")
    assert re.match(HEX32, prod_orders)
    snaps = (await api.get(f"{DB}/{prod_orders}/snapshots/manual")).json()
    assert len(snaps) == 1 and snaps[0]["status"] == "done" and snaps[0]["kind"] == "manual"
    status = (await api.get(f"{DB}/{prod_orders}/status")).json()
    assert set(status) == {
        "state",
        "needsRestart",
        "isPending",
        "isLocked",
        "underIncident",
        "lastHealthCheckStatus",
    }
    assert len(sim.environments) == 3 and len(sim.databases) == 6


async def test_catalogs(api: httpx.AsyncClient) -> None:
    versions = (await api.get("/deployments/versions")).json()
    assert {"number": "5.24.0", "edition": "community", "vendor": "graphneo"} in versions
    assert any(v["number"] == "4.4.16" for v in versions)
    plans = (await api.get("/deployments/plans")).json()
    assert [p["name"] for p in plans] == ["ds1", "ds2", "ds3"]
    regions = (await api.get("/deployments/regions")).json()
    assert {"id": "eu-west-1", "label": "EU (Ireland)"} in regions


async def test_not_found(api: httpx.AsyncClient, sim: ConsoleSimulator) -> None:
    r = await api.get(f"{DB}/{'0' * 32}")
    assert (r.status_code, r.json()) == (404, {"error": "database not found"})
    assert (await api.get(f"{DB}/{'0' * 32}/status")).status_code == 404
    assert (await api.get("/deployments/environments/nope/databases")).status_code == 404
    dbid = db_id(sim, "billing-db")
    r = await api.get(f"{DB}/{dbid}/operations/{'1' * 32}")
    assert (r.status_code, r.json()) == (404, {"error": "operation not found"})


# ---- create and the operation engine --------------------------------------------------


def create_body(sim: ConsoleSimulator, **over: Any) -> dict[str, Any]:
    body = {
        "environmentId": env_id(sim, "development"),
        "name": "new-db",
        "plan": "ds2",
        "version": "5.24.0",
        "edition": "enterprise",
        "enabledExtrasKinds": [],
    }
    body.update(over)
    return body


async def test_create_advances_through_steps(
    sim: ConsoleSimulator, api: httpx.AsyncClient, clock: ManualClock
) -> None:
    r = await api.post(DB, json=create_body(sim))
    assert r.status_code == 202
    db, opid = r.json()["database"], r.json()["operationId"]
    assert db["status"]["state"] == "creating" and db["status"]["isPending"] is True
    assert db["plan"] == "ds2" and db["name"] == "new-db"
    op = await op_of(api, db["id"], opid)
    assert op["operationType"] == "create" and op["status"] == "started"
    assert op["durationInSeconds"] is None and op["nextOperationId"] is None
    assert isinstance(op["startedAt"], int)
    assert [s["state"] for s in op["steps"]] == ["allocating-resources"]  # events reached
    assert set(op["steps"][0]) == {"state", "createdAt"}
    clock.advance(2.5)
    op = await op_of(api, db["id"], opid)
    names = [s["state"] for s in op["steps"]]
    assert names == ["allocating-resources", "creating-volume", "starting-database"]
    assert await state(api, db["id"]) == "creating"
    clock.advance(1.5)
    op = await op_of(api, db["id"], opid)
    assert op["status"] == "finished" and op["durationInSeconds"] == 4
    assert [s["state"] for s in op["steps"]][-1] == "health-check"
    status = (await api.get(f"{DB}/{db['id']}/status")).json()
    assert status["state"] == "running" and status["isPending"] is False
    ops = (await api.get(f"{DB}/{db['id']}/operations")).json()
    assert [o["id"] for o in ops] == [opid]


@pytest.mark.parametrize(
    ("over", "status"),
    [
        ({"plan": "ds9"}, 400),
        ({"version": "9.9.9"}, 400),
        ({"edition": "platinum"}, 400),
        ({"name": "Bad_Name"}, 400),
        ({"name": "ab"}, 400),
        ({"name": "sandbox-db"}, 400),  # duplicate in the environment
        ({"name": None}, 400),
        ({"enabledExtrasKinds": "x"}, 400),
        ({"environmentId": "f" * 32}, 404),
    ],
)
async def test_create_refused(
    sim: ConsoleSimulator, api: httpx.AsyncClient, over: dict[str, Any], status: int
) -> None:
    body = {k: v for k, v in create_body(sim, **over).items() if v is not None}
    r = await api.post(DB, json=body)
    assert r.status_code == status
    assert isinstance(r.json()["error"], str)
    assert len(sim.databases) == 6


async def test_create_same_name_other_env_ok(sim: ConsoleSimulator, api: httpx.AsyncClient) -> None:
    r = await api.post(
        DB, json=create_body(sim, name="sandbox-db", environmentId=env_id(sim, "staging"))
    )
    assert r.status_code == 202


async def test_bad_json(sim: ConsoleSimulator, api: httpx.AsyncClient) -> None:
    r = await api.post(DB, content=b"{not json", headers={"Content-Type": "application/json"})
    assert (r.status_code, r.json()) == (400, {"error": "invalid JSON body"})
    r = await api.post(DB, json=[1, 2])
    assert r.status_code == 400
    rec = sim.requests_to("POST", f"^{DB}$")[0]
    assert rec.status == 400 and rec.body == "{not json"


# ---- commands ----------------------------------------------------------------------


async def test_pause_and_resume(
    sim: ConsoleSimulator, api: httpx.AsyncClient, clock: ManualClock
) -> None:
    dbid = db_id(sim, "sandbox-db")
    r = await api.post(f"{DB}/{dbid}/pause")
    assert r.status_code == 202 and set(r.json()) == {"operationId"}
    assert await state(api, dbid) == "pausing"
    clock.advance(3)
    assert await state(api, dbid) == "paused"
    r = await api.post(f"{DB}/{dbid}/pause")
    assert (r.status_code, r.json()) == (400, {"error": "database is not running"})
    r = await api.post(f"{DB}/{dbid}/start")
    assert r.status_code == 202
    assert await state(api, dbid) == "resuming"
    clock.advance(3)
    assert await state(api, dbid) == "running"
    r = await api.post(f"{DB}/{dbid}/start")
    assert r.status_code == 400 and r.json()["error"] == "database is not paused"


async def test_restart(sim: ConsoleSimulator, api: httpx.AsyncClient, clock: ManualClock) -> None:
    dbid = db_id(sim, "billing-db")
    r = await api.post(f"{DB}/{dbid}/restart", json={"stationIds": [], "reset": True})
    assert r.status_code == 202
    body = r.json()
    assert body["stationIds"] == [] and body["reset"] is True
    assert await state(api, dbid) == "restarting"
    clock.advance(3)
    assert (await op_of(api, dbid, body["operationId"]))["status"] == "finished"
    assert await state(api, dbid) == "running"
    r = await api.post(f"{DB}/{dbid}/restart", json={"stationIds": ["zzz"], "reset": False})
    assert r.status_code == 400


async def test_409_during_operation(sim: ConsoleSimulator, api: httpx.AsyncClient) -> None:
    dbid = db_id(sim, "sandbox-db")
    assert (
        await api.post(f"{DB}/{dbid}/restart", json={"stationIds": [], "reset": True})
    ).status_code == 202
    busy = {"error": "another operation is in progress on this database"}
    for method, suffix, body in [
        ("POST", "/pause", None),
        ("POST", "/restart", {"stationIds": [], "reset": False}),
        ("POST", "/snapshots/manual", None),
        ("DELETE", "", None),
    ]:
        r = await api.request(method, f"{DB}/{dbid}{suffix}", json=body)
        assert (r.status_code, r.json()) == (409, busy), suffix
    # reads still work
    assert (await api.get(f"{DB}/{dbid}")).json()["status"]["isPending"] is True


async def test_locked_and_incident(sim: ConsoleSimulator, api: httpx.AsyncClient) -> None:
    dbid = db_id(sim, "sandbox-db")
    sim.set_locked(dbid, True)
    sim.set_incident(dbid, True)
    status = (await api.get(f"{DB}/{dbid}/status")).json()
    assert status["isLocked"] is True and status["underIncident"] is True
    assert status["lastHealthCheckStatus"]["status"] == "failing"
    assert (await api.post(f"{DB}/{dbid}/pause")).status_code == 409
    sim.set_locked(dbid, False)
    assert (await api.post(f"{DB}/{dbid}/pause")).status_code == 202


async def test_clone_chain(
    sim: ConsoleSimulator, api: httpx.AsyncClient, clock: ManualClock
) -> None:
    src = db_id(sim, "orders-db", "production")
    staging = env_id(sim, "staging")
    r = await api.post(f"{DB}/{src}/clone", json={"name": "orders-copy", "environmentId": staging})
    assert r.status_code == 202
    new, opid = r.json()["database"], r.json()["operationId"]
    assert new["status"]["state"] == "creating" and new["environmentId"] == staging
    op = await op_of(api, src, opid)
    assert op["operationType"] == "clone" and "databaseId" not in op
    assert [s["state"] for s in op["steps"]] == ["creating-snapshot"]
    assert (await api.post(f"{DB}/{new['id']}/pause")).status_code == 409
    clock.advance(2)
    op = await op_of(api, src, opid)
    assert op["status"] == "finished" and op["nextOperationId"]
    nxt = await op_of(api, src, op["nextOperationId"])
    assert nxt["operationType"] == "provision-clone" and nxt["status"] == "started"
    assert [s["state"] for s in nxt["steps"]] == ["creating-volume"]
    assert await state(api, new["id"]) == "creating"
    clock.advance(2)
    nxt = await op_of(api, src, op["nextOperationId"])
    assert nxt["status"] == "finished" and nxt["nextOperationId"] is None
    assert await state(api, new["id"]) == "running"
    assert await state(api, src) == "running"
    ops = (await api.get(f"{DB}/{src}/operations")).json()
    assert [o["operationType"] for o in ops] == ["provision-clone", "clone"]


async def test_clone_chain_resolves_in_one_jump(
    sim: ConsoleSimulator, api: httpx.AsyncClient, clock: ManualClock
) -> None:
    src = db_id(sim, "sandbox-db")
    dev = env_id(sim, "development")
    r = await api.post(f"{DB}/{src}/clone", json={"name": "sandbox-2", "environmentId": dev})
    clock.advance(100)
    assert await state(api, r.json()["database"]["id"]) == "running"


async def test_clone_refused(sim: ConsoleSimulator, api: httpx.AsyncClient) -> None:
    src = db_id(sim, "sandbox-db")
    dev = env_id(sim, "development")
    r = await api.post(f"{DB}/{src}/clone", json={"name": "sandbox-db", "environmentId": dev})
    assert r.status_code == 400
    r = await api.post(f"{DB}/{src}/clone", json={"name": "x-copy", "environmentId": "0" * 32})
    assert r.status_code == 404
    r = await api.post(f"{DB}/{src}/clone", json={"environmentId": dev})
    assert r.status_code == 400
    paused = db_id(sim, "catalog-db")
    r = await api.post(f"{DB}/{paused}/clone", json={"name": "x-copy", "environmentId": dev})
    assert r.status_code == 400


async def test_snapshot_and_restores(
    sim: ConsoleSimulator, api: httpx.AsyncClient, clock: ManualClock
) -> None:
    src = db_id(sim, "billing-db")
    prod = env_id(sim, "production")
    r = await api.post(f"{DB}/{src}/snapshots/manual")
    assert r.status_code == 202
    snap = r.json()["snapshot"]
    assert snap["status"] == "working" and snap["databaseId"] == src
    assert await state(api, src) == "snapshotting"
    restore = {"snapshotId": snap["id"], "snapshotEnvironmentId": prod}
    target = db_id(sim, "sandbox-db")
    r = await api.post(f"{DB}/{target}/restore", json=restore)
    assert (r.status_code, r.json()["error"]) == (400, "snapshot is not ready")
    clock.advance(3)
    snaps = (await api.get(f"{DB}/{src}/snapshots/manual")).json()
    assert [s["status"] for s in snaps if s["id"] == snap["id"]] == ["done"]
    assert await state(api, src) == "running"
    # restore into an existing database
    r = await api.post(f"{DB}/{target}/restore", json=restore)
    assert r.status_code == 202 and set(r.json()) == {"operationId"}
    assert await state(api, target) == "restoring"
    clock.advance(3)
    assert (await op_of(api, target, r.json()["operationId"]))["status"] == "finished"
    assert await state(api, target) == "running"
    # create from snapshot
    staging = env_id(sim, "staging")
    body = {**restore, "environmentId": staging, "name": "billing-restored"}
    r = await api.post(f"{DB}/restore", json=body)
    assert r.status_code == 202
    new = r.json()["database"]
    assert new["plan"] == "ds1" and new["environmentId"] == staging
    clock.advance(3)
    assert await state(api, new["id"]) == "running"
    # errors
    r = await api.post(f"{DB}/{target}/restore", json={**restore, "snapshotId": "0" * 32})
    assert r.status_code == 404
    r = await api.post(f"{DB}/{target}/restore", json={**restore, "snapshotEnvironmentId": staging})
    assert r.status_code == 400


async def test_terminate(sim: ConsoleSimulator, api: httpx.AsyncClient, clock: ManualClock) -> None:
    dbid = db_id(sim, "orders-replica")
    r = await api.delete(f"{DB}/{dbid}")
    assert r.status_code == 202
    opid = r.json()["operationId"]
    assert await state(api, dbid) == "terminating"
    clock.advance(2)
    r = await api.get(f"{DB}/{dbid}")
    assert (r.status_code, r.json()) == (404, {"error": "database not found"})
    assert (await op_of(api, dbid, opid))["status"] == "finished"
    assert len((await api.get(f"{DB}/{dbid}/operations")).json()) == 1
    assert (await api.delete(f"{DB}/{dbid}")).status_code == 404


async def test_switch(sim: ConsoleSimulator, api: httpx.AsyncClient, clock: ManualClock) -> None:
    a = db_id(sim, "orders-db", "production")
    b = db_id(sim, "orders-replica")
    dom_a = (await api.get(f"{DB}/{a}")).json()["domainName"]
    dom_b = (await api.get(f"{DB}/{b}")).json()["domainName"]
    r = await api.post(f"{DB}/{a}/connections/switch", json={"targetDatabase": b})
    assert r.status_code == 202
    assert (await api.post(f"{DB}/{b}/pause")).status_code == 409  # target busy too
    clock.advance(2)
    assert (await op_of(api, a, r.json()["operationId"]))["status"] == "finished"
    assert (await api.get(f"{DB}/{a}")).json()["domainName"] == dom_b
    assert (await api.get(f"{DB}/{b}")).json()["domainName"] == dom_a
    assert await state(api, a) == "running"


async def test_switch_refused(sim: ConsoleSimulator, api: httpx.AsyncClient) -> None:
    a = db_id(sim, "sandbox-db")
    r = await api.post(f"{DB}/{a}/connections/switch", json={"targetDatabase": a})
    assert r.status_code == 400
    r = await api.post(f"{DB}/{a}/connections/switch", json={"targetDatabase": "0" * 32})
    assert r.status_code == 404
    paused = db_id(sim, "catalog-db")
    r = await api.post(f"{DB}/{a}/connections/switch", json={"targetDatabase": paused})
    assert (r.status_code, r.json()["error"]) == (400, "target database is not running")


async def test_import(sim: ConsoleSimulator, api: httpx.AsyncClient, clock: ManualClock) -> None:
    dbid = db_id(sim, "sandbox-db")
    payload = b"\x00\x01" * 150_000
    r = await api.post(
        f"{DB}/{dbid}/import",
        files={"file": ("dump.tar.gz", payload)},
        data={"note": "x"},
    )
    assert r.status_code == 202 and set(r.json()) == {"operationId"}
    assert await state(api, dbid) == "importing"
    rec = sim.requests_to("POST", "/import$")[-1]
    assert rec.body == f"<multipart {len(payload)} bytes>"
    clock.advance(4)
    assert await state(api, dbid) == "running"
    r = await api.post(f"{DB}/{dbid}/import", files={"other": ("a", b"abc")})
    assert (r.status_code, r.json()["error"]) == (
        400,
        "expected a multipart upload with a file field",
    )
    r = await api.post(f"{DB}/{dbid}/import", json={"file": "x"})
    assert r.status_code == 400


async def test_import_without_a_length_is_refused(sim, api: httpx.AsyncClient) -> None:
    async def chunked():  # type: ignore[no-untyped-def]
        yield b'--b\r\nContent-Disposition: form-data; name="file"; filename="x"\r\n\r\n'
        yield b"abc\r\n--b--\r\n"

    dbid = db_id(sim, "sandbox-db")
    r = await api.post(
        f"{DB}/{dbid}/import",
        content=chunked(),
        headers={"Content-Type": "multipart/form-data; boundary=b"},
    )
    assert (r.status_code, r.json()["error"]) == (
        400,
        "a Content-Length is required for the upload",
    )
    assert sim.requests_to("POST", "/import$")[-1].headers["transfer-encoding"] == "chunked"


# ---- operation failures ----------------------------------------------------------------


async def test_fail_next_operation(
    sim: ConsoleSimulator, api: httpx.AsyncClient, clock: ManualClock
) -> None:
    dbid = db_id(sim, "sandbox-db")
    sim.fail_next_operation("pause", at_step="stopping-database")
    r = await api.post(f"{DB}/{dbid}/pause")
    opid = r.json()["operationId"]
    clock.advance(1.5)
    assert (await op_of(api, dbid, opid))["status"] == "started"
    clock.advance(1)
    op = await op_of(api, dbid, opid)
    assert op["status"] == "failed" and "error" not in op  # no document has an error text
    assert [s["state"] for s in op["steps"]] == ["creating-snapshot", "stopping-database"]
    assert op["durationInSeconds"] == 2
    status = (await api.get(f"{DB}/{dbid}/status")).json()
    assert status["state"] == "running" and status["isPending"] is False
    # only the next one fails
    r = await api.post(f"{DB}/{dbid}/pause")
    clock.advance(3)
    assert (await op_of(api, dbid, r.json()["operationId"]))["status"] == "finished"


async def test_failed_clone_removes_new_database(
    sim: ConsoleSimulator, api: httpx.AsyncClient, clock: ManualClock
) -> None:
    src = db_id(sim, "sandbox-db")
    dev = env_id(sim, "development")
    r = await api.post(
        "/_sim/faults", json={"fail_next_operation": {"operation_type": "provision-clone"}}
    )
    assert r.status_code == 200
    r = await api.post(f"{DB}/{src}/clone", json={"name": "sandbox-2", "environmentId": dev})
    new_id, opid = r.json()["database"]["id"], r.json()["operationId"]
    clock.advance(10)
    first = await op_of(api, src, opid)
    assert first["status"] == "finished"
    second = await op_of(api, src, first["nextOperationId"])
    assert second["status"] == "failed" and second["steps"][-1]["state"] == "starting-database"
    assert (await api.get(f"{DB}/{new_id}")).status_code == 404
    assert await state(api, src) == "running"


async def test_failed_create_and_snapshot(
    sim: ConsoleSimulator, api: httpx.AsyncClient, clock: ManualClock
) -> None:
    sim.fail_next_operation("create")
    sim.fail_next_operation("snapshot", "freezing-volume")
    r = await api.post(DB, json=create_body(sim))
    new = r.json()["database"]["id"]
    src = db_id(sim, "billing-db")
    r2 = await api.post(f"{DB}/{src}/snapshots/manual")
    clock.advance(10)
    assert (await api.get(f"{DB}/{new}")).status_code == 404
    assert (await op_of(api, new, r.json()["operationId"]))["status"] == "failed"
    assert (await op_of(api, src, r2.json()["operationId"]))["status"] == "failed"
    assert (await api.get(f"{DB}/{src}/snapshots/manual")).json() == []


def test_fail_next_operation_validates() -> None:
    sim = ConsoleSimulator(seed_data=False)
    with pytest.raises(ValueError):
        sim.fail_next_operation("nope")
    with pytest.raises(ValueError):
        sim.fail_next_operation("pause", "deleting-volume")


# ---- transport faults on the Console API -----------------------------------------------


async def test_drop_after_effect_on_pause(sim: ConsoleSimulator, api: httpx.AsyncClient) -> None:
    dbid = db_id(sim, "sandbox-db")
    sim.faults.fail_next("POST", r"/pause$", drop=True, after_effect=True)
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        await api.post(f"{DB}/{dbid}/pause")
    assert sim.find_database("sandbox-db").state == "pausing"  # effect applied
    # a retry sees the operation in progress
    assert (await api.post(f"{DB}/{dbid}/pause")).status_code == 409
    assert [r.status for r in sim.mutating_requests()] == [0, 409]


async def test_injected_500_has_no_effect(sim: ConsoleSimulator, api: httpx.AsyncClient) -> None:
    dbid = db_id(sim, "sandbox-db")
    sim.faults.fail_next("POST", r"/pause$", 500)
    r = await api.post(f"{DB}/{dbid}/pause")
    assert (r.status_code, r.json()) == (500, {"error": "simulated fault"})
    assert sim.find_database("sandbox-db").state == "running"


async def test_state_dump(sim: ConsoleSimulator, api: httpx.AsyncClient) -> None:
    dump = (await api.get("/_sim/state")).json()
    assert len(dump["environments"]) == 3 and len(dump["databases"]) == 6
    assert dump["tokensIssued"] == 1 and dump["tokensActive"] == 1
    text = str(dump)
    assert "demo-secret" not in text
    assert api.headers["Authorization"].split()[1] not in text
