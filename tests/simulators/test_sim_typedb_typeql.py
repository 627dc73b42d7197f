"""The TypeDB simulator answers from its data: a small real TypeQL subset over HTTP
(what is inserted can be read back, a typo is an error, not three persons)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from simulators.typedb import SIGNIN_PATH, TypeDBSimulator


@pytest.fixture
async def db() -> AsyncIterator[httpx.AsyncClient]:
    sim = TypeDBSimulator()
    await sim.start()
    async with httpx.AsyncClient(base_url=sim.base_url, timeout=5) as client:
        token = await client.post(SIGNIN_PATH, json={"username": "admin", "password": "password"})
        client.headers["Authorization"] = f"Bearer {token.json()['token']}"
        try:
            yield client
        finally:
            await sim.stop()


async def one_shot(
    client: httpx.AsyncClient, query: str, kind: str = "read", database: str = "social"
) -> httpx.Response:
    return await client.post(
        "/v1/query",
        json={"databaseName": database, "transactionType": kind, "query": query},
    )


async def answers(client: httpx.AsyncClient, query: str, kind: str = "read") -> list[Any]:
    response = await one_shot(client, query, kind)
    assert response.status_code == 200, response.text
    return response.json()["answers"] or []


def names(rows: list[Any], var: str = "n") -> list[Any]:
    return [row["data"][var]["value"] for row in rows]


async def test_match_filters_by_type_attribute_and_comparison(db):
    rows = await answers(db, "match $p isa person, has name $n, has age $a; $a >= 18;")
    assert names(rows) == ["Alice", "Bob"]
    first = rows[0]["data"]
    assert first["p"]["kind"] == "entity" and first["p"]["type"]["label"] == "person"
    assert first["a"] == {
        "kind": "attribute",
        "value": 34,
        "valueType": "integer",
        "type": {"kind": "attributeType", "label": "age", "valueType": "integer"},
    }
    assert names(await answers(db, "match $p isa person, has name 'Carol', has name $n;")) == [
        "Carol"
    ]
    assert len(await answers(db, "match $p isa person; limit 2;")) == 2


async def test_a_typo_is_an_error_not_three_persons(db):
    for query, code, words in (
        ("match $c isa company;", "QRY3", "no type 'company'"),
        ("match $p isa persn;", "QRY3", "no type 'persn'"),
        ("match $p isa person, has nmae $n;", "QRY3", "no attribute type 'nmae'"),
        ("match $p isa person", "QRY1", "expected"),
        ("select everything from people", "QRY1", "not a stage"),
    ):
        response = await one_shot(db, query)
        assert response.status_code == 400, query
        assert response.json()["code"] == code and words in response.json()["message"], query


async def test_inserted_data_is_read_back_and_deleted(db):
    inserted = await answers(db, 'insert $p isa person, has name "Erin", has age 41;', "write")
    assert inserted[0]["data"]["p"]["type"]["label"] == "person"
    assert "Erin" in names(await answers(db, "match $p isa person, has name $n;"))
    docs = await answers(db, "match $p isa person, has name 'Erin'; fetch { $p.* };")
    assert docs == [{"name": "Erin", "age": 41}]
    await answers(db, "match $p isa person, has name 'Erin'; insert $p has age 42;", "write")
    docs = await answers(db, "match $p isa person, has name 'Erin'; fetch { 'ages': { $p.* } };")
    assert docs == [{"ages": {"name": "Erin", "age": [41, 42]}}]
    deleted = await one_shot(db, "match $p isa person, has name 'Erin'; delete $p;", "write")
    assert deleted.json()["answerType"] == "ok"
    assert "Erin" not in names(await answers(db, "match $p isa person, has name $n;"))


async def test_delete_an_attribute_and_value_types_are_checked(db):
    await answers(
        db, "match $p isa person, has name 'Bob', has age $a; delete has $a of $p;", "write"
    )
    docs = await answers(db, "match $p isa person, has name 'Bob'; fetch { 'age': $p.age };")
    assert docs == [{"age": None}]
    wrong = await one_shot(db, "insert $p isa person, has age 'old';", "write")
    assert wrong.status_code == 400 and "holds integer values" in wrong.json()["message"]


async def test_a_new_type_is_usable_after_its_define_is_committed(db):
    missing = await one_shot(db, "insert $c isa company, has name 'Acme';", "write")
    assert missing.json()["code"] == "QRY3"
    schema = await one_shot(db, "define entity company, owns name;", "schema")
    assert schema.status_code == 200
    await answers(db, "insert $c isa company, has name 'Acme';", "write")
    assert names(await answers(db, "match $c isa company, has name $n;")) == ["Acme"]
    assert names(await answers(db, "match $p isa person, has name $n;")) == [
        "Alice",
        "Bob",
        "Carol",
    ]


async def test_uncommitted_writes_stay_in_their_transaction(db):
    opened = await db.post(
        "/v1/transactions/open", json={"databaseName": "social", "transactionType": "write"}
    )
    tx = opened.json()["transactionId"]

    async def in_tx(query: str) -> Any:
        return (await db.post(f"/v1/transactions/{tx}/query", json={"query": query})).json()

    await in_tx("insert $p isa person, has name 'Finn';")
    assert "Finn" in names((await in_tx("match $p isa person, has name $n;"))["answers"])
    assert "Finn" not in names(await answers(db, "match $p isa person, has name $n;"))
    assert (await db.post(f"/v1/transactions/{tx}/rollback")).status_code == 200
    assert "Finn" not in names((await in_tx("match $p isa person, has name $n;"))["answers"])
    await in_tx("insert $p isa person, has name 'Gus';")
    assert (await db.post(f"/v1/transactions/{tx}/commit")).status_code == 200
    assert "Gus" in names(await answers(db, "match $p isa person, has name $n;"))


async def test_a_failed_write_changes_nothing(db):
    bad = await one_shot(
        db, "insert $p isa person, has name 'Hal'; $q isa person, has age 'x';", "write"
    )
    assert bad.status_code == 400
    assert "Hal" not in names(await answers(db, "match $p isa person, has name $n;"))
