"""Async client for the TypeDB HTTP API (TypeDB 3.x, ``/v1/...``).

One method per endpoint of ``typedb-http-api.txt``: sign-in, version, health,
databases and their schema, users, transactions (open, query, commit,
rollback, close) and the one-shot query.

Authentication: ``POST /v1/signin`` with the username and password gives a
bearer token. The token is cached and shared by concurrent callers (one
sign-in at a time, behind an ``asyncio.Lock``), renewed shortly before it
expires, and re-obtained once when the server answers 401. The token is a
JWT; its lifetime is read, without verifying the signature, from its claims:
``exp - iat`` when both are present (immune to clock skew between us and the
server), else ``exp`` minus the local wall clock. A token that is not a JWT,
or whose claims make no sense, is assumed to live ``token_lifetime`` seconds
(default one hour). Renewal happens ``min(60 s, lifetime / 10)`` early.

Errors: TypeDB answers ``{"code", "message"}``; `clients.http.HttpApi` maps
the status onto the shared error tree and keeps TypeDB's code in
``ApiError.code``. A 408 becomes a `Timeout` saying "the query timed out on
the server". Retries follow HttpApi: GETs are retried, a POST/PUT/DELETE that
reached the server is never re-sent (a query on a write transaction runs
exactly once, or fails with ``outcome == "unknown"``). Passwords are
``SecretStr`` and only ever leave this module inside a request body.

Resolver adapter: a TypeDB server is one environment named after the
provider; `environments` and `databases` give the generic ``list``/``show``
verbs the same shapes as the GrapheneDB clients.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable, Sequence
from typing import Annotated, Any, Literal, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BeforeValidator, Field, SecretStr, field_validator, model_validator

from clients.errors import BadRequest, NotFound, Timeout, Unauthorized, UnusableAnswer
from clients.graphenedb import Environment, Status
from clients.http import BearerAuth, BearerClient, CallHook, HttpApi, RetryPolicy
from clients.shapes import (
    Id,
    Label,
    Message,
    Model,
    Text,
    names,
    optional_text,
    parse,
    parse_items,
)
from core.kinds import ProviderKind

M = TypeVar("M", bound=Model)
TransactionType = Literal["read", "write", "schema"]
TRANSACTION_TYPES: tuple[str, ...] = ("read", "write", "schema")
SERVER_TIMEOUT_MESSAGE = "the query timed out on the server"


class ServerVersion(Model):
    """``GET /v1/version``: ``{distribution, version}``."""

    distribution: Label = ""
    version: Label = ""

    def __str__(self) -> str:
        return " ".join(part for part in (self.distribution, self.version) if part)


class Database(Model):
    """A TypeDB database, shaped like the GrapheneDB databases for generic verbs.

    ``id`` and ``name`` are both the database name; a database that the
    server lists is always ``available``; plan, version and domain name do
    not exist in TypeDB and stay None.
    """

    name: Id
    status: Status = Field(default_factory=lambda: Status(state="available"))
    plan: Text = None
    version: Text = None
    domain_name: Text = None

    @model_validator(mode="before")
    @classmethod
    def _scalar(cls, data: Any) -> Any:
        if isinstance(data, str):
            return {"name": data}
        if isinstance(data, dict) and not isinstance(data.get("status", {}), dict):
            return {**data, "status": {"state": str(data["status"])}}
        return data

    @property
    def id(self) -> str:
        return self.name


class User(Model):
    """A TypeDB user (the API never returns passwords)."""

    username: Id = Field(validation_alias=names("username", "name"))

    @model_validator(mode="before")
    @classmethod
    def _scalar(cls, data: Any) -> Any:
        return {"username": data} if isinstance(data, str) else data


class QueryAnswer(Model):
    """The answer to a query.

    ``answer_type`` is ``ok`` (nothing to show), ``conceptRows`` (answers are
    ``{"data": {variable: concept}}``) or ``conceptDocuments`` (answers are
    JSON documents). ``warning`` is set when ``answerCountLimit`` cut answers.
    """

    query_type: Annotated[str, BeforeValidator(lambda v: optional_text(v) or "read")] = Field(
        default="read", validation_alias=names("queryType")
    )
    answer_type: Annotated[str, BeforeValidator(lambda v: optional_text(v) or "ok")] = Field(
        default="ok", validation_alias=names("answerType")
    )
    answers: list[Any] = Field(default_factory=list)
    warning: Message = None

    @field_validator("answers", mode="before")
    @classmethod
    def _answers(cls, value: Any) -> Any:
        return value if isinstance(value, list) else []


# -- rendering helpers --------------------------------------------------------


def concept_text(concept: Any) -> str:
    """One concept of a concept row as a table cell.

    Entity/relation -> ``type:iid`` (just the iid when instance types were not
    included), attribute and value -> the value, any type -> its label.
    """
    if concept is None:
        return ""
    if isinstance(concept, list):
        return ", ".join(concept_text(item) for item in concept)
    if not isinstance(concept, dict):
        return _value_text(concept)
    kind = concept.get("kind")
    if kind in ("entity", "relation"):
        iid = str(concept.get("iid", ""))
        label = (concept.get("type") or {}).get("label")
        return f"{label}:{iid}" if label else iid
    if kind in ("attribute", "value"):
        return _value_text(concept.get("value"))
    if "label" in concept:
        return str(concept["label"])
    if "value" in concept:
        return _value_text(concept["value"])
    if "iid" in concept:
        return str(concept["iid"])
    return json.dumps(concept, sort_keys=True)


def _value_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True)
    return str(value)


def rows_to_table(answers: Sequence[Any]) -> tuple[list[str], list[list[str]]]:
    """Concept rows as ``(columns, rows)`` of text cells.

    Columns are the variables in order of first appearance; a variable
    missing from a row (optional patterns) gives an empty cell. Rows may be
    ``{"data": {...}}`` as the API sends them, or the bare ``{...}`` mapping.
    """
    datas: list[dict[str, Any]] = []
    for answer in answers:
        data = answer.get("data", answer) if isinstance(answer, dict) else None
        datas.append(data if isinstance(data, dict) else {})
    columns: list[str] = []
    for data in datas:
        columns.extend(name for name in data if name not in columns)
    rows = [[concept_text(data.get(name)) for name in columns] for data in datas]
    return columns, rows


def token_lifetime_from_jwt(token: str, now: float | None = None) -> float | None:
    """Seconds a JWT stays valid, from its unverified claims; None if unknown.

    ``exp - iat`` when both claims are numbers, else ``exp - now`` (wall
    clock); None when the token is not a JWT or the lifetime is not positive.
    """
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        payload = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except ValueError:  # binascii.Error and UnicodeDecodeError are ValueErrors
        return None
    if not isinstance(payload, dict):
        return None

    def number(key: str) -> float | None:
        value = payload.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        return None

    exp, iat = number("exp"), number("iat")
    if exp is None:
        return None
    lifetime = exp - iat if iat is not None else exp - (time.time() if now is None else now)
    return lifetime if lifetime > 0 else None


def _segment(value: str, what: str) -> str:
    """A path segment, percent-encoded; an empty one is refused before sending."""
    if not value:
        raise BadRequest(f"{what} must not be empty")
    return quote(value, safe="")


def _options(**values: Any) -> dict[str, Any] | None:
    """A JSON options object without the unset entries (None when all are unset)."""
    present = {key: value for key, value in values.items() if value is not None}
    return present or None


class TypeDBClient(BearerClient):
    """The TypeDB HTTP API of one server (one provider in graphops.toml)."""

    SIGNIN_PATH = "/v1/signin"

    def __init__(
        self,
        provider: str,
        base_url: str,
        username: SecretStr,
        password: SecretStr,
        *,
        http: httpx.AsyncClient | None = None,
        timeout: float = 15.0,
        retry: RetryPolicy | None = None,
        on_call: CallHook | None = None,
        clock: Callable[[], float] = time.monotonic,
        token_lifetime: float = 3600.0,
    ) -> None:
        self.api = HttpApi(
            provider,
            base_url,
            client=http,
            timeout=timeout,
            retry=retry,
            on_call=on_call,
            kind=ProviderKind.TYPEDB,
        )
        self._username = username
        self._password = password
        self.token_lifetime = token_lifetime
        self.auth = BearerAuth(self._sign_in, clock, on_rejected=self.api.report_rejected)

    def __repr__(self) -> str:
        return f"TypeDBClient(provider={self.provider!r}, base_url={self.api.base_url!r})"

    # -- authentication ---------------------------------------------------

    async def _sign_in(self) -> tuple[str, float]:
        response = await self.api.request(
            "POST",
            self.SIGNIN_PATH,
            json={
                "username": self._username.get_secret_value(),
                "password": self._password.get_secret_value(),
            },
            retry=True,  # signing in changes nothing: safe to repeat
        )
        body = _json_or_none(response)
        token = body.get("token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            raise Unauthorized(
                "the sign-in answer had no token",
                method="POST",
                path=self.SIGNIN_PATH,
                provider=self.provider,
                kind=self.kind,
            )
        return token, token_lifetime_from_jwt(token) or self.token_lifetime

    # -- plumbing -----------------------------------------------------------

    async def _call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """An authenticated request; one renewal on 401; 408 as a clear Timeout."""
        try:
            return await self.signed(method, path, **kwargs)
        except Timeout as exc:
            if exc.status != 408:
                raise
            raise Timeout(
                f"{SERVER_TIMEOUT_MESSAGE} ({exc.message})",
                status=408,
                method=exc.method,
                path=exc.path,
                provider=exc.provider,
                kind=exc.kind,
                code=exc.code,
                outcome=exc.outcome,
            ) from None

    async def _answer(self, method: str, path: str, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        """The JSON body of a 2xx answer (None when empty) and the context for errors."""
        response = await self._call(method, path, **kwargs)
        context = {
            "method": method,
            "path": path,
            "provider": self.provider,
            "status": response.status_code,
        }
        return self.api.json_of(response, method, path), context

    async def _one(
        self, model: type[M], method: str, path: str, what: str, empty: Any, **kwargs: Any
    ) -> M:
        body, context = await self._answer(method, path, **kwargs)
        return parse(model, empty if body is None else body, what, **context)

    async def _many(self, model: type[M], path: str, key: str, what: str) -> list[M]:
        body, context = await self._answer("GET", path)
        return parse_items(model, body, key, what, **context)

    # -- server ---------------------------------------------------------------

    async def version(self) -> ServerVersion:
        """``GET /v1/version`` (no token needed)."""
        response = await self.api.request("GET", "/v1/version")
        body = _json_or_none(response)
        context = {"method": "GET", "path": "/v1/version", "provider": self.provider}
        return parse(ServerVersion, body or {}, "server version", **context)

    async def health(self) -> bool:
        """``GET /health``: True when the server answers 2xx (204); raises otherwise."""
        await self.api.request("GET", "/health")
        return True

    # -- databases ------------------------------------------------------------

    async def list_databases(self) -> list[Database]:
        """``GET /v1/databases``."""
        return await self._many(Database, "/v1/databases", "databases", "databases")

    async def database(self, name: str) -> Database:
        """``GET /v1/databases/NAME`` (NotFound when there is none)."""
        path = f"/v1/databases/{_segment(name, 'database name')}"
        return await self._one(Database, "GET", path, f"database {name}", {"name": name})

    async def create_database(self, name: str) -> None:
        """``POST /v1/databases/NAME``."""
        await self._call("POST", f"/v1/databases/{_segment(name, 'database name')}")

    async def delete_database(self, name: str) -> None:
        """``DELETE /v1/databases/NAME``."""
        await self._call("DELETE", f"/v1/databases/{_segment(name, 'database name')}")

    async def schema(self, name: str) -> str:
        """``GET /v1/databases/NAME/schema``: types and functions, ``"define ...;"`` or ``""``."""
        return await self._schema_text(name, "schema")

    async def type_schema(self, name: str) -> str:
        """``GET /v1/databases/NAME/type-schema``: the types only, ``"define ...;"`` or ``""``."""
        return await self._schema_text(name, "type-schema")

    async def _schema_text(self, name: str, which: str) -> str:
        path = f"/v1/databases/{_segment(name, 'database name')}/{which}"
        response = await self._call("GET", path)
        if not response.content:
            return ""
        body = _json_or_none(response)
        if body is None:  # tolerate a plain-text answer
            return response.text
        return body if isinstance(body, str) else json.dumps(body)

    # -- users ----------------------------------------------------------------

    async def users(self) -> list[User]:
        """``GET /v1/users`` (admin only: Forbidden otherwise)."""
        return await self._many(User, "/v1/users", "users", "users")

    async def user(self, username: str) -> User:
        """``GET /v1/users/USERNAME``."""
        path = f"/v1/users/{_segment(username, 'username')}"
        return await self._one(User, "GET", path, f"user {username}", {"username": username})

    async def create_user(self, username: str, password: SecretStr) -> None:
        """``POST /v1/users/USERNAME`` with ``{"password"}``."""
        await self._call(
            "POST",
            f"/v1/users/{_segment(username, 'username')}",
            json={"password": password.get_secret_value()},
        )

    async def update_password(self, username: str, password: SecretStr) -> None:
        """``PUT /v1/users/USERNAME`` with ``{"password"}``."""
        await self._call(
            "PUT",
            f"/v1/users/{_segment(username, 'username')}",
            json={"password": password.get_secret_value()},
        )

    async def delete_user(self, username: str) -> None:
        """``DELETE /v1/users/USERNAME``."""
        await self._call("DELETE", f"/v1/users/{_segment(username, 'username')}")

    # -- transactions and queries ----------------------------------------------

    async def open_transaction(
        self,
        database: str,
        transaction_type: TransactionType,
        *,
        schema_lock_timeout_ms: int | None = None,
        transaction_timeout_ms: int | None = None,
    ) -> str:
        """``POST /v1/transactions/open``; returns the transaction id."""
        body: dict[str, Any] = {
            "databaseName": _checked_database(database),
            "transactionType": _checked_type(transaction_type),
        }
        options = _options(
            schemaLockAcquireTimeoutMillis=schema_lock_timeout_ms,
            transactionTimeoutMillis=transaction_timeout_ms,
        )
        if options:
            body["transactionOptions"] = options
        answer, context = await self._answer("POST", "/v1/transactions/open", json=body)
        tx_id = optional_text(answer.get("transactionId")) if isinstance(answer, dict) else None
        if not isinstance(tx_id, str) or not tx_id.strip():
            raise UnusableAnswer("open transaction: no `transactionId` in the answer", **context)
        return tx_id

    async def query(
        self,
        transaction_id: str,
        query: str,
        *,
        include_instance_types: bool | None = None,
        answer_count_limit: int | None = None,
    ) -> QueryAnswer:
        """``POST /v1/transactions/ID/query``; sent once, never retried after it left."""
        body: dict[str, Any] = {"query": query}
        options = _options(
            includeInstanceTypes=include_instance_types, answerCountLimit=answer_count_limit
        )
        if options:
            body["queryOptions"] = options
        path = f"/v1/transactions/{_segment(transaction_id, 'transaction id')}/query"
        return await self._one(QueryAnswer, "POST", path, "query", {}, json=body)

    async def commit(self, transaction_id: str) -> None:
        """``POST /v1/transactions/ID/commit``: keep the changes and close."""
        await self._tx_action(transaction_id, "commit")

    async def rollback(self, transaction_id: str) -> None:
        """``POST /v1/transactions/ID/rollback``: drop uncommitted changes, stay open."""
        await self._tx_action(transaction_id, "rollback")

    async def close_transaction(self, transaction_id: str) -> None:
        """``POST /v1/transactions/ID/close``: drop the changes and close."""
        await self._tx_action(transaction_id, "close")

    async def _tx_action(self, transaction_id: str, action: str) -> None:
        tx = _segment(transaction_id, "transaction id")
        await self._call("POST", f"/v1/transactions/{tx}/{action}")

    async def one_shot_query(
        self,
        database: str,
        query: str,
        transaction_type: TransactionType = "read",
        *,
        commit: bool | None = None,
        schema_lock_timeout_ms: int | None = None,
        transaction_timeout_ms: int | None = None,
        include_instance_types: bool | None = None,
        answer_count_limit: int | None = None,
    ) -> QueryAnswer:
        """``POST /v1/query``: the query in a temporary transaction (committed unless
        ``commit=False``, for write and schema transactions)."""
        body: dict[str, Any] = {
            "databaseName": _checked_database(database),
            "transactionType": _checked_type(transaction_type),
            "query": query,
        }
        if commit is not None:
            body["commit"] = commit
        tx_options = _options(
            schemaLockAcquireTimeoutMillis=schema_lock_timeout_ms,
            transactionTimeoutMillis=transaction_timeout_ms,
        )
        if tx_options:
            body["transactionOptions"] = tx_options
        query_options = _options(
            includeInstanceTypes=include_instance_types, answerCountLimit=answer_count_limit
        )
        if query_options:
            body["queryOptions"] = query_options
        return await self._one(QueryAnswer, "POST", "/v1/query", "query", {}, json=body)

    # -- resolver adapter -----------------------------------------------------------

    async def environments(self) -> list[Environment]:
        """The server as the one environment, named after the provider (no request)."""
        return [Environment(id=self.provider, label=self.provider)]

    async def databases(self, environment_id: str) -> list[Database]:
        """The databases of the one environment (NotFound for any other id)."""
        if environment_id != self.provider:
            raise NotFound(
                f"no environment {environment_id!r}: a TypeDB server has one, "
                f"called {self.provider!r}",
                provider=self.provider,
                kind=self.kind,
            )
        return await self.list_databases()


def _json_or_none(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _checked_type(transaction_type: str) -> str:
    if transaction_type not in TRANSACTION_TYPES:
        raise BadRequest(
            f"transaction type must be read, write or schema, not {transaction_type!r}"
        )
    return transaction_type


def _checked_database(database: str) -> str:
    if not database:
        raise BadRequest("database name must not be empty")
    return database
