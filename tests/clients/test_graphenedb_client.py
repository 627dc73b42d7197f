"""The Console client against the simulator over real loopback sockets."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import pytest
from pydantic import SecretStr

from clients.errors import (
    BadRequest,
    Conflict,
    ConnectionFailed,
    NotFound,
    ServerError,
    Unauthorized,
)
from clients.graphenedb import Archive, ConsoleClient
from clients.http import CallRecord
from simulators.base import ManualClock
from tests.support import FAST_RETRY, SECRET, SECRET_ID


async def _env_id(console: ConsoleClient, label: str) -> str:
    return next(e.id for e in await console.environments() if e.label == label)


async def _db(console: ConsoleClient, env: str, name: str):  # type: ignore[no-untyped-def]
    dbs = await console.databases(await _env_id(console, env))
    return next(d for d in dbs if d.name == name)


async def test_seed_sequence_token_environments_databases(console, console_sim):
    envs = await console.environments()
    assert {e.label for e in envs} == {"production", "staging", "development"}
    prod = next(e for e in envs if e.label == "production")
    assert prod.name == "production" and prod.grant_type == "red" and prod.type == "red"
    names = {d.name for d in await console.databases(prod.id)}
    assert names == {"orders-db", "orders-replica", "billing-db"}
    assert console_sim.tokens_issued == 1
    paths = [r.path for r in console_sim.requests]
    assert paths[0] == "/organizations/oauth/token"


async def test_catalogs(console):
    versions = await console.versions()
    assert {"number": "4.4.16"}.items() <= versions[-1].model_dump().items()
    assert [p.model_dump()["name"] for p in await console.plans()] == ["ds1", "ds2", "ds3"]
    assert "eu-west-1" in [r.model_dump()["id"] for r in await console.regions()]


async def test_database_and_status(console):
    db = await _db(console, "staging", "catalog-db")
    same = await console.database(db.id)
    assert same.name == "catalog-db" and same.status.state == "paused"
    assert (await console.status(db.id)).state == "paused"
    assert same.version is not None and same.version.number


async def test_create_then_operation_finishes(console, clock: ManualClock):
    env = await _env_id(console, "development")
    started = await console.create_database(env, "new-db", "ds1", "5.24.0", "community", [])
    assert started.operation_id and started.database and started.database.name == "new-db"
    op = await console.operation(started.database.id, started.operation_id)
    assert op.status == "started" and op.steps[0].name == "allocating-resources"
    clock.advance(10)
    op = await console.operation(started.database.id, started.operation_id)
    assert op.status == "finished"
    assert (await console.database(started.database.id)).status.state == "running"


async def test_create_with_bad_plan_is_a_clear_bad_request(console):
    env = await _env_id(console, "development")
    with pytest.raises(BadRequest) as info:
        await console.create_database(env, "new-db", "nope", "5.24.0", "community")
    assert info.value.status == 400 and "plan" in info.value.message
    assert info.value.outcome == "not done"


async def test_pause_resume_restart(console, console_sim, clock):
    db = await _db(console, "development", "sandbox-db")
    paused = await console.pause(db.id)
    assert paused.operation_id
    clock.advance(10)
    assert (await console.status(db.id)).state == "paused"
    assert (await console.resume(db.id)).operation_id
    clock.advance(10)
    restart = await console.restart(db.id)
    # The observed answer echoes {stationIds, reset}: an operation id is a guess.
    assert bool(restart.operation_id) != ("restart-echo" in console_sim.shapes)
    ops = await console.operations(db.id)
    types = list(dict.fromkeys(o.operation_type for o in ops))  # a chain lists a type twice
    assert types[:3] == ["restart", "resume", "pause"]


async def test_conflict_while_an_operation_runs(console, console_sim):
    db = await _db(console, "development", "sandbox-db")
    await console.restart(db.id)
    with pytest.raises(Conflict) as info:
        await console.pause(db.id)
    assert "another operation" in info.value.message
    assert len(console_sim.requests_to("POST", r".*/pause$")) == 1


async def test_clone_follows_next_operation_chain(console, clock, console_shapes):
    db = await _db(console, "development", "sandbox-db")
    env = await _env_id(console, "staging")
    started = await console.clone(db.id, "sandbox-copy", env)
    if "copy-op-only" in console_shapes:  # no database in the answer: only by its name
        assert started.database is None and started.operation_id
        new_id = next(d.id for d in await console.databases(env) if d.name == "sandbox-copy")
    else:
        assert started.database and started.database.name == "sandbox-copy"
        new_id = started.database.id
    clock.advance(2.5)
    first = await console.operation(db.id, started.operation_id or "")
    assert first.status == "finished" and first.next_operation_id
    clock.advance(3)
    second = await console.operation(db.id, first.next_operation_id)
    assert second.status == "finished"
    assert (await console.database(new_id)).status.state == "running"


async def test_snapshots_restore_and_create_from_snapshot(console, clock, console_shapes):
    prod = await _db(console, "production", "orders-db")
    snaps = await console.snapshots(prod.id)
    assert len(snaps) == 1 and snaps[0].status == "done"
    taken = await console.take_snapshot(prod.id)
    assert taken.snapshot and taken.operation_id
    clock.advance(10)
    assert len(await console.snapshots(prod.id)) == 2
    staging = await _db(console, "staging", "orders-db")
    restored = await console.restore_snapshot(staging.id, snaps[0].id, prod.environment_id)
    assert restored.operation_id
    env = await _env_id(console, "development")
    new = await console.create_from_snapshot(snaps[0].id, prod.environment_id, env, "from-snap")
    if "copy-op-only" in console_shapes:
        assert new.database is None and new.operation_id
        assert "from-snap" in [d.name for d in await console.databases(env)]
    else:
        assert new.database and new.database.name == "from-snap"


async def test_terminate_then_not_found(console, clock):
    db = await _db(console, "development", "sandbox-db")
    started = await console.terminate(db.id)
    assert started.operation_id
    clock.advance(10)
    with pytest.raises(NotFound):
        await console.database(db.id)


async def test_switch_connection_swaps_domains(console, clock):
    a = await _db(console, "production", "orders-db")
    b = await _db(console, "production", "orders-replica")
    assert (await console.switch_connection(a.id, b.id)).operation_id
    clock.advance(10)
    assert (await console.database(a.id)).domain_name == b.domain_name
    assert (await console.database(b.id)).domain_name == a.domain_name


async def test_import_streams_the_archive_with_a_length(console, console_sim):
    db = await _db(console, "development", "sandbox-db")
    sent = 0

    async def chunks() -> AsyncIterator[bytes]:
        nonlocal sent
        for _ in range(64):
            sent += 64 * 1024
            yield b"x" * (64 * 1024)

    archive = Archive("graph.dump", 64 * 64 * 1024, chunks())
    started = await console.import_archive(db.id, archive)
    assert started.operation_id
    assert sent == 64 * 64 * 1024
    (request,) = console_sim.requests_to("POST", r".*/import$")
    assert request.status == 202 and request.body == f"<multipart {sent} bytes>"
    # The request as the server saw it: a length, no chunking, no credentials recorded.
    assert "transfer-encoding" not in request.headers
    assert int(request.headers["content-length"]) > sent
    assert request.headers["content-type"].startswith("multipart/form-data; boundary=")
    assert request.headers["authorization"] == "[REDACTED]"


async def test_import_from_a_path(console, console_sim, tmp_path):
    db = await _db(console, "development", "sandbox-db")
    dump = tmp_path / "graph.dump"
    dump.write_bytes(b"\x01" * 300_000)
    assert (await console.import_archive(db.id, dump)).operation_id
    (request,) = console_sim.requests_to("POST", r".*/import$")
    assert request.body == "<multipart 300000 bytes>" and "transfer-encoding" not in request.headers


async def test_import_reports_the_servers_answer_as_it_is(console, console_sim):
    paused = await _db(console, "staging", "catalog-db")  # not running: 400 before reading

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(128):
            yield b"z" * (64 * 1024)

    with pytest.raises(BadRequest) as info:
        await console.import_archive(paused.id, Archive("big.dump", 128 * 64 * 1024, chunks()))
    assert info.value.status == 400 and info.value.message == "database is not running"
    assert "connection" not in str(info.value)


async def test_an_archive_shorter_than_announced_is_refused(console, console_sim):
    db = await _db(console, "development", "sandbox-db")

    async def chunks() -> AsyncIterator[bytes]:
        yield b"short"

    with pytest.raises(BadRequest) as info:
        await console.import_archive(db.id, Archive("x.dump", 100, chunks()))
    assert "gave 5 bytes, not the 100 announced" in info.value.message


async def test_token_is_cached_and_shared_by_concurrent_calls(console, console_sim):
    await asyncio.gather(*(console.environments() for _ in range(20)))
    assert console_sim.tokens_issued == 1
    assert console.tokens_fetched == 1


async def test_expired_token_is_renewed_once(console, console_sim):
    await console.environments()
    console_sim.expire_tokens()
    envs = await console.environments()
    assert len(envs) == 3
    assert console_sim.tokens_issued == 2


async def test_token_refreshed_before_expiry(console_sim):
    now = [0.0]
    client = ConsoleClient(
        "console",
        console_sim.base_url,
        SecretStr(SECRET_ID),
        SecretStr(SECRET),
        retry=FAST_RETRY,
        clock=lambda: now[0],
    )
    try:
        await client.environments()
        now[0] = 3600 - 30  # inside the refresh margin
        await client.environments()
        assert console_sim.tokens_issued == 2
        await client.environments()
        assert console_sim.tokens_issued == 2
    finally:
        await client.aclose()


async def test_wrong_credentials(console_sim):
    client = ConsoleClient(
        "console",
        console_sim.base_url,
        SecretStr("x"),
        SecretStr("wrong-secret-value"),
        retry=FAST_RETRY,
    )
    try:
        with pytest.raises(Unauthorized) as info:
            await client.environments()
        assert "invalid client credentials" in str(info.value)
        assert "wrong-secret-value" not in str(info.value)
    finally:
        await client.aclose()


async def test_get_is_retried_on_5xx(console, console_sim):
    console_sim.faults.fail_next("GET", r"^/deployments/environments$", status=502, times=2)
    assert len(await console.environments()) == 3
    assert len(console_sim.requests_to("GET", r"^/deployments/environments$")) == 3


async def test_get_gives_up_after_attempts(console, console_sim):
    console_sim.faults.fail_next("GET", r"^/deployments/environments$", status=500, times=5)
    with pytest.raises(ServerError):
        await console.environments()
    assert len(console_sim.requests_to("GET", r"^/deployments/environments$")) == 3


async def test_post_is_never_resent_after_a_5xx(console, console_sim):
    db = await _db(console, "development", "sandbox-db")
    console_sim.faults.fail_next("POST", r".*/pause$", status=502)
    with pytest.raises(ServerError) as info:
        await console.pause(db.id)
    assert info.value.outcome == "unknown"
    assert "whether it took effect is unknown" in str(info.value)
    assert len(console_sim.requests_to("POST", r".*/pause$")) == 1


async def test_dropped_post_is_not_resent(console, console_sim):
    db = await _db(console, "development", "sandbox-db")
    console_sim.faults.fail_next("POST", r".*/pause$", drop=True, after_effect=True)
    with pytest.raises(ConnectionFailed) as info:
        await console.pause(db.id)
    assert info.value.outcome == "unknown"
    assert len(console_sim.requests_to("POST", r".*/pause$")) == 1


async def test_dropped_get_is_retried(console, console_sim):
    console_sim.faults.fail_next("GET", r"^/deployments/environments$", drop=True)
    assert len(await console.environments()) == 3


async def test_connection_refused_is_clear():
    client = ConsoleClient(
        "console",
        "http://127.0.0.1:9",
        SecretStr(SECRET_ID),
        SecretStr(SECRET),
        retry=FAST_RETRY,
        timeout=2.0,
    )
    try:
        with pytest.raises(ConnectionFailed) as info:
            await client.environments()
        assert info.value.outcome == "not done"
        assert "could not connect" in str(info.value)
    finally:
        await client.aclose()


async def test_calls_are_reported_without_secrets(console_sim, caplog):
    calls: list[CallRecord] = []
    client = ConsoleClient(
        "console",
        console_sim.base_url,
        SecretStr(SECRET_ID),
        SecretStr(SECRET),
        retry=FAST_RETRY,
        on_call=calls.append,
    )
    caplog.set_level(logging.DEBUG)
    try:
        await client.environments()
        console_sim.faults.fail_next("GET", r".*", status=500, times=5)
        with pytest.raises(ServerError) as info:
            await client.versions()
    finally:
        await client.aclose()
    assert [c.method for c in calls][:2] == ["POST", "GET"]
    assert all(c.ms >= 0 for c in calls)
    token = client.auth.current or ""
    everything = caplog.text + repr(calls) + str(info.value) + repr(info.value.__dict__)
    for secret in (SECRET, SECRET_ID, token):
        assert secret and secret not in everything
