"""Stateful fake of the GrapheneDB API v1 (legacy, ``api.graphenedb.com/v1``).

Every route lives under ``/v1``. Authentication is the ``api_key`` header (default
key ``demo-api-key``). Operations are lazy state machines as in the Console
simulator: each event (step) lasts ``step_seconds`` on ``clock`` and state is
advanced from elapsed time at every request, so there is no background task.

Documented (the seed) or observed, served by default: the Database, Operation
(``{id, databaseId, description, stopped, createdAt, currentState, events: [{state,
createdAt}]}``), Operation Event, Backup, Backup Schedule, Backup Package and Export
objects; create answering 202 ``{"operation": id}`` and restart ``{"operationId"}``
(observed). The v1 Database has no state field, so none is sent.

Variants of the uncertain shapes (``SHAPES``):

- ``v1-create-201``: create answers 201 with the new Database ("201: New entities
  created via POST"), no operation.
- ``v1-create-empty``: create answers 202 with an empty body.
- ``v1-db-state``: databases also carry a ``state`` (running, creating, ...): not in
  the seed; clients must not need it.
- ``lists-wrapped``: collections wrapped in an object named after them.

Choices made where the seed is silent (guesses):

- Auth: checked before route matching. No ``api_key`` header -> 401 ``{"error":
  "missing api_key header"}``; a wrong one -> 401 ``{"error": "invalid api_key"}``.
  Error bodies are ``{"error": "<reason>"}`` (the seed says they vary); injected
  500s carry only ``{"nonce": "<uuid>"}`` (kept in ``V1Simulator.nonces``), 502 and
  504 an ``error`` naming the internal infrastructure.
- Ids are 32 lowercase hex chars (as in the seed's example). Routes only match hex
  ids, so ``/v1/databases/versions`` and ``.../backups/latest|schedule`` never clash
  with ids; a non-hex id gets aiohttp's 404.
- Catalogs: only ``GET /v1/databases/versions`` exists, answering
  ``[{version, description}]`` (v3517, v406, v4416). Plans and regions have no
  endpoint; the lists in the seed are the ones accepted.
- Collections (databases, versions, backups) are bare JSON lists.
- Database JSON: the fields of the seed and of the observed shapes (``url`` and
  ``restUrl``, ``boltURL``, ``webAdminURL`` and ``browserUrl``, ``metricsURL``,
  ``createdAt`` ISO-8601, ``version`` (description), ``versionEdition``,
  ``versionKey``, ``currentSize``, ``maxSize``, ``plan: {type, limits}``,
  ``awsRegion``, ``privateNetworkId``, ``plugins``, ``counters``). The simulator
  keeps a state (running, creating, restarting, emptying, restoring, importing,
  backing-up, deleting) that only ``v1-db-state`` shows.
- Create: ``POST /v1/databases`` {name, version, awsRegion, plan[, privateNetworkId]}
  answers 202 ``{"operation": id}`` (observed shape); the database is listed at
  once in state "creating". ``name`` must match ``^[a-z][a-z0-9-]{2,39}$`` and be
  unused; ``plan`` "cluster" is refused (400) as the seed says.
- Other async commands answer 202 ``{"operationId": id}``: restart and empty
  (``PUT``), delete (``DELETE``, the database disappears when it finishes),
  manual backup ``POST .../backups`` (also gives ``backupId``; the backup is
  "working" until the operation finishes), restore ``PUT .../backups/{id}/restore``
  and import ``PUT .../import`` {url}.
- Import ``url`` must be an ``https://`` URL whose host contains ``s3`` (an S3
  bucket), else 400.
- Events per operation (``OP_EVENTS``); an event is added when its step starts, with
  ``createdAt`` an integer epoch. ``currentState`` is started|finished|failed;
  ``stopped`` is true between a ``stopping-database`` event and the next
  ``starting-database`` one; the operation's ``createdAt`` is a string (epoch), as
  the seed types it. ``description`` is e.g. "restart database legacy-orders".
- Failure (``fail_next_operation``, or ``/_sim/faults`` key ``fail_next_operation``):
  at the given step (its last if None); ``currentState`` "failed", the failing step
  is the last event. The database returns to its previous state; a created
  database is removed; a working manual backup is removed.
- Busy: while an operation of a database runs, every mutating request on it (and
  export) answers 409 "another operation is in progress on this database".
- Plans: manual backups and schedules need a Standard plan or above (anything but
  sandbox and developer): 400 otherwise. Export works on every plan.
- 501: ``PUT .../empty`` on a **sandbox** plan database is not implemented.
- Backups: ``latest`` is the newest "done" backup (404 "no backups" if none).
  A "working" backup cannot be restored or downloaded (400); one with
  ``downloadable: false`` (origin "automatic") cannot be downloaded (400).
  ``packageURL`` is the path below the API root, ``/databases/{id}/backups/{bid}/package``.
- Schedule: ``GET``/``PUT .../backups/schedule``; ``time`` H:MM:SS (0-23 hours),
  ``timezone`` only "UTC", ``frequency`` only "daily" (both optional on PUT);
  PUT answers 200 with the stored schedule.
- Export: ``PUT .../export`` (``GET`` is accepted too, the method is not documented)
  answers 200 ``{url, size}``. Links (export and backup package) are fake one-time
  ``https://s3.example/...?X-Amz-Signature=<random>`` URLs, kept in ``links``.
- Bad bodies: invalid JSON, a non-object, missing or mistyped fields -> 400; then
  unknown ids -> 404; then busy -> 409; then plan/state preconditions -> 400/501.
- ``/_sim/state`` dumps databases, backups, schedules, operations and faults (never
  the api key).
"""

from __future__ import annotations

import json
import re
import secrets
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

from aiohttp import web

from simulators.base import LISTS_WRAPPED, SimulatedError, SimulatorServer

API = "/v1"
HEX = "{%s:[0-9a-f]{32}}"
NAME_RE = re.compile(r"^[a-z][a-z0-9-]{2,39}$")
TIME_RE = re.compile(r"^([01]?\d|2[0-3]):[0-5]\d:[0-5]\d$")
BUSY = "another operation is in progress on this database"

VERSIONS: list[dict[str, str]] = [
    {"version": "v3517", "description": "Neo4j 3.5.17 Enterprise"},
    {"version": "v406", "description": "Neo4j 4.0.6 Enterprise"},
    {"version": "v4416", "description": "Neo4j 4.4.16 Enterprise"},
]
#: plan -> (max nodes, max relationships, max size in bytes)
PLANS: dict[str, tuple[int, int, int]] = {
    "sandbox": (1_000, 10_000, 100_000_000),
    "developer": (100_000, 1_000_000, 1_000_000_000),
    "s1": (1_000_000, 10_000_000, 4_000_000_000),
    "s2": (5_000_000, 50_000_000, 8_000_000_000),
    "p1": (10_000_000, 100_000_000, 16_000_000_000),
    "p2": (20_000_000, 200_000_000, 32_000_000_000),
    "p3": (50_000_000, 500_000_000, 64_000_000_000),
    "p4": (100_000_000, 1_000_000_000, 128_000_000_000),
    "p5": (200_000_000, 2_000_000_000, 256_000_000_000),
}
NO_BACKUP_PLANS = frozenset({"sandbox", "developer"})
REGIONS = (
    "us-east-1",
    "us-west-1",
    "us-west-2",
    "eu-west-1",
    "eu-west-2",
    "eu-west-3",
    "ap-northeast-1",
    "ap-southeast-1",
    "ap-southeast-2",
)

OP_EVENTS: dict[str, list[str]] = {
    "create": ["allocating-instance", "creating-volume", "starting-database"],
    "restart": ["stopping-database", "starting-database"],
    "empty": ["stopping-database", "emptying-database", "starting-database"],
    "delete": ["stopping-database", "deleting-volume"],
    "backup": ["freezing-volume", "creating-snapshot", "copy-snapshot", "unfreezing-volume"],
    "restore": ["stopping-database", "restoring-snapshot", "starting-database"],
    "import": ["downloading-file", "stopping-database", "importing", "starting-database"],
}
OP_STATES = {
    "create": "creating",
    "restart": "restarting",
    "empty": "emptying",
    "delete": "deleting",
    "backup": "backing-up",
    "restore": "restoring",
    "import": "importing",
}


def new_id() -> str:
    """A fresh 32-hex-char id."""
    return uuid.uuid4().hex


def iso_now() -> str:
    """Now as ISO-8601 (UTC)."""
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def fake_link(kind: str, db_id: str, filename: str) -> str:
    """A fake presigned S3 link with a random signature."""
    return (
        f"https://s3.example/graphenedb-{kind}/{db_id}/{filename}"
        f"?X-Amz-Expires=300&X-Amz-Signature={secrets.token_hex(32)}"
    )


@dataclass
class Database:
    """A v1 database."""

    id: str
    name: str
    plan: str
    version_key: str
    region: str
    state: str = "running"
    nodes: int = 0
    relationships: int = 0
    private_network_id: str | None = None
    created_at: str = field(default_factory=iso_now)

    @property
    def host(self) -> str:
        return f"{self.name}-{self.id[:8]}.graphenedb.example"

    def to_json(self, with_state: bool = False) -> dict[str, Any]:
        """The Database shape (seed + observed fields; ``state`` only if asked)."""
        max_nodes, max_rels, max_size = PLANS[self.plan]
        version = next(v for v in VERSIONS if v["version"] == self.version_key)
        rest = f"https://{self.host}:24780/db/data/"
        browser = f"https://{self.host}:24780/browser/"
        return {
            "id": self.id,
            "name": self.name,
            **({"state": self.state} if with_state else {}),
            "createdAt": self.created_at,
            "version": version["description"],
            "versionEdition": "enterprise",
            "versionKey": self.version_key,
            "currentSize": 4096 + 120 * self.nodes + 60 * self.relationships,
            "maxSize": max_size,
            "plan": {"type": self.plan, "limits": {"nodes": max_nodes, "relationships": max_rels}},
            "awsRegion": self.region,
            "privateNetworkId": self.private_network_id,
            "url": rest,
            "restUrl": rest,
            "boltURL": f"bolt+routing://{self.host}:24786",
            "webAdminURL": browser,
            "browserUrl": browser,
            "metricsURL": f"https://{self.host}:24780/metrics",
            "plugins": [],
            "counters": {"nodes": self.nodes, "relationships": self.relationships},
        }


@dataclass
class Backup:
    """A backup of one database."""

    id: str
    database_id: str
    origin: str
    size: int
    state: str = "done"
    duration: int = 42
    downloadable: bool = True
    timestamp: str = field(default_factory=iso_now)

    def to_json(self) -> dict[str, Any]:
        """The Backup shape."""
        return {
            "id": self.id,
            "state": self.state,
            "origin": self.origin,
            "timestamp": self.timestamp,
            "size": self.size,
            "duration": self.duration,
            "packageURL": f"/databases/{self.database_id}/backups/{self.id}/package",
            "downloadable": self.downloadable,
        }


@dataclass
class Operation:
    """An async operation: ``OP_EVENTS[kind]``, each step ``step_seconds`` long."""

    id: str
    database_id: str
    kind: str
    description: str
    started_clock: float
    started_at: int
    prev_state: str
    backup_id: str | None = None
    fail_at: int | None = None
    status: str = "started"
    reached: int = 1  # events reached so far

    @property
    def steps(self) -> list[str]:
        return OP_EVENTS[self.kind]

    def to_json(self, step_seconds: float) -> dict[str, Any]:
        """The Operation shape with its events."""
        names = self.steps[: self.reached]
        stopped = False
        for name in names:
            if name == "stopping-database":
                stopped = True
            elif name == "starting-database":
                stopped = False
        return {
            "id": self.id,
            "databaseId": self.database_id,
            "description": self.description,
            "currentState": self.status,
            "stopped": stopped,
            "createdAt": str(self.started_at),
            "events": [
                {"state": name, "createdAt": self.started_at + round(i * step_seconds)}
                for i, name in enumerate(names)
            ],
        }


@dataclass
class _OpFailure:
    kind: str | None
    at_step: str | None


class V1Simulator(SimulatorServer):
    """Fake GrapheneDB API v1; see the module docstring for behaviour."""

    SHAPES = MappingProxyType(
        {
            "v1-create-201": "create answers 201 with the new Database, no operation",
            "v1-create-empty": "create answers 202 with an empty body",
            "v1-db-state": "databases also carry a state (not in the seed)",
            LISTS_WRAPPED: 'collections wrapped: {"databases": [...]} ...',
        }
    )

    def __init__(
        self,
        *,
        api_key: str = "demo-api-key",
        step_seconds: float = 1.0,
        seed: int = 0,
        seed_data: bool = True,
        shapes: Iterable[str] = (),
    ) -> None:
        super().__init__(seed=seed, shapes=shapes)
        self.api_key = api_key
        self.step_seconds = step_seconds
        self.nonces: list[str] = []
        self.links: list[str] = []
        self._dbs: dict[str, Database] = {}
        self._backups: dict[str, Backup] = {}
        self._schedules: dict[str, dict[str, str]] = {}
        self._ops: dict[str, Operation] = {}
        self._op_failures: list[_OpFailure] = []
        if seed_data:
            self._seed()

    # ---- seed & accessors -------------------------------------------------------

    def _seed(self) -> None:
        orders = self.add_database("legacy-orders", plan="s1", nodes=120_000, relationships=480_000)
        users = self.add_database("legacy-users", plan="p1", region="us-east-1", nodes=40_000)
        self.add_database("legacy-sandbox", plan="sandbox", version="v4416", nodes=250)
        for db in (orders, users):
            self.add_backup(db.id, origin="scheduled")
            self.add_backup(db.id, origin="manual")
            self._schedules[db.id] = {"time": "3:00:00", "timezone": "UTC", "frequency": "daily"}
        self.add_backup(orders.id, origin="automatic", downloadable=False)

    def add_database(
        self,
        name: str,
        *,
        plan: str = "s1",
        version: str = "v3517",
        region: str = "eu-west-1",
        state: str = "running",
        nodes: int = 0,
        relationships: int = 0,
    ) -> Database:
        """Create a database directly (test setup)."""
        db = Database(new_id(), name, plan, version, region, state, nodes, relationships)
        self._dbs[db.id] = db
        return db

    def add_backup(
        self,
        database_id: str,
        *,
        origin: str = "manual",
        state: str = "done",
        downloadable: bool = True,
    ) -> Backup:
        """Create a backup directly (test setup)."""
        size = self.faults.rng.randint(1_000_000, 50_000_000)
        backup = Backup(new_id(), database_id, origin, size, state, downloadable=downloadable)
        self._backups[backup.id] = backup
        return backup

    @property
    def databases(self) -> list[Database]:
        """All existing databases (after advancing operations)."""
        self.advance()
        return list(self._dbs.values())

    def find_database(self, name: str) -> Database:
        """The database named ``name`` (KeyError if none)."""
        self.advance()
        for db in self._dbs.values():
            if db.name == name:
                return db
        raise KeyError(name)

    def database_json(self, db: Database) -> dict[str, Any]:
        """The API representation of a database (with ``state`` under ``v1-db-state``)."""
        return db.to_json(with_state=self.shaped("v1-db-state"))

    def backups_of(self, database_id: str) -> list[Backup]:
        """Backups of one database, oldest first (after advancing)."""
        self.advance()
        return [b for b in self._backups.values() if b.database_id == database_id]

    def schedule_of(self, database_id: str) -> dict[str, str] | None:
        """The backup schedule of a database, if any."""
        return self._schedules.get(database_id)

    def operation(self, op_id: str) -> Operation:
        """An operation by id (after advancing)."""
        self.advance()
        return self._ops[op_id]

    # ---- faults & state ---------------------------------------------------------

    def fault_body(self, status: int) -> dict[str, Any]:
        """500 carries only a nonce; 502/504 name the internal infrastructure."""
        if status == 500:
            nonce = str(uuid.uuid4())
            self.nonces.append(nonce)
            return {"nonce": nonce}
        if status == 502:
            return {"error": "unexpected response from the internal infrastructure"}
        if status == 504:
            return {"error": "no response from the internal infrastructure"}
        return {"error": "simulated fault"}

    def fail_next_operation(self, kind: str | None = None, at_step: str | None = None) -> None:
        """Make the next started operation of ``kind`` (any if None) fail at
        ``at_step`` (its last step if None)."""
        if kind is not None and kind not in OP_EVENTS:
            raise ValueError(f"unknown operation kind {kind!r}")
        if at_step is not None:
            kinds = [kind] if kind else list(OP_EVENTS)
            if not any(at_step in OP_EVENTS[k] for k in kinds):
                raise ValueError(f"no step {at_step!r} in {kind or 'any operation'}")
        self._op_failures.append(_OpFailure(kind, at_step))

    def state_dump(self) -> dict[str, Any]:
        """Databases, backups, schedules, operations and faults (no api key)."""
        self.advance()
        return {
            "databases": [db.to_json() for db in self._dbs.values()],
            "backups": [
                {**b.to_json(), "databaseId": b.database_id} for b in self._backups.values()
            ],
            "schedules": dict(self._schedules),
            "operations": [o.to_json(self.step_seconds) for o in self._ops.values()],
            "pendingOperationFailures": [vars(f) for f in self._op_failures],
            "faults": self.faults.to_json(),
        }

    # ---- operation engine -------------------------------------------------------

    def _active_op(self, db_id: str) -> Operation | None:
        for op in self._ops.values():
            if op.status == "started" and op.database_id == db_id:
                return op
        return None

    def _start_op(self, db: Database, kind: str, *, backup_id: str | None = None) -> Operation:
        op = Operation(
            id=new_id(),
            database_id=db.id,
            kind=kind,
            description=f"{kind} database {db.name}",
            started_clock=self.clock(),
            started_at=int(time.time()),
            prev_state=db.state,
            backup_id=backup_id,
        )
        for failure in self._op_failures:
            if failure.kind in (None, kind) and (
                failure.at_step is None or failure.at_step in op.steps
            ):
                self._op_failures.remove(failure)
                op.fail_at = op.steps.index(failure.at_step or op.steps[-1])
                break
        db.state = OP_STATES[kind]
        self._ops[op.id] = op
        return op

    def advance(self) -> None:
        """Bring every started operation up to date with ``clock``."""
        now = self.clock()
        for op in self._ops.values():
            if op.status != "started":
                continue
            elapsed = now - op.started_clock
            done = int(elapsed // self.step_seconds) if self.step_seconds > 0 else len(op.steps)
            if op.fail_at is not None and done > op.fail_at:
                op.reached = op.fail_at + 1
                op.status = "failed"
                self._on_failure(op)
            elif done >= len(op.steps):
                op.reached = len(op.steps)
                op.status = "finished"
                self._on_success(op)
            else:
                op.reached = done + 1

    def _on_success(self, op: Operation) -> None:
        db = self._dbs.get(op.database_id)
        if db is None:
            return
        db.state = "running"
        if op.kind == "delete":
            del self._dbs[db.id]
            self._schedules.pop(db.id, None)
        elif op.kind == "empty":
            db.nodes = db.relationships = 0
        elif op.kind == "import":
            db.nodes, db.relationships = 1_000, 5_000
        elif op.kind == "backup" and op.backup_id in self._backups:
            self._backups[op.backup_id].state = "done"

    def _on_failure(self, op: Operation) -> None:
        if op.kind == "create":
            self._dbs.pop(op.database_id, None)
            return
        db = self._dbs.get(op.database_id)
        if db is not None:
            db.state = op.prev_state
        if op.kind == "backup" and op.backup_id is not None:
            self._backups.pop(op.backup_id, None)

    # ---- request helpers --------------------------------------------------------

    async def before_handler(self, request: web.Request) -> None:
        """Check the ``api_key`` header and advance operations."""
        self.advance()
        key = request.headers.get("api_key")
        if not key:
            raise SimulatedError(401, "missing api_key header")
        if not secrets.compare_digest(key.encode(), self.api_key.encode()):
            raise SimulatedError(401, "invalid api_key")

    @staticmethod
    async def _body(request: web.Request) -> dict[str, Any]:
        raw = await request.read()
        if not raw.strip():
            raise SimulatedError(400, "a JSON body is required")
        try:
            data = json.loads(raw)
        except ValueError:
            raise SimulatedError(400, "invalid JSON body") from None
        if not isinstance(data, dict):
            raise SimulatedError(400, "JSON body must be an object")
        return data

    @staticmethod
    def _str_field(data: dict[str, Any], key: str, *, optional: bool = False) -> str | None:
        value = data.get(key)
        if value is None:
            if optional:
                return None
            raise SimulatedError(400, f"missing field {key}")
        if not isinstance(value, str) or not value:
            raise SimulatedError(400, f"field {key} must be a non-empty string")
        return value

    def _db(self, request: web.Request) -> Database:
        db = self._dbs.get(request.match_info["db_id"])
        if db is None:
            raise SimulatedError(404, "database not found")
        return db

    def _backup(self, request: web.Request, db: Database) -> Backup:
        backup = self._backups.get(request.match_info["backup_id"])
        if backup is None or backup.database_id != db.id:
            raise SimulatedError(404, "backup not found")
        return backup

    def _check_idle(self, db: Database) -> None:
        if self._active_op(db.id) is not None:
            raise SimulatedError(409, BUSY)

    @staticmethod
    def _require_backup_plan(db: Database, what: str) -> None:
        if db.plan in NO_BACKUP_PLANS:
            raise SimulatedError(400, f"{what} need a Standard plan or above (this is {db.plan})")

    @staticmethod
    def _accepted(payload: dict[str, Any]) -> web.Response:
        return web.json_response(payload, status=202)

    def _link(self, kind: str, db_id: str, filename: str) -> str:
        link = fake_link(kind, db_id, filename)
        self.links.append(link)
        return link

    # ---- routes -----------------------------------------------------------------

    def routes(self) -> list[web.RouteDef]:
        """All v1 routes."""
        d = f"{API}/databases/{HEX % 'db_id'}"
        b = f"{d}/backups/{HEX % 'backup_id'}"
        return [
            web.get(f"{API}/databases/versions", self.h_versions),
            web.get(f"{API}/databases", self.h_list),
            web.post(f"{API}/databases", self.h_create),
            web.get(d, self.h_get),
            web.delete(d, self.h_delete),
            web.put(d + "/restart", self.h_restart),
            web.put(d + "/empty", self.h_empty),
            web.get(d + "/backups", self.h_backups),
            web.post(d + "/backups", self.h_take_backup),
            web.get(d + "/backups/latest", self.h_latest_backup),
            web.get(d + "/backups/schedule", self.h_get_schedule),
            web.put(d + "/backups/schedule", self.h_put_schedule),
            web.get(b, self.h_backup),
            web.put(b + "/restore", self.h_restore),
            web.get(b + "/package", self.h_package),
            web.put(d + "/export", self.h_export),
            web.get(d + "/export", self.h_export),
            web.put(d + "/import", self.h_import),
            web.get(f"{API}/operations/{HEX % 'op_id'}", self.h_operation),
        ]

    async def h_versions(self, request: web.Request) -> web.Response:
        """``GET /v1/databases/versions``."""
        return self.collection("versions", VERSIONS)

    async def h_list(self, request: web.Request) -> web.Response:
        """``GET /v1/databases``."""
        return self.collection("databases", [self.database_json(db) for db in self._dbs.values()])

    async def h_get(self, request: web.Request) -> web.Response:
        """``GET /v1/databases/{id}``."""
        return web.json_response(self.database_json(self._db(request)))

    async def h_create(self, request: web.Request) -> web.Response:
        """``POST /v1/databases``: 202 ``{"operation": id}``."""
        data = await self._body(request)
        name = str(self._str_field(data, "name"))
        version = self._str_field(data, "version")
        region = str(self._str_field(data, "awsRegion"))
        plan = str(self._str_field(data, "plan"))
        network = self._str_field(data, "privateNetworkId", optional=True)
        if not NAME_RE.match(name):
            raise SimulatedError(400, "invalid name: must match ^[a-z][a-z0-9-]{2,39}$")
        if plan == "cluster":
            raise SimulatedError(400, "plan cluster is not accepted")
        if plan not in PLANS:
            raise SimulatedError(400, f"unknown plan {plan}")
        if region not in REGIONS:
            raise SimulatedError(400, f"unknown awsRegion {region}")
        if not any(v["version"] == version for v in VERSIONS):
            raise SimulatedError(400, f"unknown version {version}")
        if any(db.name == name for db in self._dbs.values()):
            raise SimulatedError(400, f"a database named {name} already exists")
        db = self.add_database(name, plan=plan, version=str(version), region=region)
        db.private_network_id = network
        op = self._start_op(db, "create")
        if self.shaped("v1-create-201"):
            return web.json_response(self.database_json(db), status=201)
        if self.shaped("v1-create-empty"):
            return web.Response(status=202)
        return self._accepted({"operation": op.id})

    async def h_delete(self, request: web.Request) -> web.Response:
        """``DELETE /v1/databases/{id}``."""
        db = self._db(request)
        self._check_idle(db)
        return self._accepted({"operationId": self._start_op(db, "delete").id})

    async def h_restart(self, request: web.Request) -> web.Response:
        """``PUT /v1/databases/{id}/restart``."""
        db = self._db(request)
        self._check_idle(db)
        return self._accepted({"operationId": self._start_op(db, "restart").id})

    async def h_empty(self, request: web.Request) -> web.Response:
        """``PUT /v1/databases/{id}/empty`` (501 on sandbox plans)."""
        db = self._db(request)
        self._check_idle(db)
        if db.plan == "sandbox":
            raise SimulatedError(501, "empty is not implemented for sandbox databases")
        return self._accepted({"operationId": self._start_op(db, "empty").id})

    async def h_backups(self, request: web.Request) -> web.Response:
        """``GET .../backups`` (oldest first)."""
        db = self._db(request)
        return self.collection(
            "backups", [b.to_json() for b in self._backups.values() if b.database_id == db.id]
        )

    async def h_latest_backup(self, request: web.Request) -> web.Response:
        """``GET .../backups/latest``: the newest done backup."""
        db = self._db(request)
        done = [b for b in self._backups.values() if b.database_id == db.id and b.state == "done"]
        if not done:
            raise SimulatedError(404, "no backups")
        return web.json_response(done[-1].to_json())

    async def h_backup(self, request: web.Request) -> web.Response:
        """``GET .../backups/{backupId}``."""
        db = self._db(request)
        return web.json_response(self._backup(request, db).to_json())

    async def h_take_backup(self, request: web.Request) -> web.Response:
        """``POST .../backups``: a manual backup (snapshot)."""
        db = self._db(request)
        self._check_idle(db)
        self._require_backup_plan(db, "manual backups")
        backup = self.add_backup(db.id, origin="manual", state="working")
        op = self._start_op(db, "backup", backup_id=backup.id)
        return self._accepted({"operationId": op.id, "backupId": backup.id})

    async def h_restore(self, request: web.Request) -> web.Response:
        """``PUT .../backups/{backupId}/restore``."""
        db = self._db(request)
        backup = self._backup(request, db)
        self._check_idle(db)
        if backup.state != "done":
            raise SimulatedError(400, "backup is not ready")
        op = self._start_op(db, "restore", backup_id=backup.id)
        return self._accepted({"operationId": op.id})

    async def h_package(self, request: web.Request) -> web.Response:
        """``GET .../backups/{backupId}/package``: a one-time link."""
        db = self._db(request)
        backup = self._backup(request, db)
        if backup.state != "done":
            raise SimulatedError(400, "backup is not ready")
        if not backup.downloadable:
            raise SimulatedError(400, "this backup is not downloadable")
        return web.json_response({"backupUrl": self._link("backups", db.id, "graph.tar.gz")})

    async def h_get_schedule(self, request: web.Request) -> web.Response:
        """``GET .../backups/schedule``."""
        db = self._db(request)
        self._require_backup_plan(db, "scheduled backups")
        schedule = self._schedules.get(db.id)
        if schedule is None:
            raise SimulatedError(404, "no backup schedule")
        return web.json_response(schedule)

    async def h_put_schedule(self, request: web.Request) -> web.Response:
        """``PUT .../backups/schedule`` {time, timezone, frequency}."""
        db = self._db(request)
        data = await self._body(request)
        at = str(self._str_field(data, "time"))
        timezone = self._str_field(data, "timezone", optional=True) or "UTC"
        frequency = self._str_field(data, "frequency", optional=True) or "daily"
        if not TIME_RE.match(at):
            raise SimulatedError(400, "field time must be H:MM:SS")
        if timezone != "UTC":
            raise SimulatedError(400, "field timezone must be UTC")
        if frequency != "daily":
            raise SimulatedError(400, "field frequency must be daily")
        self._check_idle(db)
        self._require_backup_plan(db, "scheduled backups")
        hours, minutes, seconds = at.split(":")
        schedule = {
            "time": f"{int(hours)}:{minutes}:{seconds}",
            "timezone": timezone,
            "frequency": frequency,
        }
        self._schedules[db.id] = schedule
        return web.json_response(schedule)

    async def h_export(self, request: web.Request) -> web.Response:
        """``PUT`` (or ``GET``) ``.../export``: a one-time link to graphdb.zip."""
        db = self._db(request)
        self._check_idle(db)
        size = db.to_json()["currentSize"]
        return web.json_response({"url": self._link("exports", db.id, "graphdb.zip"), "size": size})

    async def h_import(self, request: web.Request) -> web.Response:
        """``PUT .../import`` {url}: an S3 https URL."""
        db = self._db(request)
        data = await self._body(request)
        url = str(self._str_field(data, "url"))
        host = url.removeprefix("https://").split("/", 1)[0]
        if not url.startswith("https://") or "s3" not in host:
            raise SimulatedError(400, "field url must be an https URL of an S3 bucket")
        self._check_idle(db)
        return self._accepted({"operationId": self._start_op(db, "import").id})

    async def h_operation(self, request: web.Request) -> web.Response:
        """``GET /v1/operations/{id}``."""
        op = self._ops.get(request.match_info["op_id"])
        if op is None:
            raise SimulatedError(404, "operation not found")
        return web.json_response(op.to_json(self.step_seconds))
