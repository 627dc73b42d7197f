"""The GrapheneDB API v1 client against the v1 simulator over real loopback sockets."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import pytest
from pydantic import SecretStr

from clients.errors import (
    BadRequest,
    Conflict,
    NotFound,
    NotSupportedByApi,
    ServerError,
    Timeout,
    Unauthorized,
)
from clients.graphenedb_v1 import (
    PLANS,
    REGIONS,
    Accepted,
    V1Client,
    V1Database,
    V1Operation,
)
from clients.http import CallRecord
from operations.follow import Backoff, StepEvent, follow
from simulators.base import ManualClock
from simulators.graphenedb_v1 import V1Simulator
from tests.support import FAST_RETRY

API_KEY = "sentinel-v1-api-key-5d2b"


@pytest.fixture
async def v1_sim(clock: ManualClock, v1_shapes: tuple[str, ...]) -> AsyncIterator[V1Simulator]:
    sim = V1Simulator(api_key=API_KEY, step_seconds=1.0, shapes=v1_shapes)
    sim.clock = clock
    await sim.start()
    try:
        yield sim
    finally:
        await sim.stop()


@pytest.fixture
def calls() -> list[CallRecord]:
    return []


@pytest.fixture
async def v1(v1_sim: V1Simulator, calls: list[CallRecord]) -> AsyncIterator[V1Client]:
    client = V1Client(
        "legacy",
        v1_sim.base_url,
        SecretStr(API_KEY),
        retry=FAST_RETRY,
        timeout=5.0,
        on_call=calls.append,
    )
    try:
        yield client
    finally:
        await client.aclose()


async def _db(v1: V1Client, name: str) -> V1Database:
    return next(d for d in await v1.list_databases() if d.name == name)


# ---- resolver adapter, catalogs, databases ----------------------------------------


async def test_account_is_one_environment_named_after_the_provider(v1, v1_sim):
    envs = await v1.environments()
    assert len(envs) == 1
    env = envs[0]
    assert (env.id, env.name, env.label, env.type) == ("legacy", "legacy", "legacy", None)
    assert v1_sim.requests == []  # no request needed
    dbs = await v1.databases(env.id)
    assert {d.name for d in dbs} == {"legacy-orders", "legacy-users", "legacy-sandbox"}
    orders = next(d for d in dbs if d.name == "legacy-orders")
    stated = "v1-db-state" in v1_sim.shapes  # the seed's Database has no state
    assert orders.status.state == ("running" if stated else "unknown")
    assert not orders.status.is_pending
    assert orders.plan == "s1" and orders.plan_limits and orders.plan_limits.nodes
    assert str(orders.version) == "Neo4j 3.5.17 Enterprise"
    assert orders.domain_name and orders.domain_name.endswith(".graphenedb.example")
    assert orders.bolt_url and orders.domain_name in orders.bolt_url
    assert orders.counters and orders.counters.nodes == 120_000


async def test_databases_of_another_environment_is_not_found_without_a_request(v1, v1_sim):
    with pytest.raises(NotFound):
        await v1.databases("production")
    assert v1_sim.requests == []


async def test_catalogs(v1, v1_sim):
    versions = await v1.versions()
    assert [v.version for v in versions] == ["v3517", "v406", "v4416"]
    assert versions[0].description.startswith("Neo4j")
    assert v1_sim.requests_to("GET", r"^/v1/databases/versions$")
    before = len(v1_sim.requests)
    assert await v1.plans() == list(PLANS) and "sandbox" in PLANS
    assert await v1.regions() == list(REGIONS) and "eu-west-1" in REGIONS
    assert len(v1_sim.requests) == before  # documented lists, no endpoint


async def test_database_get_and_not_found(v1):
    orders = await _db(v1, "legacy-orders")
    same = await v1.database(orders.id)
    assert same.id == orders.id and same.aws_region == "eu-west-1"
    assert same.max_size and same.current_size
    with pytest.raises(NotFound) as info:
        await v1.database("0" * 32)
    assert info.value.outcome == "not done"
    assert "database not found" in info.value.describe()


async def test_base_url_may_include_v1(v1_sim):
    client = V1Client("legacy", v1_sim.base_url + "/v1/", SecretStr(API_KEY), retry=FAST_RETRY)
    try:
        assert len(await client.list_databases()) == 3
    finally:
        await client.aclose()
    assert v1_sim.requests[-1].path == "/v1/databases"


async def test_ids_are_quoted_into_one_path_segment(v1, v1_sim):
    with pytest.raises(NotFound):
        await v1.database("../operations/x")
    assert v1_sim.requests[-1].path.startswith("/v1/databases/")


# ---- async commands and operations ---------------------------------------------------


async def test_create_operation_events_then_running(v1, v1_sim, clock):
    started = await v1.create_database("legacy-new", "v4416", "eu-west-2", "developer")
    if "v1-create-201" in v1_sim.shapes:  # the new Database itself, nothing to follow
        assert started.operation_id is None and started.database
        assert started.database.name == "legacy-new"
        return
    if "v1-create-empty" in v1_sim.shapes:
        assert started.operation_id is None and started.database is None
        return
    assert started.operation_id
    op = await v1.operation(started.operation_id)
    assert op.current_state == "started" and not op.done
    assert [e.state for e in op.events] == ["allocating-instance"]
    assert op.steps[0].status == "running"
    assert op.description == "create database legacy-new"
    new = await _db(v1, "legacy-new")
    stated = "v1-db-state" in v1_sim.shapes  # the seed's Database has no state
    assert new.id == op.database_id
    assert new.status.state == ("creating" if stated else "unknown")
    clock.advance(1)
    op = await v1.operation(started.operation_id)
    assert [e.state for e in op.events] == ["allocating-instance", "creating-volume"]
    assert [s.status for s in op.steps] == ["finished", "running"]
    clock.advance(5)
    op = await v1.operation(started.operation_id)
    assert op.done and op.status == "finished" and op.error is None
    assert all(s.status == "finished" for s in op.steps)
    assert op.events[1].created_at and op.events[1].created_at.endswith("Z")  # ISO-8601 UTC
    assert (await v1.database(new.id)).status.state == ("running" if stated else "unknown")
    body = v1_sim.requests_to("POST", r"^/v1/databases$")[0].body
    assert body == {
        "name": "legacy-new",
        "version": "v4416",
        "awsRegion": "eu-west-2",
        "plan": "developer",
    }


async def test_create_with_bad_plan_is_a_bad_request(v1):
    with pytest.raises(BadRequest) as info:
        await v1.create_database("legacy-new", "v4416", "eu-west-2", "cluster")
    assert info.value.status == 400 and "cluster" in info.value.message


async def test_restart_reports_stopped_and_conflicts(v1, v1_sim, clock):
    orders = await _db(v1, "legacy-orders")
    started = await v1.restart(orders.id)
    assert started.operation_id
    op = await v1.operation(started.operation_id)
    assert op.stopped is True and op.events[0].state == "stopping-database"
    with pytest.raises(Conflict) as info:
        await v1.empty(orders.id)
    assert "another operation" in info.value.message and info.value.outcome == "not done"
    assert len(v1_sim.requests_to("PUT", r"/empty$")) == 1  # a 409 is not retried
    clock.advance(5)
    op = await v1.operation(started.operation_id)
    assert op.status == "finished" and op.stopped is False


async def test_empty_clears_counters_and_is_not_implemented_on_sandbox(v1, clock):
    users = await _db(v1, "legacy-users")
    assert (await v1.empty(users.id)).operation_id
    clock.advance(10)
    counters = (await v1.database(users.id)).counters
    assert counters and counters.nodes == 0
    sandbox = await _db(v1, "legacy-sandbox")
    with pytest.raises(NotSupportedByApi) as info:
        await v1.empty(sandbox.id)
    assert info.value.status == 501 and "sandbox" in info.value.message


async def test_delete_then_not_found_but_operation_readable(v1, clock):
    sandbox = await _db(v1, "legacy-sandbox")
    started = await v1.delete_database(sandbox.id)
    assert started.operation_id
    clock.advance(10)
    with pytest.raises(NotFound):
        await v1.database(sandbox.id)
    assert (await v1.operation(started.operation_id)).status == "finished"


async def test_operation_not_found(v1):
    with pytest.raises(NotFound):
        await v1.operation("f" * 32)


@pytest.mark.parametrize(
    "body",
    [
        {"operation": "op-1"},
        {"operationId": "op-1"},
        {"id": "op-1", "currentState": "started", "events": []},
        {"operation": {"id": "op-1"}},
    ],
)
async def test_every_operation_id_shape_is_accepted(v1, v1_sim, body):
    orders = await _db(v1, "legacy-orders")
    v1_sim.faults.fail_next("PUT", r"/restart$", status=202, body=body)
    assert (await v1.restart(orders.id)).operation_id == "op-1"


async def test_a_synchronous_answer_has_no_operation(v1, v1_sim):
    orders = await _db(v1, "legacy-orders")
    v1_sim.faults.fail_next("PUT", r"/restart$", status=200, body={})
    assert (await v1.restart(orders.id)).operation_id is None
    assert Accepted.model_validate(None).operation_id is None


NEW_DB = {
    "id": "d" * 32,
    "name": "fresh-db",
    "createdAt": "2026-11-30T00:00:00Z",
    "plan": {"type": "s1"},
    "awsRegion": "eu-west-1",
}


@pytest.mark.parametrize(
    ("status", "rule", "operation", "database"),
    [
        (201, {"body": NEW_DB}, None, "fresh-db"),  # "201: New entities created via POST"
        (202, {"body": {"operation": "op-1"}}, "op-1", None),  # observed
        (200, {"body": {"operationId": "op-1"}}, "op-1", None),
        (202, {"body": {"database": NEW_DB, "operationId": "op-1"}}, "op-1", "fresh-db"),
        (202, {"text": ""}, None, None),  # an empty answer: neither
        (204, {"text": ""}, None, None),
    ],
)
async def test_create_returns_what_it_got(v1, v1_sim, status, rule, operation, database):
    v1_sim.faults.fail_next("POST", r"^/v1/databases$", status=status, **rule)
    accepted = await v1.create_database("fresh-db", "v3517", "eu-west-1", "s1")
    assert accepted.operation_id == operation  # a database id is never an operation id
    assert (accepted.database.name if accepted.database else None) == database
    if accepted.database is not None:
        assert accepted.database.status.state == "unknown"  # nothing invented


async def test_follow_reports_every_event_until_finished(v1, clock):
    orders = await _db(v1, "legacy-orders")
    started = await v1.take_backup(orders.id)
    assert started.operation_id and started.backup_id
    seen: list[StepEvent] = []

    async def on_step(event: StepEvent) -> None:
        seen.append(event)
        clock.advance(1)

    outcome = await follow(
        v1.as_operation_source(),
        orders.id,
        started.operation_id,
        on_step,
        backoff=Backoff(first=0.0, factor=1.0, cap=0.0),
    )
    assert outcome.status == "finished"
    assert [e.name for e in seen] == [
        "freezing-volume",
        "creating-snapshot",
        "copy-snapshot",
        "unfreezing-volume",
    ]
    backup = await v1.backup(orders.id, started.backup_id)
    assert backup.done and backup.origin == "manual"


async def test_follow_reports_a_failed_operation(v1, v1_sim, clock):
    orders = await _db(v1, "legacy-orders")
    v1_sim.fail_next_operation("restart", "starting-database")

    async def on_step(event: StepEvent) -> None:
        clock.advance(1)

    started = await v1.restart(orders.id)
    outcome = await follow(
        v1.as_operation_source(),
        orders.id,
        started.operation_id or "",
        on_step,
        backoff=Backoff(first=0.0, factor=1.0, cap=0.0),
    )
    assert outcome.status == "failed"
    assert outcome.error == "operation failed at starting-database"
    assert v1_sim.find_database("legacy-orders").state == "running"  # back as it was


# ---- backups, schedule, export, import -------------------------------------------------


async def test_backups_latest_one_and_restore(v1, v1_sim, clock):
    orders = await _db(v1, "legacy-orders")
    backups = await v1.backups(orders.id)
    assert [b.origin for b in backups] == ["scheduled", "manual", "automatic"]
    assert all(b.done and b.size for b in backups)
    assert backups[0].package_url == f"/databases/{orders.id}/backups/{backups[0].id}/package"
    latest = await v1.latest_backup(orders.id)
    assert latest.id == backups[-1].id
    one = await v1.backup(orders.id, backups[0].id)
    assert one == backups[0]
    restored = await v1.restore_backup(orders.id, backups[0].id)
    assert restored.operation_id
    op = await v1.operation(restored.operation_id)
    assert op.events[0].state == "stopping-database"
    with pytest.raises(NotFound):
        await v1.backup(orders.id, "a" * 32)


async def test_manual_backup_needs_a_standard_plan(v1, v1_sim):
    sandbox = await _db(v1, "legacy-sandbox")
    with pytest.raises(BadRequest) as info:
        await v1.take_backup(sandbox.id)
    assert "Standard plan" in info.value.message
    with pytest.raises(NotFound):
        await v1.latest_backup(sandbox.id)


async def test_restore_while_its_backup_runs_is_busy(v1):
    orders = await _db(v1, "legacy-orders")
    started = await v1.take_backup(orders.id)
    with pytest.raises(Conflict):  # the backup operation itself keeps the database busy
        await v1.restore_backup(orders.id, started.backup_id or "")


async def test_backup_package_is_a_secret_one_time_link(v1, v1_sim):
    orders = await _db(v1, "legacy-orders")
    backups = await v1.backups(orders.id)
    package = await v1.backup_package(orders.id, backups[0].id)
    assert isinstance(package.backup_url, SecretStr)
    link = package.backup_url.get_secret_value()
    assert link == v1_sim.links[-1] and "X-Amz-Signature=" in link
    assert link not in repr(package) and link not in str(package)
    assert link not in package.model_dump_json()
    automatic = next(b for b in backups if not b.downloadable)
    with pytest.raises(BadRequest):
        await v1.backup_package(orders.id, automatic.id)


async def test_backup_schedule_get_and_set(v1, v1_sim):
    orders = await _db(v1, "legacy-orders")
    schedule = await v1.backup_schedule(orders.id)
    assert (schedule.time, schedule.timezone, schedule.frequency) == ("3:00:00", "UTC", "daily")
    changed = await v1.set_backup_schedule(orders.id, "4:30:00")
    assert changed.time == "4:30:00"
    assert (await v1.backup_schedule(orders.id)).time == "4:30:00"
    assert v1_sim.requests_to("PUT", r"/schedule$")[0].body == {
        "time": "4:30:00",
        "timezone": "UTC",
        "frequency": "daily",
    }
    with pytest.raises(BadRequest):
        await v1.set_backup_schedule(orders.id, "25:00:00")
    with pytest.raises(BadRequest):
        await v1.set_backup_schedule(orders.id, "4:30:00", timezone="CET")


async def test_export_link_is_secret(v1, v1_sim):
    sandbox = await _db(v1, "legacy-sandbox")  # every plan may export
    export = await v1.export(sandbox.id)
    assert isinstance(export.url, SecretStr) and export.size
    assert export.url.get_secret_value() == v1_sim.links[-1]
    assert "X-Amz-Signature" not in repr(export)
    assert v1_sim.requests_to("PUT", r"/export$")


async def test_import_from_s3_url(v1, v1_sim, clock):
    users = await _db(v1, "legacy-users")
    started = await v1.import_url(
        users.id, SecretStr("https://my-bucket.s3.amazonaws.com/graphdb.zip")
    )
    op = await v1.operation(started.operation_id or "")
    assert op.events[0].state == "downloading-file"
    clock.advance(10)
    with pytest.raises(BadRequest):
        await v1.import_url(users.id, "ftp://elsewhere/graphdb.zip")


# ---- errors, retries, secrets ------------------------------------------------------------


async def test_wrong_api_key_is_unauthorized_without_the_key_in_the_text(v1_sim):
    wrong = "sentinel-wrong-key-0000"
    client = V1Client("legacy", v1_sim.base_url, SecretStr(wrong), retry=FAST_RETRY)
    try:
        with pytest.raises(Unauthorized) as info:
            await client.list_databases()
    finally:
        await client.aclose()
    text = info.value.describe()
    assert "invalid api_key" in text and wrong not in text and API_KEY not in text
    assert len(v1_sim.requests_to("GET", r"^/v1/databases$")) == 1  # 401 is not retried
    assert wrong not in repr(client)


async def test_an_echoed_key_is_scrubbed_from_messages(v1, v1_sim):
    v1_sim.faults.fail_next("GET", r"^/v1/databases$", status=400, body={"error": f"bad {API_KEY}"})
    with pytest.raises(BadRequest) as info:
        await v1.list_databases()
    assert API_KEY not in info.value.describe() and "[REDACTED]" in info.value.message


async def test_500_shows_the_support_nonce(v1, v1_sim):
    v1_sim.faults.fail_next("GET", r"^/v1/databases$", status=500, times=3)
    with pytest.raises(ServerError) as info:
        await v1.list_databases()
    nonce = v1_sim.nonces[-1]
    assert info.value.status == 500 and info.value.nonce == nonce
    assert f"support reference {nonce}" in info.value.describe()
    assert len(v1_sim.requests_to("GET", r"^/v1/databases$")) == 3  # GET retried


async def test_get_is_retried_after_a_transient_5xx(v1, v1_sim):
    v1_sim.faults.fail_next("GET", r"^/v1/databases$", status=502)
    v1_sim.faults.fail_next("GET", r"^/v1/databases$", status=504)
    assert len(await v1.list_databases()) == 3
    assert [r.status for r in v1_sim.requests_to("GET", r"^/v1/databases$")] == [502, 504, 200]


@pytest.mark.parametrize("status", [500, 502, 504])
async def test_put_is_never_resent_after_5xx(v1, v1_sim, status):
    orders = await _db(v1, "legacy-orders")
    v1_sim.faults.fail_next("PUT", r"/restart$", status=status, after_effect=True)
    with pytest.raises((ServerError, Timeout)) as info:
        await v1.restart(orders.id)
    assert info.value.outcome == "unknown"
    assert "whether it took effect is unknown" in info.value.describe()
    assert len(v1_sim.requests_to("PUT", r"/restart$")) == 1
    assert len(v1_sim.mutating_requests()) == 1


async def test_post_is_never_resent_after_500(v1, v1_sim):
    v1_sim.faults.fail_next("POST", r"^/v1/databases$", status=500)
    with pytest.raises(ServerError) as info:
        await v1.create_database("legacy-new", "v4416", "eu-west-2", "developer")
    assert info.value.nonce == v1_sim.nonces[-1] and info.value.outcome == "unknown"
    assert len(v1_sim.requests_to("POST", r"^/v1/databases$")) == 1


async def test_501_is_not_retried(v1, v1_sim):
    sandbox = await _db(v1, "legacy-sandbox")
    v1_sim.faults.fail_next("GET", r"/backups$", status=501)
    with pytest.raises(NotSupportedByApi):
        await v1.backups(sandbox.id)
    assert len(v1_sim.requests_to("GET", r"/backups$")) == 1


async def test_api_key_never_in_logs_calls_or_request_log(v1, v1_sim, calls, caplog):
    caplog.set_level(logging.DEBUG)
    orders = await _db(v1, "legacy-orders")
    await v1.restart(orders.id)
    v1_sim.faults.fail_next("GET", r".*", status=500, times=3)
    with pytest.raises(ServerError) as info:
        await v1.database(orders.id)
    assert calls and all(API_KEY not in repr(c) for c in calls)
    assert API_KEY not in caplog.text
    assert API_KEY not in str(info.value) and API_KEY not in repr(info.value.args)
    assert API_KEY not in repr(v1_sim.requests)
    assert all(r.headers["api_key"] == "[REDACTED]" for r in v1_sim.requests)
    assert API_KEY not in repr(v1) and API_KEY not in repr(vars(v1))


# ---- tolerant models -------------------------------------------------------------------------


def test_database_model_is_tolerant_and_drops_url_credentials():
    db = V1Database.model_validate(
        {
            "id": "d1",
            "name": "x",
            "boltURL": "bolt://user:pw@host.example:24786",
            "restUrl": "https://user:pw@host.example/db/data/",
            "plan": {"type": "p2"},
            "plugins": None,
            "surprise": {"nested": True},
        }
    )
    assert db.domain_name == "host.example" and db.plan == "p2"
    assert db.bolt_url == "bolt://host.example:24786" and db.url == "https://host.example/db/data/"
    assert db.status.state == "unknown"  # v1 has no state: none is invented
    assert db.version is None and db.plugins == []
    bare = V1Database.model_validate({"id": "d2", "name": "y", "status": "stopped"})
    assert bare.status.state == "stopped" and bare.domain_name is None


def test_operation_model_accepts_string_events_and_failures():
    op = V1Operation.model_validate(
        {"id": "o", "currentState": "failed", "events": ["a", {"state": "b", "createdAt": 5}]}
    )
    assert [s.status for s in op.steps] == ["finished", "failed"]
    assert op.error == "operation failed at b" and op.next_operation_id is None
    assert V1Operation.model_validate({"id": "o", "events": None}).steps == []
