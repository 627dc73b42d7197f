"""Inbox rows written before the acks, a moment's requests in one transaction
(bot/slack/intake.py). Real SQLite files; the lock is held by a real second process."""

from __future__ import annotations

import asyncio
from pathlib import Path

import sqlite_utils

from bot.slack.intake import Intake
from bot.store import open_database
from operations.inbox import Inbox, spool_path
from tests.bot.slack.test_slack_store import LockHolder


def _statements(db: sqlite_utils.Database) -> list[str]:
    seen: list[str] = []
    db.conn.set_trace_callback(lambda sql: seen.append(sql.split()[0].upper()))
    return seen


def _texts(db: sqlite_utils.Database) -> list[str]:
    return [row[0] for row in db.execute("SELECT text FROM accepted_requests ORDER BY id")]


async def test_the_requests_of_one_moment_share_one_commit(tmp_path: Path) -> None:
    db = open_database(tmp_path / "bot.sqlite3")
    intake = Intake(Inbox(db))
    seen = _statements(db)
    lines = [f"show db-{i}" for i in range(5)]
    rows = await asyncio.gather(
        *(
            intake.keep("U0ALICE", "C0DEV", line, f"https://hooks/{i}")
            for i, line in enumerate(lines)
        )
    )
    assert seen.count("COMMIT") == 1 and seen.count("INSERT") == 5
    assert rows == sorted(rows) and len(set(rows)) == 5  # each its own row, in order
    assert _texts(db) == lines
    # a request of a later moment gets its own write
    assert await intake.keep("U0BOB", "C0DEV", "list", None) == rows[-1] + 1
    assert seen.count("COMMIT") == 2


async def test_a_locked_store_keeps_nothing_and_says_so_to_every_request(
    tmp_path: Path,
) -> None:
    path = tmp_path / "bot.sqlite3"
    db = open_database(path)
    intake = Intake(Inbox(db))
    holder = LockHolder(str(path))
    try:
        await holder.locked()
        rows = await asyncio.gather(
            intake.keep("U0ALICE", "C0DEV", "list", None),
            intake.keep("U0BOB", "C0DEV", "show sandbox-db", None),
        )
        assert holder.holding(), "the write waited for the other process's lock"
        assert rows == [None, None]
    finally:
        await holder.release()
    assert _texts(db) == []  # all or nothing: no half-written moment
    assert not db.conn.in_transaction
    assert await intake.keep("U0ALICE", "C0DEV", "list", None) is not None  # free again


async def test_with_a_spool_a_locked_store_spools_the_requests_before_their_acks(
    tmp_path: Path,
) -> None:
    path = tmp_path / "bot.sqlite3"
    db = open_database(path)
    intake = Intake(Inbox(db, spool=spool_path(path)))
    holder = LockHolder(str(path))
    try:
        await holder.locked()
        kept = await asyncio.gather(
            intake.keep("U0ALICE", "C0DEV", "list", None),
            intake.keep("U0BOB", "C0DEV", "show sandbox-db", None),
        )
        assert holder.holding()
        assert all(isinstance(key, str) for key in kept)  # spool keys, not row ids
        spooled = Path(f"{path}.inbox-spool").read_text()
        assert all(key in spooled for key in kept) and "show sandbox-db" in spooled
    finally:
        await holder.release()
    assert _texts(db) == []


async def test_a_request_cancelled_while_waiting_neither_loses_nor_blocks_the_others(
    tmp_path: Path,
) -> None:
    db = open_database(tmp_path / "bot.sqlite3")
    intake = Intake(Inbox(db))
    first = asyncio.ensure_future(intake.keep("U0ALICE", "C0DEV", "list", None))
    second = asyncio.ensure_future(intake.keep("U0BOB", "C0DEV", "envs", None))
    await asyncio.sleep(0)  # both queued
    first.cancel()
    assert await second is not None
    assert _texts(db) == ["list", "envs"]  # the cancelled one is kept: a restart answers it


async def test_an_unexpected_failure_leaves_no_listener_waiting(tmp_path: Path) -> None:
    db = open_database(tmp_path / "bot.sqlite3")
    inbox = Inbox(db)
    intake = Intake(inbox)

    def broken(requests: object) -> list[int]:
        raise RuntimeError("a bug, not the store")

    inbox.accept_many = broken  # type: ignore[method-assign]
    rows = await asyncio.wait_for(
        asyncio.gather(
            intake.keep("U0ALICE", "C0DEV", "list", None),
            intake.keep("U0BOB", "C0DEV", "envs", None),
        ),
        timeout=10,
    )
    assert rows == [None, None]  # kept later by the caller, as with a locked store
