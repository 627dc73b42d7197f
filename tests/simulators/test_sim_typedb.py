"""TypeDBSimulator over real loopback sockets: auth, users, databases, schema,
transactions, queries, timeouts, schema lock, faults."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from simulators.base import REDACTED, ManualClock
from simulators.typedb import SIGNIN_PATH, TypeDBSimulator, limit_warning

ADMIN = {"username": "admin", "password": "password"}


@pytest.fixture
async def tsim(clock: ManualClock) -> AsyncIterator[TypeDBSimulator]:
    s = TypeDBSimulator(token_ttl=600)
    s.clock = clock
    await s.start()
    try:
        yield s
    finally:
        await s.stop()


@pytest.fixture
async def anon(tsim: TypeDBSimulator) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=tsim.base_url, timeout=5) as c:
        yield c


async def signed_in(base_url: str, creds: dict[str, str]) -> httpx.AsyncClient:
    c = httpx.AsyncClient(base_url=base_url, timeout=5)
    r = await c.post(SIGNIN_PATH, json=creds)
    assert r.status_code == 200, r.text
    c.headers["Authorization"] = f"Bearer {r.json()['token']}"
    return c


@pytest.fixture
async def admin(tsim: TypeDBSimulator) -> AsyncIterator[httpx.AsyncClient]:
    c = await signed_in(tsim.base_url, ADMIN)
    try:
        yield c
    finally:
        await c.aclose()


@pytest.fixture
async def alice(tsim: TypeDBSimulator) -> AsyncIterator[httpx.AsyncClient]:
    tsim.add_user("alice", "alice-pw")
    c = await signed_in(tsim.base_url, {"username": "alice", "password": "alice-pw"})
    try:
        yield c
    finally:
        await c.aclose()


def assert_error(r: httpx.Response, status: int, code: str) -> None:
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"code", "message"} and body["code"] == code and body["message"]


async def open_tx(c: httpx.AsyncClient, db: str, kind: str, **options: int) -> str:
    body: dict[str, Any] = {"databaseName": db, "transactionType": kind}
    if options:
        body["transactionOptions"] = options
    r = await c.post("/v1/transactions/open", json=body)
    assert r.status_code == 200, r.text
    return str(r.json()["transactionId"])


async def query(c: httpx.AsyncClient, tx: str, text: str, **options: Any) -> httpx.Response:
    body: dict[str, Any] = {"query": text}
    if options:
        body["queryOptions"] = options
    return await c.post(f"/v1/transactions/{tx}/query", json=body)


# ---- sign-in and tokens ---------------------------------------------------------


async def test_signin_gives_a_jwt_with_ttl_claims(anon, tsim):
    r = await anon.post(SIGNIN_PATH, json=ADMIN)
    assert r.status_code == 200
    token = r.json()["token"]
    _header, payload, _ = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    assert claims["sub"] == "admin" and claims["exp"] - claims["iat"] == 600
    assert tsim.tokens_issued == 1


async def test_signin_errors(anon):
    wrong = await anon.post(SIGNIN_PATH, json={"username": "admin", "password": "nope"})
    assert_error(wrong, 401, "AUT1")
    missing = await anon.post(SIGNIN_PATH, json={"username": "admin"})
    assert_error(missing, 400, "REQ1")
    not_json = await anon.post(SIGNIN_PATH, content=b"{oops")
    assert_error(not_json, 400, "REQ1")


async def test_signin_password_is_redacted_in_the_log(anon, tsim):
    await anon.post(SIGNIN_PATH, json=ADMIN)
    (logged,) = tsim.requests_to("POST", SIGNIN_PATH)
    assert logged.body == {"username": "admin", "password": REDACTED}
    assert "password" not in json.dumps(tsim.state_dump()).replace('"users"', "")


async def test_version_and_health_need_no_token(anon):
    r = await anon.get("/v1/version")
    assert r.json() == {"distribution": "TypeDB", "version": "3.2.0"}
    health = await anon.get("/health")
    assert health.status_code == 204 and health.content == b""


async def test_missing_bad_and_expired_tokens(anon, admin, tsim, clock):
    assert_error(await anon.get("/v1/databases"), 401, "AUT2")
    bad = await anon.get("/v1/databases", headers={"Authorization": "Bearer x.y.z"})
    assert_error(bad, 401, "AUT2")
    assert (await admin.get("/v1/databases")).status_code == 200
    clock.advance(601)
    assert_error(await admin.get("/v1/databases"), 401, "AUT3")


async def test_expire_tokens_admin_endpoint(anon, admin):
    r = await anon.post("/_sim/expire-tokens")
    assert r.json() == {"expired": 1}
    assert_error(await admin.get("/v1/databases"), 401, "AUT3")


# ---- databases and schema ------------------------------------------------------------


async def test_seeded_databases_and_lifecycle(admin):
    r = await admin.get("/v1/databases")
    assert r.json() == {"databases": [{"name": "social"}, {"name": "inventory"}]}
    assert (await admin.get("/v1/databases/social")).json() == {"name": "social"}
    assert_error(await admin.get("/v1/databases/nope"), 404, "DBE1")
    created = await admin.post("/v1/databases/orders")
    assert created.status_code == 200 and created.content == b""
    assert_error(await admin.post("/v1/databases/orders"), 400, "DBE2")
    assert_error(await admin.post("/v1/databases/bad%20name"), 400, "REQ1")
    assert (await admin.delete("/v1/databases/orders")).status_code == 200
    assert_error(await admin.delete("/v1/databases/orders"), 404, "DBE1")


async def test_schema_and_type_schema_are_json_strings(admin):
    schema = (await admin.get("/v1/databases/social/schema")).json()
    types = (await admin.get("/v1/databases/social/type-schema")).json()
    assert schema.startswith("define\n") and "entity person" in schema and "fun adults" in schema
    assert types.startswith("define\n") and "entity person" in types and "fun " not in types
    assert (await admin.get("/v1/databases/inventory/schema")).json() == ""
    assert (await admin.get("/v1/databases/inventory/type-schema")).json() == ""
    assert_error(await admin.get("/v1/databases/nope/schema"), 404, "DBE1")


# ---- users ----------------------------------------------------------------------------


async def test_admin_manages_users(admin, tsim):
    r = await admin.post("/v1/users/bob", json={"password": "bob-secret-1"})
    assert r.status_code == 200
    assert_error(await admin.post("/v1/users/bob", json={"password": "x"}), 400, "USR2")
    assert_error(await admin.post("/v1/users/carl", json={}), 400, "REQ1")
    users = (await admin.get("/v1/users")).json()["users"]
    assert {"username": "bob"} in users and {"username": "admin"} in users
    assert (await admin.get("/v1/users/bob")).json() == {"username": "bob"}
    assert (await admin.put("/v1/users/bob", json={"password": "bob-secret-2"})).status_code == 200
    assert (await admin.delete("/v1/users/bob")).status_code == 200
    assert_error(await admin.get("/v1/users/bob"), 404, "USR1")
    assert_error(await admin.delete("/v1/users/admin"), 400, "USR3")
    logged = json.dumps([r.body for r in tsim.requests])
    assert "bob-secret" not in logged and REDACTED in logged


async def test_non_admin_gets_403_on_user_endpoints(alice):
    assert_error(await alice.get("/v1/users"), 403, "AUT4")
    assert_error(await alice.get("/v1/users/alice"), 403, "AUT4")
    assert_error(await alice.post("/v1/users/x", json={"password": "p"}), 403, "AUT4")
    assert_error(await alice.put("/v1/users/alice", json={"password": "p"}), 403, "AUT4")
    assert_error(await alice.delete("/v1/users/alice"), 403, "AUT4")
    assert (await alice.get("/v1/databases")).status_code == 200


async def test_password_change_and_deletion_revoke_tokens(admin, alice):
    await admin.put("/v1/users/alice", json={"password": "new-pw"})
    assert_error(await alice.get("/v1/databases"), 401, "AUT2")
    fresh = await signed_in(str(admin.base_url), {"username": "alice", "password": "new-pw"})
    try:
        await admin.delete("/v1/users/alice")
        assert_error(await fresh.get("/v1/databases"), 401, "AUT2")
    finally:
        await fresh.aclose()


# ---- transactions and queries ---------------------------------------------------------


async def test_read_queries_give_rows_and_documents(admin):
    tx = await open_tx(admin, "social", "read")
    rows = (await query(admin, tx, "match $p isa person, has name $name;")).json()
    assert rows["queryType"] == "read" and rows["answerType"] == "conceptRows"
    assert len(rows["answers"]) == 3 and rows["warning"] is None
    first = rows["answers"][0]["data"]
    assert first["p"]["kind"] == "entity" and first["p"]["type"]["label"] == "person"
    assert first["name"]["value"] == "Alice"
    docs = (await query(admin, tx, "match $p isa person; fetch { 'name': $p.name };")).json()
    assert docs["answerType"] == "conceptDocuments"
    assert docs["answers"][0] == {"name": "Alice"}
    bare = (await query(admin, tx, "match $p isa person;", includeInstanceTypes=False)).json()
    assert "type" not in bare["answers"][0]["data"]["p"]
    assert (await admin.post(f"/v1/transactions/{tx}/close")).status_code == 200


async def test_answer_count_limit_cuts_with_a_warning(admin):
    tx = await open_tx(admin, "social", "read")
    r = (await query(admin, tx, "match $p isa person;", answerCountLimit=2)).json()
    assert len(r["answers"]) == 2 and r["warning"] == limit_warning(2)
    exact = (await query(admin, tx, "match $p isa person;", answerCountLimit=3)).json()
    assert len(exact["answers"]) == 3 and exact["warning"] is None
    assert_error(await query(admin, tx, "match $p isa person;", answerCountLimit=-1), 400, "REQ1")


async def test_no_match_answers_no_rows_and_an_unknown_type_is_an_error(admin):
    tx = await open_tx(admin, "social", "read")
    r = (await query(admin, tx, "match $x isa person, has name 'Nobody';")).json()
    assert r["answerType"] == "conceptRows" and r["answers"] == []
    assert_error(await query(admin, tx, "match $c isa company;"), 400, "QRY3")
    empty = await open_tx(admin, "inventory", "read")
    assert_error(await query(admin, empty, "match $x isa person;"), 400, "QRY3")


async def test_queries_must_fit_the_transaction_type(admin):
    read = await open_tx(admin, "social", "read")
    assert_error(await query(admin, read, "insert $p isa person;"), 400, "TXN4")
    assert_error(await query(admin, read, "match $p isa person; delete $p;"), 400, "TXN4")
    assert_error(await query(admin, read, "define entity car;"), 400, "TXN4")
    assert_error(await query(admin, read, "hello world"), 400, "QRY1")
    assert_error(await admin.post(f"/v1/transactions/{read}/commit"), 400, "TXN5")
    write = await open_tx(admin, "social", "write")
    assert_error(await query(admin, write, "define entity car;"), 400, "TXN4")


async def test_write_answers_inserted_rows_and_commit_keeps_them(admin, tsim):
    tx = await open_tx(admin, "social", "write")
    r = (await query(admin, tx, "insert $x isa person, has name 'Dan';")).json()
    assert r["queryType"] == "write" and r["answerType"] == "conceptRows"
    assert r["answers"][0]["data"]["x"]["type"]["label"] == "person"
    ok = (await query(admin, tx, "match $p isa person, has name 'Dan'; delete $p;")).json()
    assert ok["answerType"] == "ok"
    assert tsim.database("social").writes == []
    assert (await admin.post(f"/v1/transactions/{tx}/commit")).status_code == 200
    assert len(tsim.database("social").writes) == 2
    assert_error(await query(admin, tx, "match $p isa person;"), 404, "TXN1")


async def test_rollback_drops_changes_and_keeps_the_transaction(admin):
    tx = await open_tx(admin, "inventory", "schema")
    assert (await query(admin, tx, "define entity shelf;")).json()["answerType"] == "ok"
    assert (await admin.post(f"/v1/transactions/{tx}/rollback")).status_code == 200
    await query(admin, tx, "define\n  entity crate;")
    await admin.post(f"/v1/transactions/{tx}/commit")
    schema = (await admin.get("/v1/databases/inventory/schema")).json()
    assert schema == "define\n  entity crate;\n"


async def test_close_drops_schema_changes(admin):
    tx = await open_tx(admin, "social", "schema")
    await query(admin, tx, "define entity car;")
    await admin.post(f"/v1/transactions/{tx}/close")
    assert "entity car" not in (await admin.get("/v1/databases/social/schema")).json()
    assert_error(await admin.post(f"/v1/transactions/{tx}/close"), 404, "TXN1")


async def test_defined_function_goes_to_schema_only(admin):
    tx = await open_tx(admin, "inventory", "schema")
    await query(admin, tx, "define entity box;")
    await query(admin, tx, "define fun boxes() -> { box }: match $b isa box; return { $b };")
    await admin.post(f"/v1/transactions/{tx}/commit")
    schema = (await admin.get("/v1/databases/inventory/schema")).json()
    types = (await admin.get("/v1/databases/inventory/type-schema")).json()
    assert "fun boxes" in schema and "entity box" in schema
    assert types == "define\n  entity box;\n"


async def test_transaction_timeout_on_the_clock(admin, clock):
    tx = await open_tx(admin, "social", "read", transactionTimeoutMillis=1000)
    clock.advance(0.5)
    assert (await query(admin, tx, "match $p isa person;")).status_code == 200
    clock.advance(0.6)
    assert_error(await query(admin, tx, "match $p isa person;"), 408, "TXN2")
    assert_error(await admin.post(f"/v1/transactions/{tx}/commit"), 408, "TXN2")
    assert_error(await query(admin, "0" * 32, "match $p isa person;"), 404, "TXN1")


async def test_slow_query_past_the_deadline_answers_408(admin, tsim):
    tsim.query_seconds = 2.0
    tx = await open_tx(admin, "social", "write", transactionTimeoutMillis=3000)
    assert (await query(admin, tx, "match $p isa person;")).status_code == 200
    assert_error(await query(admin, tx, "insert $x isa person;"), 408, "QRY2")
    assert tsim.transactions == []


async def test_other_users_transactions_are_forbidden(admin, alice):
    tx = await open_tx(admin, "social", "read")
    assert_error(await query(alice, tx, "match $p isa person;"), 403, "AUT4")


async def test_open_validation(admin):
    r = await admin.post("/v1/transactions/open", json={"databaseName": "social"})
    assert_error(r, 400, "REQ1")
    bad_type = {"databaseName": "social", "transactionType": "admin"}
    assert_error(await admin.post("/v1/transactions/open", json=bad_type), 400, "REQ1")
    missing = {"databaseName": "nope", "transactionType": "read"}
    assert_error(await admin.post("/v1/transactions/open", json=missing), 404, "DBE1")
    bad_opt = {
        "databaseName": "social",
        "transactionType": "read",
        "transactionOptions": {"transactionTimeoutMillis": "soon"},
    }
    assert_error(await admin.post("/v1/transactions/open", json=bad_opt), 400, "REQ1")


async def test_deleting_a_database_closes_its_transactions(admin):
    await admin.post("/v1/databases/tmp")
    tx = await open_tx(admin, "tmp", "write")
    await admin.delete("/v1/databases/tmp")
    assert_error(await query(admin, tx, "match $x isa person;"), 404, "TXN1")


# ---- schema lock -------------------------------------------------------------------------


async def test_second_schema_transaction_times_out_on_the_lock(admin):
    await open_tx(admin, "social", "schema")
    body = {
        "databaseName": "social",
        "transactionType": "schema",
        "transactionOptions": {"schemaLockAcquireTimeoutMillis": 50},
    }
    assert_error(await admin.post("/v1/transactions/open", json=body), 408, "TXN3")
    # other databases and other transaction types are not blocked
    await open_tx(admin, "inventory", "schema", schemaLockAcquireTimeoutMillis=0)
    await open_tx(admin, "social", "write")


async def test_schema_lock_waiter_gets_it_when_the_holder_commits(admin):
    first = await open_tx(admin, "social", "schema")
    waiter = asyncio.create_task(
        open_tx(admin, "social", "schema", schemaLockAcquireTimeoutMillis=5000)
    )
    await asyncio.sleep(0.05)
    assert not waiter.done()
    await admin.post(f"/v1/transactions/{first}/commit")
    second = await asyncio.wait_for(waiter, 5)
    assert second != first


async def test_an_expired_schema_transaction_releases_the_lock(admin, clock):
    await open_tx(admin, "social", "schema", transactionTimeoutMillis=1000)
    clock.advance(2)
    await open_tx(admin, "social", "schema", schemaLockAcquireTimeoutMillis=0)


# ---- one-shot queries -------------------------------------------------------------------


async def test_one_shot_read_write_schema(admin, tsim):
    read = {"databaseName": "social", "transactionType": "read", "query": "match $p isa person;"}
    r = await admin.post("/v1/query", json=read)
    assert r.json()["answerType"] == "conceptRows" and len(r.json()["answers"]) == 3
    write = {"databaseName": "social", "transactionType": "write", "query": "insert $x isa person;"}
    assert (await admin.post("/v1/query", json={**write, "commit": False})).status_code == 200
    assert tsim.database("social").writes == []
    assert (await admin.post("/v1/query", json=write)).status_code == 200
    assert tsim.database("social").writes == ["insert $x isa person;"]
    schema = {"databaseName": "inventory", "transactionType": "schema", "query": "define entity a;"}
    assert (await admin.post("/v1/query", json=schema)).json()["queryType"] == "schema"
    assert "entity a" in (await admin.get("/v1/databases/inventory/schema")).json()
    assert tsim.transactions == []


async def test_one_shot_errors(admin, tsim):
    wrong = {"databaseName": "social", "transactionType": "read", "query": "insert $x isa a;"}
    assert_error(await admin.post("/v1/query", json=wrong), 400, "TXN4")
    assert_error(await admin.post("/v1/query", json={"databaseName": "social"}), 400, "REQ1")
    tsim.query_seconds = 5
    slow = {
        "databaseName": "social",
        "transactionType": "read",
        "query": "match $p isa person;",
        "transactionOptions": {"transactionTimeoutMillis": 1000},
    }
    assert_error(await admin.post("/v1/query", json=slow), 408, "QRY2")
    assert tsim.transactions == []


# ---- faults and admin ----------------------------------------------------------------------


async def test_injected_faults_use_typedb_error_bodies(admin, anon, tsim):
    r = await anon.post(
        "/_sim/faults",
        json={"fail_next": {"method": "GET", "path_regex": "^/v1/databases$", "status": 503}},
    )
    assert r.status_code == 200
    assert_error(await admin.get("/v1/databases"), 503, "SIM1")
    assert (await admin.get("/v1/databases")).status_code == 200
    r = await anon.post("/_sim/faults", json={"query_seconds": 1.5})
    assert r.status_code == 200 and tsim.query_seconds == 1.5
    assert (await anon.post("/_sim/faults", json={"query_seconds": -1})).status_code == 400


async def test_dropped_write_query_took_effect_but_got_no_answer(admin, tsim):
    tx = await open_tx(admin, "social", "write")
    tsim.faults.fail_next("POST", r"/query$", drop=True, after_effect=True)
    with pytest.raises(httpx.TransportError):
        await query(admin, tx, "insert $x isa person;")
    (logged,) = tsim.requests_to("POST", r"/query$")
    assert logged.status == 0
    assert tsim.transactions[0].pending_writes == ["insert $x isa person;"]


async def test_state_dump_shows_no_secrets(admin, anon, tsim):
    await open_tx(admin, "social", "read")
    state = (await anon.get("/_sim/state")).json()
    assert [d["name"] for d in state["databases"]] == ["social", "inventory"]
    assert state["users"] == ["admin"] and len(state["transactions"]) == 1
    assert state["tokensIssued"] == 1 and state["tokensActive"] == 1
    text = json.dumps(state)
    assert '"password"' not in text and admin.headers["Authorization"][7:] not in text
