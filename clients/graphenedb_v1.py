"""Async client for the GrapheneDB API v1 (legacy, ``api.graphenedb.com/v1``).

One method per operation in the v1 seed. Every request carries the header
``api_key: <key>`` (kept in a ``SecretStr``; it is never logged and never part
of an error message) and ``Content-Type: application/json``.

``base_url`` is the host root (``https://api.graphenedb.com``); the client puts
``/v1`` in front of every path. A ``base_url`` that already ends in ``/v1`` (as
the seed writes the API root) is accepted too: the suffix is dropped once.

Answers follow the seed and ``graphenedb-observed-shapes.md``, read by the rule
of ``clients.shapes``: ids required, everything else optional, unknown fields
kept, every documented name an alias, an unusable answer an ``UnusableAnswer``
naming the field. Async commands answer with an operation id under
``operationId`` or ``operation``; ``create`` may also answer 201 with the new
Database; a 200/204 without either means the command ran synchronously
(:class:`Accepted` says which it got, and never takes a database id for an
operation id).

The one-time download links (export ``url``, backup package ``backupUrl``) are
returned as ``SecretStr``: call ``get_secret_value()`` only where the link is
meant to be shown.

For the generic verbs the whole v1 account is ONE environment named after the
provider (:meth:`V1Client.environments`, :meth:`V1Client.databases`), and its
databases look like Console databases (``.status.state``, ``.plan``,
``.version``, ``.domain_name``).
"""

from __future__ import annotations

from typing import Annotated, Any, TypeVar
from urllib.parse import quote, urlsplit, urlunsplit

import httpx
from pydantic import BeforeValidator, Field, SecretStr, field_validator, model_validator

from clients.errors import NotFound
from clients.graphenedb import Environment, OperationStep, Status
from clients.http import ApiClient, CallHook, HttpApi, RetryPolicy, parse_error_body
from clients.shapes import (
    FAILED,
    FINISHED,
    Count,
    Flag,
    Id,
    Label,
    Model,
    Text,
    Timestamp,
    flag,
    names,
    optional_text,
    parse,
    parse_items,
    reference,
    status_word,
    valid_or_none,
)
from core.kinds import ProviderKind

M = TypeVar("M", bound=Model)

API_ROOT = "/v1"

#: GrapheneDB plans as listed in the v1 seed (the API has no endpoint for them).
PLANS: tuple[str, ...] = ("sandbox", "developer", "s1", "s2", "p1", "p2", "p3", "p4", "p5")
#: EC2 regions as listed in the v1 seed for API version 1.0 (no endpoint either).
REGIONS: tuple[str, ...] = (
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
REDACTED = "[REDACTED]"


def _without_userinfo(url: Any) -> Any:
    """A URL with any ``user:password@`` removed (links may embed credentials)."""
    if not isinstance(url, str) or "@" not in url:
        return url
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))


# -- models -------------------------------------------------------------------


class V1Version(Model):
    """A supported Neo4j version (``GET /v1/databases/versions``): ``{version, description}``."""

    version: Id = Field(validation_alias=names("version", "id", "key", "name"))
    description: Label = ""

    @model_validator(mode="before")
    @classmethod
    def _scalar(cls, data: Any) -> Any:
        if isinstance(data, (str, int, float)) and not isinstance(data, bool):
            return {"version": str(data)}
        return data

    def __str__(self) -> str:
        return self.version


class Plugin(Model):
    id: Text = None
    name: Label = ""
    enabled: Annotated[bool | None, BeforeValidator(flag)] = None
    is_managed: Annotated[bool | None, BeforeValidator(flag)] = Field(
        default=None, validation_alias=names("isManaged")
    )
    kind: Text = None
    created_at: Timestamp = Field(default=None, validation_alias=names("createdAt"))


class Counters(Model):
    nodes: Count = Field(default=None, validation_alias=names("nodes", "Nodes"))
    relationships: Count = Field(
        default=None, validation_alias=names("relationships", "Relationships")
    )


def _objects(value: Any) -> Any:
    """A list of objects (anything else in it is left out); not a list reads as empty."""
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _object(value: Any) -> Any:
    return value if isinstance(value, dict) else None


class V1Database(Model):
    """A v1 database, shaped so the generic verbs can render it like a Console one.

    Seed fields: ``id, name, url, boltURL, webAdminURL, metricsURL, createdAt,
    version, currentSize, plugins, maxSize, plan: {type, limits}, awsRegion,
    counters, cluster``; observed also ``restUrl, browserUrl, versionEdition,
    versionKey, privateNetworkId``. The v1 Database has no state: ``status.state``
    is ``unknown`` unless the answer carries a ``state`` (or ``status``).
    ``plan`` is the plan's ``type``; ``domain_name`` is the host of ``boltURL``.
    Credentials embedded in URLs are dropped.
    """

    id: Id
    name: Label = ""
    created_at: Timestamp = Field(default=None, validation_alias=names("createdAt"))
    version: Text = None
    version_edition: Text = Field(default=None, validation_alias=names("versionEdition"))
    version_key: Text = Field(default=None, validation_alias=names("versionKey"))
    current_size: Count = Field(
        default=None, validation_alias=names("currentSize", "size", "sizeBytes")
    )
    max_size: Count = Field(default=None, validation_alias=names("maxSize"))
    plan: Text = None
    plan_limits: Annotated[Counters | None, BeforeValidator(_object)] = None
    aws_region: Text = Field(default=None, validation_alias=names("awsRegion", "region"))
    private_network_id: Text = Field(default=None, validation_alias=names("privateNetworkId"))
    url: Text = Field(default=None, validation_alias=names("url", "restUrl", "restURL"))
    bolt_url: Text = Field(default=None, validation_alias=names("boltURL", "boltUrl"))
    browser_url: Text = Field(
        default=None, validation_alias=names("webAdminURL", "browserUrl", "browserURL")
    )
    metrics_url: Text = Field(default=None, validation_alias=names("metricsURL", "metricsUrl"))
    plugins: Annotated[list[Plugin], BeforeValidator(_objects)] = Field(default_factory=list)
    counters: Annotated[Counters | None, BeforeValidator(_object)] = None
    cluster: Annotated[dict[str, Any] | None, BeforeValidator(_object)] = None
    status: Status = Field(default_factory=Status)

    @model_validator(mode="before")
    @classmethod
    def _derive(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        plan = data.get("plan")
        if isinstance(plan, dict):
            data["plan"] = plan.get("type") or plan.get("name")
            data.setdefault("plan_limits", plan.get("limits"))
        state = data.get("state", data.get("status"))
        if isinstance(state, str):
            data["status"] = {"state": state}
        elif not isinstance(state, dict):
            data.pop("status", None)
        if isinstance(data.get("version"), dict):
            version = data["version"]
            data["version"] = version.get("description") or version.get("version")
        return data

    @model_validator(mode="after")
    def _name_or_id(self) -> V1Database:
        self.name = self.name or self.id
        return self

    @field_validator("url", "bolt_url", "browser_url", "metrics_url", mode="after")
    @classmethod
    def _strip_credentials(cls, value: Any) -> Any:
        return _without_userinfo(value)

    @property
    def domain_name(self) -> str | None:
        """Host name of the Bolt endpoint (what people connect to)."""
        if not self.bolt_url:
            return None
        try:
            return urlsplit(self.bolt_url).hostname
        except ValueError:
            return None


class OperationEvent(Model):
    """One step an operation went through (``freezing-volume``, ``creating-snapshot``...).

    Seed: ``{state, createdAt}``; ``state`` names the step.
    """

    state: Label = Field(default="", validation_alias=names("state", "name", "description"))
    created_at: Timestamp = Field(default=None, validation_alias=names("createdAt"))

    @model_validator(mode="before")
    @classmethod
    def _scalar(cls, data: Any) -> Any:
        if isinstance(data, (str, int, float)) and not isinstance(data, bool):
            return {"state": str(data)}
        return data


def _events(value: Any) -> Any:
    if not isinstance(value, list):
        return []
    return [e for e in value if isinstance(e, (dict, str, int, float)) and not isinstance(e, bool)]


class V1Operation(Model):
    """An asynchronous v1 operation (``GET /v1/operations/{id}``).

    Seed: ``{id, databaseId, description, stopped, createdAt, currentState
    (started | finished | failed), events: [{state, createdAt}]}``. A missing
    ``currentState`` reads as ``unknown``. ``status``, ``steps`` and ``error``
    give it the shape that ``operations.follow`` reads from Console operations:
    every event is a finished step except the newest, which is ``running`` (or
    ``failed``). ``nextOperationId`` is not in the seed; when an answer has one
    it is followed like a Console chain.
    """

    id: Id
    database_id: Text = Field(default=None, validation_alias=names("databaseId"))
    description: Label = ""
    current_state: Annotated[str, BeforeValidator(lambda v: status_word(v) or "unknown")] = Field(
        default="unknown", validation_alias=names("currentState", "status", "state")
    )
    stopped: Annotated[bool | None, BeforeValidator(flag)] = None
    created_at: Timestamp = Field(default=None, validation_alias=names("createdAt", "startedAt"))
    events: Annotated[list[OperationEvent], BeforeValidator(_events)] = Field(
        default_factory=list, validation_alias=names("events", "steps")
    )
    next_operation_id: Text = Field(default=None, validation_alias=names("nextOperationId"))

    @property
    def status(self) -> str:
        return self.current_state

    @property
    def done(self) -> bool:
        return self.current_state in (FINISHED, FAILED)

    @property
    def operation_type(self) -> str | None:
        return self.description or None

    @property
    def steps(self) -> list[OperationStep]:
        last = len(self.events) - 1
        ending = {FAILED: "failed", FINISHED: "finished"}.get(self.current_state, "running")
        return [
            OperationStep(name=e.state or "step", status=ending if i == last else "finished")
            for i, e in enumerate(self.events)
        ]

    @property
    def error(self) -> str | None:
        if self.current_state != FAILED:
            return None
        where = f" at {self.events[-1].state}" if self.events else ""
        return f"operation failed{where}"


_OPERATION_MARKS = ("currentState", "events", "nextOperationId")


class Accepted(Model):
    """The answer to a command: an operation id, a database, both or neither.

    The operation id is ``operationId``, else ``operation`` (text or ``{id}``,
    observed for create), else the ``id`` of an answer that is itself an
    Operation (it carries ``currentState``, ``events`` or ``nextOperationId``).
    An answer that is a Database (201 to create: "New entities created via
    POST") is ``database``; its id is never taken for an operation id. An empty
    answer (200/204) means the command ran synchronously: neither.
    """

    operation_id: Text = None
    database: V1Database | None = None
    backup_id: Text = Field(default=None, validation_alias=names("backupId"))

    @model_validator(mode="before")
    @classmethod
    def _read(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return {}
        operation = reference(data.get("operationId")) or reference(data.get("operation"))
        is_operation = any(mark in data for mark in _OPERATION_MARKS)
        if operation is None and is_operation:
            operation = reference(data.get("id"))
        database = data.get("database")
        if not isinstance(database, dict) and not is_operation and "name" in data:
            database = data
        return {
            **{k: v for k, v in data.items() if k not in ("operation_id", "database")},
            "operation_id": operation,
            "database": valid_or_none(V1Database, database),
        }


class Backup(Model):
    """A backup of a database (state ``done`` or ``working``)."""

    id: Id
    state: Text = Field(default=None, validation_alias=names("state", "status"))
    origin: Text = None
    timestamp: Timestamp = Field(default=None, validation_alias=names("timestamp", "createdAt"))
    size: Count = Field(default=None, validation_alias=names("size", "sizeBytes"))
    duration: Count = None
    package_url: Text = Field(default=None, validation_alias=names("packageURL", "packageUrl"))
    downloadable: Flag = False

    @property
    def done(self) -> bool:
        return self.state == "done"


class BackupSchedule(Model):
    """The daily backup time, always UTC."""

    time: Text = None
    timezone: Annotated[str, BeforeValidator(lambda v: optional_text(v) or "UTC")] = "UTC"
    frequency: Annotated[str, BeforeValidator(lambda v: optional_text(v) or "daily")] = "daily"


class BackupPackage(Model):
    """A secure one-time link to a backup package (graph.tar.gz)."""

    backup_url: SecretStr = Field(validation_alias=names("backupUrl", "backupURL", "url"))


class Export(Model):
    """A secure one-time link to an export (graphdb.zip) and its size in bytes."""

    url: SecretStr = Field(validation_alias=names("url", "exportUrl", "downloadUrl"))
    size: Count = None


def _seg(value: str) -> str:
    """One path segment, quoted so an id can never change the path."""
    return quote(value, safe="")


# -- client -------------------------------------------------------------------


class V1Client(ApiClient):
    """The GrapheneDB API v1 for one API key (one provider in graphops.toml)."""

    def __init__(
        self,
        provider: str,
        base_url: str,
        api_key: SecretStr,
        *,
        http: httpx.AsyncClient | None = None,
        timeout: float = 15.0,
        retry: RetryPolicy | None = None,
        on_call: CallHook | None = None,
    ) -> None:
        root = base_url.rstrip("/")
        if root.endswith(API_ROOT):
            root = root[: -len(API_ROOT)]
        self._api_key = api_key
        self.api = HttpApi(
            provider,
            root,
            client=http,
            timeout=timeout,
            retry=retry,
            on_call=on_call,
            parse_error=self._parse_error,
            kind=ProviderKind.GRAPHENEDB_V1,
        )

    def __repr__(self) -> str:
        return f"V1Client({self.provider!r}, {self.api.base_url!r})"

    def _parse_error(self, response: httpx.Response) -> tuple[str, str | None, str | None]:
        """The shared error parser, with the api key scrubbed should a server echo it."""
        message, code, nonce = parse_error_body(response)
        key = self._api_key.get_secret_value()
        if key and key in message:
            message = message.replace(key, REDACTED)
        return message, code, nonce

    async def _answer(
        self, method: str, path: str, *, json: Any = None
    ) -> tuple[Any, dict[str, Any]]:
        """The JSON body of a 2xx answer ({} when empty) and the context for errors."""
        headers = {
            "api_key": self._api_key.get_secret_value(),
            "Content-Type": "application/json",
            "Accept": "application/json",
        }
        full = API_ROOT + path
        response = await self.api.request(method, full, headers=headers, json=json)
        context = {
            "method": method,
            "path": full,
            "provider": self.provider,
            "status": response.status_code,
        }
        return self.api.json_of(response, method, full, empty={}), context

    async def _one(
        self, model: type[M], method: str, path: str, what: str, *, json: Any = None
    ) -> M:
        body, context = await self._answer(method, path, json=json)
        return parse(model, body, what, **context)

    async def _many(self, model: type[M], path: str, key: str, what: str) -> list[M]:
        body, context = await self._answer("GET", path)
        return parse_items(model, body, key, what, **context)

    async def _accepted(self, method: str, path: str, *, json: Any = None) -> Accepted:
        return await self._one(Accepted, method, path, f"{method} {path}", json=json)

    # -- resolver adapter: the account is one environment ----------------------

    async def environments(self) -> list[Environment]:
        """The single pseudo-environment of a v1 account, named after the provider."""
        return [Environment(id=self.provider, label=self.provider)]

    async def databases(self, environment_id: str) -> list[V1Database]:
        """Every database of the account; NotFound (no request) for another environment."""
        if environment_id != self.provider:
            raise NotFound(
                f"a v1 account has only the environment {self.provider!r}",
                provider=self.provider,
                kind=self.kind,
            )
        return await self.list_databases()

    # -- catalogs ------------------------------------------------------------------

    async def versions(self) -> list[V1Version]:
        """``GET /v1/databases/versions``."""
        return await self._many(V1Version, "/databases/versions", "versions", "versions")

    async def plans(self) -> list[str]:
        """The plans the seed lists. v1 has no endpoint for them: no request is sent."""
        return list(PLANS)

    async def regions(self) -> list[str]:
        """The EC2 regions the seed lists. v1 has no endpoint for them: no request is sent."""
        return list(REGIONS)

    # -- databases -------------------------------------------------------------------

    async def list_databases(self) -> list[V1Database]:
        """``GET /v1/databases``."""
        return await self._many(V1Database, "/databases", "databases", "databases")

    async def database(self, database_id: str) -> V1Database:
        """``GET /v1/databases/{id}``."""
        path = f"/databases/{_seg(database_id)}"
        return await self._one(V1Database, "GET", path, f"database {database_id}")

    async def create_database(
        self,
        name: str,
        version: str,
        aws_region: str,
        plan: str,
        *,
        private_network_id: str | None = None,
    ) -> Accepted:
        """``POST /v1/databases`` {name, version, awsRegion, plan[, privateNetworkId]}."""
        body: dict[str, Any] = {
            "name": name,
            "version": version,
            "awsRegion": aws_region,
            "plan": plan,
        }
        if private_network_id is not None:
            body["privateNetworkId"] = private_network_id
        return await self._accepted("POST", "/databases", json=body)

    async def delete_database(self, database_id: str) -> Accepted:
        """``DELETE /v1/databases/{id}``."""
        return await self._accepted("DELETE", f"/databases/{_seg(database_id)}")

    async def restart(self, database_id: str) -> Accepted:
        """``PUT /v1/databases/{id}/restart``."""
        return await self._accepted("PUT", f"/databases/{_seg(database_id)}/restart")

    async def empty(self, database_id: str) -> Accepted:
        """``PUT /v1/databases/{id}/empty``: delete every node and relationship."""
        return await self._accepted("PUT", f"/databases/{_seg(database_id)}/empty")

    # -- operations --------------------------------------------------------------------

    async def operation(self, operation_id: str) -> V1Operation:
        """``GET /v1/operations/{id}``."""
        path = f"/operations/{_seg(operation_id)}"
        return await self._one(V1Operation, "GET", path, f"operation {operation_id}")

    def as_operation_source(self) -> V1OperationSource:
        """This client seen as an ``operations.follow.OperationSource``."""
        return V1OperationSource(self)

    # -- backups -----------------------------------------------------------------------

    def _backups(self, database_id: str) -> str:
        return f"/databases/{_seg(database_id)}/backups"

    async def backups(self, database_id: str) -> list[Backup]:
        """``GET /v1/databases/{id}/backups``."""
        return await self._many(
            Backup, self._backups(database_id), "backups", f"backups of {database_id}"
        )

    async def latest_backup(self, database_id: str) -> Backup:
        """``GET /v1/databases/{id}/backups/latest``."""
        path = self._backups(database_id) + "/latest"
        return await self._one(Backup, "GET", path, f"latest backup of {database_id}")

    async def backup(self, database_id: str, backup_id: str) -> Backup:
        """``GET /v1/databases/{id}/backups/{backupId}``."""
        path = f"{self._backups(database_id)}/{_seg(backup_id)}"
        return await self._one(Backup, "GET", path, f"backup {backup_id}")

    async def take_backup(self, database_id: str) -> Accepted:
        """A manual backup (snapshot): ``POST /v1/databases/{id}/backups``.

        The seed names the feature but no path; POST on the collection is the
        REST reading of "POST creates a new entity". Standard plans and up only.
        """
        return await self._accepted("POST", self._backups(database_id))

    async def restore_backup(self, database_id: str, backup_id: str) -> Accepted:
        """``PUT /v1/databases/{id}/backups/{backupId}/restore``."""
        path = f"{self._backups(database_id)}/{_seg(backup_id)}/restore"
        return await self._accepted("PUT", path)

    async def backup_package(self, database_id: str, backup_id: str) -> BackupPackage:
        """``GET /v1/databases/{id}/backups/{backupId}/package``: a one-time link (secret)."""
        path = f"{self._backups(database_id)}/{_seg(backup_id)}/package"
        return await self._one(BackupPackage, "GET", path, f"package of backup {backup_id}")

    async def backup_schedule(self, database_id: str) -> BackupSchedule:
        """``GET /v1/databases/{id}/backups/schedule``."""
        path = self._backups(database_id) + "/schedule"
        return await self._one(BackupSchedule, "GET", path, f"backup schedule of {database_id}")

    async def set_backup_schedule(
        self, database_id: str, time: str, *, timezone: str = "UTC", frequency: str = "daily"
    ) -> BackupSchedule:
        """``PUT /v1/databases/{id}/backups/schedule`` {time H:MM:SS, timezone, frequency}.

        Answers the stored schedule; an empty answer means the one sent was kept.
        """
        body = {"time": time, "timezone": timezone, "frequency": frequency}
        path = self._backups(database_id) + "/schedule"
        answer, context = await self._answer("PUT", path, json=body)
        kept = answer if isinstance(answer, dict) and answer else body
        return parse(BackupSchedule, kept, f"backup schedule of {database_id}", **context)

    # -- export / import ----------------------------------------------------------------

    async def export(self, database_id: str) -> Export:
        """``PUT /v1/databases/{id}/export``: a one-time link to graphdb.zip (secret).

        The seed gives the path but not the method; PUT ("executes a command")
        is used, so a failed export is never silently repeated.
        """
        path = f"/databases/{_seg(database_id)}/export"
        return await self._one(Export, "PUT", path, f"export of {database_id}")

    async def import_url(self, database_id: str, url: str | SecretStr) -> Accepted:
        """``PUT /v1/databases/{id}/import`` {url}: load graphdb.zip from an S3 URL."""
        value = url.get_secret_value() if isinstance(url, SecretStr) else url
        path = f"/databases/{_seg(database_id)}/import"
        return await self._accepted("PUT", path, json={"url": value})


class V1OperationSource:
    """Adapts :meth:`V1Client.operation` to ``operation(database_id, operation_id)``."""

    def __init__(self, client: V1Client) -> None:
        self.client = client

    async def operation(self, database_id: str, operation_id: str) -> V1Operation:
        """The operation; ``database_id`` is not needed by v1 and is ignored."""
        return await self.client.operation(operation_id)
