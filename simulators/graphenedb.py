"""Stateful fake of the GrapheneDB Console API (``api.db.graphenedb.com``).

It serves only what the seeds (``graphenedb-console-api.txt``, ``-examples.txt``)
and ``graphenedb-observed-shapes.md`` say; every guess is named below, and the
uncertain shapes have variants (``SHAPES``, picked with ``shapes=`` or
``graphops simulate --shapes``) so clients are tested against each.
Operations are lazy state machines: each step lasts ``step_seconds`` on ``clock`` and
state is advanced from elapsed time at every request (and in the test accessors), so
there is no background task.

Documented or observed (the default shapes):

- Paths, request bodies and the form-encoded token request: the seeds.
- Token answer ``{access_token, token_type, expires_in}`` with status 201 (the newest
  observed client; variant ``token-200``).
- Environment ``{id, label, organizationId, grantType, region, cidr, createdAt,
  vpcPeers, networkRules, stoppedAt}``: ``label``, not ``name``; no ``type``.
- Database ``{id, organizationId, environmentId, name, domainName, privateDomainName,
  httpPort, boltPort, createdAt, status, plan, version: {number, edition, vendor},
  nodes: [{stationId, nodeType}]}``; Status ``{state, needsRestart, isPending,
  isLocked, underIncident, lastHealthCheckStatus: {lastCheckSecondsAgo, status}}``.
- Create answers ``{database, operationId}``; restart echoes ``{stationIds, reset}``.
- Operation by id ``{id, nextOperationId, status, startedAt, durationInSeconds}``
  (observed: no steps); the collection lists ``{id, operationType, startedAt, steps,
  status}`` (seed), status ``started | finished | failed``, ``startedAt`` UNIX epoch.
- Steps: the seed says "Collection of events", and the v1 seed's Operation Event is
  ``{state, createdAt}``: so each step reached is an event ``{state, createdAt}``
  (no name, no status); events appear as steps start.
- Errors ``{"error": "<reason>"}``; dates RFC 7231 (``createdAt``).

Guesses (no document names them):

- Collections (environments, databases, snapshots, operations, catalogs) are bare
  JSON lists (variant ``lists-wrapped``: ``{"environments": [...]}``...).
- ``grantType`` values: production "red", staging "amber", development "green".
- Restart's answer also carries ``operationId`` (variant ``restart-echo``: only the
  echo, as observed). Every other async command answers 202 ``{"operationId"}``
  (by analogy with plan change, observed), clone and create-from-snapshot
  ``{database, operationId}`` (like create), manual snapshot ``{snapshot, operationId}``.
- Snapshot ``{id, databaseId, environmentId, createdAt, status, sizeBytes, kind}``
  (no document shows one); status "working" then "done".
- Catalogs: versions ``{number, edition, vendor}`` (like a database's version), plans
  ``{name, memoryGb, storageGb}``, regions ``{id, label}``.
- A clone runs as two chained operations (clone, then provision-clone), linked by
  ``nextOperationId`` (the observed chain); variant ``chains`` splits every operation
  of two steps or more into two chained operations.
- Step names per operation type (``STEPS``); the v1 seed's examples (freezing-volume,
  creating-snapshot, copy-snapshot) are among them.
- Import needs a multipart ``file`` part and a ``Content-Length`` (400 "a
  Content-Length is required for the upload" for a chunked body: the seed's curl sends
  a length, and a server that reads by length refuses chunked uploads).

Variants of the uncertain shapes (``SHAPES``):

- ``steps-named``: steps are ``{name, status}`` for every planned step, status
  pending | running | finished | failed, instead of events.
- ``op-steps``: the operation by id also carries ``operationType`` and ``steps``.
- ``chains``: every operation of two steps or more runs as two operations chained by
  ``nextOperationId`` (the effect happens when the second finishes).
- ``lists-wrapped``: collections wrapped in an object named after them.
- ``token-200``: the token is answered with 200 (an older observed client).
- ``env-name``: environments carry ``name`` instead of ``label``.
- ``restart-echo``: restart answers only ``{stationIds, reset}``.
- ``copy-op-only``: clone and create-from-snapshot answer only ``{operationId}`` (no
  ``database``): the new database is known by its name in the target environment.

Behaviour where the seeds are silent:

- Token: ``access_token`` is ``secrets.token_urlsafe(32)``; only form-encoded bodies
  are read (a JSON body gives 400 "missing field client_id"). Field checks (400) come
  before the credential check (401). Auth is checked before route matching, so an
  unknown path without a token gives 401, with a token 404.
- Validation order on POST bodies: bad JSON / missing or mistyped fields (400), unknown
  referenced objects (404), state conflicts (409 busy or locked), state preconditions
  (400).
- Versions: 5.24.0 enterprise, 5.24.0 community, 4.4.16 enterprise; create needs
  ``version``+``edition`` to be one of these pairs. ``plan`` must be ds1|ds2|ds3.
  ``enabledExtrasKinds`` is optional (default ``[]``), a list of strings.
- Busy (409 "another operation is in progress on this database"): a database is busy
  while a started operation names it as ``databaseId`` or involves it (the new database
  of a clone, the target of a switch). A locked database (``set_locked``) refuses
  mutating requests with 409 "database is locked". ``underIncident`` only changes the
  status (``lastHealthCheckStatus.status`` becomes "failing").
- Preconditions (400): restart, clone, snapshot, import and switch need the database
  ``running`` ("database is not running"); pause needs running, start needs ``paused``
  ("database is not paused"); restore into an existing database needs running or
  paused; terminate works from any idle state.
- States during operations: create "creating"; pause "pausing"; resume "resuming";
  restart "restarting"; clone and provision-clone: source "cloning", new database
  "creating"; snapshot "snapshotting"; restore "restoring" (a database created from a
  snapshot is "creating"; its operation has type "restore"); terminate "terminating";
  switch: source "switching" (the target keeps its state but is busy); import
  "importing".
- The switch swaps both ``domainName`` and ``privateDomainName``.
- A failed operation: status "failed"; its last event (or, with ``steps-named``, its
  step "failed", later steps "pending") is the step it failed at; no error text (no
  document has one). The database returns to its previous state; a database being
  created (create, clone, create-from-snapshot) is removed; a working snapshot is
  removed. ``fail_next_operation`` without ``at_step`` fails at the LAST step.
- ``durationInSeconds``: steps run x ``step_seconds``, rounded, null while started.
  ``startedAt``: wall-clock epoch when requested; a chained operation starts at its
  predecessor's ``startedAt + durationInSeconds``.
- Restore/create-from-snapshot: unknown ``snapshotId`` -> 404 "snapshot not found";
  ``snapshotEnvironmentId`` different from the snapshot's environment -> 400; a
  snapshot still "working" -> 400 "snapshot is not ready". Snapshots outlive their
  database.
- Operations of a removed database stay readable at ``.../{dbId}/operations[/{opId}]``.
- ``lastHealthCheckStatus.lastCheckSecondsAgo`` is the age of the last health check
  modulo 60 (a fake check every minute).
- Restart: body optional; ``stationIds`` must be ids of the database's nodes (empty =
  all), ``reset`` a bool (default false).
- Import: 400 "expected a multipart upload with a file field" when not multipart or no
  ``file`` part; other parts are drained and ignored.
- ``/_sim/faults`` accepts ``"fail_next_operation": {"operation_type": str|null,
  "at_step": str|null}`` (or a list of them). ``/_sim/state`` dumps environments,
  databases, snapshots, operations, token counts (never tokens or secrets).
"""

from __future__ import annotations

import json
import re
import secrets
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from email.utils import formatdate
from types import MappingProxyType
from typing import Any

from aiohttp import web

from simulators.base import LISTS_WRAPPED, UPLOAD_BYTES, SimulatedError, SimulatorServer

ORG_ID = "org-demo"
TOKEN_PATH = "/organizations/oauth/token"
DB = "/deployments/databases/graphneo"
NAME_RE = re.compile(r"^[a-z][a-z0-9-]{2,39}$")

VERSIONS: list[dict[str, str]] = [
    {"number": "5.24.0", "edition": "enterprise", "vendor": "graphneo"},
    {"number": "5.24.0", "edition": "community", "vendor": "graphneo"},
    {"number": "4.4.16", "edition": "enterprise", "vendor": "graphneo"},
]
PLANS: list[dict[str, Any]] = [
    {"name": "ds1", "memoryGb": 1, "storageGb": 10},
    {"name": "ds2", "memoryGb": 2, "storageGb": 20},
    {"name": "ds3", "memoryGb": 4, "storageGb": 40},
]
REGIONS: list[dict[str, str]] = [
    {"id": "eu-west-1", "label": "EU (Ireland)"},
    {"id": "us-east-1", "label": "US East (N. Virginia)"},
]

STEPS: dict[str, list[str]] = {
    "create": ["allocating-resources", "creating-volume", "starting-database", "health-check"],
    "pause": ["creating-snapshot", "stopping-database", "freezing-volume"],
    "resume": ["unfreezing-volume", "starting-database", "health-check"],
    "restart": ["stopping-database", "starting-database", "health-check"],
    "clone": ["creating-snapshot", "copy-snapshot"],
    "provision-clone": ["creating-volume", "starting-database"],
    "snapshot": ["freezing-volume", "creating-snapshot", "unfreezing-volume"],
    "restore": ["stopping-database", "restoring-snapshot", "starting-database"],
    "terminate": ["stopping-database", "deleting-volume"],
    "switch": ["updating-dns", "verifying-connections"],
    "import": ["uploading-archive", "stopping-database", "importing", "starting-database"],
}
BUSY = "another operation is in progress on this database"


def new_id() -> str:
    """A fresh 32-hex-char id."""
    return uuid.uuid4().hex


def http_date() -> str:
    """Now as an RFC 7231 date."""
    return formatdate(usegmt=True)


@dataclass
class Environment:
    """An environment of the organization."""

    id: str
    label: str
    grant_type: str
    created_at: str = field(default_factory=http_date)

    def to_json(self, label_key: str = "label") -> dict[str, Any]:
        """The observed shape (``label_key`` "name" for the ``env-name`` variant)."""
        return {
            "id": self.id,
            label_key: self.label,
            "organizationId": ORG_ID,
            "grantType": self.grant_type,
            "region": "eu-west-1",
            "cidr": "10.0.0.0/16",
            "createdAt": self.created_at,
            "vpcPeers": [],
            "networkRules": [],
            "stoppedAt": None,
        }


@dataclass
class Database:
    """A graphneo database."""

    id: str
    environment_id: str
    name: str
    plan: str
    version: str
    edition: str
    state: str
    extras: list[str] = field(default_factory=list)
    domain_name: str = ""
    private_domain_name: str = ""
    station_id: str = field(default_factory=new_id)
    created_at: str = field(default_factory=http_date)
    health_checked_at: float = 0.0
    is_locked: bool = False
    under_incident: bool = False

    def __post_init__(self) -> None:
        short = self.id[:8]
        self.domain_name = self.domain_name or f"{self.name}-{short}.db.graphenedb.example"
        self.private_domain_name = (
            self.private_domain_name or f"{self.name}-{short}.private.db.graphenedb.example"
        )

    def status_json(self, now: float, pending: bool) -> dict[str, Any]:
        """The Status shape."""
        return {
            "state": self.state,
            "needsRestart": False,
            "isPending": pending,
            "isLocked": self.is_locked,
            "underIncident": self.under_incident,
            "lastHealthCheckStatus": {
                "lastCheckSecondsAgo": int(max(0.0, now - self.health_checked_at)) % 60,
                "status": "failing" if self.under_incident else "ok",
            },
        }

    def to_json(self, now: float, pending: bool) -> dict[str, Any]:
        """The Database shape."""
        return {
            "id": self.id,
            "organizationId": ORG_ID,
            "environmentId": self.environment_id,
            "name": self.name,
            "domainName": self.domain_name,
            "privateDomainName": self.private_domain_name,
            "httpPort": 7474,
            "boltPort": 7687,
            "createdAt": self.created_at,
            "status": self.status_json(now, pending),
            "plan": self.plan,
            "version": {"number": self.version, "edition": self.edition, "vendor": "graphneo"},
            "nodes": [{"stationId": self.station_id, "nodeType": "primary"}],
        }


@dataclass
class Snapshot:
    """A manual snapshot; keeps plan/version of its database for restores."""

    id: str
    database_id: str
    environment_id: str
    size_bytes: int
    plan: str
    version: str
    edition: str
    status: str = "working"
    created_at: str = field(default_factory=http_date)

    def to_json(self) -> dict[str, Any]:
        """The Snapshot shape."""
        return {
            "id": self.id,
            "databaseId": self.database_id,
            "environmentId": self.environment_id,
            "createdAt": self.created_at,
            "status": self.status,
            "sizeBytes": self.size_bytes,
            "kind": "manual",
        }


@dataclass
class Operation:
    """An asynchronous operation: a list of steps, each ``step_seconds`` long.

    ``prev_state`` is the database state to return to on failure, ``new_db_id`` a
    database being created by it, ``target_id`` the other database of a switch,
    ``snapshot_id`` the snapshot it creates or restores."""

    id: str
    database_id: str
    operation_type: str
    started_clock: float
    started_at: int
    prev_state: str | None = None
    new_db_id: str | None = None
    target_id: str | None = None
    snapshot_id: str | None = None
    fail_at: int | None = None
    status: str = "started"
    current: int = 0
    next_operation_id: str | None = None
    duration: int | None = None
    step_names: list[str] | None = None  # its part of a chain (variant ``chains``)
    rest: list[str] | None = None  # steps a chained operation will run after it

    @property
    def steps(self) -> list[str]:
        """Step names of this operation (its type's, or its part of a chain)."""
        return self.step_names if self.step_names is not None else STEPS[self.operation_type]

    def involves(self, db_id: str) -> bool:
        """True if this operation works on ``db_id`` in any role."""
        return db_id in (self.database_id, self.new_db_id, self.target_id)

    def steps_json(self, named: bool, step_seconds: float) -> list[dict[str, Any]]:
        """Events ``{state, createdAt}`` of the steps reached, or (``named``) every step
        as ``{name, status}``."""
        steps: list[dict[str, Any]] = []
        for i, name in enumerate(self.steps):
            if self.status == "finished" or i < self.current:
                st = "finished"
            elif i == self.current:
                st = {"started": "running", "failed": "failed"}[self.status]
            else:
                st = "pending"
            if named:
                steps.append({"name": name, "status": st})
            elif st != "pending":
                steps.append(
                    {"state": name, "createdAt": self.started_at + round(i * step_seconds)}
                )
        return steps

    def by_id_json(self, with_steps: bool, named: bool, step_seconds: float) -> dict[str, Any]:
        """``GET .../operations/{id}``: the observed shape (``with_steps``: plus type, steps)."""
        body: dict[str, Any] = {
            "id": self.id,
            "nextOperationId": self.next_operation_id,
            "status": self.status,
            "startedAt": self.started_at,
            "durationInSeconds": self.duration,
        }
        if with_steps:
            body["operationType"] = self.operation_type
            body["steps"] = self.steps_json(named, step_seconds)
        return body

    def listed_json(self, named: bool, step_seconds: float) -> dict[str, Any]:
        """An item of ``GET .../operations``: the seed's shape."""
        return {
            "id": self.id,
            "operationType": self.operation_type,
            "startedAt": self.started_at,
            "steps": self.steps_json(named, step_seconds),
            "status": self.status,
        }

    def to_json(self) -> dict[str, Any]:
        """Everything, for ``/_sim/state``."""
        return {
            **self.listed_json(True, 0),
            "databaseId": self.database_id,
            "nextOperationId": self.next_operation_id,
            "durationInSeconds": self.duration,
        }


@dataclass
class _OpFailure:
    operation_type: str | None
    at_step: str | None


class ConsoleSimulator(SimulatorServer):
    """Fake GrapheneDB Console API; see the module docstring for behaviour."""

    token_path = TOKEN_PATH
    SHAPES = MappingProxyType(
        {
            "steps-named": "steps as {name, status} for every planned step, not events",
            "op-steps": "the operation by id also carries operationType and steps",
            "chains": "every operation of 2+ steps runs as two chained operations",
            LISTS_WRAPPED: 'collections wrapped: {"environments": [...]} ...',
            "token-200": "the token is answered with 200, not 201",
            "env-name": "environments carry name, not label",
            "restart-echo": "restart answers only {stationIds, reset}, no operationId",
            "copy-op-only": "clone and create-from-snapshot answer only {operationId}",
        }
    )

    def __init__(
        self,
        *,
        client_id: str = "demo-client",
        client_secret: str = "demo-secret",
        step_seconds: float = 1.0,
        token_ttl: int = 3600,
        seed: int = 0,
        seed_data: bool = True,
        shapes: Iterable[str] = (),
    ) -> None:
        super().__init__(seed=seed, shapes=shapes)
        self.client_id = client_id
        self.client_secret = client_secret
        self.step_seconds = step_seconds
        self.token_ttl = token_ttl
        self.tokens_issued = 0
        self._tokens: dict[str, float] = {}
        self._expired: set[str] = set()
        self._envs: dict[str, Environment] = {}
        self._dbs: dict[str, Database] = {}
        self._snapshots: dict[str, Snapshot] = {}
        self._ops: dict[str, Operation] = {}
        self._op_failures: list[_OpFailure] = []
        if seed_data:
            self._seed()

    # ---- seed & accessors -------------------------------------------------------

    def _seed(self) -> None:
        prod = self.add_environment("production", "red")
        staging = self.add_environment("staging", "amber")
        dev = self.add_environment("development", "green")
        orders = self.add_database(prod.id, "orders-db")
        self.add_database(prod.id, "orders-replica")
        self.add_database(prod.id, "billing-db")
        self.add_snapshot(orders.id)
        self.add_database(staging.id, "orders-db")
        self.add_database(staging.id, "catalog-db", state="paused")
        self.add_database(dev.id, "sandbox-db")

    def add_environment(self, label: str, grant_type: str = "green") -> Environment:
        """Create an environment directly (test setup); ``grant_type`` is its colour."""
        env = Environment(new_id(), label, grant_type)
        self._envs[env.id] = env
        return env

    def add_database(
        self,
        environment_id: str,
        name: str,
        *,
        state: str = "running",
        plan: str = "ds1",
        version: str = "5.24.0",
        edition: str = "enterprise",
    ) -> Database:
        """Create an idle database directly (test setup)."""
        db = Database(new_id(), environment_id, name, plan, version, edition, state)
        db.health_checked_at = self.clock()
        self._dbs[db.id] = db
        return db

    def add_snapshot(self, database_id: str, status: str = "done") -> Snapshot:
        """Create a manual snapshot directly (test setup)."""
        db = self._dbs[database_id]
        size = self.faults.rng.randint(10_000_000, 500_000_000)
        snap = Snapshot(
            new_id(), db.id, db.environment_id, size, db.plan, db.version, db.edition, status
        )
        self._snapshots[snap.id] = snap
        return snap

    @property
    def environments(self) -> list[Environment]:
        """All environments."""
        return list(self._envs.values())

    @property
    def databases(self) -> list[Database]:
        """All existing databases (after advancing operations)."""
        self.advance()
        return list(self._dbs.values())

    @property
    def snapshots(self) -> list[Snapshot]:
        """All snapshots (after advancing operations)."""
        self.advance()
        return list(self._snapshots.values())

    @property
    def operations(self) -> list[Operation]:
        """All operations, oldest first (after advancing)."""
        self.advance()
        return list(self._ops.values())

    def find_environment(self, label: str) -> Environment:
        """The environment with this label (KeyError if none)."""
        for env in self._envs.values():
            if env.label == label:
                return env
        raise KeyError(label)

    def find_database(self, name: str, environment_label: str | None = None) -> Database:
        """The database named ``name`` (in the environment labelled so, if given);
        KeyError if none, ValueError if the name is ambiguous."""
        self.advance()
        found = [
            db
            for db in self._dbs.values()
            if db.name == name
            and (
                environment_label is None
                or self._envs[db.environment_id].label == environment_label
            )
        ]
        if not found:
            raise KeyError(name)
        if len(found) > 1:
            raise ValueError(f"{name!r} is ambiguous; give environment_label")
        return found[0]

    def database_json(self, db_id: str) -> dict[str, Any]:
        """The API representation of a database."""
        db = self._dbs[db_id]
        return db.to_json(self.clock(), self._active_op(db_id) is not None)

    def operation(self, op_id: str) -> Operation:
        """An operation by id (after advancing)."""
        self.advance()
        return self._ops[op_id]

    # ---- fault & state controls -------------------------------------------------

    def fail_next_operation(
        self, operation_type: str | None = None, at_step: str | None = None
    ) -> None:
        """Make the next started operation matching ``operation_type`` (any if None)
        fail at ``at_step`` (its last step if None)."""
        if operation_type is not None and operation_type not in STEPS:
            raise ValueError(f"unknown operation type {operation_type!r}")
        if at_step is not None:
            types = [operation_type] if operation_type else list(STEPS)
            if not any(at_step in STEPS[t] for t in types):
                raise ValueError(f"no step {at_step!r} in {operation_type or 'any operation'}")
        self._op_failures.append(_OpFailure(operation_type, at_step))

    def set_incident(self, db_id: str, value: bool) -> None:
        """Flag a database as under incident (health check failing)."""
        self._dbs[db_id].under_incident = value

    def set_locked(self, db_id: str, value: bool) -> None:
        """Lock a database: mutating requests get 409 while locked."""
        self._dbs[db_id].is_locked = value

    def expire_tokens(self) -> int:
        """Invalidate every issued token."""
        fresh = [t for t in self._tokens if t not in self._expired]
        self._expired.update(fresh)
        return len(fresh)

    def state_dump(self) -> dict[str, Any]:
        """Environments, databases, snapshots, operations and token counts."""
        self.advance()
        now, busy = self.clock(), self._busy_ids()
        return {
            "environments": [e.to_json() for e in self._envs.values()],
            "databases": [db.to_json(now, db.id in busy) for db in self._dbs.values()],
            "snapshots": [s.to_json() for s in self._snapshots.values()],
            "operations": [o.to_json() for o in self._ops.values()],
            "pendingOperationFailures": [vars(f) for f in self._op_failures],
            "tokensIssued": self.tokens_issued,
            "tokensActive": sum(1 for t in self._tokens if self._token_error(t) is None),
            "faults": self.faults.to_json(),
        }

    # ---- operation engine -------------------------------------------------------

    def _busy_ids(self) -> set[str]:
        """Ids of the databases a started operation works on (one pass over the
        operations, for a listing: not one per database)."""
        busy: set[str] = set()
        for op in self._ops.values():
            if op.status == "started":
                busy.update(i for i in (op.database_id, op.new_db_id, op.target_id) if i)
        return busy

    def _active_op(self, db_id: str) -> Operation | None:
        for op in self._ops.values():
            if op.status == "started" and op.involves(db_id):
                return op
        return None

    def _start_op(
        self,
        db: Database,
        op_type: str,
        state: str,
        *,
        started_clock: float | None = None,
        started_at: int | None = None,
        prev_state: str | None = None,
        step_names: list[str] | None = None,
        **extra: Any,
    ) -> Operation:
        rest = None
        if step_names is None and self.shaped("chains") and len(STEPS[op_type]) >= 2:
            half = len(STEPS[op_type]) // 2
            step_names, rest = STEPS[op_type][:half], STEPS[op_type][half:]
        op = Operation(
            id=new_id(),
            database_id=db.id,
            operation_type=op_type,
            started_clock=self.clock() if started_clock is None else started_clock,
            started_at=int(time.time()) if started_at is None else started_at,
            prev_state=db.state if prev_state is None else prev_state,
            step_names=step_names,
            rest=rest,
            **extra,
        )
        for failure in self._op_failures:
            if failure.operation_type in (None, op_type) and (
                failure.at_step is None or failure.at_step in op.steps
            ):
                self._op_failures.remove(failure)
                step = failure.at_step or op.steps[-1]
                op.fail_at = op.steps.index(step)
                break
        db.state = state
        self._ops[op.id] = op
        return op

    def advance(self) -> None:
        """Bring every started operation up to date with ``clock``."""
        now = self.clock()
        progressed = True
        while progressed:  # a finished clone starts provision-clone, which may finish too
            progressed = False
            for op in list(self._ops.values()):
                if op.status == "started" and self._advance_op(op, now):
                    progressed = True

    def _advance_op(self, op: Operation, now: float) -> bool:
        """Advance one operation; True when it ended."""
        done = int((now - op.started_clock) // self.step_seconds) if self.step_seconds > 0 else 99
        if op.fail_at is not None and done >= op.fail_at + 1:
            op.current = op.fail_at
            op.status = "failed"
            op.duration = round((op.fail_at + 1) * self.step_seconds)
            self._on_failure(op)
            return True
        if done < len(op.steps):
            op.current = done
            return False
        op.current = len(op.steps)
        op.status = "finished"
        op.duration = round(len(op.steps) * self.step_seconds)
        self._on_success(op)
        return True

    def _end_clock(self, op: Operation) -> float:
        return op.started_clock + len(op.steps) * self.step_seconds

    def _on_success(self, op: Operation) -> None:
        db = self._dbs.get(op.database_id)
        kind = op.operation_type
        if db is None:
            return
        db.health_checked_at = self._end_clock(op)
        if op.rest:  # variant "chains": the second half runs as the next operation
            nxt = self._start_op(
                db,
                kind,
                db.state,
                started_clock=self._end_clock(op),
                started_at=op.started_at + (op.duration or 0),
                prev_state=op.prev_state,
                step_names=op.rest,
                new_db_id=op.new_db_id,
                target_id=op.target_id,
                snapshot_id=op.snapshot_id,
            )
            op.next_operation_id = nxt.id
            return
        if kind == "clone":
            nxt = self._start_op(
                db,
                "provision-clone",
                db.state,
                started_clock=self._end_clock(op),
                started_at=op.started_at + (op.duration or 0),
                prev_state=op.prev_state,
                new_db_id=op.new_db_id,
            )
            op.next_operation_id = nxt.id
            return
        if kind == "terminate":
            del self._dbs[db.id]
            return
        if kind == "pause":
            db.state = "paused"
        elif kind in ("snapshot", "provision-clone", "switch"):
            db.state = op.prev_state or "running"
        else:
            db.state = "running"
        if op.new_db_id in self._dbs:
            new_db = self._dbs[op.new_db_id]
            new_db.state = "running"
            new_db.health_checked_at = db.health_checked_at
        if kind == "snapshot" and op.snapshot_id in self._snapshots:
            self._snapshots[op.snapshot_id].status = "done"
        if kind == "switch" and op.target_id in self._dbs:
            other = self._dbs[op.target_id]
            db.domain_name, other.domain_name = other.domain_name, db.domain_name
            db.private_domain_name, other.private_domain_name = (
                other.private_domain_name,
                db.private_domain_name,
            )

    def _on_failure(self, op: Operation) -> None:
        db = self._dbs.get(op.database_id)
        if op.operation_type == "create" or (
            op.operation_type == "restore" and op.prev_state == "creating"
        ):
            self._dbs.pop(op.database_id, None)
            return
        if db is not None and op.prev_state is not None:
            db.state = op.prev_state
        if op.new_db_id is not None:
            self._dbs.pop(op.new_db_id, None)
        if op.operation_type == "snapshot" and op.snapshot_id is not None:
            self._snapshots.pop(op.snapshot_id, None)

    # ---- request helpers --------------------------------------------------------

    def _token_error(self, token: str) -> str | None:
        issued = self._tokens.get(token)
        if issued is None:
            return "invalid token"
        if token in self._expired or self.clock() - issued > self.token_ttl:
            return "token expired"
        return None

    async def before_handler(self, request: web.Request) -> None:
        """Check the bearer token (except on the token endpoint) and advance
        operations."""
        self.advance()
        if request.path == TOKEN_PATH:
            return
        auth = request.headers.get("Authorization", "")
        scheme, _, token = auth.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise SimulatedError(401, "missing bearer token")
        error = self._token_error(token.strip())
        if error is not None:
            raise SimulatedError(401, error)

    async def _json(self, request: web.Request, *, optional: bool = False) -> dict[str, Any]:
        raw = await request.read()
        if not raw.strip():
            if optional:
                return {}
            raise SimulatedError(400, "a JSON body is required")
        try:
            data = json.loads(raw)
        except ValueError:
            raise SimulatedError(400, "invalid JSON body") from None
        if not isinstance(data, dict):
            raise SimulatedError(400, "JSON body must be an object")
        return data

    @staticmethod
    def _str_field(data: dict[str, Any], key: str) -> str:
        value = data.get(key)
        if value is None:
            raise SimulatedError(400, f"missing field {key}")
        if not isinstance(value, str) or not value:
            raise SimulatedError(400, f"field {key} must be a non-empty string")
        return value

    def _env(self, env_id: str) -> Environment:
        env = self._envs.get(env_id)
        if env is None:
            raise SimulatedError(404, "environment not found")
        return env

    def _db(self, request: web.Request) -> Database:
        db = self._dbs.get(request.match_info["db_id"])
        if db is None:
            raise SimulatedError(404, "database not found")
        return db

    def _check_idle(self, db: Database) -> None:
        if self._active_op(db.id) is not None:
            raise SimulatedError(409, BUSY)
        if db.is_locked:
            raise SimulatedError(409, "database is locked")

    def _check_new_name(self, env_id: str, name: str) -> None:
        if not NAME_RE.match(name):
            raise SimulatedError(400, "invalid name: must match ^[a-z][a-z0-9-]{2,39}$")
        if any(d.name == name and d.environment_id == env_id for d in self._dbs.values()):
            raise SimulatedError(400, f"a database named {name} already exists in this environment")

    @staticmethod
    def _require_state(db: Database, *states: str) -> None:
        if db.state not in states:
            raise SimulatedError(400, f"database is not {' or '.join(states)}")

    def _accepted(self, payload: dict[str, Any]) -> web.Response:
        return web.json_response(payload, status=202)

    # ---- routes -----------------------------------------------------------------

    def routes(self) -> list[web.RouteDef]:
        """All Console API routes."""
        d = DB + "/{db_id:[0-9a-zA-Z-]+}"
        return [
            web.post(TOKEN_PATH, self.h_token),
            web.get("/deployments/versions", self.h_versions),
            web.get("/deployments/plans", self.h_plans),
            web.get("/deployments/regions", self.h_regions),
            web.get("/deployments/environments", self.h_environments),
            web.get("/deployments/environments/{env_id}/databases", self.h_env_databases),
            web.post(DB, self.h_create),
            web.post(DB + "/restore", self.h_create_from_snapshot),
            web.get(d, self.h_get_database),
            web.delete(d, self.h_terminate),
            web.get(d + "/status", self.h_status),
            web.post(d + "/restart", self.h_restart),
            web.post(d + "/pause", self.h_pause),
            web.post(d + "/start", self.h_resume),
            web.post(d + "/clone", self.h_clone),
            web.get(d + "/snapshots/manual", self.h_list_snapshots),
            web.post(d + "/snapshots/manual", self.h_create_snapshot),
            web.post(d + "/restore", self.h_restore),
            web.post(d + "/connections/switch", self.h_switch),
            web.post(d + "/import", self.h_import),
            web.get(d + "/operations", self.h_operations),
            web.get(d + "/operations/{op_id}", self.h_operation),
        ]

    async def h_token(self, request: web.Request) -> web.Response:
        """``POST /organizations/oauth/token`` (form-encoded client credentials)."""
        form = await request.post()
        for key in ("client_id", "client_secret", "grant_type"):
            if not form.get(key):
                raise SimulatedError(400, f"missing field {key}")
        if form["grant_type"] != "client_credentials":
            raise SimulatedError(400, "unsupported grant_type")
        if form["client_id"] != self.client_id or form["client_secret"] != self.client_secret:
            raise SimulatedError(401, "invalid client credentials")
        token = secrets.token_urlsafe(32)
        self._tokens[token] = self.clock()
        self.tokens_issued += 1
        body = {"access_token": token, "token_type": "Bearer", "expires_in": self.token_ttl}
        return web.json_response(body, status=200 if self.shaped("token-200") else 201)

    async def h_versions(self, request: web.Request) -> web.Response:
        """``GET /deployments/versions``."""
        return self.collection("versions", VERSIONS)

    async def h_plans(self, request: web.Request) -> web.Response:
        """``GET /deployments/plans``."""
        return self.collection("plans", PLANS)

    async def h_regions(self, request: web.Request) -> web.Response:
        """``GET /deployments/regions``."""
        return self.collection("regions", REGIONS)

    async def h_environments(self, request: web.Request) -> web.Response:
        """``GET /deployments/environments``."""
        key = "name" if self.shaped("env-name") else "label"
        return self.collection("environments", [e.to_json(key) for e in self._envs.values()])

    async def h_env_databases(self, request: web.Request) -> web.Response:
        """``GET /deployments/environments/{envId}/databases``."""
        env = self._env(request.match_info["env_id"])
        now, busy = self.clock(), self._busy_ids()
        return self.collection(
            "databases",
            [
                d.to_json(now, d.id in busy)
                for d in self._dbs.values()
                if d.environment_id == env.id
            ],
        )

    async def h_get_database(self, request: web.Request) -> web.Response:
        """``GET .../graphneo/{dbId}``."""
        return web.json_response(self.database_json(self._db(request).id))

    async def h_status(self, request: web.Request) -> web.Response:
        """``GET .../graphneo/{dbId}/status``."""
        db = self._db(request)
        return web.json_response(db.status_json(self.clock(), self._active_op(db.id) is not None))

    async def h_create(self, request: web.Request) -> web.Response:
        """``POST /deployments/databases/graphneo``: create a database."""
        data = await self._json(request)
        env_id = self._str_field(data, "environmentId")
        name = self._str_field(data, "name")
        plan = self._str_field(data, "plan")
        version = self._str_field(data, "version")
        edition = self._str_field(data, "edition")
        extras = data.get("enabledExtrasKinds", [])
        if not isinstance(extras, list) or not all(isinstance(x, str) for x in extras):
            raise SimulatedError(400, "field enabledExtrasKinds must be a list of strings")
        if plan not in {p["name"] for p in PLANS}:
            raise SimulatedError(400, f"unknown plan {plan}")
        if not any(v["number"] == version and v["edition"] == edition for v in VERSIONS):
            raise SimulatedError(400, f"unknown version {version} {edition}")
        self._env(env_id)
        self._check_new_name(env_id, name)
        db = self.add_database(
            env_id, name, state="creating", plan=plan, version=version, edition=edition
        )
        db.extras = list(extras)
        op = self._start_op(db, "create", "creating", prev_state="creating")
        return self._accepted({"database": self.database_json(db.id), "operationId": op.id})

    async def h_restart(self, request: web.Request) -> web.Response:
        """``POST .../{dbId}/restart``."""
        db = self._db(request)
        data = await self._json(request, optional=True)
        station_ids = data.get("stationIds", [])
        reset = data.get("reset", False)
        if not isinstance(station_ids, list) or not all(isinstance(s, str) for s in station_ids):
            raise SimulatedError(400, "field stationIds must be a list of strings")
        if not isinstance(reset, bool):
            raise SimulatedError(400, "field reset must be a boolean")
        if any(s != db.station_id for s in station_ids):
            raise SimulatedError(400, "unknown stationId")
        self._check_idle(db)
        self._require_state(db, "running")
        op = self._start_op(db, "restart", "restarting")
        echo: dict[str, Any] = {"stationIds": station_ids, "reset": reset}
        return self._accepted(
            echo if self.shaped("restart-echo") else {**echo, "operationId": op.id}
        )

    async def h_pause(self, request: web.Request) -> web.Response:
        """``POST .../{dbId}/pause``."""
        db = self._db(request)
        self._check_idle(db)
        self._require_state(db, "running")
        return self._accepted({"operationId": self._start_op(db, "pause", "pausing").id})

    async def h_resume(self, request: web.Request) -> web.Response:
        """``POST .../{dbId}/start`` (resume)."""
        db = self._db(request)
        self._check_idle(db)
        self._require_state(db, "paused")
        return self._accepted({"operationId": self._start_op(db, "resume", "resuming").id})

    async def h_clone(self, request: web.Request) -> web.Response:
        """``POST .../{dbId}/clone``: clone + provision-clone chain on the source."""
        db = self._db(request)
        data = await self._json(request)
        name = self._str_field(data, "name")
        env_id = self._str_field(data, "environmentId")
        self._env(env_id)
        self._check_idle(db)
        self._require_state(db, "running")
        self._check_new_name(env_id, name)
        new = self.add_database(
            env_id, name, state="creating", plan=db.plan, version=db.version, edition=db.edition
        )
        new.extras = list(db.extras)
        op = self._start_op(db, "clone", "cloning", new_db_id=new.id)
        return self._accepted(self._copy_answer(new, op))

    def _copy_answer(self, new: Database, op: Operation) -> dict[str, Any]:
        """What clone and create-from-snapshot answer (guess; variant ``copy-op-only``)."""
        if self.shaped("copy-op-only"):
            return {"operationId": op.id}
        return {"database": self.database_json(new.id), "operationId": op.id}

    async def h_list_snapshots(self, request: web.Request) -> web.Response:
        """``GET .../{dbId}/snapshots/manual``."""
        db = self._db(request)
        snaps = [s.to_json() for s in self._snapshots.values() if s.database_id == db.id]
        return self.collection("snapshots", snaps)

    async def h_create_snapshot(self, request: web.Request) -> web.Response:
        """``POST .../{dbId}/snapshots/manual``."""
        db = self._db(request)
        self._check_idle(db)
        self._require_state(db, "running")
        snap = self.add_snapshot(db.id, status="working")
        op = self._start_op(db, "snapshot", "snapshotting", snapshot_id=snap.id)
        return self._accepted({"snapshot": snap.to_json(), "operationId": op.id})

    def _snapshot_from(self, data: dict[str, Any]) -> Snapshot:
        snap_id = self._str_field(data, "snapshotId")
        snap_env = self._str_field(data, "snapshotEnvironmentId")
        snap = self._snapshots.get(snap_id)
        if snap is None:
            raise SimulatedError(404, "snapshot not found")
        if snap.environment_id != snap_env:
            raise SimulatedError(400, "snapshot does not belong to snapshotEnvironmentId")
        if snap.status != "done":
            raise SimulatedError(400, "snapshot is not ready")
        return snap

    async def h_create_from_snapshot(self, request: web.Request) -> web.Response:
        """``POST /deployments/databases/graphneo/restore``: new database from a
        snapshot."""
        data = await self._json(request)
        env_id = self._str_field(data, "environmentId")
        name = self._str_field(data, "name")
        self._str_field(data, "snapshotId")
        self._str_field(data, "snapshotEnvironmentId")
        self._env(env_id)
        snap = self._snapshot_from(data)
        self._check_new_name(env_id, name)
        db = self.add_database(
            env_id,
            name,
            state="creating",
            plan=snap.plan,
            version=snap.version,
            edition=snap.edition,
        )
        op = self._start_op(db, "restore", "creating", snapshot_id=snap.id)
        return self._accepted(self._copy_answer(db, op))

    async def h_restore(self, request: web.Request) -> web.Response:
        """``POST .../{dbId}/restore``: restore a snapshot into an existing database."""
        db = self._db(request)
        data = await self._json(request)
        self._str_field(data, "snapshotId")
        self._str_field(data, "snapshotEnvironmentId")
        snap = self._snapshot_from(data)
        self._check_idle(db)
        self._require_state(db, "running", "paused")
        op = self._start_op(db, "restore", "restoring", snapshot_id=snap.id)
        return self._accepted({"operationId": op.id})

    async def h_terminate(self, request: web.Request) -> web.Response:
        """``DELETE .../{dbId}``."""
        db = self._db(request)
        self._check_idle(db)
        return self._accepted({"operationId": self._start_op(db, "terminate", "terminating").id})

    async def h_switch(self, request: web.Request) -> web.Response:
        """``POST .../{dbId}/connections/switch``: swap domain names when done."""
        db = self._db(request)
        data = await self._json(request)
        target_id = self._str_field(data, "targetDatabase")
        if target_id == db.id:
            raise SimulatedError(400, "target database must differ from the source")
        target = self._dbs.get(target_id)
        if target is None:
            raise SimulatedError(404, "target database not found")
        self._check_idle(db)
        self._check_idle(target)
        self._require_state(db, "running")
        if target.state != "running":
            raise SimulatedError(400, "target database is not running")
        op = self._start_op(db, "switch", "switching", target_id=target.id)
        return self._accepted({"operationId": op.id})

    async def h_import(self, request: web.Request) -> web.Response:
        """``POST .../{dbId}/import``: stream a multipart ``file`` upload, counting
        and discarding its bytes."""
        db = self._db(request)
        self._check_idle(db)
        self._require_state(db, "running")
        if not request.content_type.startswith("multipart/"):
            raise SimulatedError(400, "expected a multipart upload with a file field")
        if request.content_length is None:  # chunked: this server reads by length
            raise SimulatedError(400, "a Content-Length is required for the upload")
        received = 0
        found = False
        try:
            reader = await request.multipart()
            while (part := await reader.next()) is not None:
                is_file = getattr(part, "name", None) == "file"
                found = found or is_file
                read_chunk = getattr(part, "read_chunk", None)
                if read_chunk is None:  # nested multipart: ignore
                    continue
                while chunk := await read_chunk(64 * 1024):
                    if is_file:
                        received += len(chunk)
        except (ValueError, AssertionError) as exc:
            raise SimulatedError(400, f"malformed multipart body: {exc}") from None
        request[UPLOAD_BYTES] = received
        if not found:
            raise SimulatedError(400, "expected a multipart upload with a file field")
        if db.id not in self._dbs:
            raise SimulatedError(404, "database not found")
        self._check_idle(db)
        self._require_state(db, "running")
        op = self._start_op(db, "import", "importing")
        return self._accepted({"operationId": op.id})

    def _ops_of(self, request: web.Request) -> list[Operation]:
        db_id = request.match_info["db_id"]
        ops = [o for o in self._ops.values() if o.database_id == db_id]
        if not ops and db_id not in self._dbs:
            raise SimulatedError(404, "database not found")
        return ops

    async def h_operations(self, request: web.Request) -> web.Response:
        """``GET .../{dbId}/operations`` (newest first)."""
        ops = self._ops_of(request)
        named = self.shaped("steps-named")
        return self.collection(
            "operations", [o.listed_json(named, self.step_seconds) for o in reversed(ops)]
        )

    async def h_operation(self, request: web.Request) -> web.Response:
        """``GET .../{dbId}/operations/{opId}``."""
        op_id = request.match_info["op_id"]
        for op in self._ops_of(request):
            if op.id == op_id:
                return web.json_response(
                    op.by_id_json(
                        self.shaped("op-steps"), self.shaped("steps-named"), self.step_seconds
                    )
                )
        raise SimulatedError(404, "operation not found")
