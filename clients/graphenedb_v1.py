"""Async client for the GrapheneDB API v1 (legacy, ``api.graphenedb.com/v1``).

One method per operation in the v1 seed. Every request carries the header
``api_key: <key>`` (kept in a ``SecretStr``; it is never logged and never part
of an error message) and ``Content-Type: application/json``.

``base_url`` is the host root (``https://api.graphenedb.com``); the client puts
``/v1`` in front of every path. A ``base_url`` that already ends in ``/v1`` (as
the seed writes the API root) is accepted too: the suffix is dropped once.

Answers follow ``graphenedb-observed-shapes.md`` where the seed is silent; the
models ignore unknown fields and collections may be a bare list or a
``{"<name>": [...]}`` wrapper. Async commands answer 202 with an operation id
under ``operation``, ``operationId`` or ``id``; a 200/204 without one means the
command ran synchronously (``Accepted.operation_id is None``).

The one-time download links (export ``url``, backup package ``backupUrl``) are
returned as ``SecretStr``: call ``get_secret_value()`` only where the link is
meant to be shown.

For the generic verbs the whole v1 account is ONE environment named after the
provider (:meth:`V1Client.environments`, :meth:`V1Client.databases`), and its
databases look like Console databases (``.status.state``, ``.plan``,
``.version``, ``.domain_name``).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import httpx
from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    field_validator,
    model_validator,
)

from clients.errors import NotFound
from clients.graphenedb import Environment, OperationStep, Status
from clients.http import ApiClient, CallHook, HttpApi, RetryPolicy, parse_error_body

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


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


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


class V1Version(_Model):
    """A supported Neo4j version (``GET /v1/databases/versions``)."""

    version: str = Field(validation_alias=AliasChoices("version", "id"))
    description: str = ""

    def __str__(self) -> str:
        return self.version


class Plugin(_Model):
    id: str | None = None
    name: str = ""
    enabled: bool | None = None
    is_managed: bool | None = Field(default=None, alias="isManaged")
    kind: str | None = None
    created_at: str | None = Field(default=None, alias="createdAt")


class Counters(_Model):
    nodes: int | None = Field(default=None, validation_alias=AliasChoices("nodes", "Nodes"))
    relationships: int | None = Field(
        default=None, validation_alias=AliasChoices("relationships", "Relationships")
    )


class V1Database(_Model):
    """A v1 database, shaped so the generic verbs can render it like a Console one.

    v1 documents no state field: ``status.state`` is the ``state`` (or
    ``status``) the server sends if any, else ``"running"``. ``plan`` is the
    plan's ``type``; ``domain_name`` is the host of ``boltURL``. Credentials
    embedded in URLs are dropped.
    """

    id: str
    name: str
    created_at: str | None = Field(default=None, alias="createdAt")
    version: str | None = None
    version_edition: str | None = Field(default=None, alias="versionEdition")
    version_key: str | None = Field(default=None, alias="versionKey")
    current_size: int | None = Field(default=None, alias="currentSize")
    max_size: int | None = Field(default=None, alias="maxSize")
    plan: str | None = None
    plan_limits: Counters | None = None
    aws_region: str | None = Field(default=None, alias="awsRegion")
    private_network_id: str | None = Field(default=None, alias="privateNetworkId")
    url: str | None = Field(default=None, validation_alias=AliasChoices("url", "restUrl"))
    bolt_url: str | None = Field(default=None, validation_alias=AliasChoices("boltURL", "boltUrl"))
    browser_url: str | None = Field(
        default=None, validation_alias=AliasChoices("webAdminURL", "browserUrl", "browserURL")
    )
    metrics_url: str | None = Field(
        default=None, validation_alias=AliasChoices("metricsURL", "metricsUrl")
    )
    plugins: list[Plugin] = []
    counters: Counters | None = None
    cluster: dict[str, Any] | None = None
    status: Status = Status(state="running")

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

    @field_validator("url", "bolt_url", "browser_url", "metrics_url", mode="before")
    @classmethod
    def _strip_credentials(cls, value: Any) -> Any:
        return _without_userinfo(value)

    @field_validator("plugins", mode="before")
    @classmethod
    def _plugins(cls, value: Any) -> Any:
        return [] if value is None else value

    @property
    def domain_name(self) -> str | None:
        """Host name of the Bolt endpoint (what people connect to)."""
        if not self.bolt_url:
            return None
        return urlsplit(self.bolt_url).hostname


class OperationEvent(_Model):
    """One step an operation went through (``freezing-volume``, ``creating-snapshot``...)."""

    state: str
    created_at: int | float | str | None = Field(default=None, alias="createdAt")


class V1Operation(_Model):
    """An asynchronous v1 operation (``GET /v1/operations/{id}``).

    ``status``, ``steps``, ``next_operation_id`` and ``error`` give it the shape
    that ``operations.follow`` reads from Console operations: every event is a
    finished step except the newest, which is ``running`` (or ``failed``).
    """

    id: str
    database_id: str | None = Field(default=None, alias="databaseId")
    description: str = ""
    current_state: str = Field(default="started", alias="currentState")
    stopped: bool | None = None
    created_at: int | float | str | None = Field(default=None, alias="createdAt")
    events: list[OperationEvent] = []

    @field_validator("events", mode="before")
    @classmethod
    def _events(cls, value: Any) -> Any:
        if value is None:
            return []
        return [{"state": e} if isinstance(e, str) else e for e in value]

    @field_validator("description", mode="before")
    @classmethod
    def _description(cls, value: Any) -> Any:
        return value or ""

    @property
    def status(self) -> str:
        return self.current_state

    @property
    def done(self) -> bool:
        return self.current_state in ("finished", "failed")

    @property
    def next_operation_id(self) -> str | None:
        return None  # v1 operations are never chained

    @property
    def steps(self) -> list[OperationStep]:
        last = len(self.events) - 1
        ending = {"started": "running", "failed": "failed"}.get(self.current_state, "finished")
        return [
            OperationStep(name=e.state, status=ending if i == last else "finished")
            for i, e in enumerate(self.events)
        ]

    @property
    def error(self) -> str | None:
        if self.current_state != "failed":
            return None
        where = f" at {self.events[-1].state}" if self.events else ""
        return f"operation failed{where}"


class Accepted(_Model):
    """The answer to a command: an operation id when it runs asynchronously."""

    operation_id: str | None = None
    backup_id: str | None = Field(default=None, alias="backupId")

    @model_validator(mode="before")
    @classmethod
    def _operation_id(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return {}
        data = dict(data)
        for key in ("operationId", "operation", "id"):
            value = data.get(key)
            if isinstance(value, dict):
                value = value.get("id")
            if isinstance(value, str) and value:
                data["operation_id"] = value
                break
        return data


class Backup(_Model):
    """A backup of a database (state ``done`` or ``working``)."""

    id: str
    state: str | None = None
    origin: str | None = None
    timestamp: str | None = None
    size: int | None = None
    duration: int | None = None
    package_url: str | None = Field(default=None, alias="packageURL")
    downloadable: bool = False

    @property
    def done(self) -> bool:
        return self.state == "done"


class BackupSchedule(_Model):
    """The daily backup time, always UTC."""

    time: str
    timezone: str = "UTC"
    frequency: str = "daily"


class BackupPackage(_Model):
    """A secure one-time link to a backup package (graph.tar.gz)."""

    backup_url: SecretStr = Field(alias="backupUrl")


class Export(_Model):
    """A secure one-time link to an export (graphdb.zip) and its size in bytes."""

    url: SecretStr
    size: int | None = None


def _items(body: Any, key: str) -> list[Any]:
    """A collection answer as a list: a bare list or {key: [...]}."""
    if isinstance(body, list):
        return body
    if isinstance(body, dict) and isinstance(body.get(key), list):
        return list(body[key])
    return []


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

    async def _json(self, method: str, path: str, *, json: Any = None) -> Any:
        headers = {
            "api_key": self._api_key.get_secret_value(),
            "Content-Type": "application/json",
            "Accept": "application/json",
        }
        full = API_ROOT + path
        response = await self.api.request(method, full, headers=headers, json=json)
        return self.api.json_of(response, method, full, empty={})

    async def _accepted(self, method: str, path: str, *, json: Any = None) -> Accepted:
        return Accepted.model_validate(await self._json(method, path, json=json))

    # -- resolver adapter: the account is one environment ----------------------

    async def environments(self) -> list[Environment]:
        """The single pseudo-environment of a v1 account, named after the provider."""
        return [Environment(id=self.provider, label=self.provider, type=None)]

    async def databases(self, environment_id: str) -> list[V1Database]:
        """Every database of the account; NotFound (no request) for another environment."""
        if environment_id != self.provider:
            raise NotFound(
                f"a v1 account has only the environment {self.provider!r}",
                provider=self.provider,
            )
        return await self.list_databases()

    # -- catalogs ------------------------------------------------------------------

    async def versions(self) -> list[V1Version]:
        """``GET /v1/databases/versions``."""
        body = await self._json("GET", "/databases/versions")
        items = _items(body, "versions")
        return [
            V1Version.model_validate(i if isinstance(i, dict) else {"version": i}) for i in items
        ]

    async def plans(self) -> list[str]:
        """The plans the seed lists. v1 has no endpoint for them: no request is sent."""
        return list(PLANS)

    async def regions(self) -> list[str]:
        """The EC2 regions the seed lists. v1 has no endpoint for them: no request is sent."""
        return list(REGIONS)

    # -- databases -------------------------------------------------------------------

    async def list_databases(self) -> list[V1Database]:
        """``GET /v1/databases``."""
        body = await self._json("GET", "/databases")
        return [V1Database.model_validate(item) for item in _items(body, "databases")]

    async def database(self, database_id: str) -> V1Database:
        """``GET /v1/databases/{id}``."""
        return V1Database.model_validate(await self._json("GET", f"/databases/{_seg(database_id)}"))

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
        return V1Operation.model_validate(
            await self._json("GET", f"/operations/{_seg(operation_id)}")
        )

    def as_operation_source(self) -> V1OperationSource:
        """This client seen as an ``operations.follow.OperationSource``."""
        return V1OperationSource(self)

    # -- backups -----------------------------------------------------------------------

    def _backups(self, database_id: str) -> str:
        return f"/databases/{_seg(database_id)}/backups"

    async def backups(self, database_id: str) -> list[Backup]:
        """``GET /v1/databases/{id}/backups``."""
        body = await self._json("GET", self._backups(database_id))
        return [Backup.model_validate(item) for item in _items(body, "backups")]

    async def latest_backup(self, database_id: str) -> Backup:
        """``GET /v1/databases/{id}/backups/latest``."""
        return Backup.model_validate(
            await self._json("GET", self._backups(database_id) + "/latest")
        )

    async def backup(self, database_id: str, backup_id: str) -> Backup:
        """``GET /v1/databases/{id}/backups/{backupId}``."""
        path = f"{self._backups(database_id)}/{_seg(backup_id)}"
        return Backup.model_validate(await self._json("GET", path))

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
        return BackupPackage.model_validate(await self._json("GET", path))

    async def backup_schedule(self, database_id: str) -> BackupSchedule:
        """``GET /v1/databases/{id}/backups/schedule``."""
        path = self._backups(database_id) + "/schedule"
        return BackupSchedule.model_validate(await self._json("GET", path))

    async def set_backup_schedule(
        self, database_id: str, time: str, *, timezone: str = "UTC", frequency: str = "daily"
    ) -> BackupSchedule:
        """``PUT /v1/databases/{id}/backups/schedule`` {time H:MM:SS, timezone, frequency}.

        Answers the stored schedule; an empty answer means the one sent was kept.
        """
        body = {"time": time, "timezone": timezone, "frequency": frequency}
        answer = await self._json("PUT", self._backups(database_id) + "/schedule", json=body)
        return BackupSchedule.model_validate(
            answer if isinstance(answer, dict) and answer else body
        )

    # -- export / import ----------------------------------------------------------------

    async def export(self, database_id: str) -> Export:
        """``PUT /v1/databases/{id}/export``: a one-time link to graphdb.zip (secret).

        The seed gives the path but not the method; PUT ("executes a command")
        is used, so a failed export is never silently repeated.
        """
        return Export.model_validate(
            await self._json("PUT", f"/databases/{_seg(database_id)}/export")
        )

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
