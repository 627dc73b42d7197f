"""Watching databases, and incidents.

A watch is a row in SQLite. The Watcher polls the status of every watched
database through the shared provider clients (one token, pooled connections),
compares it with the last state it recorded, and on a change records the new
state and queues a message for the watching channel in the outbox, in one
transaction, so a restart neither repeats nor loses a change. The tracker's
delivery loop sends them.

Incidents need no watch: in every environment that has an incident channel,
the Watcher lists the databases (one request per environment; a listing
carries each database's status) and announces in that channel when a database
enters `underIncident`, and when it leaves it. The first look at a database
only records its flag.

A watch ends by itself, with a message in its channel, when its database is
gone (404) or after `max_failures` status checks in a row failed (an unusable
answer, 5xx, no connection).
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import sqlite_utils

from clients.errors import ApiError, NotFound
from core.audit_context import polling
from core.provider import Provider
from core.reply import Reply
from operations.loop import BackgroundLoop
from operations.migrations import migrate
from operations.store import Outbox
from permissions.store import PermissionStore

log = logging.getLogger("graphops.watch")


@dataclass(frozen=True)
class Watch:
    """One channel watching one database."""

    id: int
    provider: str
    environment_id: str
    environment_name: str
    database_id: str
    database_name: str
    channel: str
    created_by: str
    last_state: dict[str, Any] | None
    changes: int
    failures: int = 0


def _watch(row: dict[str, Any]) -> Watch:
    return Watch(
        row["id"],
        row["provider"],
        row["environment_id"],
        row["environment_name"],
        row["database_id"],
        row["database_name"],
        row["channel"],
        row["created_by"],
        json.loads(row["last_state"]) if row["last_state"] else None,
        row["changes"],
        row.get("failures") or 0,
    )


class WatchStore:
    """The watches of every channel."""

    def __init__(self, db: sqlite_utils.Database, clock: Callable[[], float] = time.time):
        self.db = db
        self._clock = clock
        migrate(db)

    def add(
        self,
        *,
        provider: str,
        environment_id: str,
        environment_name: str,
        database_id: str,
        database_name: str,
        channel: str,
        user: str,
    ) -> bool:
        """Start watching; False when this channel already watches that database."""
        cursor = self.db.execute(
            "INSERT INTO watches (provider, environment_id, environment_name, database_id, "
            "database_name, channel, created_by, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (channel, provider, database_id) DO UPDATE SET active = 1, failures = 0 "
            "WHERE active = 0",
            [
                provider,
                environment_id,
                environment_name,
                database_id,
                database_name,
                channel,
                user,
                self._clock(),
            ],
        )
        return cursor.rowcount > 0

    def remove(self, channel: str, provider: str, database_id: str) -> bool:
        """Stop watching; False when the channel was not watching it."""
        cursor = self.db.execute(
            "UPDATE watches SET active = 0 WHERE channel = ? AND provider = ? "
            "AND database_id = ? AND active = 1",
            [channel, provider, database_id],
        )
        return cursor.rowcount > 0

    def active(self, channel: str | None = None) -> list[Watch]:
        """Active watches (of one channel, or all)."""
        sql = "SELECT * FROM watches WHERE active = 1"
        params: list[str] = []
        if channel is not None:
            sql += " AND channel = ?"
            params.append(channel)
        cursor = self.db.execute(sql + " ORDER BY id", params)
        columns = [c[0] for c in cursor.description]
        return [_watch(dict(zip(columns, row, strict=True))) for row in cursor.fetchall()]


def state_of(status: Any) -> dict[str, Any]:
    """The parts of a database status whose change is worth a message."""
    return {
        "state": status.state,
        "pending": status.is_pending,
        "locked": status.is_locked,
        "incident": status.under_incident,
        "needs restart": status.needs_restart,
    }


def describe_change(old: dict[str, Any], new: dict[str, Any]) -> str:
    """`running → paused; incident: yes` style text."""
    parts = []
    if old.get("state") != new["state"]:
        parts.append(f"{old.get('state', '?')} → {new['state']}")
    for flag in ("pending", "locked", "incident", "needs restart"):
        if bool(old.get(flag)) != bool(new[flag]):
            parts.append(f"{flag}: {'yes' if new[flag] else 'no'}")
    return "; ".join(parts)


class Watcher:
    """Polls watched databases and queues a message for every change."""

    def __init__(
        self,
        db: sqlite_utils.Database,
        providers: Mapping[str, Provider],
        *,
        permissions: PermissionStore | None = None,
        interval_seconds: float = 30.0,
        concurrency: int = 8,
        max_failures: int = 10,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.db = db
        self.max_failures = max_failures
        self.providers = providers
        self.permissions = permissions
        self.interval = interval_seconds
        self._clock = clock
        self.store = WatchStore(db, clock)
        self.outbox = Outbox(db, clock)
        self._semaphore = asyncio.Semaphore(concurrency)
        self._loop = BackgroundLoop("graphops-watcher", self.run_once, interval_seconds)

    async def run_once(self) -> int:
        """Poll every watch, and scan for incidents, once; returns the messages queued.

        Its API requests are background polls: audited as counts per interval.
        """
        with polling("watch"):
            results = await asyncio.gather(*(self._guarded(w) for w in self.store.active()))
            return sum(results) + await self.scan_incidents()

    async def scan_incidents(self) -> int:
        """Announce databases entering or leaving `underIncident` where a channel listens."""
        if self.permissions is None:
            return 0
        queued = 0
        for provider_name in sorted({c.provider for c in self.permissions.incident_channels()}):
            provider = self.providers.get(provider_name)
            if provider is None:
                continue
            try:
                for environment in await provider.client.environments():
                    channel = self.permissions.incident_channel(
                        provider_name, environment.id, environment.name
                    )
                    if channel is None:
                        continue
                    for database in await provider.client.databases(environment.id):
                        queued += self._incident_flag(provider_name, environment, database, channel)
            except ApiError as exc:
                log.warning("incident scan of %s: %s", provider_name, exc.describe())
        return queued

    def _incident_flag(self, provider: str, environment: Any, database: Any, channel: str) -> int:
        flag = bool(getattr(database.status, "under_incident", False))
        row = self.db.execute(
            "SELECT under_incident FROM incident_flags WHERE provider = ? AND database_id = ?",
            [provider, database.id],
        ).fetchone()
        if row is not None and bool(row[0]) == flag:
            return 0
        now = self._clock()
        with self.db.atomic():
            self.db.execute(
                "INSERT INTO incident_flags VALUES (?, ?, ?, ?) ON CONFLICT (provider, "
                "database_id) DO UPDATE SET under_incident = excluded.under_incident, "
                "changed_at = excluded.changed_at",
                [provider, database.id, int(flag), now],
            )
            if row is None:
                return 0  # the first look only records the flag
            where = f"environment {environment.name}, provider {provider}"
            notice = (
                Reply(
                    status="error",
                    title=f"Incident: {database.name}",
                    text=f"{database.name} is under incident ({where}).",
                )
                if flag
                else Reply(
                    status="ok",
                    title=f"Incident over: {database.name}",
                    text=f"{database.name} is no longer under incident ({where}).",
                )
            )
            self.outbox.put(
                None, f"incident:{provider}:{database.id}:{now}", channel, notice.model_dump()
            )
        return 1

    async def _guarded(self, watch: Watch) -> int:
        async with self._semaphore:
            try:
                return await self._poll(watch)
            except sqlite3.OperationalError as exc:  # another process holds the lock
                log.warning("watching %s waits for the store: %s", watch.database_name, exc)
                return 0
            except Exception as exc:  # one broken watch must not stop the others
                log.exception("watching %s failed", watch.database_name)
                return self._failed(watch, type(exc).__name__)

    def _failed(self, watch: Watch, reason: str) -> int:
        """Count a failed status check; after too many in a row the watch ends, saying why."""
        failures = watch.failures + 1
        if failures < self.max_failures:
            self.db.execute("UPDATE watches SET failures = ? WHERE id = ?", [failures, watch.id])
            return 0
        self._record(
            watch,
            None,
            f"Stopped watching {watch.database_name}: {failures} status checks in a row "
            f"failed (the last: {reason}). `watch {watch.database_name}` starts again.",
        )
        return 1

    async def _status(self, watch: Watch) -> Any:
        client: Any = self.providers[watch.provider].client
        if hasattr(client, "status"):  # the Console API has a status endpoint
            return await client.status(watch.database_id)
        return (await client.database(watch.database_id)).status

    async def _poll(self, watch: Watch) -> int:
        if watch.provider not in self.providers:
            return 0
        try:
            new = state_of(await self._status(watch))
        except NotFound:
            self._record(watch, None, f"{watch.database_name} no longer exists; watch ended.")
            return 1
        except ApiError as exc:
            log.warning("status of %s: %s", watch.database_name, exc.describe())
            return self._failed(watch, exc.describe())
        old = watch.last_state
        if old is None:  # the first look only sets the baseline
            self._record(watch, new, None)
            return 0
        change = describe_change(old, new)
        if not change:
            if watch.failures:
                self.db.execute("UPDATE watches SET failures = 0 WHERE id = ?", [watch.id])
            return 0
        self._record(watch, new, f"{watch.database_name}: {change}")
        return 1

    def _record(self, watch: Watch, new: dict[str, Any] | None, text: str | None) -> None:
        """Save the new state and queue its message atomically."""
        number = watch.changes + (1 if text else 0)
        with self.db.atomic():
            self.db.execute(
                "UPDATE watches SET last_state = ?, changes = ?, active = ?, failures = 0 "
                "WHERE id = ?",
                [json.dumps(new) if new else None, number, 1 if new else 0, watch.id],
            )
            if text:
                key = f"watch:{watch.id}:{number}"
                self.outbox.put(
                    None, key, watch.channel, Reply(status="info", text=text).model_dump()
                )

    def start(self) -> None:
        """Poll in the background until stopped."""
        self._loop.start()

    async def stop(self) -> None:
        """Stop polling (watches stay in the store)."""
        await self._loop.stop()
