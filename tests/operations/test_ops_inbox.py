"""The inbox keeps requests across a kill; what it keeps of their text is redacted."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from bot.store import open_database
from operations.inbox import Inbox, Request, spool_path
from permissions.approvals import this_runner

TOKEN = "xoxb-1234567890-abcdefghijkl"


def test_a_token_pasted_in_a_command_never_reaches_the_file(tmp_path: Path) -> None:
    path = tmp_path / "bot.sqlite3"
    db = open_database(path)
    inbox = Inbox(db)
    row = inbox.accept("U0ALICE", "C0DEV", f"list {TOKEN}", None)
    approve = inbox.accept("U0BOB", "C0DEV", "approve 7Hk2mQ9x", None)
    assert inbox.left_over() == []  # this process is alive: nothing is left over
    texts = [r[0] for r in db.execute("SELECT text FROM accepted_requests ORDER BY id")]
    assert texts == ["list [REDACTED]", "approve 7Hk2mQ9x"]  # an approval id stays readable
    inbox.done(row)
    inbox.done(approve)
    db.close()
    for part in (path, Path(f"{path}-wal")):
        if part.exists():
            assert TOKEN.encode() not in part.read_bytes(), part.name


# -- the spool: requests acked while another process held the store's lock ----------------

GONE = "999999999:1"  # a runner whose process is not running


def _spooled_inbox(tmp_path: Path) -> tuple[Inbox, Path]:
    path = tmp_path / "bot.sqlite3"
    spool = spool_path(path)
    assert spool is not None
    return Inbox(open_database(path), spool=spool), spool


def test_a_spooled_request_of_a_stopped_process_is_taken_up_once(tmp_path: Path) -> None:
    inbox, spool = _spooled_inbox(tmp_path)
    keys = inbox.spool_many(
        [
            Request("U0ALICE", "C0DEV", f"list {TOKEN}", None),
            Request("U0BOB", "C0DEV", "envs", "https://r"),
        ]
    )
    assert keys is not None and len(set(keys)) == 2
    assert spool.stat().st_mode & 0o777 == 0o600
    assert TOKEN not in spool.read_text()  # redacted before it reaches the disk
    assert inbox.left_over() == []  # this process is alive: its entries are its own
    _as_gone(inbox, spool)
    with spool.open("a") as out:
        out.write('{"key": "torn", "user": "U0')  # a write cut by a kill
    # the first entry's row was written, and the kill came before its entry was dropped
    inbox.accept_many([Request("U0ALICE", "C0DEV", "list", None)], keys[0])
    inbox.db.execute("UPDATE accepted_requests SET runner = ?", [GONE])
    left = inbox.left_over()
    assert [(r.user, r.text, r.response_url) for r in left] == [
        ("U0ALICE", "list", None),
        ("U0BOB", "envs", "https://r"),
    ]
    assert not spool.exists()  # taken: dropped from the spool
    assert len(inbox.left_over()) == 2  # and never added twice


def test_a_row_written_later_drops_its_spool_entry(tmp_path: Path) -> None:
    inbox, spool = _spooled_inbox(tmp_path)
    keys = inbox.spool_many(
        [Request("U0ALICE", "C0DEV", "list", None), Request("U0BOB", "C0DEV", "envs", None)]
    )
    assert keys is not None
    inbox.accept("U0ALICE", "C0DEV", "list", None, spool_key=keys[0])
    assert keys[0] not in spool.read_text() and keys[1] in spool.read_text()
    inbox.unspool([keys[1]])
    assert not spool.exists()
    assert (
        Inbox(inbox.db).spool_many([Request("U0ALICE", "C0DEV", "list", None)]) is None
    )  # no file


def _entry(key: str, **changes: object) -> dict[str, object]:
    return {
        "key": key,
        "user": "U0ALICE",
        "channel": "C0DEV",
        "text": f"show {key}",
        "response_url": None,
        "received_at": 1_700_000_000.0,
        "runner": GONE,
        **changes,
    }


def _signed(inbox: Inbox, entry: object) -> str:
    """A spool line as graphops writes it (signed with the store's key); text as is."""
    return json.dumps(inbox._signed(entry)) if isinstance(entry, dict) else str(entry)


def _as_gone(inbox: Inbox, spool: Path) -> None:
    """Rewrite the spool as if this process had stopped (its lines signed again)."""
    entries = [json.loads(line) for line in spool.read_text().splitlines()]
    for entry in entries:
        entry.pop("mac")
        if entry.get("runner") == this_runner():
            entry["runner"] = GONE
    spool.write_text("".join(_signed(inbox, entry) + "\n" for entry in entries))


def test_the_thread_of_a_request_is_kept_in_the_table_and_the_spool(tmp_path: Path) -> None:
    """A mention is answered in its thread after a restart: the thread is kept with the
    request, whether its row was written or it was spooled; a spool line written before
    it was kept (no `thread_ts`) is still taken up; a malformed one is not."""
    inbox, spool = _spooled_inbox(tmp_path)
    inbox.accept("U0ALICE", "C0DEV", "list", None, thread_ts="1700000000.000100")
    inbox.spool_many([Request("U0BOB", "C0DEV", "envs", None, "1700000000.000200")])
    inbox.spool_many([Request("U0CAROL", "C0DEV", "list", None)])
    _as_gone(inbox, spool)
    bob, carol = [json.loads(line) for line in spool.read_text().splitlines()]
    bob.pop("mac"), carol.pop("mac"), carol.pop("thread_ts")  # carol's: an older line
    forged = {**bob, "key": "x1", "thread_ts": "not a ts"}
    spool.write_text("".join(_signed(inbox, e) + "\n" for e in (bob, carol, forged)))
    inbox.db.execute("UPDATE accepted_requests SET runner = ?", [GONE])
    assert [(r.user, r.thread_ts) for r in inbox.left_over()] == [
        ("U0ALICE", "1700000000.000100"),
        ("U0BOB", "1700000000.000200"),
        ("U0CAROL", None),
    ]


def test_a_bad_spool_line_is_skipped_and_the_others_are_taken_up(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    inbox, spool = _spooled_inbox(tmp_path)
    bad: list[object] = [
        _entry("b1", received_at="yesterday"),
        _entry("b2", received_at=float("nan")),
        _entry("b3", received_at=1e308),
        _entry("b4", user=123),
        _entry("b5", channel=True),
        _entry("b6", text={"a": 1}),
        _entry("b7", response_url="file:///etc/passwd"),
        _entry("b8", user="U0ALICE; DROP"),
        "[1, 2]",
        "not json",
        # each of these stopped `serve` at every start (RecursionError, OverflowError in
        # os.kill, UnicodeEncodeError in SQLite), found by an attack:
        "[" * 100_000 + "]" * 100_000,
        '{"key": ' + "[" * 50_000 + "]" * 50_000 + "}",
        _entry("b9", runner="99999999999999999999999:1"),
        _entry("b10", runner="-1:0"),
        _entry("b11", runner="0:0"),
        _entry("b12", text="show \ud800"),
        _entry("k\udfff"),
        _entry("b14", response_url="https://x/\udc80"),
        {"key": "m1", "done": "1"},
        {"key": "m2", "done": 10**30},
        {"key": "m3", "done": True},
        {"key": "m4", "answered": 1, "reply": 5},
        # lines graphops did not write (found by an attack: a forged line made the bot
        # post to any URL, DM anyone, or drop a real request unanswered):
        json.dumps(_entry("f1", response_url="http://127.0.0.1:9/forged")),
        json.dumps({**_entry("f2"), "mac": "0" * 64}),
        _signed(inbox, _entry("f3")).replace("show f3", "terminate f3"),
        json.dumps({"key": "f4", "done": 1}),
    ]
    no_url = _entry("g3")
    del no_url["response_url"]  # a line without one is still well-formed
    good = [_entry("g1"), no_url, _entry("g2", response_url="https://hooks.slack.com/x")]
    lines = [good[0], *bad, good[1], good[2]]
    spool.write_text("\n".join(_signed(inbox, line) for line in lines) + "\n")
    assert [r.text for r in inbox.left_over()] == ["show g1", "show g3", "show g2"]
    assert not spool.exists()  # the good ones taken, the bad ones never will be
    assert f"{len(bad)} line(s) of" in caplog.text  # said, not dropped silently


def test_a_forged_line_is_dropped_with_the_next_rewrite(tmp_path: Path) -> None:
    """A forged line naming a live process would otherwise stay in the spool for good."""
    inbox, spool = _spooled_inbox(tmp_path)
    [key] = inbox.spool_many([Request("U0ALICE", "C0DEV", "list", None)]) or []
    with spool.open("a") as out:
        out.write(json.dumps(_entry("forged", runner=this_runner())) + "\n")
    inbox.unspool([key])
    assert not spool.exists()


def test_a_spool_path_that_is_not_a_file_neither_blocks_nor_stops_a_start(tmp_path: Path) -> None:
    inbox, spool = _spooled_inbox(tmp_path)
    assert inbox.spool_problem() is None
    spool.mkdir()
    assert "is not a regular file" in (inbox.spool_problem() or "")  # serve logs it
    assert inbox.left_over() == []
    with pytest.raises(OSError):
        inbox.spool_many([Request("U0ALICE", "C0DEV", "list", None)])
    spool.rmdir()
    os.mkfifo(spool)  # reading a FIFO with no writer would block forever
    assert inbox.left_over() == []
    with pytest.raises(OSError):
        inbox.spool_many([Request("U0ALICE", "C0DEV", "list", None)])


def test_an_answered_request_whose_entry_stayed_is_never_answered_again(tmp_path: Path) -> None:
    inbox, spool = _spooled_inbox(tmp_path)
    [key] = inbox.spool_many([Request("U0ALICE", "C0DEV", "list", None)]) or []
    row = inbox.accept_many([Request("U0ALICE", "C0DEV", "list", None)], key)[0]
    inbox.done_but_spooled(row)  # answered; dropping its entry failed (a full disk)
    _as_gone(inbox, spool)
    inbox.db.execute("UPDATE accepted_requests SET runner = ?", [GONE])
    assert inbox.left_over() == []  # not "nothing was done" for what was done
    assert not spool.exists()
    assert inbox.left_over() == [] and inbox.pending() == 0  # and the row goes too


def test_a_row_marked_answered_in_the_spool_is_never_answered_again(tmp_path: Path) -> None:
    """An answer was delivered while the store was locked: its row could not be deleted,
    so a mark went to the spool; a kill then leaves the row, and the next start deletes
    it instead of answering the request a second time."""
    inbox, spool = _spooled_inbox(tmp_path)
    row = inbox.accept("U0ALICE", "C0DEV", "list", None)
    other = inbox.accept("U0BOB", "C0DEV", "show sandbox-db", None)
    [mark] = inbox.spool_done([row]) or []
    inbox.db.execute("UPDATE accepted_requests SET runner = ?", [GONE])  # killed
    restarted = Inbox(inbox.db, spool=spool)
    assert [r.id for r in restarted.left_over()] == [other]  # only the unanswered one
    assert not spool.exists() and restarted.pending() == 1
    inbox.unspool([mark])  # the old process's late cleanup finds nothing to drop


def test_marks_and_requests_share_the_spool(tmp_path: Path) -> None:
    inbox, spool = _spooled_inbox(tmp_path)
    [key] = inbox.spool_many([Request("U0ALICE", "C0DEV", "list", None)]) or []
    row = inbox.accept("U0BOB", "C0DEV", "envs", None)
    [mark] = inbox.spool_done([row]) or []
    assert inbox.spool_done([row + 1000]) == []  # no such row: nothing to mark
    inbox.unspool([key])
    assert [json.loads(line)["key"] for line in spool.read_text().splitlines()] == [mark]
    inbox.unspool([mark])
    assert not spool.exists()


def test_a_mark_moved_into_a_copy_of_the_store_changes_nothing_there(tmp_path: Path) -> None:
    """Found by an attack: a backup copy shares the spool key and the row numbers; an
    "answered" mark of Bob's `list` in the live store, copied into the copy's spool,
    delivered Bob's production table as the answer to Alice's request of the same
    row number. A mark names whose request it is."""
    import shutil

    live, live_spool = _spooled_inbox(tmp_path)
    copy_path = tmp_path / "copy.sqlite3"
    live.db.execute("SELECT 1")  # the copy is made before either takes a request
    shutil.copy(tmp_path / "bot.sqlite3", copy_path)
    for suffix in ("-wal", "-shm"):
        if Path(f"{tmp_path / 'bot.sqlite3'}{suffix}").exists():
            shutil.copy(f"{tmp_path / 'bot.sqlite3'}{suffix}", f"{copy_path}{suffix}")
    copy_spool = spool_path(copy_path)
    assert copy_spool is not None
    copy = Inbox(open_database(copy_path), spool=copy_spool)
    bob = live.accept("U0BOB", "C0PROD", "list", None)
    alice = copy.accept("U0ALICE", "C0DEV", "show sandbox-db", None)
    assert bob == alice  # the same row number in both
    live.spool_answered(bob, '{"status": "ok", "title": "production databases"}')
    live.spool_done([bob])
    copy_spool.write_bytes(live_spool.read_bytes())  # genuine lines, the wrong store
    copy.db.execute("UPDATE accepted_requests SET runner = ?", [GONE])
    [left] = Inbox(copy.db, spool=copy_spool).left_over()
    assert (left.user, left.stage, left.reply) == ("U0ALICE", "accepted", None)


def test_the_provider_of_a_request_kept_as_sent_is_read_back() -> None:
    """Recovery names the verbs that check an unknown outcome on that provider (a TypeDB
    server or not) from the line `mark_sent` kept: written and read in one module."""
    from operations.inbox import sent_line, sent_provider

    line = sent_line("POST", "/v1/databases/social", "tdb-prod")
    assert sent_provider(line) == "tdb-prod"
    assert sent_provider(None) is None and sent_provider("POST /x") is None
