"""The inbox keeps requests across a kill; what it keeps of their text is redacted."""

from __future__ import annotations

from pathlib import Path

from bot.store import open_database
from operations.inbox import Inbox, spool_path
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
        [("U0ALICE", "C0DEV", f"list {TOKEN}", None), ("U0BOB", "C0DEV", "envs", "https://r")]
    )
    assert keys is not None and len(set(keys)) == 2
    assert spool.stat().st_mode & 0o777 == 0o600
    assert TOKEN not in spool.read_text()  # redacted before it reaches the disk
    assert inbox.left_over() == []  # this process is alive: its entries are its own
    text = spool.read_text().replace(this_runner(), GONE)
    spool.write_text(text + '{"key": "torn", "user": "U0')  # a write cut by a kill
    # the first entry's row was written, and the kill came before its entry was dropped
    inbox.accept_many([("U0ALICE", "C0DEV", "list", None)], keys[0])
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
    keys = inbox.spool_many([("U0ALICE", "C0DEV", "list", None), ("U0BOB", "C0DEV", "envs", None)])
    assert keys is not None
    inbox.accept("U0ALICE", "C0DEV", "list", None, spool_key=keys[0])
    assert keys[0] not in spool.read_text() and keys[1] in spool.read_text()
    inbox.unspool([keys[1]])
    assert not spool.exists()
    assert Inbox(inbox.db).spool_many([("U0ALICE", "C0DEV", "list", None)]) is None  # no file
