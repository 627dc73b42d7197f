"""Stateful fake of the TypeDB HTTP API (TypeDB 3.x, ``typedb-http-api.txt``).

Every endpoint of the seed is served: ``/v1/signin``, ``/v1/version``, ``/health``,
``/v1/databases[/NAME[/schema|/type-schema]]``, ``/v1/users[/NAME]``,
``/v1/transactions/open``, ``/v1/transactions/ID/{query,commit,rollback,close}``
and ``/v1/query``. There is no background task: expired tokens and transactions
are noticed at each request, from ``clock``.

Choices made where the seed is silent:

- Errors are ``{"code", "message"}`` with TypeDB-style codes (except aiohttp's own
  404/405 for unknown routes and injected faults without a body, which follow
  ``simulators.base``; injected faults answer ``{"code": "SIM1", ...}``):
  ``REQ1`` malformed request (bad JSON, missing or mistyped field, bad name) 400;
  ``AUT1`` invalid credentials 401; ``AUT2`` missing/invalid token 401; ``AUT3``
  expired token 401; ``AUT4`` not allowed (user management by a non-admin, or
  another user's transaction) 403; ``DBE1`` no such database 404; ``DBE2``
  database exists 400; ``USR1`` no such user 404; ``USR2`` user exists 400;
  ``USR3`` the admin user cannot be deleted 400; ``QRY3`` a type or attribute the
  schema does not define 400; ``TXN1`` no such transaction 404;
  ``TXN2`` transaction timed out 408; ``TXN3`` schema lock not acquired in time
  408; ``TXN4`` query not allowed in this transaction type 400; ``TXN5`` a read
  transaction cannot be committed 400; ``QRY1`` query not understood 400; ``QRY2``
  the query ran past the transaction timeout 408.
- Authentication: the check comes before validation. A token is an HS256 JWT
  (``sub``, ``iat``, ``exp`` in wall-clock epoch seconds, ``exp - iat ==
  token_ttl``, default 14400 s as in the seed's example) but it expires on the
  simulator ``clock``: ``token_ttl`` seconds after issue (401 AUT3), or at
  ``expire_tokens()``. Changing a user's password (except one's own) or deleting
  the user revokes that user's tokens (401 AUT2). Version and health need no token.
  ``opaque_tokens=True`` issues random strings instead (a guess: the seed's example is
  a JWT but its schema says only ``"token": string``; clients must not rely on the shape).
- Users: the user named ``username`` (default ``admin``) is the administrator.
  Every ``/v1/users`` endpoint answers 403 AUT4 to anyone else (even for their
  own record). Any signed-in user may manage databases and run transactions.
- Databases: names match ``^[A-Za-z_][A-Za-z0-9_-]{0,63}$``. Seeded (unless
  ``seed_data=False``): ``social`` with a schema (types and one function) and
  three people (Alice 34, Bob 27, Carol 17) with a name and an age;
  ``inventory`` empty (schema ``""``).
  Deleting a database closes its transactions (later requests to them: 404).
- Schema text: ``schema`` is ``"define\\n<types><functions>"`` or ``""``;
  ``type-schema`` is the same without the functions. A committed ``define``
  query appends its body (a body starting with ``fun`` counts as a function);
  ``undefine``/``redefine`` are accepted and change nothing.
- Queries: a leading ``define|undefine|redefine`` is a schema query (answer
  ``ok``; needs a schema transaction). Any other query is parsed and run over
  the database's data with the TypeQL subset of ``simulators.typeql_subset``
  (``match`` / ``insert`` / ``delete`` / ``fetch`` / ``limit``; its docstring
  lists what is covered): what is inserted can be read back, and a type or
  attribute the schema does not define is 400 ``QRY3`` (a guess: the seed names
  no code). A query outside the subset (or not TypeQL) is 400 ``QRY1``, so the
  simulator never answers a query it did not understand. A query with an
  ``insert`` or ``delete`` stage is a write query (needs write or schema),
  otherwise a read. Answers use the seed's shapes: ``conceptRows`` (each row
  ``{"data": {var: concept}}``, instances as ``{kind, iid, type}`` and
  attributes as ``{kind, value, valueType, type}``) or, after ``fetch``,
  ``conceptDocuments``; ``includeInstanceTypes: false`` drops the ``type`` of
  instances. A write answers the rows of its ``insert`` (each inserted or
  matched variable), or ``ok`` when nothing is left to show (``delete``; a guess).
  Changes are made on the transaction's own copy: later queries of the same
  transaction see them, commit makes them the database's (and adds the query
  texts to its ``writes``), rollback and close drop them.
  Test hook: a database given ``rows``/``documents`` in ``add_database``
  answers every read with those, whatever the query (for shaping tests).
- ``answerCountLimit`` (default 10000) cuts rows/documents and sets ``warning``
  (see :func:`limit_warning`); otherwise ``warning`` is null.
- Transactions: ids are uuid4 hex; a transaction belongs to the user who opened it
  (403 AUT4 for others). ``transactionTimeoutMillis`` (default 300000) runs on
  ``clock``; an expired transaction is closed without its changes and every later
  request naming it answers 408 TXN2 (unknown ids answer 404 TXN1). Each query
  costs ``query_seconds`` of simulated time (default 0), added up per transaction
  on top of ``clock``: a query that would end past the deadline closes the
  transaction and answers 408 QRY2. Commit and
  close end the transaction; rollback drops the pending changes and keeps it open;
  committing a read transaction is 400 TXN5 (the transaction stays open).
- Schema lock: one schema transaction per database at a time. Opening a second
  waits up to ``schemaLockAcquireTimeoutMillis`` (default 10000) of REAL time
  (asyncio; a waiting request cannot watch a manual clock), polling every 10 ms
  and noticing expiry on ``clock`` as it goes; then 408 TXN3. Write and read
  transactions never wait.
- One-shot ``/v1/query``: a temporary transaction with the same rules; ``commit``
  defaults to true (ignored for read).
- ``/_sim/faults`` also accepts ``"query_seconds": number``. ``/_sim/state`` dumps
  databases (schema, writes), user names, transactions and token counts (never
  passwords or tokens). ``password`` fields are redacted in the request log by
  ``simulators.base``.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import re
import secrets
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from simulators.base import Handler, SimulatedError, SimulatorServer
from simulators.typeql_subset import (
    Attribute,
    Data,
    Evaluator,
    Instance,
    TypeQLError,
    UnknownLabel,
    parse_query,
    parse_schema,
    query_kind,
)

SIGNIN_PATH = "/v1/signin"
NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,63}$")
TX_TYPES = ("read", "write", "schema")
SCHEMA_WORDS = ("define", "undefine", "redefine")
DEFAULT_TX_TIMEOUT_MS = 300_000
DEFAULT_LOCK_TIMEOUT_MS = 10_000
DEFAULT_ANSWER_LIMIT = 10_000
LOCK_POLL_SECONDS = 0.01


def limit_warning(limit: int) -> str:
    """The ``warning`` of an answer cut by ``answerCountLimit``."""
    return (
        f"The query produced more than {limit} answers (answerCountLimit); "
        "only the first ones were returned."
    )


class TypeDBError(SimulatedError):
    """A handler error answered as TypeDB's ``{"code", "message"}``."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(status, message)
        self.code = code


# -- the fixed dataset ------------------------------------------------------------

SOCIAL_TYPES = (
    "  attribute name, value string;\n"
    "  attribute age, value integer;\n"
    "  entity person, owns name, owns age, plays friendship:friend;\n"
    "  relation friendship, relates friend @card(0..2);\n"
)
SOCIAL_FUNCTIONS = (
    "  fun adults() -> { person }:\n"
    "    match $p isa person, has age $a; $a >= 18;\n"
    "    return { $p };\n"
)
SOCIAL_PEOPLE = (("Alice", 34), ("Bob", 27), ("Carol", 17))


def _attribute(label: str, value: Any, value_type: str) -> dict[str, Any]:
    return {
        "kind": "attribute",
        "value": value,
        "valueType": value_type,
        "type": {"kind": "attributeType", "label": label, "valueType": value_type},
    }


def _entity(label: str, iid: str) -> dict[str, Any]:
    return {"kind": "entity", "iid": iid, "type": {"kind": "entityType", "label": label}}


def _social_data() -> Data:
    data = Data()
    for name, age in SOCIAL_PEOPLE:
        data.instances.append(Instance(data.new_iid(), "person", [("name", name), ("age", age)]))
    return data


def _strip_types(value: Any) -> Any:
    """A concept row without the ``type`` of instances (includeInstanceTypes false)."""
    if isinstance(value, dict):
        instance = value.get("kind") in ("entity", "relation", "attribute")
        return {k: _strip_types(v) for k, v in value.items() if not (instance and k == "type")}
    if isinstance(value, list):
        return [_strip_types(v) for v in value]
    return value


# -- state ------------------------------------------------------------------------


@dataclass
class Database:
    """A database: schema text (types, functions), its data and committed write queries.

    `rows`/`documents`, when given, are canned answers to every read (a test hook).
    """

    name: str
    types: str = ""
    functions: str = ""
    rows: list[dict[str, Any]] = field(default_factory=list)
    documents: list[dict[str, Any]] = field(default_factory=list)
    writes: list[str] = field(default_factory=list)
    data: Data = field(default_factory=Data)

    @property
    def canned(self) -> bool:
        return bool(self.rows or self.documents)

    def schema(self, *, with_functions: bool = True) -> str:
        """The ``define`` text, or ``""`` when nothing is defined."""
        body = self.types + (self.functions if with_functions else "")
        return f"define\n{body}" if body else ""


@dataclass
class Transaction:
    """An open transaction and its pending (uncommitted) changes."""

    id: str
    database: str
    type: str
    owner: str
    deadline: float
    elapsed: float = 0.0
    pending_schema: list[str] = field(default_factory=list)
    pending_writes: list[str] = field(default_factory=list)
    working: Data | None = None  # this transaction's changed copy of the data

    def to_json(self) -> dict[str, Any]:
        """The state-dump shape."""
        return {
            "id": self.id,
            "databaseName": self.database,
            "transactionType": self.type,
            "owner": self.owner,
            "deadline": self.deadline,
            "pendingQueries": len(self.pending_schema) + len(self.pending_writes),
        }


@dataclass
class _Token:
    username: str
    issued: float
    expired: bool = False


class TypeDBSimulator(SimulatorServer):
    """Fake TypeDB HTTP API; see the module docstring for behaviour."""

    token_path = SIGNIN_PATH

    def __init__(
        self,
        *,
        username: str = "admin",
        password: str = "password",
        token_ttl: int = 14_400,
        query_seconds: float = 0.0,
        default_transaction_timeout_ms: int = DEFAULT_TX_TIMEOUT_MS,
        default_lock_timeout_ms: int = DEFAULT_LOCK_TIMEOUT_MS,
        version: str = "3.2.0",
        seed: int = 0,
        seed_data: bool = True,
        opaque_tokens: bool = False,
    ) -> None:
        super().__init__(seed=seed)
        self.admin = username
        self.opaque_tokens = opaque_tokens
        self.token_ttl = token_ttl
        self.query_seconds = query_seconds
        self.default_transaction_timeout_ms = default_transaction_timeout_ms
        self.default_lock_timeout_ms = default_lock_timeout_ms
        self.server_version = version
        self.tokens_issued = 0
        self._jwt_key = secrets.token_bytes(32)
        self._users: dict[str, str] = {username: password}
        self._tokens: dict[str, _Token] = {}
        self._dbs: dict[str, Database] = {}
        self._txs: dict[str, Transaction] = {}
        self._timed_out: set[str] = set()
        if seed_data:
            self._seed()

    # ---- seed & accessors ---------------------------------------------------------

    def _seed(self) -> None:
        social = self.add_database("social", types=SOCIAL_TYPES, functions=SOCIAL_FUNCTIONS)
        social.data = _social_data()
        self.add_database("inventory")

    def add_database(
        self,
        name: str,
        *,
        types: str = "",
        functions: str = "",
        rows: list[dict[str, Any]] | None = None,
        documents: list[dict[str, Any]] | None = None,
    ) -> Database:
        """Create a database directly (test setup)."""
        db = Database(name, types, functions, list(rows or []), list(documents or []))
        self._dbs[name] = db
        return db

    def add_user(self, username: str, password: str) -> None:
        """Create a user directly (test setup)."""
        self._users[username] = password

    def database(self, name: str) -> Database:
        """A database by name (KeyError if none)."""
        return self._dbs[name]

    @property
    def usernames(self) -> list[str]:
        """Every user's name."""
        return sorted(self._users)

    @property
    def transactions(self) -> list[Transaction]:
        """The open transactions (after expiring the old ones)."""
        self._expire_transactions()
        return list(self._txs.values())

    def expire_tokens(self) -> int:
        """Revoke every issued token."""
        live = [t for t in self._tokens.values() if not t.expired]
        for token in live:
            token.expired = True
        return len(live)

    def apply_extra_faults(self, key: str, value: Any) -> bool:
        """``query_seconds`` for ``POST /_sim/faults``."""
        if key != "query_seconds":
            return False
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise ValueError("query_seconds must be a non-negative number")
        self.query_seconds = float(value)
        return True

    def fault_body(self, status: int) -> dict[str, Any]:
        """Injected errors look like TypeDB's."""
        return {"code": "SIM1", "message": "simulated fault"}

    def state_dump(self) -> dict[str, Any]:
        """Databases, user names, transactions, token counts (no secrets)."""
        return {
            "databases": [
                {
                    "name": db.name,
                    "schema": db.schema(),
                    "writes": list(db.writes),
                    "instances": len(db.data.instances),
                }
                for db in self._dbs.values()
            ],
            "users": self.usernames,
            "transactions": [tx.to_json() for tx in self.transactions],
            "tokensIssued": self.tokens_issued,
            "tokensActive": sum(1 for t in self._tokens.values() if self._token_live(t)),
            "faults": self.faults.to_json(),
        }

    # ---- tokens -------------------------------------------------------------------

    def _issue_token(self, username: str) -> str:
        if self.opaque_tokens:
            token = secrets.token_urlsafe(32)
            self._tokens[token] = _Token(username, self.clock())
            self.tokens_issued += 1
            return token
        iat = int(time.time())
        claims = {"sub": username, "iat": iat, "exp": iat + self.token_ttl, "jti": uuid.uuid4().hex}
        header = _b64(json.dumps({"typ": "JWT", "alg": "HS256"}).encode())
        payload = _b64(json.dumps(claims).encode())
        signature = hmac.new(self._jwt_key, f"{header}.{payload}".encode(), hashlib.sha256)
        token = f"{header}.{payload}.{_b64(signature.digest())}"
        self._tokens[token] = _Token(username, self.clock())
        self.tokens_issued += 1
        return token

    def _token_live(self, token: _Token) -> bool:
        return not token.expired and self.clock() - token.issued < self.token_ttl

    def _revoke_user(self, username: str) -> None:
        """Forget the user's tokens: they become invalid (401 AUT2), not expired."""
        for value, token in list(self._tokens.items()):
            if token.username == username:
                del self._tokens[value]

    def _authenticate(self, request: web.Request) -> str:
        """The signed-in user's name, or 401."""
        scheme, _, value = request.headers.get("Authorization", "").partition(" ")
        token = self._tokens.get(value.strip()) if scheme.lower() == "bearer" else None
        if token is None or token.username not in self._users:
            raise TypeDBError(401, "AUT2", "missing or invalid token")
        if not self._token_live(token):
            raise TypeDBError(401, "AUT3", "the token has expired")
        return token.username

    # ---- transactions -------------------------------------------------------------

    def _expire_transactions(self) -> None:
        now = self.clock()
        for tx in list(self._txs.values()):
            if now >= tx.deadline:
                self._end(tx, timed_out=True)

    def _end(self, tx: Transaction, *, timed_out: bool = False) -> None:
        self._txs.pop(tx.id, None)
        if timed_out:
            self._timed_out.add(tx.id)

    def _schema_locked(self, database: str) -> bool:
        self._expire_transactions()
        return any(t.database == database and t.type == "schema" for t in self._txs.values())

    async def _open(self, user: str, data: dict[str, Any]) -> Transaction:
        """Validate the open request, wait for the schema lock if needed, open."""
        db_name = _str(data, "databaseName")
        tx_type = _str(data, "transactionType")
        if tx_type not in TX_TYPES:
            raise TypeDBError(400, "REQ1", "transactionType must be read, write or schema")
        options = _obj(data, "transactionOptions")
        timeout_ms = _int(options, "transactionTimeoutMillis", self.default_transaction_timeout_ms)
        lock_ms = _int(options, "schemaLockAcquireTimeoutMillis", self.default_lock_timeout_ms)
        if timeout_ms <= 0:
            raise TypeDBError(400, "REQ1", "transactionTimeoutMillis must be positive")
        self._db(db_name)
        if tx_type == "schema":
            loop = asyncio.get_running_loop()
            give_up = loop.time() + lock_ms / 1000
            while self._schema_locked(db_name):
                if loop.time() >= give_up:
                    raise TypeDBError(
                        408,
                        "TXN3",
                        f"could not acquire the schema lock of database '{db_name}' "
                        f"within {lock_ms} ms: another schema transaction is open",
                    )
                await asyncio.sleep(LOCK_POLL_SECONDS)
            self._db(db_name)  # it may have been deleted while we waited
        tx = Transaction(
            id=uuid.uuid4().hex,
            database=db_name,
            type=tx_type,
            owner=user,
            deadline=self.clock() + timeout_ms / 1000,
        )
        self._txs[tx.id] = tx
        return tx

    def _tx(self, request: web.Request, user: str) -> Transaction:
        tx_id = request.match_info["tx_id"]
        self._expire_transactions()
        if tx_id in self._timed_out:
            raise TypeDBError(408, "TXN2", "the transaction timed out and was closed")
        tx = self._txs.get(tx_id)
        if tx is None:
            raise TypeDBError(404, "TXN1", f"transaction '{tx_id}' not found")
        if tx.owner != user:
            raise TypeDBError(403, "AUT4", "the transaction belongs to another user")
        return tx

    def _commit(self, tx: Transaction) -> None:
        if tx.type == "read":
            raise TypeDBError(400, "TXN5", "a read transaction cannot be committed")
        db = self._dbs.get(tx.database)
        if db is not None:
            for body in tx.pending_schema:
                if body.startswith("fun"):
                    db.functions += f"  {body}\n"
                else:
                    db.types += f"  {body}\n"
            db.writes.extend(tx.pending_writes)
            if tx.working is not None:
                db.data = tx.working
        self._end(tx)

    def _run_query(self, tx: Transaction, data: dict[str, Any]) -> dict[str, Any]:
        """Run one query in `tx` and build the answer (see the module docstring)."""
        query = _str(data, "query").strip()
        options = _obj(data, "queryOptions")
        limit = _int(options, "answerCountLimit", DEFAULT_ANSWER_LIMIT)
        if limit < 0:
            raise TypeDBError(400, "REQ1", "answerCountLimit must not be negative")
        include_types = options.get("includeInstanceTypes", True)
        if not isinstance(include_types, bool):
            raise TypeDBError(400, "REQ1", "includeInstanceTypes must be a boolean")
        stages = None
        if query.split(None, 1)[0].lower() in SCHEMA_WORDS if query else False:
            kind = "schema"
        else:
            try:
                stages = parse_query(query)
            except TypeQLError as exc:
                raise TypeDBError(400, "QRY1", f"the query could not be parsed: {exc}") from None
            kind = query_kind(stages)
        if kind == "schema" and tx.type != "schema":
            raise TypeDBError(
                400, "TXN4", f"schema queries need a schema transaction, not {tx.type}"
            )
        if kind == "write" and tx.type == "read":
            raise TypeDBError(400, "TXN4", "write queries are not allowed in a read transaction")
        tx.elapsed += self.query_seconds
        if self.clock() + tx.elapsed > tx.deadline:
            self._end(tx, timed_out=True)
            raise TypeDBError(
                408, "QRY2", "the query did not finish before the transaction timeout"
            )
        if stages is None:
            parts = query.split(None, 1)
            body = parts[1].strip().rstrip(";").strip() if len(parts) > 1 else ""
            if parts[0].lower() == "define" and body:
                tx.pending_schema.append(body + ";")
            return {"queryType": "schema", "answerType": "ok", "answers": None, "warning": None}
        db = self._db(tx.database)
        answers: list[Any]
        if kind == "read" and db.canned:
            fetch = any(stage.kind == "fetch" for stage in stages)
            answers = list(db.documents if fetch else db.rows)
            answer_type = "conceptDocuments" if fetch else "conceptRows"
        else:
            answers, answer_type = self._evaluate(tx, db, stages, kind)
            if kind == "write":
                tx.pending_writes.append(query)
                if not answers:
                    return {
                        "queryType": "write",
                        "answerType": "ok",
                        "answers": None,
                        "warning": None,
                    }
        if answer_type == "conceptRows" and not include_types:
            answers = _strip_types(answers)
        warning = None
        if len(answers) > limit:
            answers, warning = answers[:limit], limit_warning(limit)
        return {
            "queryType": kind,
            "answerType": answer_type,
            "answers": answers,
            "warning": warning,
        }

    def _evaluate(
        self, tx: Transaction, db: Database, stages: list[Any], kind: str
    ) -> tuple[list[Any], str]:
        """Run a parsed query on the transaction's view of the data (see the docstring)."""
        types = parse_schema(db.types + "".join(f"{body}\n" for body in tx.pending_schema))
        base = tx.working if tx.working is not None else db.data
        data = base.copy() if kind == "write" else base
        try:
            answer = Evaluator(types, data).run(stages)
        except UnknownLabel as exc:
            raise TypeDBError(400, "QRY3", str(exc)) from None
        except TypeQLError as exc:
            raise TypeDBError(400, "QRY1", f"the query could not be run: {exc}") from None
        if kind == "write":
            tx.working = data
        if answer.documents is not None:
            return answer.documents, "conceptDocuments"
        return [{"data": _concepts(row, types)} for row in answer.rows], "conceptRows"

    # ---- request helpers ------------------------------------------------------------

    def _db(self, name: str) -> Database:
        db = self._dbs.get(name)
        if db is None:
            raise TypeDBError(404, "DBE1", f"database '{name}' not found")
        return db

    def _require_admin(self, user: str) -> None:
        if user != self.admin:
            raise TypeDBError(403, "AUT4", "only the admin user may manage users")

    def _user(self, name: str) -> str:
        if name not in self._users:
            raise TypeDBError(404, "USR1", f"user '{name}' not found")
        return name

    def _wrap(
        self, handler: Callable[..., Awaitable[web.StreamResponse]], *, public: bool = False
    ) -> Handler:
        """Authenticate (unless public) and answer TypeDBError as ``{code, message}``."""

        async def wrapped(request: web.Request) -> web.StreamResponse:
            try:
                if public:
                    response: web.StreamResponse = await handler(request)
                else:
                    response = await handler(request, self._authenticate(request))
                return response
            except TypeDBError as exc:
                return web.json_response(
                    {"code": exc.code, "message": exc.message}, status=exc.status
                )

        return wrapped

    # ---- routes ---------------------------------------------------------------------

    def routes(self) -> list[web.RouteDef]:
        """All TypeDB HTTP API routes."""
        w = self._wrap
        db = "/v1/databases/{name}"
        tx = "/v1/transactions/{tx_id}"
        return [
            web.post(SIGNIN_PATH, w(self.h_signin, public=True)),
            web.get("/v1/version", w(self.h_version, public=True)),
            web.get("/health", w(self.h_health, public=True)),
            web.get("/v1/databases", w(self.h_databases)),
            web.get(db, w(self.h_database)),
            web.post(db, w(self.h_create_database)),
            web.delete(db, w(self.h_delete_database)),
            web.get(db + "/schema", w(self.h_schema)),
            web.get(db + "/type-schema", w(self.h_type_schema)),
            web.get("/v1/users", w(self.h_users)),
            web.get("/v1/users/{name}", w(self.h_user)),
            web.post("/v1/users/{name}", w(self.h_create_user)),
            web.put("/v1/users/{name}", w(self.h_update_user)),
            web.delete("/v1/users/{name}", w(self.h_delete_user)),
            web.post("/v1/transactions/open", w(self.h_open)),
            web.post(tx + "/query", w(self.h_query)),
            web.post(tx + "/commit", w(self.h_commit)),
            web.post(tx + "/rollback", w(self.h_rollback)),
            web.post(tx + "/close", w(self.h_close)),
            web.post("/v1/query", w(self.h_one_shot)),
        ]

    async def h_signin(self, request: web.Request) -> web.Response:
        """``POST /v1/signin`` ``{username, password}`` -> ``{token}``."""
        data = await _body(request)
        username, password = _str(data, "username"), _str(data, "password")
        stored = self._users.get(username)
        if stored is None or not hmac.compare_digest(stored, password):
            raise TypeDBError(401, "AUT1", "invalid credentials")
        return web.json_response({"token": self._issue_token(username)})

    async def h_version(self, request: web.Request) -> web.Response:
        """``GET /v1/version``."""
        return web.json_response({"distribution": "TypeDB", "version": self.server_version})

    async def h_health(self, request: web.Request) -> web.Response:
        """``GET /health``: 204."""
        return web.Response(status=204)

    async def h_databases(self, request: web.Request, user: str) -> web.Response:
        """``GET /v1/databases``."""
        return web.json_response({"databases": [{"name": name} for name in self._dbs]})

    async def h_database(self, request: web.Request, user: str) -> web.Response:
        """``GET /v1/databases/NAME``."""
        return web.json_response({"name": self._db(request.match_info["name"]).name})

    async def h_create_database(self, request: web.Request, user: str) -> web.Response:
        """``POST /v1/databases/NAME``: 200, no body."""
        name = request.match_info["name"]
        if not NAME_RE.match(name):
            raise TypeDBError(400, "REQ1", f"invalid database name '{name}'")
        if name in self._dbs:
            raise TypeDBError(400, "DBE2", f"database '{name}' already exists")
        self.add_database(name)
        return web.Response(status=200)

    async def h_delete_database(self, request: web.Request, user: str) -> web.Response:
        """``DELETE /v1/databases/NAME``: closes its transactions."""
        db = self._db(request.match_info["name"])
        for tx in [t for t in self._txs.values() if t.database == db.name]:
            self._end(tx)
        del self._dbs[db.name]
        return web.Response(status=200)

    async def h_schema(self, request: web.Request, user: str) -> web.Response:
        """``GET /v1/databases/NAME/schema``: a JSON string."""
        return web.json_response(self._db(request.match_info["name"]).schema())

    async def h_type_schema(self, request: web.Request, user: str) -> web.Response:
        """``GET /v1/databases/NAME/type-schema``: a JSON string, no functions."""
        db = self._db(request.match_info["name"])
        return web.json_response(db.schema(with_functions=False))

    async def h_users(self, request: web.Request, user: str) -> web.Response:
        """``GET /v1/users`` (admin)."""
        self._require_admin(user)
        return web.json_response({"users": [{"username": name} for name in self.usernames]})

    async def h_user(self, request: web.Request, user: str) -> web.Response:
        """``GET /v1/users/NAME`` (admin)."""
        self._require_admin(user)
        return web.json_response({"username": self._user(request.match_info["name"])})

    async def h_create_user(self, request: web.Request, user: str) -> web.Response:
        """``POST /v1/users/NAME`` ``{password}`` (admin)."""
        self._require_admin(user)
        name = request.match_info["name"]
        password = _str(await _body(request), "password")
        if not NAME_RE.match(name):
            raise TypeDBError(400, "REQ1", f"invalid username '{name}'")
        if name in self._users:
            raise TypeDBError(400, "USR2", f"user '{name}' already exists")
        self._users[name] = password
        return web.Response(status=200)

    async def h_update_user(self, request: web.Request, user: str) -> web.Response:
        """``PUT /v1/users/NAME`` ``{password}`` (admin): revokes the user's tokens."""
        self._require_admin(user)
        name = self._user(request.match_info["name"])
        self._users[name] = _str(await _body(request), "password")
        if name != user:
            self._revoke_user(name)
        return web.Response(status=200)

    async def h_delete_user(self, request: web.Request, user: str) -> web.Response:
        """``DELETE /v1/users/NAME`` (admin; never the admin itself)."""
        self._require_admin(user)
        name = self._user(request.match_info["name"])
        if name == self.admin:
            raise TypeDBError(400, "USR3", "the admin user cannot be deleted")
        del self._users[name]
        self._revoke_user(name)
        return web.Response(status=200)

    async def h_open(self, request: web.Request, user: str) -> web.Response:
        """``POST /v1/transactions/open`` -> ``{transactionId}``."""
        tx = await self._open(user, await _body(request))
        return web.json_response({"transactionId": tx.id})

    async def h_query(self, request: web.Request, user: str) -> web.Response:
        """``POST /v1/transactions/ID/query``."""
        data = await _body(request)
        return web.json_response(self._run_query(self._tx(request, user), data))

    async def h_commit(self, request: web.Request, user: str) -> web.Response:
        """``POST /v1/transactions/ID/commit``."""
        self._commit(self._tx(request, user))
        return web.Response(status=200)

    async def h_rollback(self, request: web.Request, user: str) -> web.Response:
        """``POST /v1/transactions/ID/rollback``: drop pending changes, stay open."""
        tx = self._tx(request, user)
        tx.pending_schema.clear()
        tx.pending_writes.clear()
        tx.working = None
        return web.Response(status=200)

    async def h_close(self, request: web.Request, user: str) -> web.Response:
        """``POST /v1/transactions/ID/close``."""
        self._end(self._tx(request, user))
        return web.Response(status=200)

    async def h_one_shot(self, request: web.Request, user: str) -> web.Response:
        """``POST /v1/query``: a temporary transaction, committed unless ``commit`` is
        false."""
        data = await _body(request)
        _str(data, "query")
        commit = data.get("commit", True)
        if not isinstance(commit, bool):
            raise TypeDBError(400, "REQ1", "commit must be a boolean")
        tx = await self._open(user, data)
        try:
            answer = self._run_query(tx, data)
            if commit and tx.type != "read":
                self._commit(tx)
        finally:
            if tx.id in self._txs:
                self._end(tx)
        return web.json_response(answer)


# ---- helpers ---------------------------------------------------------------------


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


async def _body(request: web.Request) -> dict[str, Any]:
    raw = await request.read()
    try:
        data = json.loads(raw) if raw.strip() else None
    except ValueError:
        raise TypeDBError(400, "REQ1", "the request body is not valid JSON") from None
    if not isinstance(data, dict):
        raise TypeDBError(400, "REQ1", "the request body must be a JSON object")
    return data


def _str(data: dict[str, Any], key: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value:
        raise TypeDBError(400, "REQ1", f"field '{key}' must be a non-empty string")
    return value


def _obj(data: dict[str, Any], key: str) -> dict[str, Any]:
    value = data.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise TypeDBError(400, "REQ1", f"field '{key}' must be an object")
    return value


def _int(data: dict[str, Any], key: str, default: int) -> int:
    value = data.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise TypeDBError(400, "REQ1", f"field '{key}' must be a non-negative integer")
    return value


def _concepts(row: dict[str, Any], types: dict[str, Any]) -> dict[str, Any]:
    """A row's bindings in the seed's concept shapes."""
    data: dict[str, Any] = {}
    for name, bound in row.items():
        if isinstance(bound, Attribute):
            typedef = types.get(bound.label)
            value_type = (typedef.value_type if typedef else None) or "string"
            data[name] = _attribute(bound.label, bound.value, value_type)
        else:
            typedef = types.get(bound.type)
            kind = typedef.kind if typedef else "entity"
            data[name] = {
                "kind": kind,
                "iid": bound.iid,
                "type": {"kind": f"{kind}Type", "label": bound.type},
            }
    return data
