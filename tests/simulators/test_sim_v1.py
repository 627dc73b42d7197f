"""V1Simulator: auth, seed data, endpoints, operations and events, faults."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from simulators.base import REDACTED, ManualClock
from simulators.graphenedb_v1 import OP_EVENTS, V1Simulator

KEY = "demo-api-key"
HEX32 = r"^[0-9a-f]{32}$"
CREATE = {"name": "legacy-new", "version": "v406", "awsRegion": "eu-west-1", "plan": "s2"}


@pytest.fixture
async def v1_sim(clock: ManualClock) -> AsyncIterator[V1Simulator]:
    sim = V1Simulator(step_seconds=1.0)
    sim.clock = clock
    await sim.start()
    try:
        yield sim
    finally:
        await sim.stop()


@pytest.fixture
async def raw(v1_sim: V1Simulator) -> AsyncIterator[httpx.AsyncClient]:
    """A client without the api_key header."""
    async with httpx.AsyncClient(base_url=v1_sim.base_url, timeout=5) as c:
        yield c


@pytest.fixture
async def api(v1_sim: V1Simulator) -> AsyncIterator[httpx.AsyncClient]:
    """A client carrying the demo api_key."""
    headers = {"api_key": KEY, "Content-Type": "application/json"}
    async with httpx.AsyncClient(base_url=v1_sim.base_url, timeout=5, headers=headers) as c:
        yield c


def dbid(sim: V1Simulator, name: str) -> str:
    return sim.find_database(name).id


async def op_json(api: httpx.AsyncClient, op_id: str) -> dict[str, Any]:
    r = await api.get(f"/v1/operations/{op_id}")
    assert r.status_code == 200, r.text
    return r.json()


# ---- auth ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "error"),
    [({}, "missing api_key header"), ({"api_key": "nope"}, "invalid api_key")],
)
async def test_api_key_required(raw, v1_sim, headers, error):
    r = await raw.get("/v1/databases", headers=headers)
    assert r.status_code == 401 and r.json() == {"error": error}
    assert v1_sim.requests[-1].status == 401


async def test_auth_comes_before_routing(raw, api):
    assert (await raw.get("/v1/nowhere")).status_code == 401
    r = await api.get("/v1/nowhere")
    assert r.status_code == 404 and "error" in r.json()


async def test_unknown_method_is_405(api, v1_sim):
    r = await api.post(f"/v1/databases/{dbid(v1_sim, 'legacy-orders')}/restart")
    assert r.status_code == 405


async def test_admin_endpoints_need_no_key_and_are_not_logged(raw, v1_sim):
    r = await raw.get("/_sim/state")
    assert r.status_code == 200
    state = r.json()
    assert {d["name"] for d in state["databases"]} == {
        "legacy-orders",
        "legacy-users",
        "legacy-sandbox",
    }
    assert KEY not in r.text
    assert v1_sim.requests == []


async def test_headers_are_not_recorded_and_body_api_key_is_redacted(api, v1_sim):
    await api.put(
        f"/v1/databases/{dbid(v1_sim, 'legacy-orders')}/backups/schedule",
        json={"time": "1:00:00", "api_key": KEY},
    )
    rec = v1_sim.requests[-1]
    assert rec.body == {"time": "1:00:00", "api_key": REDACTED}
    assert KEY not in repr(v1_sim.requests)
    r = await api.get("/_sim/requests")
    assert KEY not in r.text


# ---- seed data and reads ----------------------------------------------------------------


async def test_seed_databases_shape(api):
    r = await api.get("/v1/databases")
    assert r.status_code == 200
    dbs = {d["name"]: d for d in r.json()}
    assert set(dbs) == {"legacy-orders", "legacy-users", "legacy-sandbox"}
    orders = dbs["legacy-orders"]
    assert re.match(HEX32, orders["id"])
    assert orders["plan"]["type"] == "s1" and orders["plan"]["limits"]["nodes"] > 0
    assert orders["boltURL"].startswith("bolt+routing://")
    assert "state" not in orders  # the seed's Database has no state
    for key in ("url", "webAdminURL", "metricsURL", "createdAt", "version", "currentSize"):
        assert orders[key]
    assert dbs["legacy-sandbox"]["plan"]["type"] == "sandbox"
    one = await api.get(f"/v1/databases/{orders['id']}")
    assert one.json() == orders


async def test_versions_route_does_not_clash_with_ids(api):
    r = await api.get("/v1/databases/versions")
    assert r.status_code == 200
    assert [v["version"] for v in r.json()] == ["v3517", "v406", "v4416"]


async def test_unknown_ids_are_404(api, v1_sim):
    missing = uuid.uuid4().hex
    orders = dbid(v1_sim, "legacy-orders")
    for path in (
        f"/v1/databases/{missing}",
        f"/v1/databases/{orders}/backups/{missing}",
        f"/v1/operations/{missing}",
    ):
        r = await api.get(path)
        assert r.status_code == 404, path
    assert (await api.get("/v1/databases/not-hex")).status_code == 404


async def test_backups_latest_and_schedule(api, v1_sim):
    orders = dbid(v1_sim, "legacy-orders")
    backups = (await api.get(f"/v1/databases/{orders}/backups")).json()
    assert [b["origin"] for b in backups] == ["scheduled", "manual", "automatic"]
    assert backups[2]["downloadable"] is False
    latest = (await api.get(f"/v1/databases/{orders}/backups/latest")).json()
    assert latest["id"] == backups[-1]["id"]
    schedule = (await api.get(f"/v1/databases/{orders}/backups/schedule")).json()
    assert schedule == {"time": "3:00:00", "timezone": "UTC", "frequency": "daily"}
    sandbox = dbid(v1_sim, "legacy-sandbox")
    assert (await api.get(f"/v1/databases/{sandbox}/backups")).json() == []
    assert (await api.get(f"/v1/databases/{sandbox}/backups/latest")).status_code == 404
    assert (await api.get(f"/v1/databases/{sandbox}/backups/schedule")).status_code == 400


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"time": "03:15:00"}, 200),
        ({"time": "23:59:59", "timezone": "UTC", "frequency": "daily"}, 200),
        ({"time": "24:00:00"}, 400),
        ({"time": "3:5:00"}, 400),
        ({"time": "3:00:00", "timezone": "CET"}, 400),
        ({"time": "3:00:00", "frequency": "weekly"}, 400),
        ({}, 400),
        ({"time": 3}, 400),
    ],
)
async def test_schedule_validation(api, v1_sim, body, status):
    orders = dbid(v1_sim, "legacy-orders")
    r = await api.put(f"/v1/databases/{orders}/backups/schedule", json=body)
    assert r.status_code == status, r.text
    if status == 200:
        assert r.json() == v1_sim.schedule_of(orders)
        assert r.json()["time"] in ("3:15:00", "23:59:59")


async def test_links_are_fake_signed_s3_urls(api, v1_sim):
    orders = dbid(v1_sim, "legacy-orders")
    backup = v1_sim.backups_of(orders)[0]
    first = (await api.get(f"/v1/databases/{orders}/backups/{backup.id}/package")).json()
    second = (await api.get(f"/v1/databases/{orders}/backups/{backup.id}/package")).json()
    pattern = r"^https://s3\.example/.+graph\.tar\.gz\?.*X-Amz-Signature=[0-9a-f]{64}$"
    assert re.match(pattern, first["backupUrl"])
    assert first != second  # one-time links
    export = await api.put(f"/v1/databases/{orders}/export")
    assert export.status_code == 200
    assert re.search(r"graphdb\.zip\?.*X-Amz-Signature=", export.json()["url"])
    assert export.json()["size"] > 0
    again = await api.get(f"/v1/databases/{orders}/export")  # GET is accepted too
    assert again.status_code == 200
    issued = [first["backupUrl"], second["backupUrl"], export.json()["url"], again.json()["url"]]
    assert v1_sim.links == issued


async def test_working_or_automatic_backup_cannot_be_downloaded_or_restored(api, v1_sim):
    orders = dbid(v1_sim, "legacy-orders")
    working = v1_sim.add_backup(orders, state="working")
    automatic = next(b for b in v1_sim.backups_of(orders) if b.origin == "automatic")
    base = f"/v1/databases/{orders}/backups"
    r = await api.put(f"{base}/{working.id}/restore")
    assert r.status_code == 400 and r.json() == {"error": "backup is not ready"}
    assert (await api.get(f"{base}/{working.id}/package")).status_code == 400
    r = await api.get(f"{base}/{automatic.id}/package")
    assert r.status_code == 400 and "downloadable" in r.json()["error"]
    other = dbid(v1_sim, "legacy-users")
    assert (await api.get(f"/v1/databases/{other}/backups/{automatic.id}")).status_code == 404


# ---- create and validation ----------------------------------------------------------------


async def test_create_answers_operation_and_lists_creating(api, v1_sim, clock):
    r = await api.post("/v1/databases", json=CREATE)
    assert r.status_code == 202 and set(r.json()) == {"operation"}
    op = await op_json(api, r.json()["operation"])
    assert op["currentState"] == "started" and op["description"] == "create database legacy-new"
    assert isinstance(op["createdAt"], str) and op["createdAt"].isdigit()
    new = v1_sim.find_database("legacy-new")
    assert op["databaseId"] == new.id and new.state == "creating"
    clock.advance(3)
    assert (await op_json(api, op["id"]))["currentState"] == "finished"
    assert v1_sim.find_database("legacy-new").state == "running"


@pytest.mark.parametrize(
    ("content", "error"),
    [
        ("not json", "invalid JSON body"),
        ("[1]", "JSON body must be an object"),
        ("", "a JSON body is required"),
        ('{"version": "v406", "awsRegion": "eu-west-1", "plan": "s1"}', "missing field name"),
        ('{"name": 5, "version": "v406", "awsRegion": "eu-west-1", "plan": "s1"}', "field name"),
    ],
)
async def test_create_bad_bodies(api, content, error):
    r = await api.post("/v1/databases", content=content)
    assert r.status_code == 400 and error in r.json()["error"]


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"plan": "cluster"}, "plan cluster is not accepted"),
        ({"plan": "huge"}, "unknown plan huge"),
        ({"awsRegion": "mars-1"}, "unknown awsRegion mars-1"),
        ({"version": "v1"}, "unknown version v1"),
        ({"name": "Bad Name"}, "invalid name"),
        ({"name": "legacy-orders"}, "already exists"),
        ({"privateNetworkId": 7}, "field privateNetworkId"),
    ],
)
async def test_create_refusals(api, v1_sim, change, error):
    r = await api.post("/v1/databases", json={**CREATE, **change})
    assert r.status_code == 400 and error in r.json()["error"]
    assert len(v1_sim.databases) == 3


# ---- operations and events --------------------------------------------------------------------


async def test_backup_operation_events_timeline(api, v1_sim, clock):
    orders = dbid(v1_sim, "legacy-orders")
    r = await api.post(f"/v1/databases/{orders}/backups")
    assert r.status_code == 202
    op_id, backup_id = r.json()["operationId"], r.json()["backupId"]
    assert v1_sim.find_database("legacy-orders").state == "backing-up"
    backup = (await api.get(f"/v1/databases/{orders}/backups/{backup_id}")).json()
    assert backup["state"] == "working" and backup["origin"] == "manual"
    steps = OP_EVENTS["backup"]
    for reached in range(1, len(steps) + 1):
        op = await op_json(api, op_id)
        assert [e["state"] for e in op["events"]] == steps[:reached]
        assert op["currentState"] == "started"
        clock.advance(1)
    op = await op_json(api, op_id)
    assert op["currentState"] == "finished" and len(op["events"]) == len(steps)
    times = [e["createdAt"] for e in op["events"]]
    assert all(isinstance(t, int) for t in times) and times == sorted(times)
    backup = (await api.get(f"/v1/databases/{orders}/backups/{backup_id}")).json()
    assert backup["state"] == "done"
    latest = (await api.get(f"/v1/databases/{orders}/backups/latest")).json()
    assert latest["id"] == backup_id


async def test_stopped_flag_follows_the_events(api, v1_sim, clock):
    users = dbid(v1_sim, "legacy-users")
    op_id = (
        await api.put(f"/v1/databases/{users}/import", json={"url": "https://b.s3.example/x"})
    ).json()["operationId"]
    seen = []
    for _ in OP_EVENTS["import"]:
        op = await op_json(api, op_id)
        seen.append((op["events"][-1]["state"], op["stopped"]))
        clock.advance(1)
    assert seen == [
        ("downloading-file", False),
        ("stopping-database", True),
        ("importing", True),
        ("starting-database", False),
    ]


async def test_every_mutation_is_409_while_busy(api, v1_sim):
    orders = dbid(v1_sim, "legacy-orders")
    backup = v1_sim.backups_of(orders)[0].id
    assert (await api.put(f"/v1/databases/{orders}/restart")).status_code == 202
    d = f"/v1/databases/{orders}"
    attempts = [
        api.put(f"{d}/restart"),
        api.put(f"{d}/empty"),
        api.delete(d),
        api.post(f"{d}/backups"),
        api.put(f"{d}/backups/{backup}/restore"),
        api.put(f"{d}/export"),
        api.put(f"{d}/import", json={"url": "https://b.s3.example/x"}),
        api.put(f"{d}/backups/schedule", json={"time": "1:00:00"}),
    ]
    for attempt in attempts:
        r = await attempt
        assert r.status_code == 409, r.request.url
        assert r.json() == {"error": "another operation is in progress on this database"}
    other = dbid(v1_sim, "legacy-users")
    assert (await api.put(f"/v1/databases/{other}/restart")).status_code == 202


async def test_empty_is_501_on_sandbox(api, v1_sim):
    sandbox = dbid(v1_sim, "legacy-sandbox")
    r = await api.put(f"/v1/databases/{sandbox}/empty")
    assert r.status_code == 501 and "sandbox" in r.json()["error"]
    assert (await api.post(f"/v1/databases/{sandbox}/backups")).status_code == 400


async def test_delete_removes_database_and_schedule(api, v1_sim, clock):
    orders = dbid(v1_sim, "legacy-orders")
    r = await api.delete(f"/v1/databases/{orders}")
    op_id = r.json()["operationId"]
    assert v1_sim.find_database("legacy-orders").state == "deleting"
    clock.advance(2)
    assert (await api.get(f"/v1/databases/{orders}")).status_code == 404
    assert v1_sim.schedule_of(orders) is None
    assert (await op_json(api, op_id))["currentState"] == "finished"


async def test_import_needs_an_s3_https_url(api, v1_sim):
    users = dbid(v1_sim, "legacy-users")
    for url in ("http://b.s3.example/x", "https://example.com/x", 5):
        r = await api.put(f"/v1/databases/{users}/import", json={"url": url})
        assert r.status_code == 400


async def test_failed_operation_restores_state(api, raw, v1_sim, clock):
    r = await raw.post(
        "/_sim/faults",
        json={"fail_next_operation": {"kind": "restart", "at_step": "starting-database"}},
    )
    assert r.status_code == 200
    orders = dbid(v1_sim, "legacy-orders")
    op_id = (await api.put(f"/v1/databases/{orders}/restart")).json()["operationId"]
    clock.advance(5)
    op = await op_json(api, op_id)
    assert op["currentState"] == "failed"
    assert [e["state"] for e in op["events"]] == ["stopping-database", "starting-database"]
    assert v1_sim.find_database("legacy-orders").state == "running"


async def test_failed_create_and_backup_are_removed(api, v1_sim, clock):
    v1_sim.fail_next_operation("create")
    v1_sim.fail_next_operation("backup", "copy-snapshot")
    op_id = (await api.post("/v1/databases", json=CREATE)).json()["operation"]
    users = dbid(v1_sim, "legacy-users")
    before = len(v1_sim.backups_of(users))
    r = await api.post(f"/v1/databases/{users}/backups")
    clock.advance(10)
    assert (await op_json(api, op_id))["currentState"] == "failed"
    assert (await op_json(api, r.json()["operationId"]))["currentState"] == "failed"
    with pytest.raises(KeyError):
        v1_sim.find_database("legacy-new")
    assert len(v1_sim.backups_of(users)) == before


async def test_bad_fail_next_operation_is_400(raw):
    for value in ({"kind": "explode"}, {"kind": "restart", "at_step": "nope"}, 3):
        r = await raw.post("/_sim/faults", json={"fail_next_operation": value})
        assert r.status_code == 400


# ---- faults ------------------------------------------------------------------------------------


async def test_injected_500_carries_only_a_nonce(api, raw, v1_sim):
    await raw.post("/_sim/faults", json={"fail_next": [{"method": "GET", "path_regex": "^/v1/"}]})
    r = await api.get("/v1/databases")
    assert r.status_code == 500
    assert set(r.json()) == {"nonce"} and r.json()["nonce"] == v1_sim.nonces[-1]
    uuid.UUID(r.json()["nonce"])
    assert (await api.get("/v1/databases")).status_code == 200


@pytest.mark.parametrize("status", [502, 504])
async def test_injected_gateway_errors(api, v1_sim, status):
    v1_sim.faults.error_rate = 1.0
    v1_sim.faults.error_status = status
    r = await api.get("/v1/databases")
    assert r.status_code == status and "internal infrastructure" in r.json()["error"]


async def test_drop_after_effect_applies_the_command(api, v1_sim):
    orders = dbid(v1_sim, "legacy-orders")
    v1_sim.faults.fail_next("PUT", "/restart$", drop=True, after_effect=True)
    with pytest.raises(httpx.HTTPError):
        await api.put(f"/v1/databases/{orders}/restart")
    assert v1_sim.requests[-1].status == 0
    assert v1_sim.find_database("legacy-orders").state == "restarting"


async def test_state_dump_lists_everything_but_the_key(raw, v1_sim):
    state = (await raw.get("/_sim/state")).json()
    assert set(state) >= {"databases", "backups", "schedules", "operations", "faults"}
    assert len(state["backups"]) == 5 and len(state["schedules"]) == 2
    assert KEY not in str(state)
