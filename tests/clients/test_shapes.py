"""The one rule for answers (clients/shapes.py): aliases, times, and typed errors only.

The property tests feed every model arbitrary JSON: it either parses or raises
UnusableAnswer, never ValidationError, KeyError, TypeError or the like. The
client tests then show the same through real HTTP: a garbage body becomes a
typed error naming the field.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from clients import graphenedb as console_models
from clients import graphenedb_v1 as v1_models
from clients import typedb as typedb_models
from clients.errors import ApiError, UnusableAnswer
from clients.shapes import as_time, items, parse, parse_items

MODELS: list[type[BaseModel]] = [
    console_models.Environment,
    console_models.Status,
    console_models.Database,
    console_models.Snapshot,
    console_models.OperationStep,
    console_models.Operation,
    console_models.Catalog,
    console_models.Started,
    v1_models.V1Version,
    v1_models.V1Database,
    v1_models.V1Operation,
    v1_models.Accepted,
    v1_models.Backup,
    v1_models.BackupSchedule,
    v1_models.BackupPackage,
    v1_models.Export,
    typedb_models.ServerVersion,
    typedb_models.Database,
    typedb_models.User,
    typedb_models.QueryAnswer,
]

KEYS = st.sampled_from(
    [
        "id",
        "name",
        "label",
        "status",
        "state",
        "currentState",
        "steps",
        "events",
        "createdAt",
        "startedAt",
        "nextOperationId",
        "operationId",
        "operation",
        "database",
        "snapshot",
        "size",
        "sizeBytes",
        "currentSize",
        "grantType",
        "plan",
        "version",
        "error",
        "url",
        "backupUrl",
        "username",
        "answers",
        "lastHealthCheckStatus",
        "boltURL",
        "plugins",
    ]
)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20)
)
JSON = st.recursive(
    SCALARS,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(KEYS | st.text(max_size=8), children, max_size=6)
    ),
    max_leaves=25,
)


def _parses_or_typed_error(model: type[BaseModel], body: Any) -> None:
    try:
        parsed = parse(model, body, "thing 1", method="GET", path="/x", status=200)
    except UnusableAnswer as exc:
        assert exc.message.startswith("thing 1: ")
        exc.describe()  # renders without error
    else:
        assert isinstance(parsed, model)
        repr(parsed)  # every property-free field renders
        for name in ("steps", "done", "status", "error", "name", "domain_name", "has_steps"):
            if hasattr(type(parsed), name) or name in type(parsed).model_fields:
                getattr(parsed, name)


@pytest.mark.parametrize("model", MODELS, ids=lambda m: f"{m.__module__}.{m.__name__}")
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=JSON)
def test_every_model_parses_any_json_or_raises_the_typed_error(model, body):
    _parses_or_typed_error(model, body)


@pytest.mark.parametrize("model", MODELS, ids=lambda m: f"{m.__module__}.{m.__name__}")
@settings(max_examples=150, deadline=None)
@given(body=st.dictionaries(KEYS, JSON, max_size=8))
def test_every_model_parses_any_object_or_raises_the_typed_error(model, body):
    _parses_or_typed_error(model, body)


@settings(max_examples=200, deadline=None)
@given(body=JSON)
def test_collections_are_lists_or_the_typed_error(body):
    try:
        found = parse_items(console_models.Operation, body, "operations", "operations of x")
    except UnusableAnswer:
        return
    assert all(isinstance(op, console_models.Operation) for op in found)


# ---- the aliases the seeds and the observed shapes use ---------------------------------


def test_a_step_is_named_by_name_description_or_state():
    steps = parse(
        console_models.Operation,
        {
            "id": "op",
            "steps": [
                {"state": "provisioning", "createdAt": 1795997364},
                {"name": "copy", "status": "running"},
                {"description": "dns", "state": "finished"},
                "plain",
                {"status": "pending"},
            ],
        },
        "operation op",
    ).steps
    assert [(s.name, s.status) for s in steps] == [
        ("provisioning", None),
        ("copy", "running"),
        ("dns", "finished"),
        ("plain", None),
        ("step", "pending"),
    ]
    assert steps[0].created_at == "2026-11-30T00:09:24Z"
    assert [s.reached for s in steps] == [True, True, True, True, False]


@pytest.mark.parametrize("key", ["status", "currentState", "state"])
def test_operation_status_aliases(key):
    op = parse(console_models.Operation, {"id": 7, key: "Finished"}, "operation 7")
    assert op.id == "7" and op.status == "finished" and op.done


@pytest.mark.parametrize(("word", "means"), [("completed", "finished"), ("error", "failed")])
def test_status_synonyms_read_as_the_seeds_words(word, means):
    assert parse(console_models.Operation, {"id": "o", "status": word}, "o").status == means


def test_v1_operation_per_its_seed():
    op = parse(
        v1_models.V1Operation,
        {
            "id": "o1",
            "databaseId": "d1",
            "description": "restart database x",
            "stopped": True,
            "createdAt": "1795997364",
            "currentState": "started",
            "events": [{"state": "stopping-database", "createdAt": 1795997364}],
        },
        "operation o1",
    )
    assert op.stopped is True and op.status == "started" and not op.done
    assert [(s.name, s.status) for s in op.steps] == [("stopping-database", "running")]
    assert op.created_at == "2026-11-30T00:09:24Z"


@pytest.mark.parametrize("key", ["size", "sizeBytes", "currentSize"])
def test_snapshot_size_aliases(key):
    snap = parse(console_models.Snapshot, {"id": "s", key: "1048576"}, "snapshot s")
    assert snap.size_bytes == 1_048_576


@pytest.mark.parametrize("key", ["label", "name"])
def test_environment_name_aliases_and_grant_type(key):
    env = parse(
        console_models.Environment,
        {"id": "e1", key: "production", "grantType": "red", "cidr": "10.0.0.0/16"},
        "environment",
    )
    assert env.name == env.label == "production" and env.grant_type == env.type == "red"
    assert env.model_extra == {"cidr": "10.0.0.0/16"}  # unknown fields are kept


@pytest.mark.parametrize(
    ("value", "iso"),
    [
        (1795997364, "2026-11-30T00:09:24Z"),
        (1795997364000, "2026-11-30T00:09:24Z"),
        ("1795997364", "2026-11-30T00:09:24Z"),
        ("2026-11-30T00:09:24Z", "2026-11-30T00:09:24Z"),
        ("2026-11-30T01:09:24+01:00", "2026-11-30T00:09:24Z"),
        ("Mon, 30 Nov 2026 00:09:24 GMT", "2026-11-30T00:09:24Z"),
        ("last tuesday", "last tuesday"),
        ([1], None),
        (float("nan"), None),
    ],
)
def test_times_as_epoch_iso_or_rfc7231(value, iso):
    assert as_time(value) == iso


def test_a_database_with_text_status_and_no_name():
    db = parse(console_models.Database, {"id": "d1", "status": "paused", "plan": {"id": "ds1"}}, "")
    assert db.name == "d1" and db.status.state == "paused" and db.plan == "ds1"


def test_started_never_takes_a_database_id_for_an_operation_id():
    database = {"id": "db-1", "name": "new-db", "environmentId": "e"}
    started = parse(console_models.Started, {"database": database}, "create")
    assert started.operation_id is None and started.database and started.database.id == "db-1"
    assert parse(console_models.Started, database, "create").operation_id is None
    assert parse(v1_models.Accepted, database, "create").operation_id is None
    assert parse(v1_models.Accepted, database, "create").database is not None
    op = parse(console_models.Started, {"id": "op-9", "status": "started", "steps": []}, "x")
    assert op.operation_id == "op-9"


# ---- typed errors name the field -------------------------------------------------------


def test_a_missing_id_is_named():
    with pytest.raises(UnusableAnswer) as info:
        parse(console_models.Operation, {"status": "started"}, "operation 42")
    assert info.value.message == "operation 42: no `id` in the answer"


def test_a_list_where_an_object_was_expected_is_named():
    with pytest.raises(UnusableAnswer) as info:
        parse(console_models.Operation, [{"id": "x"}], "operation 42")
    assert info.value.message == "operation 42: the answer is a list, not an object"


def test_a_bad_item_of_a_collection_is_named():
    with pytest.raises(UnusableAnswer) as info:
        parse_items(console_models.Environment, [{"id": "a"}, {"label": "b"}], "x", "environments")
    assert info.value.message == "environments[1]: no `id` in the answer"


def test_collections_bare_wrapped_or_empty():
    assert items([1], "databases", "x") == [1]
    assert items({"databases": [2]}, "databases", "x") == [2]
    assert items({"data": [3], "total": 1}, "databases", "x") == [3]
    assert items({}, "databases", "x") == [] and items(None, "databases", "x") == []
    with pytest.raises(UnusableAnswer):
        items("nope", "databases", "x")
    with pytest.raises(UnusableAnswer):
        items({"databases": "nope"}, "databases", "x")


def test_an_accepted_mutation_with_an_unusable_answer_says_it_was_accepted():
    error = UnusableAnswer(
        "pause d1: the answer is a list, not an object",
        method="POST",
        path="/p",
        status=202,
        provider="console",
    )
    assert isinstance(error, ApiError)
    assert "accepted the request (HTTP 202)" in error.describe()
    assert "nothing was changed" not in error.describe()


# ---- through real HTTP -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        ({"text": "<html>oops</html>"}, "the answer was not JSON"),
        ({"body": ["not", "an", "object"]}, "the answer is a list, not an object"),
        ({"body": {"status": "started"}}, "no `id` in the answer"),
    ],
)
async def test_a_garbage_operation_answer_is_a_typed_error(console, console_sim, rule, expected):
    envs = await console.environments()
    db = next(d for d in await console.databases(envs[0].id) if d.status.state == "running")
    started = await console.pause(db.id)
    assert started.operation_id
    console_sim.faults.fail_next("GET", r"/operations(/[^/]+)?$", status=200, times=2, **rule)
    with pytest.raises(UnusableAnswer) as info:
        await console.operation(db.id, started.operation_id or "")
    assert expected in info.value.message and info.value.provider == "console"


async def test_a_garbage_listing_is_a_typed_error(console, console_sim):
    console_sim.faults.fail_next("GET", r"^/deployments/environments$", status=200, body=7)
    with pytest.raises(UnusableAnswer) as info:
        await console.environments()
    assert info.value.message == "environments: the answer is a number, not a list"
