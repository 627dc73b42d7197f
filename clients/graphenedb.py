"""Async client for the GrapheneDB Console API (api.db.graphenedb.com).

One method per operation in the seeds. Authentication is the OAuth2 client
credentials flow: one form-encoded POST for a JWT that lives about an hour. The
token is cached, shared by every concurrent caller (one request at a time),
refreshed shortly before it expires, and re-obtained once when the API answers
401. Response shapes follow `graphenedb-observed-shapes.md`; the models ignore
unknown fields and accept a bare list or a `{"<name>": [...]}` wrapper.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from clients.errors import BadRequest, Unauthorized
from clients.http import BearerAuth, BearerClient, CallHook, HttpApi, RetryPolicy

VENDOR = "graphneo"
DB_PATH = f"/deployments/databases/{VENDOR}"


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class Environment(_Model):
    """An environment: the Console groups databases in environments of a type (colour)."""

    id: str
    label: str = ""
    type: str | None = None
    region: str | None = None

    @property
    def name(self) -> str:
        return self.label or self.id

    @property
    def production(self) -> bool:
        return (self.type or "").lower() == "production"


class HealthCheck(_Model):
    last_check_seconds_ago: int | None = Field(default=None, alias="lastCheckSecondsAgo")
    status: str | None = None


class Status(_Model):
    """What a database is doing now; the four flags must all be false before acting on it."""

    state: str = "unknown"
    needs_restart: bool = Field(default=False, alias="needsRestart")
    is_pending: bool = Field(default=False, alias="isPending")
    is_locked: bool = Field(default=False, alias="isLocked")
    under_incident: bool = Field(default=False, alias="underIncident")
    last_health_check: HealthCheck | None = Field(default=None, alias="lastHealthCheckStatus")


class Version(_Model):
    number: str = ""
    edition: str = ""
    vendor: str = ""

    def __str__(self) -> str:
        return " ".join(part for part in (self.number, self.edition) if part)


class Database(_Model):
    """A database of the Console API (vendor graphneo)."""

    id: str
    name: str
    environment_id: str = Field(default="", alias="environmentId")
    domain_name: str | None = Field(default=None, alias="domainName")
    plan: str | None = None
    version: Version | None = None
    status: Status = Status()
    created_at: str | None = Field(default=None, alias="createdAt")

    @field_validator("plan", mode="before")
    @classmethod
    def _plan_name(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return value.get("name") or value.get("type")
        return value

    @field_validator("version", mode="before")
    @classmethod
    def _version(cls, value: Any) -> Any:
        if isinstance(value, str):
            return {"number": value}
        return value


class Snapshot(_Model):
    id: str
    database_id: str | None = Field(default=None, alias="databaseId")
    environment_id: str | None = Field(default=None, alias="environmentId")
    created_at: str | None = Field(default=None, alias="createdAt")
    status: str | None = None
    size_bytes: int | None = Field(default=None, alias="sizeBytes")


class OperationStep(_Model):
    name: str
    status: str | None = None

    @field_validator("name", mode="before")
    @classmethod
    def _step_name(cls, value: Any) -> Any:
        return value if value is not None else "step"


class Operation(_Model):
    """An asynchronous operation; `finished` with `next_operation_id` means follow the chain."""

    id: str
    database_id: str | None = Field(default=None, alias="databaseId")
    operation_type: str | None = Field(default=None, alias="operationType")
    status: str = "started"
    started_at: int | float | str | None = Field(default=None, alias="startedAt")
    steps: list[OperationStep] = []
    next_operation_id: str | None = Field(default=None, alias="nextOperationId")
    duration_seconds: float | None = Field(default=None, alias="durationInSeconds")
    error: str | None = None

    @field_validator("steps", mode="before")
    @classmethod
    def _steps(cls, value: Any) -> Any:
        if value is None:
            return []
        return [{"name": step} if isinstance(step, str) else step for step in value]

    @property
    def done(self) -> bool:
        return self.status in ("finished", "failed")


class Catalog(_Model):
    """A versions/plans/regions entry, kept as the API gave it."""

    model_config = ConfigDict(extra="allow")


class Started(_Model):
    """What a command that starts async work returns: maybe a database, maybe an operation."""

    operation_id: str | None = Field(default=None, alias="operationId")
    database: Database | None = None
    snapshot: Snapshot | None = None


def _items(body: Any, key: str) -> list[Any]:
    """A collection answer as a list: a bare list or {key: [...]}."""
    if isinstance(body, list):
        return body
    if isinstance(body, dict) and isinstance(body.get(key), list):
        return list(body[key])
    return []


class ConsoleClient(BearerClient):
    """The GrapheneDB Console API for one API client (one provider in graphops.toml)."""

    TOKEN_PATH = "/organizations/oauth/token"

    def __init__(
        self,
        provider: str,
        base_url: str,
        client_id: SecretStr,
        client_secret: SecretStr,
        *,
        http: httpx.AsyncClient | None = None,
        timeout: float = 15.0,
        retry: RetryPolicy | None = None,
        on_call: CallHook | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.api = HttpApi(
            provider, base_url, client=http, timeout=timeout, retry=retry, on_call=on_call
        )
        self._client_id = client_id
        self._client_secret = client_secret
        self.auth = BearerAuth(self._fetch_token, clock)

    # -- authentication -------------------------------------------------

    async def _fetch_token(self) -> tuple[str, float]:
        response = await self.api.request(
            "POST",
            self.TOKEN_PATH,
            data={
                "client_id": self._client_id.get_secret_value(),
                "client_secret": self._client_secret.get_secret_value(),
                "grant_type": "client_credentials",
            },
            retry=True,  # a token request changes nothing: safe to repeat
        )
        body = response.json()
        token = body.get("access_token") if isinstance(body, dict) else None
        if not token:
            raise Unauthorized(
                "the token answer had no access_token",
                method="POST",
                path=self.TOKEN_PATH,
                provider=self.provider,
            )
        return str(token), float(body.get("expires_in") or 3600)

    async def _call(
        self, method: str, path: str, headers_extra: dict[str, str] | None = None, **kwargs: Any
    ) -> httpx.Response:
        headers = {"Accept": "application/json", **(headers_extra or {})}
        return await self.auth.request(self.api, method, path, headers=headers, **kwargs)

    async def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = await self._call(method, path, **kwargs)
        return self.api.json_of(response, method, path, empty={})

    # -- catalogs ---------------------------------------------------------

    async def versions(self) -> list[Catalog]:
        body = await self._json("GET", "/deployments/versions")
        return [Catalog.model_validate(item) for item in _items(body, "versions")]

    async def plans(self) -> list[Catalog]:
        body = await self._json("GET", "/deployments/plans")
        return [Catalog.model_validate(item) for item in _items(body, "plans")]

    async def regions(self) -> list[Catalog]:
        body = await self._json("GET", "/deployments/regions")
        items = _items(body, "regions")
        return [Catalog.model_validate(i if isinstance(i, dict) else {"id": i}) for i in items]

    # -- environments and databases --------------------------------------

    async def environments(self) -> list[Environment]:
        body = await self._json("GET", "/deployments/environments")
        return [Environment.model_validate(item) for item in _items(body, "environments")]

    async def databases(self, environment_id: str) -> list[Database]:
        body = await self._json("GET", f"/deployments/environments/{environment_id}/databases")
        return [Database.model_validate(item) for item in _items(body, "databases")]

    async def database(self, database_id: str) -> Database:
        return Database.model_validate(await self._json("GET", f"{DB_PATH}/{database_id}"))

    async def status(self, database_id: str) -> Status:
        return Status.model_validate(await self._json("GET", f"{DB_PATH}/{database_id}/status"))

    async def create_database(
        self,
        environment_id: str,
        name: str,
        plan: str,
        version: str,
        edition: str,
        extras: list[str] | None = None,
    ) -> Started:
        body = {
            "environmentId": environment_id,
            "name": name,
            "plan": plan,
            "version": version,
            "edition": edition,
            "enabledExtrasKinds": list(extras or []),
        }
        return Started.model_validate(await self._json("POST", DB_PATH, json=body))

    async def restart(
        self, database_id: str, *, station_ids: list[str] | None = None, reset: bool = True
    ) -> Started:
        body = {"stationIds": list(station_ids or []), "reset": reset}
        return Started.model_validate(
            await self._json("POST", f"{DB_PATH}/{database_id}/restart", json=body)
        )

    async def pause(self, database_id: str) -> Started:
        return Started.model_validate(await self._json("POST", f"{DB_PATH}/{database_id}/pause"))

    async def resume(self, database_id: str) -> Started:
        return Started.model_validate(await self._json("POST", f"{DB_PATH}/{database_id}/start"))

    async def clone(self, database_id: str, name: str, environment_id: str) -> Started:
        body = {"name": name, "environmentId": environment_id}
        return Started.model_validate(
            await self._json("POST", f"{DB_PATH}/{database_id}/clone", json=body)
        )

    async def terminate(self, database_id: str) -> Started:
        return Started.model_validate(await self._json("DELETE", f"{DB_PATH}/{database_id}"))

    async def switch_connection(self, database_id: str, target_database_id: str) -> Started:
        body = {"targetDatabase": target_database_id}
        return Started.model_validate(
            await self._json("POST", f"{DB_PATH}/{database_id}/connections/switch", json=body)
        )

    # -- snapshots ----------------------------------------------------------

    async def snapshots(self, database_id: str) -> list[Snapshot]:
        body = await self._json("GET", f"{DB_PATH}/{database_id}/snapshots/manual")
        return [Snapshot.model_validate(item) for item in _items(body, "snapshots")]

    async def take_snapshot(self, database_id: str) -> Started:
        return Started.model_validate(
            await self._json("POST", f"{DB_PATH}/{database_id}/snapshots/manual")
        )

    async def create_from_snapshot(
        self, snapshot_id: str, snapshot_environment_id: str, environment_id: str, name: str
    ) -> Started:
        body = {
            "snapshotId": snapshot_id,
            "snapshotEnvironmentId": snapshot_environment_id,
            "environmentId": environment_id,
            "name": name,
        }
        return Started.model_validate(await self._json("POST", f"{DB_PATH}/restore", json=body))

    async def restore_snapshot(
        self, database_id: str, snapshot_id: str, snapshot_environment_id: str
    ) -> Started:
        body = {"snapshotId": snapshot_id, "snapshotEnvironmentId": snapshot_environment_id}
        return Started.model_validate(
            await self._json("POST", f"{DB_PATH}/{database_id}/restore", json=body)
        )

    # -- import -------------------------------------------------------------

    async def import_archive(
        self, database_id: str, chunks: AsyncIterator[bytes], filename: str
    ) -> Started:
        """Upload a database archive as multipart field `file`, streamed chunk by chunk.

        The archive is never held in memory whole; it is sent with chunked
        transfer encoding and never retried once sending began.
        """
        if not filename or any(c in filename for c in '"\r\n'):
            raise BadRequest(
                f"unusable file name {filename!r}",
                method="POST",
                path=f"{DB_PATH}/{database_id}/import",
                provider=self.provider,
            )
        boundary = uuid.uuid4().hex
        return Started.model_validate(
            await self._json(
                "POST",
                f"{DB_PATH}/{database_id}/import",
                content=_multipart(boundary, "file", filename, chunks),
                headers_extra={"Content-Type": f"multipart/form-data; boundary={boundary}"},
            )
        )

    # -- operations -----------------------------------------------------------

    async def operations(self, database_id: str) -> list[Operation]:
        body = await self._json("GET", f"{DB_PATH}/{database_id}/operations")
        return [Operation.model_validate(item) for item in _items(body, "operations")]

    async def operation(self, database_id: str, operation_id: str) -> Operation:
        return Operation.model_validate(
            await self._json("GET", f"{DB_PATH}/{database_id}/operations/{operation_id}")
        )


async def _multipart(
    boundary: str, field: str, filename: str, chunks: AsyncIterator[bytes]
) -> AsyncIterator[bytes]:
    yield (
        f"--{boundary}\r\n"
        f'Content-Disposition: form-data; name="{field}"; filename="{filename}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    async for chunk in chunks:
        if chunk:
            yield chunk
    yield f"\r\n--{boundary}--\r\n".encode()
