"""Catalogs and snapshot sizes are shown from the fields the answer has, whatever they are called.

No document gives the shape of a catalog entry or of a snapshot, so the simulator's
guess is only one of them: each test also serves other plausible keys.
"""

from __future__ import annotations

from typing import Any

import pytest

from core.invocation import Invocation
from core.reply import Reply


async def run(bot, line: str) -> Reply:  # type: ignore[no-untyped-def]
    return await bot.run(Invocation(user="U0ALICE", channel="C0DEV", text=line))


def serve(console_sim, path: str, body: Any) -> None:  # type: ignore[no-untyped-def]
    console_sim.faults.fail_next("GET", path, status=200, body=body, times=10)


@pytest.mark.parametrize(
    ("verb", "body", "columns", "first"),
    [
        (  # the simulator's guess: the plan's name is its id
            "plans",
            None,
            ["Provider", "name", "memoryGb", "storageGb"],
            ["console", "ds1", "1", "10"],
        ),
        (  # an id beside a display name: the id `create plan=` takes comes first
            "plans",
            [{"displayName": "DS1", "ramGb": 1, "id": "ds1", "name": "DS1"}],
            ["Provider", "id", "name", "displayName", "ramGb"],
            ["console", "ds1", "DS1", "DS1", "1"],
        ),
        (
            "versions",
            {"versions": [{"edition": "enterprise", "version": "5.26.1", "lts": True}]},
            ["Provider", "version", "edition", "lts"],
            ["console", "5.26.1", "enterprise", "true"],
        ),
        (
            "regions",
            [{"displayName": "Frankfurt", "code": "eu-central-1", "provider": {"name": "aws"}}],
            ["Provider", "code", "displayName", "provider"],
            ["console", "eu-central-1", "Frankfurt", '{"name":"aws"}'],
        ),
        ("versions", ["5.24.0", "4.4.16"], ["Provider", "id"], ["console", "5.24.0"]),
    ],
    ids=["guess", "id-and-name", "version-key", "code", "bare"],
)
async def test_a_catalog_table_has_the_fields_the_entries_have(
    bot, console_sim, verb, body, columns, first
):
    if body is not None:
        serve(console_sim, f"/deployments/{verb}$", body)
    reply = await run(bot, verb)
    assert reply.status == "ok", reply.text
    (table,) = reply.tables
    assert table.columns == columns
    assert table.rows[0] == first
    assert all(cell not in ("", "None") for row in table.rows for cell in row)


async def test_entries_with_different_fields_read_dash_where_one_lacks_it(bot, console_sim):
    serve(console_sim, "/deployments/plans$", [{"id": "ds1"}, {"id": "ds2", "memoryGb": 2}])
    (table,) = (await run(bot, "plans")).tables
    assert table.rows == [["console", "ds1", "-"], ["console", "ds2", "2"]]


async def test_snapshot_size_is_what_the_answer_has(bot, console_sim):
    serve(
        console_sim,
        r"/snapshots/manual$",
        [
            {"id": "snap-size", "size": 123_456_789},
            {"id": "snap-bytes", "sizeBytes": "2000000"},
            {"id": "snap-current", "currentSize": 0},
            {"id": "snap-text", "size": "1.2 GB"},
            {"id": "snap-none"},
        ],
    )
    reply = await run(bot, "snapshots sandbox-db")
    sizes = {row[0]: row[3] for row in reply.tables[0].rows}
    assert sizes == {
        "snap-size": "123.5 MB",
        "snap-bytes": "2.0 MB",
        "snap-current": "0.0 MB",
        "snap-text": "1.2 GB",
        "snap-none": "unknown",
    }
