"""The TypeDB client against the TypeDB simulator over real loopback sockets."""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import AsyncIterator

import pytest
from pydantic import SecretStr

from clients.errors import (
    BadRequest,
    ConnectionFailed,
    Forbidden,
    NotFound,
    ServerError,
    Timeout,
    Unauthorized,
)
from clients.http import CallRecord
from clients.typedb import (
    SERVER_TIMEOUT_MESSAGE,
    QueryAnswer,
    TypeDBClient,
    rows_to_table,
    token_lifetime_from_jwt,
)
from commands.resolve import Resolver
from core.provider import Provider
from simulators.base import REDACTED, ManualClock
from simulators.typedb import TypeDBSimulator, limit_warning
from tests.support import FAST_RETRY

USER = "admin"
PASSWORD = "sentinel-typedb-password-4d2b"
NEW_PASSWORD = "sentinel-typedb-new-password-8e1f"
# the example token of the seed: exp - iat == 14400
SEED_TOKEN = (
    "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhZG1pbiIsImV4cCI6MTc0NDYzNTI5NSwi"
    "aWF0IjoxNzQ0NjIwODk1fQ.WEhmBTAXI_qZUlAB7zw52LDGJhnqfNTXS63QDSZlqds"
)


@pytest.fixture
async def sim(clock: ManualClock) -> AsyncIterator[TypeDBSimulator]:
    s = TypeDBSimulator(username=USER, password=PASSWORD, token_ttl=600)
    s.clock = clock
    await s.start()
    try:
        yield s
    finally:
        await s.stop()


def make_client(
    sim: TypeDBSimulator,
    clock: ManualClock,
    username: str = USER,
    password: str = PASSWORD,
    **kwargs: object,
) -> TypeDBClient:
    return TypeDBClient(
        "typedb",
        sim.base_url,
        SecretStr(username),
        SecretStr(password),
        retry=FAST_RETRY,
        timeout=5.0,
        clock=clock,
        **kwargs,  # type: ignore[arg-type]
    )


@pytest.fixture
async def tdb(sim: TypeDBSimulator, clock: ManualClock) -> AsyncIterator[TypeDBClient]:
    client = make_client(sim, clock)
    try:
        yield client
    finally:
        await client.aclose()


# ---- server, databases, schema ----------------------------------------------------


async def test_version_and_health_need_no_sign_in(tdb, sim):
    version = await tdb.version()
    assert (version.distribution, version.version) == ("TypeDB", "3.2.0")
    assert str(version) == "TypeDB 3.2.0"
    assert await tdb.health() is True
    assert sim.tokens_issued == 0


async def test_databases_lifecycle(tdb):
    assert [d.name for d in await tdb.list_databases()] == ["social", "inventory"]
    social = await tdb.database("social")
    assert social.id == social.name == "social" and social.status.state == "available"
    await tdb.create_database("orders")
    assert "orders" in [d.name for d in await tdb.list_databases()]
    with pytest.raises(BadRequest) as info:
        await tdb.create_database("orders")
    assert info.value.code == "DBE2" and info.value.status == 400
    await tdb.delete_database("orders")
    with pytest.raises(NotFound) as missing:
        await tdb.database("orders")
    assert missing.value.code == "DBE1" and "[code DBE1]" in str(missing.value)


async def test_schema_and_type_schema(tdb):
    schema = await tdb.schema("social")
    assert schema.startswith("define") and "fun adults" in schema
    types = await tdb.type_schema("social")
    assert "entity person" in types and "fun " not in types
    assert await tdb.schema("inventory") == ""
    assert await tdb.type_schema("inventory") == ""


async def test_names_are_path_encoded_and_empty_ones_refused(tdb, sim):
    with pytest.raises(NotFound):
        await tdb.database("a/b c")
    assert sim.requests[-1].path == "/v1/databases/a/b c"
    with pytest.raises(BadRequest):
        await tdb.database("")
    assert len(sim.requests_to("GET", r"^/v1/databases/$")) == 0


# ---- users ---------------------------------------------------------------------------


async def test_users_lifecycle(tdb, sim, clock):
    await tdb.create_user("bob", SecretStr(PASSWORD + "-bob"))
    assert [u.username for u in await tdb.users()] == ["admin", "bob"]
    assert (await tdb.user("bob")).username == "bob"
    await tdb.update_password("bob", SecretStr(NEW_PASSWORD))
    bob = make_client(sim, clock, "bob", NEW_PASSWORD)
    try:
        assert len(await bob.list_databases()) == 2
        with pytest.raises(Forbidden) as info:
            await bob.users()
        assert info.value.code == "AUT4" and info.value.status == 403
    finally:
        await bob.aclose()
    await tdb.delete_user("bob")
    with pytest.raises(NotFound) as gone:
        await tdb.user("bob")
    assert gone.value.code == "USR1"


async def test_wrong_password_is_unauthorized_with_code(sim, clock):
    client = make_client(sim, clock, password="wrong-" + PASSWORD)
    try:
        with pytest.raises(Unauthorized) as info:
            await client.list_databases()
        assert info.value.code == "AUT1" and info.value.status == 401
        assert PASSWORD not in str(info.value) and PASSWORD not in repr(info.value.__dict__)
    finally:
        await client.aclose()
    assert len(sim.requests_to("POST", "/v1/signin")) == 1  # a 401 is not retried


# ---- tokens ----------------------------------------------------------------------------


async def test_token_is_cached_and_shared_by_concurrent_calls(tdb, sim):
    await asyncio.gather(*(tdb.list_databases() for _ in range(20)))
    assert sim.tokens_issued == 1 and tdb.tokens_fetched == 1


async def test_rejected_token_is_renewed_once(tdb, sim):
    await tdb.list_databases()
    sim.expire_tokens()
    assert len(await tdb.list_databases()) == 2
    assert sim.tokens_issued == 2
    statuses = [r.status for r in sim.requests_to("GET", "^/v1/databases$")]
    assert statuses == [200, 401, 200]


async def test_token_renewed_before_expiry_from_jwt_claims(tdb, sim, clock):
    await tdb.list_databases()
    clock.advance(535)  # lifetime 600 s from exp - iat, renewed 60 s early (at 540)
    await tdb.list_databases()
    assert sim.tokens_issued == 1
    clock.advance(10)
    await tdb.list_databases()
    assert sim.tokens_issued == 2
    assert all(r.status != 401 for r in sim.requests)


async def test_non_jwt_token_uses_the_configured_lifetime(sim, clock, monkeypatch):
    issue = sim._issue_token

    def opaque(username: str) -> str:
        jwt = issue(username)
        token = secrets.token_hex(16)
        sim._tokens[token] = sim._tokens.pop(jwt)
        return token

    monkeypatch.setattr(sim, "_issue_token", opaque)
    client = make_client(sim, clock, token_lifetime=100.0)
    try:
        await client.list_databases()
        clock.advance(89)
        await client.list_databases()
        assert sim.tokens_issued == 1
        clock.advance(2)  # past 100 - 10 s margin
        await client.list_databases()
        assert sim.tokens_issued == 2
    finally:
        await client.aclose()


def test_token_lifetime_from_jwt():
    assert token_lifetime_from_jwt(SEED_TOKEN) == 14400
    assert token_lifetime_from_jwt("opaque-token") is None
    assert token_lifetime_from_jwt("a.!!!.c") is None
    assert token_lifetime_from_jwt("a.bm90IGpzb24.c") is None  # "not json"
    # {"exp": 2000} with no iat: measured from "now"
    assert token_lifetime_from_jwt("a.eyJleHAiOiAyMDAwfQ.c", now=1500) == 500
    assert token_lifetime_from_jwt("a.eyJleHAiOiAyMDAwfQ.c", now=2500) is None


# ---- transactions and queries -------------------------------------------------------------


async def test_read_transaction_rows_documents_and_close(tdb, sim):
    tx = await tdb.open_transaction("social", "read")
    rows = await tdb.query(tx, "match $p isa person, has name $name, has age $age;")
    assert isinstance(rows, QueryAnswer)
    assert (rows.query_type, rows.answer_type, rows.warning) == ("read", "conceptRows", None)
    columns, cells = rows_to_table(rows.answers)
    assert columns == ["p", "name", "age"]
    assert cells[0] == ["person:0x1e00000000000000000000", "Alice", "34"]
    docs = await tdb.query(tx, "match $p isa person; fetch { 'name': $p.name };")
    assert docs.answer_type == "conceptDocuments" and docs.answers[1]["name"] == "Bob"
    bare = await tdb.query(tx, "match $p isa person;", include_instance_types=False)
    assert rows_to_table(bare.answers)[1][0][0] == "0x1e00000000000000000000"
    await tdb.close_transaction(tx)
    assert sim.transactions == []


async def test_answer_count_limit_warning(tdb):
    tx = await tdb.open_transaction("social", "read")
    answer = await tdb.query(tx, "match $p isa person;", answer_count_limit=1)
    assert len(answer.answers) == 1 and answer.warning == limit_warning(1)
    everything = await tdb.query(tx, "match $p isa person;", answer_count_limit=10)
    assert len(everything.answers) == 3 and everything.warning is None


async def test_query_options_are_sent_as_documented(tdb, sim):
    tx = await tdb.open_transaction(
        "social", "schema", schema_lock_timeout_ms=100, transaction_timeout_ms=5000
    )
    await tdb.query(tx, "match $p isa person;", include_instance_types=False, answer_count_limit=5)
    opened = sim.requests_to("POST", "/open$")[-1].body
    assert opened == {
        "databaseName": "social",
        "transactionType": "schema",
        "transactionOptions": {
            "schemaLockAcquireTimeoutMillis": 100,
            "transactionTimeoutMillis": 5000,
        },
    }
    sent = sim.requests_to("POST", "/query$")[-1].body
    assert sent == {
        "query": "match $p isa person;",
        "queryOptions": {"includeInstanceTypes": False, "answerCountLimit": 5},
    }


async def test_write_commit_and_rollback(tdb, sim):
    tx = await tdb.open_transaction("social", "write")
    inserted = await tdb.query(tx, "insert $x isa person, has name 'Dan';")
    assert inserted.query_type == "write" and inserted.answer_type == "conceptRows"
    assert rows_to_table(inserted.answers)[1][0][0].startswith("person:0x")
    await tdb.rollback(tx)
    await tdb.query(tx, "insert $y isa person;")
    await tdb.commit(tx)
    assert sim.database("social").writes == ["insert $y isa person;"]
    with pytest.raises(NotFound) as info:
        await tdb.commit(tx)
    assert info.value.code == "TXN1"


async def test_schema_transaction_define_then_schema(tdb):
    tx = await tdb.open_transaction("inventory", "schema")
    ok = await tdb.query(tx, "define entity shelf;")
    assert (ok.query_type, ok.answer_type, ok.answers) == ("schema", "ok", [])
    await tdb.commit(tx)
    assert await tdb.schema("inventory") == "define\n  entity shelf;\n"


async def test_wrong_query_for_transaction_type_is_bad_request(tdb):
    tx = await tdb.open_transaction("social", "read")
    with pytest.raises(BadRequest) as info:
        await tdb.query(tx, "insert $x isa person;")
    assert info.value.code == "TXN4" and info.value.outcome == "not done"
    with pytest.raises(BadRequest) as commit:
        await tdb.commit(tx)
    assert commit.value.code == "TXN5"


async def test_invalid_transaction_type_sends_nothing(tdb, sim):
    with pytest.raises(BadRequest):
        await tdb.open_transaction("social", "admin")  # type: ignore[arg-type]
    with pytest.raises(BadRequest):
        await tdb.one_shot_query("social", "match $p isa person;", "delete")  # type: ignore[arg-type]
    assert sim.requests == []


async def test_transaction_timeout_is_a_clear_timeout(tdb, clock):
    tx = await tdb.open_transaction("social", "read", transaction_timeout_ms=1000)
    clock.advance(2)
    with pytest.raises(Timeout) as info:
        await tdb.query(tx, "match $p isa person;")
    error = info.value
    assert error.status == 408 and error.code == "TXN2"
    assert SERVER_TIMEOUT_MESSAGE in str(error) and error.outcome == "not done"


async def test_schema_lock_timeout(tdb):
    first = await tdb.open_transaction("social", "schema")
    with pytest.raises(Timeout) as info:
        await tdb.open_transaction("social", "schema", schema_lock_timeout_ms=50)
    assert info.value.code == "TXN3" and info.value.status == 408
    waiter = asyncio.create_task(
        tdb.open_transaction("social", "schema", schema_lock_timeout_ms=5000)
    )
    await asyncio.sleep(0.05)
    await tdb.close_transaction(first)
    assert await asyncio.wait_for(waiter, 5) != first


async def test_other_users_transaction_is_forbidden(tdb, sim, clock):
    sim.add_user("eve", "eve-pw")
    eve = make_client(sim, clock, "eve", "eve-pw")
    try:
        tx = await tdb.open_transaction("social", "read")
        with pytest.raises(Forbidden):
            await eve.query(tx, "match $p isa person;")
    finally:
        await eve.aclose()


async def test_one_shot_queries(tdb, sim):
    read = await tdb.one_shot_query("social", "match $p isa person;", answer_count_limit=2)
    assert read.answer_type == "conceptRows" and read.warning == limit_warning(2)
    await tdb.one_shot_query("social", "insert $x isa person;", "write", commit=False)
    assert sim.database("social").writes == []
    await tdb.one_shot_query("social", "insert $x isa person;", "write")
    assert sim.database("social").writes == ["insert $x isa person;"]
    ok = await tdb.one_shot_query("inventory", "define entity bin;", "schema")
    assert ok.answer_type == "ok" and "entity bin" in await tdb.schema("inventory")
    sim.query_seconds = 5
    with pytest.raises(Timeout) as info:
        await tdb.one_shot_query("social", "match $p isa person;", transaction_timeout_ms=1000)
    assert info.value.code == "QRY2" and SERVER_TIMEOUT_MESSAGE in str(info.value)


# ---- never re-send a write -----------------------------------------------------------------


async def test_write_query_not_resent_after_a_5xx(tdb, sim):
    tx = await tdb.open_transaction("social", "write")
    sim.faults.fail_next("POST", r"/query$", status=502)
    with pytest.raises(ServerError) as info:
        await tdb.query(tx, "insert $x isa person;")
    assert info.value.outcome == "unknown" and info.value.code == "SIM1"
    assert len(sim.requests_to("POST", r"/query$")) == 1


async def test_dropped_write_query_is_not_resent(tdb, sim):
    tx = await tdb.open_transaction("social", "write")
    sim.faults.fail_next("POST", r"/query$", drop=True, after_effect=True)
    with pytest.raises(ConnectionFailed) as info:
        await tdb.query(tx, "insert $x isa person;")
    assert info.value.outcome == "unknown"
    assert len(sim.requests_to("POST", r"/query$")) == 1
    assert sim.transactions[0].pending_writes == ["insert $x isa person;"]  # ran exactly once


async def test_dropped_one_shot_write_and_commit_are_not_resent(tdb, sim):
    sim.faults.fail_next("POST", r"^/v1/query$", drop=True, after_effect=True)
    with pytest.raises(ConnectionFailed):
        await tdb.one_shot_query("social", "insert $x isa person;", "write")
    assert len(sim.requests_to("POST", r"^/v1/query$")) == 1
    assert sim.database("social").writes == ["insert $x isa person;"]
    tx = await tdb.open_transaction("social", "write")
    sim.faults.fail_next("POST", r"/commit$", status=500)
    with pytest.raises(ServerError):
        await tdb.commit(tx)
    assert len(sim.requests_to("POST", r"/commit$")) == 1


async def test_reads_are_retried_after_faults(tdb, sim):
    sim.faults.fail_next("GET", r"^/v1/databases$", status=503, times=2)
    assert len(await tdb.list_databases()) == 2
    sim.faults.fail_next("GET", r"/schema$", drop=True)
    assert (await tdb.schema("social")).startswith("define")
    assert len(sim.requests_to("GET", r"^/v1/databases$")) == 3


async def test_connection_refused_is_clear():
    client = TypeDBClient(
        "typedb",
        "http://127.0.0.1:9",
        SecretStr(USER),
        SecretStr(PASSWORD),
        retry=FAST_RETRY,
        timeout=2.0,
    )
    try:
        with pytest.raises(ConnectionFailed) as info:
            await client.list_databases()
        assert info.value.outcome == "not done" and "could not connect" in str(info.value)
    finally:
        await client.aclose()


# ---- secrets --------------------------------------------------------------------------------


async def test_passwords_never_in_logs_errors_or_request_log(sim, clock, caplog):
    calls: list[CallRecord] = []
    caplog.set_level(logging.DEBUG)
    client = make_client(sim, clock, on_call=calls.append)
    errors: list[str] = []
    try:
        await client.create_user("carol", SecretStr(NEW_PASSWORD))
        try:
            await client.create_user("carol", SecretStr(NEW_PASSWORD))
        except BadRequest as exc:
            errors.append(str(exc) + repr(exc.__dict__))
        sim.faults.fail_next("PUT", r"^/v1/users/carol$", status=500)
        try:
            await client.update_password("carol", SecretStr(NEW_PASSWORD))
        except ServerError as exc:
            errors.append(str(exc) + repr(exc.__dict__))
    finally:
        await client.aclose()
    assert len(errors) == 2
    assert [c.method for c in calls][:2] == ["POST", "POST"]
    logged = repr([r.body for r in sim.requests])
    assert REDACTED in logged
    everything = caplog.text + repr(calls) + "".join(errors) + logged + repr(client)
    for secret in (PASSWORD, NEW_PASSWORD, client.auth.current or ""):
        assert secret and secret not in everything


# ---- resolver adapter and rendering ------------------------------------------------------------


async def test_environment_adapter(tdb, sim):
    (env,) = await tdb.environments()
    assert (env.id, env.name, env.label, env.type) == ("typedb", "typedb", "typedb", None)
    dbs = await tdb.databases(env.id)
    assert [(d.id, d.name, d.status.state) for d in dbs] == [
        ("social", "social", "available"),
        ("inventory", "inventory", "available"),
    ]
    assert (dbs[0].plan, dbs[0].version, dbs[0].domain_name) == (None, None, None)
    with pytest.raises(NotFound):
        await tdb.databases("production")


async def test_generic_resolver_finds_typedb_databases(tdb):
    provider = Provider(name="typedb", kind="typedb", client=tdb)
    resolver = Resolver()
    (env,) = await resolver.environments(provider)
    names = [d.name for d in await resolver.databases(provider, env.id)]
    assert names == ["social", "inventory"]


def test_rows_to_table_on_the_seed_example():
    answers = [
        {
            "data": {
                "entity": {
                    "kind": "entity",
                    "iid": "0x1e00000000000000000001",
                    "type": {"kind": "entityType", "label": "person"},
                },
                "role-type": {"kind": "roleType", "label": "parentship:parent"},
                "attribute-type": {
                    "kind": "attributeType",
                    "label": "name",
                    "valueType": "string",
                },
                "value": {"kind": "value", "value": "John", "valueType": "string"},
                "attribute": {
                    "kind": "attribute",
                    "value": "John",
                    "valueType": "string",
                    "type": {"kind": "attributeType", "label": "name", "valueType": "string"},
                },
            }
        },
        {"data": {"value": {"kind": "value", "value": True, "valueType": "boolean"}}},
        {"extra": {"kind": "value", "value": 1.5}},
    ]
    columns, rows = rows_to_table(answers)
    assert columns == ["entity", "role-type", "attribute-type", "value", "attribute", "extra"]
    assert rows[0] == [
        "person:0x1e00000000000000000001",
        "parentship:parent",
        "name",
        "John",
        "John",
        "",
    ]
    assert rows[1] == ["", "", "", "true", "", ""]
    assert rows[2] == ["", "", "", "", "", "1.5"]
    assert rows_to_table([]) == ([], [])
