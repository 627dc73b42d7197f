"""The inbox keeps requests across a kill; what it keeps of their text is redacted."""

from __future__ import annotations

from pathlib import Path

from bot.store import open_database
from operations.inbox import Inbox

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
