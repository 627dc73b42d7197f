"""Slack requests acknowledged but not finished: kept so that a restart answers them.

Slack wants an answer within 3 seconds, so a command (a slash command, a
button, a modal) is acknowledged first and run after. So that a kill between
the two never loses it silently, a row is written before the ack (`accept`):

    accepted -> sent (a request that changes something went out) -> answered -> (deleted)

`mark_sent` is called before the first such request (core.mutations), `answered`
keeps the reply once it is computed, and the row is deleted once the reply was
delivered (`done`). Whatever a stopped process left (`left_over`) is answered by
the next `graphops serve` (bot/slack/recovery.py): "nothing was done" for
`accepted`, "its outcome is unknown" for `sent`, and the kept reply for
`answered`. A command is never run again.

When another process holds the store's write lock at the ack (a backup, `graphops
access` in another shell), the row cannot be written without waiting for it, and the
ack cannot wait: the request is then appended to the spool, a file beside the store
(`<store>.inbox-spool`, owner-only, synced to disk before the ack: `spool_many`).
Once the store can be written its row is written with the spool entry's key and the
entry is dropped (`accept(spool_key=)`, `unspool`); a stopped process's entries are
moved into the table by the next start (`left_over`), never twice (the key is kept in
the row). What the store cannot take later on goes to the spool too, so that a kill
before the store is free never has the next start answer a request wrongly: the
reply of a request answered under the lock (`spool_answered`: delivered again after a
restart, its operations followed, not "its outcome is unknown"), the message its
answer was posted as (`spool_posted`: a restart follows its operations under it, and
does not post it again) and the end of one delivered under it (`spool_done`: not
answered a second time).

Every line is signed (HMAC-SHA256 with a random key kept in the store, migration
m012): a line graphops did not write is never acted on (a forged one could otherwise
make the bot post to any URL, message anyone, or drop a real request), and a mark
names whose request its row is (user, channel, time), so a genuine line moved into a
copy of the store (a backup shares the key and the row numbers) changes nothing
there. Lines the spool should not hold (unsigned, cut short, not JSON, nested past
Python's limits, strings that are not UTF-8, ids out of range) are skipped and
logged, never a failed start, and dropped with the next rewrite. Not defended: a
genuine request line put back after it was answered is answered again ("nothing was
done"); lines of a version before m012 are unsigned, so skipped (an upgrade right
after a kill under a lock loses those requests' late answers).

The text kept is what the audit keeps (a line that fits a verb's syntax, else the
verb alone); the response_url (valid 30 minutes) lives only as long as the row; a
reply's private text (one-time links) is never kept.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import logging
import os
import re
import secrets
import sqlite3
import stat
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, NamedTuple

import sqlite_utils

from core.files import append_private, create_private
from core.redaction import redact
from operations.migrations import migrate
from permissions.approvals import runner_alive, this_runner

log = logging.getLogger("graphops.inbox")


@dataclass(frozen=True)
class AcceptedRequest:
    """A request a stopped process acknowledged and did not finish."""

    id: int
    user: str
    channel: str
    text: str
    response_url: str | None
    received_at: float
    stage: str  # accepted | sent | answered
    sent: str | None  # `METHOD path` of the first request that changes something
    reply: str | None  # the reply's JSON, once answered
    posted_ts: str | None = None  # the channel message it was posted as, once posted
    thread_ts: str | None = None  # the thread it was asked in (a mention)


class Request(NamedTuple):
    """A request as the inbox keeps it."""

    user: str
    channel: str
    text: str
    response_url: str | None
    thread_ts: str | None = None  # the thread it was asked in (a mention), answered there


SPOOL_SUFFIX = ".inbox-spool"


def sent_line(method: str, path: str, provider: str) -> str:
    """What `mark_sent` keeps of a request that changes something: `METHOD path (provider)`."""
    return f"{method} {path} ({provider})"


def sent_provider(sent: str | None) -> str | None:
    """The provider named by a `sent_line` (None when there is none, or it was cut)."""
    named = _SENT_PROVIDER.search(sent or "")
    return named.group(1) if named else None


_SENT_PROVIDER = re.compile(r"\(([^()]+)\)$")


def spool_path(database: str | Path) -> Path | None:
    """Where the spool of the store at `database` lives (None for an in-memory store)."""
    return None if str(database) == ":memory:" else Path(f"{database}{SPOOL_SUFFIX}")


_SLACK_ID = re.compile(r"^[A-Z0-9]{2,32}$")
_RUNNER = re.compile(r"^[1-9][0-9]{0,9}:[0-9]{1,20}$")  # permissions.approvals.this_runner


def _utf8(value: Any) -> bool:
    """Whether every string in `value` (a JSON value) can be written as UTF-8 (JSON's
    `\\ud800` escapes decode to lone surrogates, which SQLite cannot store)."""
    if isinstance(value, str):
        try:
            value.encode()
        except UnicodeEncodeError:
            return False
        return True
    if isinstance(value, dict):
        return all(_utf8(k) and _utf8(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_utf8(item) for item in value)
    return True


_TS = re.compile(r"^[0-9]{1,12}\.[0-9]{1,9}$")  # a Slack message ts


def _well_formed(entry: Any) -> bool:
    """Whether a spool line holds what `spool_many` writes (types and Slack ids; its
    strings are UTF-8, as `Inbox._read` checked)."""
    if not isinstance(entry, dict):
        return False
    for name in ("key", "user", "text", "runner"):
        if not isinstance(entry.get(name), str) or not entry[name]:
            return False
    if not _RUNNER.match(entry["runner"]):
        return False
    if not _SLACK_ID.match(entry["user"]) or not isinstance(entry.get("channel"), str):
        return False
    if entry["channel"] and not _SLACK_ID.match(entry["channel"]):
        return False
    thread = entry.get("thread_ts")  # absent from lines written before it was kept
    if thread is not None and not (isinstance(thread, str) and _TS.match(thread)):
        return False
    url = entry.get("response_url")
    if url is not None and not (isinstance(url, str) and url.startswith(("https://", "http://"))):
        return False
    at = entry.get("received_at")
    return isinstance(at, int | float) and not isinstance(at, bool) and 0 <= at < 1e11


def _row_id(value: Any) -> bool:
    return type(value) is int and 0 < value < 2**63


def _names_a_row(entry: dict[str, Any]) -> bool:
    """Whether a mark says whose request its row is (`Inbox._row_mark`)."""
    at = entry.get("at")
    return (
        isinstance(entry.get("user"), str)
        and isinstance(entry.get("channel"), str)
        and isinstance(at, int | float)
        and not isinstance(at, bool)
    )


def _kind(entry: Any) -> str | None:
    """What a spool line holds: a `request` (`spool_many`), an `answered` mark
    (`spool_answered`), a `posted` mark (`spool_posted`), a `done` mark (`spool_done`),
    or None (not one of them)."""
    if not isinstance(entry, dict) or not isinstance(entry.get("key"), str) or not entry["key"]:
        return None
    marks = ("done", "answered", "posted")
    if any(name in entry for name in marks) and not _names_a_row(entry):
        return None
    if "done" in entry:
        return "done" if _row_id(entry["done"]) else None
    if "posted" in entry:
        ts = entry.get("ts")
        ok = _row_id(entry["posted"]) and isinstance(ts, str) and bool(_TS.match(ts))
        return "posted" if ok else None
    if "answered" in entry:
        ok = _row_id(entry["answered"]) and isinstance(entry.get("reply"), str)
        return "answered" if ok else None
    return "request" if _well_formed(entry) else None


def _write_synced(file: BinaryIO, entries: list[dict[str, Any]]) -> None:
    """`entries` as JSON lines, on the disk (not only in its cache) when this returns."""
    file.write(b"".join(json.dumps(entry).encode() + b"\n" for entry in entries))
    file.flush()
    os.fsync(file.fileno())


def _regular_or_absent(path: Path) -> None:
    """OSError unless `path` is a regular file or does not exist (a directory or a
    FIFO there would fail or block every read and write)."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISREG(mode):
        raise OSError(f"{path} is not a regular file")


class Inbox:
    """The `accepted_requests` table, and its spool (None: requests that met a locked
    store are kept in memory only)."""

    def __init__(
        self,
        db: sqlite_utils.Database,
        clock: Callable[[], float] = time.time,
        spool: Path | None = None,
    ):
        self.db = db
        self._clock = clock
        self.spool = spool
        self._key: bytes | None = None  # the spool's MAC key, read once
        migrate(db)

    def accept(
        self,
        user: str,
        channel: str,
        text: str,
        response_url: str | None,
        *,
        spool_key: str | None = None,
        thread_ts: str | None = None,
    ) -> int:
        """Keep a request before it is acknowledged; its row id. The text is kept
        redacted (a token pasted by mistake never reaches the file): after a restart it
        is only shown, and read for an `approve`/`deny` id, never run again. With
        `spool_key`, the request was spooled at its ack: its entry is dropped."""
        [row] = self.accept_many([Request(user, channel, text, response_url, thread_ts)], spool_key)
        if spool_key is not None:
            with contextlib.suppress(OSError):  # tried again when its work ends
                self.unspool([spool_key])
        return row

    def accept_many(self, requests: Iterable[Request], spool_key: str | None = None) -> list[int]:
        """`accept` for several requests (`Request`) in one transaction: all rows or none
        (sqlite3.Error); their row ids, in order."""
        now, runner = self._clock(), this_runner()
        ids = []
        with self._transaction():
            for user, channel, text, response_url, thread_ts in requests:
                cursor = self.db.execute(
                    "INSERT INTO accepted_requests (user, channel, text, response_url, "
                    "received_at, runner, spool_key, thread_ts) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    [user, channel, redact(text), response_url, now, runner, spool_key, thread_ts],
                )
                ids.append(int(cursor.lastrowid or 0))
        return ids

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        """One write transaction: committed at the end, rolled back on any exception.
        sqlite3.Error at once when another process holds the lock past the busy timeout."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield
            self.db.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                self.db.execute("ROLLBACK")
            raise

    # -- the spool ---------------------------------------------------------------------

    def spool_many(self, requests: Iterable[Request]) -> list[str] | None:
        """Keep requests in the spool (the store could not be written): appended as JSON
        lines, the text redacted, synced to disk; their keys in order, or None without a
        spool. OSError when the file cannot be written."""
        now, runner = self._clock(), this_runner()
        entries = [
            {
                "key": secrets.token_hex(8),
                "user": user,
                "channel": channel,
                "text": redact(text),
                "response_url": response_url,
                "received_at": now,
                "runner": runner,
                "thread_ts": thread_ts,
            }
            for user, channel, text, response_url, thread_ts in requests
        ]
        return self._append(entries)

    def spool_answered(self, row_id: int, reply_json: str) -> list[str] | None:
        """`answered`, in the spool (the store is locked): a kill before the row is
        updated leaves the next start the reply to deliver, not "its outcome is unknown"
        for a request that was answered. Keys as `spool_many`."""
        mark = self._row_mark(row_id)
        return self._append([{**mark, "answered": row_id, "reply": reply_json}] if mark else [])

    def spool_posted(self, row_id: int, ts: str) -> list[str] | None:
        """`posted`, in the spool (the store is locked): a kill before the row is
        deleted has the next start follow the answer's operations under message `ts`
        instead of posting it again. Keys as `spool_many`."""
        mark = self._row_mark(row_id)
        return self._append([{**mark, "posted": row_id, "ts": ts}] if mark else [])

    def spool_done(self, row_ids: Iterable[int]) -> list[str] | None:
        """`done`, in the spool (the store is locked): the next start deletes the rows
        (`left_over`) instead of answering them again; drop the marks (`unspool`) once
        the rows are deleted. Keys as `spool_many`."""
        marks = [(row, self._row_mark(row)) for row in row_ids]
        return self._append([{**mark, "done": row} for row, mark in marks if mark])

    def _row_mark(self, row_id: int) -> dict[str, Any] | None:
        """What a mark says of its row besides its id (who, where, when: a mark applies
        to that request only, never to a row of the same id in a copy of the store);
        None when there is no such row. A read: another process's lock does not stop it."""
        row = self.db.execute(
            "SELECT user, channel, received_at FROM accepted_requests WHERE id = ?", [row_id]
        ).fetchone()
        if row is None:
            return None
        return {"key": secrets.token_hex(8), "user": row[0], "channel": row[1], "at": row[2]}

    def spool_problem(self) -> str | None:
        """Why the spool cannot be used (its path is a directory, a FIFO...), or None:
        `graphops serve` logs it at start, since requests acked while the store is
        locked are then kept in memory only (a kill loses them)."""
        if self.spool is None:
            return None
        try:
            _regular_or_absent(self.spool)
        except OSError as exc:
            return str(exc)
        return None

    def unspool(self, keys: Iterable[str]) -> None:
        """Drop these entries from the spool (its file is removed once empty; lines it
        should not hold go too). OSError when it cannot be rewritten."""
        drop = set(keys)
        entries, skipped = self._read()
        kept = [entry for entry in entries if entry["key"] not in drop]
        if self.spool is None or (len(kept) == len(entries) and not skipped):
            return
        if not kept:
            self.spool.unlink(missing_ok=True)
            return
        fresh = self.spool.with_name(self.spool.name + ".new")
        fresh.unlink(missing_ok=True)
        with create_private(fresh) as out:
            _write_synced(out, [self._signed(entry) for entry in kept])
        os.replace(fresh, self.spool)

    def _append(self, entries: list[dict[str, Any]]) -> list[str] | None:
        """Append signed entries, synced to disk; their keys (None without a spool)."""
        if self.spool is None:
            return None
        _regular_or_absent(self.spool)
        signed = [self._signed(entry) for entry in entries]
        with append_private(self.spool) as spool:
            _write_synced(spool, signed)
        return [str(entry["key"]) for entry in entries]

    def answer_key(self, row_id: int) -> str:
        """The key the channel message answering the request of row `row_id` carries (in
        its Slack metadata): a restart that finds the row answered but not known as
        posted looks for it before posting the answer again (bot/slack/recovery.py).
        Row ids are never reused (AUTOINCREMENT); the store's tag (from its spool key)
        keeps another graphops posting in the same channel from matching."""
        tag = hashlib.sha256(b"answer-key:" + self._mac_key()).hexdigest()[:12]
        return f"request:{tag}:{row_id}"

    def _mac_key(self) -> bytes:
        """The store's key for the spool's MACs (migration m012; read, so a lock held by
        another process does not stop it)."""
        if self._key is None:
            row = self.db.execute("SELECT key FROM inbox_spool_key LIMIT 1").fetchone()
            self._key = bytes.fromhex(row[0])
        return self._key

    def _mac(self, entry: dict[str, Any]) -> str:
        canonical = json.dumps(entry, sort_keys=True, separators=(",", ":"))
        return hmac.new(self._mac_key(), canonical.encode(), hashlib.sha256).hexdigest()

    def _signed(self, entry: dict[str, Any]) -> dict[str, Any]:
        return {**entry, "mac": self._mac(entry)}

    def _read(self) -> tuple[list[dict[str, Any]], int]:
        """The spool's entries (without their MAC), in order, and how many lines were not
        one: cut short by a kill mid-write (its request was never acknowledged), not
        JSON, nested deeper than Python parses, or not signed with this store's key
        (graphops did not write it: a forged line is never acted on). A spool that is
        not a regular file reads as empty."""
        if self.spool is None:
            return [], 0
        try:
            _regular_or_absent(self.spool)
            data = self.spool.read_bytes() if self.spool.exists() else b""
        except OSError:
            return [], 0
        entries = []
        skipped = 0
        for line in data.splitlines():
            entry: Any = None
            with contextlib.suppress(ValueError, RecursionError):
                entry = json.loads(line)
            mac = entry.pop("mac", None) if isinstance(entry, dict) else None
            if (
                isinstance(mac, str)
                and _utf8(entry)
                and hmac.compare_digest(mac, self._mac(entry))
                and _kind(entry) is not None
            ):
                entries.append(entry)
            else:
                skipped += 1
        return entries, skipped

    def _take_spool(self) -> None:
        """Delete the rows the spool marks answered; move the requests of processes that
        are gone into the table (those already there by their key are not added again);
        drop both from the spool. Left for the next start when the store or the file
        cannot be written now."""
        lines, skipped = self._read()
        if skipped:
            log.warning(
                "%d line(s) of %s are skipped: not written by this store's graphops (an "
                "older version's, a copy's, an edited or forged line), or cut short by a kill",
                skipped,
                self.spool,
            )
        marks = [entry for entry in lines if _kind(entry) in ("answered", "posted", "done")]
        if marks:
            with contextlib.suppress(sqlite3.Error, OSError):
                with self._transaction():
                    for mark in marks:
                        same = [mark["user"], mark["channel"], mark["at"]]
                        if "answered" in mark:
                            self.db.execute(
                                "UPDATE accepted_requests SET stage = 'answered', reply = ? "
                                "WHERE id = ? AND user = ? AND channel = ? AND received_at = ? "
                                "AND stage IN ('accepted', 'sent')",
                                [mark["reply"], mark["answered"], *same],
                            )
                        elif "posted" in mark:
                            self.db.execute(
                                "UPDATE accepted_requests SET posted_ts = ? WHERE id = ? "
                                "AND user = ? AND channel = ? AND received_at = ?",
                                [mark["ts"], mark["posted"], *same],
                            )
                        else:
                            self.db.execute(
                                "DELETE FROM accepted_requests WHERE id = ? AND user = ? "
                                "AND channel = ? AND received_at = ?",
                                [mark["done"], *same],
                            )
                self.unspool(mark["key"] for mark in marks)
        spooled = [entry for entry in lines if _kind(entry) == "request"]  # one read
        with contextlib.suppress(sqlite3.Error):  # done rows whose entry is gone at last
            keys = json.dumps([entry["key"] for entry in spooled])
            self.db.execute(
                "DELETE FROM accepted_requests WHERE stage = 'done' "
                "AND spool_key NOT IN (SELECT value FROM json_each(?))",
                [keys],
            )
        gone = [e for e in spooled if not runner_alive(e["runner"])]
        if not gone:
            return
        with contextlib.suppress(sqlite3.Error, OSError):
            with self._transaction():
                for entry in gone:
                    self.db.execute(
                        "INSERT INTO accepted_requests (user, channel, text, response_url, "
                        "received_at, runner, spool_key, thread_ts) SELECT ?, ?, ?, ?, ?, ?, ?, ? "
                        "WHERE NOT EXISTS (SELECT 1 FROM accepted_requests WHERE spool_key = ?)",
                        [
                            entry["user"],
                            entry["channel"],
                            redact(entry["text"]),
                            entry.get("response_url"),
                            entry["received_at"],
                            entry["runner"],
                            entry["key"],
                            entry.get("thread_ts"),
                            entry["key"],
                        ],
                    )
            self.unspool(entry["key"] for entry in gone)

    def mark_sent(self, row_id: int, what: str) -> None:
        """The request's first request that changes something is about to go out."""
        self.db.execute(
            "UPDATE accepted_requests SET stage = 'sent', sent = ? "
            "WHERE id = ? AND stage = 'accepted'",
            [what[:300], row_id],
        )

    def answered(self, row_id: int, reply_json: str) -> None:
        """The reply is computed (and about to be delivered)."""
        self.db.execute(
            "UPDATE accepted_requests SET stage = 'answered', reply = ? WHERE id = ?",
            [reply_json, row_id],
        )

    def posted(self, row_id: int, ts: str) -> None:
        """The reply was posted in the channel as message `ts` (its operations are about
        to be followed under it)."""
        self.db.execute("UPDATE accepted_requests SET posted_ts = ? WHERE id = ?", [ts, row_id])

    def done(self, row_id: int) -> None:
        """Delivered (or answered after a restart): forget it."""
        self.db.execute("DELETE FROM accepted_requests WHERE id = ?", [row_id])

    def done_but_spooled(self, row_id: int) -> None:
        """Delivered, but its spool entry could not be dropped: the row stays, marked
        `done`, so that the entry is never taken up as unanswered (`left_over` skips
        it, and deletes it once the entry is gone)."""
        self.db.execute("UPDATE accepted_requests SET stage = 'done' WHERE id = ?", [row_id])

    def left_over(self) -> list[AcceptedRequest]:
        """Requests of processes that are gone, oldest first (the spool's included)."""
        self._take_spool()
        rows = self.db.execute(
            "SELECT id, user, channel, text, response_url, received_at, stage, sent, reply, "
            "posted_ts, thread_ts, runner FROM accepted_requests WHERE stage != 'done' "
            "ORDER BY id"
        ).fetchall()
        return [AcceptedRequest(*row[:11]) for row in rows if not runner_alive(row[11])]

    def pending(self) -> int:
        """How many rows there are (for tests and /metrics)."""
        return int(self.db.execute("SELECT COUNT(*) FROM accepted_requests").fetchone()[0])
