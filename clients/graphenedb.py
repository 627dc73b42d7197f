"""Async client for the GrapheneDB Console API (api.db.graphenedb.com).

One method per operation in the seeds. Authentication is the OAuth2 client
credentials flow: one form-encoded POST for a JWT that lives about an hour. The
token is cached, shared by every concurrent caller (one request at a time),
refreshed shortly before it expires, and re-obtained once when the API answers
401. Response shapes follow `graphenedb-observed-shapes.md` and the seeds, read
by the rule of `clients.shapes`: ids required, everything else optional,
unknown fields kept, every documented name an alias, and an unusable answer an
`UnusableAnswer` naming the field.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterable, AsyncIterator, Callable
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Annotated, Any, TypeVar

import httpx
from pydantic import (
    BeforeValidator,
    Field,
    SecretStr,
    field_validator,
    model_validator,
)

from clients.errors import ApiError, BadRequest, Unauthorized
from clients.http import BearerAuth, BearerClient, CallHook, HttpApi, RetryPolicy
from clients.shapes import (
    FAILED,
    FINISHED,
    Count,
    Flag,
    Id,
    Label,
    Message,
    Model,
    Seconds,
    Text,
    Timestamp,
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

VENDOR = "graphneo"
DB_PATH = f"/deployments/databases/{VENDOR}"


class Environment(Model):
    """An environment: the Console groups databases in environments.

    Observed shape: ``{id, label, organizationId, grantType, region, cidr,
    createdAt, vpcPeers, networkRules, stoppedAt}``. ``label`` (or ``name``) is
    what people call it; ``grantType`` is the environment type (colour) that the
    Console says "determines the privilege scope for API clients". Whether an
    environment is protected is decided in ``permissions.policy``, not here.
    """

    id: Id
    label: Text = Field(default=None, validation_alias=names("label", "name"))
    grant_type: Text = Field(
        default=None, validation_alias=names("grantType", "grant_type", "type")
    )
    region: Text = None
    organization_id: Text = Field(default=None, validation_alias=names("organizationId"))
    created_at: Timestamp = Field(default=None, validation_alias=names("createdAt"))

    @property
    def name(self) -> str:
        """What people call it: the label, else the id."""
        return self.label or self.id

    @property
    def type(self) -> str | None:
        """The environment type (colour): the ``grantType``."""
        return self.grant_type


class HealthCheck(Model):
    last_check_seconds_ago: Count = Field(
        default=None, validation_alias=names("lastCheckSecondsAgo")
    )
    status: Text = None


def _health(value: Any) -> Any:
    if isinstance(value, str):
        return {"status": value}
    return value if isinstance(value, dict) else None


class Status(Model):
    """What a database is doing now; the four flags must all be false before acting on it.

    Observed shape: ``{state, needsRestart, isPending, isLocked, underIncident,
    lastHealthCheckStatus: {lastCheckSecondsAgo, status}}``. A flag the answer
    does not give reads as false; a missing state reads as ``unknown``.
    """

    state: Label = Field(
        default="unknown", validation_alias=names("state", "status", "currentState")
    )
    needs_restart: Flag = Field(default=False, validation_alias=names("needsRestart"))
    is_pending: Flag = Field(default=False, validation_alias=names("isPending"))
    is_locked: Flag = Field(default=False, validation_alias=names("isLocked"))
    under_incident: Flag = Field(default=False, validation_alias=names("underIncident"))
    last_health_check: Annotated[HealthCheck | None, BeforeValidator(_health)] = Field(
        default=None, validation_alias=names("lastHealthCheckStatus")
    )

    @field_validator("state", mode="after")
    @classmethod
    def _known(cls, value: str) -> str:
        return value or "unknown"


class Version(Model):
    number: Label = Field(default="", validation_alias=names("number", "version", "id", "name"))
    edition: Label = ""
    vendor: Label = ""

    def __str__(self) -> str:
        return " ".join(part for part in (self.number, self.edition) if part)


def _plan_name(value: Any) -> Any:
    if isinstance(value, dict):
        return value.get("name") or value.get("id") or value.get("type")
    return value


def _version(value: Any) -> Any:
    if isinstance(value, (str, int, float)) and not isinstance(value, bool):
        return {"number": str(value)}
    return value if isinstance(value, dict) else None


def _status(value: Any) -> Any:
    if isinstance(value, str):
        return {"state": value}
    return value if isinstance(value, dict) else {}


class Database(Model):
    """A database of the Console API (vendor graphneo).

    Observed shape: ``{id, organizationId, environmentId, name, domainName,
    privateDomainName, httpPort, boltPort, createdAt, status: Status, plan,
    version: {number, edition, vendor}, nodes: [{stationId, nodeType}]}``. A
    missing name reads as the id; a status given as text is its state.
    """

    id: Id
    name: Label = Field(default="", validation_alias=names("name", "label"))
    environment_id: Label = Field(default="", validation_alias=names("environmentId"))
    domain_name: Text = Field(default=None, validation_alias=names("domainName"))
    plan: Annotated[Text, BeforeValidator(_plan_name)] = None
    version: Annotated[Version | None, BeforeValidator(_version)] = None
    status: Annotated[Status, BeforeValidator(_status)] = Field(default_factory=Status)
    created_at: Timestamp = Field(default=None, validation_alias=names("createdAt"))

    @model_validator(mode="before")
    @classmethod
    def _top_level_state(cls, data: Any) -> Any:
        if isinstance(data, dict) and "status" not in data and "state" in data:
            return {**data, "status": {"state": data["state"]}}
        return data

    @model_validator(mode="after")
    def _name_or_id(self) -> Database:
        self.name = self.name or self.id
        return self


class Snapshot(Model):
    """A manual snapshot. No document gives its shape: every field but ``id`` is a guess."""

    id: Id
    database_id: Text = Field(default=None, validation_alias=names("databaseId"))
    environment_id: Text = Field(default=None, validation_alias=names("environmentId"))
    created_at: Timestamp = Field(default=None, validation_alias=names("createdAt", "timestamp"))
    status: Text = Field(default=None, validation_alias=names("status", "state", "currentState"))
    size_bytes: Count = Field(
        default=None, validation_alias=names("size", "sizeBytes", "currentSize")
    )
    # The size as the answer wrote it, when it is not a number of bytes ("1.2 GB").
    size_text: Text = Field(
        default=None, validation_alias=names("size", "sizeBytes", "currentSize")
    )

    @property
    def size(self) -> str:
        """The size for a person: `12.3 MB` from a number of bytes, the answer's own text
        otherwise, `unknown` when the answer has none."""
        if self.size_bytes is not None:
            return f"{self.size_bytes / 1e6:.1f} MB"
        return self.size_text or "unknown"


class OperationStep(Model):
    """One step of an operation.

    The Console seed says only "Collection of events"; the v1 seed's Operation
    Event is ``{state, createdAt}`` (``state`` names the step). So the name is
    ``name``, else ``description``, else ``state``; the status is ``status``,
    else ``currentState``, else ``state`` when ``state`` was not the name. A
    step without a status has been reached (it is an event that happened).
    """

    name: str = "step"
    status: str | None = None
    created_at: Timestamp = Field(default=None, validation_alias=names("createdAt"))

    @model_validator(mode="before")
    @classmethod
    def _name_and_status(cls, data: Any) -> Any:
        if isinstance(data, (str, int, float)) and not isinstance(data, bool):
            return {"name": str(data)}
        if not isinstance(data, dict):
            return data
        named = next(
            (key for key in ("name", "description", "state") if optional_text(data.get(key))),
            None,
        )
        status_keys = [k for k in ("status", "currentState", "state") if k != named]
        status = next((data[k] for k in status_keys if optional_text(data.get(k))), None)
        return {
            **data,
            "name": str(optional_text(data[named])) if named else "step",
            "status": status_word(status),
        }

    @property
    def reached(self) -> bool:
        """True once the step has started (any status but ``pending``, or none)."""
        return self.status not in ("pending", "waiting", "queued")


def _steps(value: Any) -> Any:
    if not isinstance(value, list):
        return []
    return [step for step in value if isinstance(step, (dict, str, int, float))]


class Operation(Model):
    """An asynchronous operation; ``finished`` with ``next_operation_id`` means follow the chain.

    Seed (collection): ``{id, operationType, startedAt, steps[], status}``, status
    ``started | finished | failed``. Observed (by id): ``{id, nextOperationId,
    status, startedAt, durationInSeconds}``. v1 names: ``currentState``,
    ``events``, ``description``, ``createdAt``. ``has_steps`` says whether the
    answer carried steps at all. ``error`` is the answer's reason, or for a
    failed operation without one, the step it failed at.
    """

    id: Id
    database_id: Text = Field(default=None, validation_alias=names("databaseId"))
    operation_type: Text = Field(
        default=None, validation_alias=names("operationType", "type", "kind", "description")
    )
    status: Annotated[str, BeforeValidator(lambda v: status_word(v) or "unknown")] = Field(
        default="unknown", validation_alias=names("status", "currentState", "state")
    )
    started_at: Timestamp = Field(default=None, validation_alias=names("startedAt", "createdAt"))
    steps: Annotated[list[OperationStep], BeforeValidator(_steps)] = Field(
        default_factory=list, validation_alias=names("steps", "events")
    )
    next_operation_id: Text = Field(default=None, validation_alias=names("nextOperationId"))
    duration_seconds: Seconds = Field(default=None, validation_alias=names("durationInSeconds"))
    error: Message = Field(
        default=None, validation_alias=names("error", "failureReason", "reason", "message")
    )

    @model_validator(mode="after")
    def _failure_reason(self) -> Operation:
        if self.status == FAILED and not self.error:
            self.error = (
                f"failed at step {self.steps[-1].name}" if self.steps else "no reason given"
            )
        return self

    @property
    def has_steps(self) -> bool:
        """Whether the answer carried a steps (or events) list."""
        return "steps" in self.model_fields_set

    @property
    def done(self) -> bool:
        return self.status in (FINISHED, FAILED)


class Catalog(Model):
    """A versions/plans/regions entry, kept as the API gave it (a bare value becomes ``id``)."""

    @model_validator(mode="before")
    @classmethod
    def _scalar(cls, data: Any) -> Any:
        if isinstance(data, (str, int, float)) and not isinstance(data, bool):
            return {"id": str(data)}
        return data


_OPERATION_MARKS = ("steps", "events", "currentState", "operationType", "nextOperationId")


class Started(Model):
    """What a command that starts async work answered: maybe a database, maybe an operation.

    Observed: create answers ``{"database": Database, "operationId": str}``. The
    operation id is ``operationId``, else ``operation`` (text or ``{id}``), else
    the ``id`` of an answer that is itself an operation (it carries ``steps``,
    ``events``, ``currentState``, ``operationType`` or ``nextOperationId``). A
    database's id is never taken for an operation id. An empty answer is
    ``Started()``: nothing to follow.
    """

    operation_id: Text = None
    database: Database | None = None
    snapshot: Snapshot | None = None

    @model_validator(mode="before")
    @classmethod
    def _read(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return {}
        operation = reference(data.get("operationId")) or reference(data.get("operation"))
        if operation is None and any(mark in data for mark in _OPERATION_MARKS):
            operation = reference(data.get("id"))
        return {
            **{k: v for k, v in data.items() if k not in ("operation_id",)},
            "operation_id": operation,
            "database": valid_or_none(Database, data.get("database")),
            "snapshot": valid_or_none(Snapshot, data.get("snapshot")),
        }


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
            provider,
            base_url,
            client=http,
            timeout=timeout,
            retry=retry,
            on_call=on_call,
            kind=ProviderKind.GRAPHENEDB,
        )
        self._client_id = client_id
        self._client_secret = client_secret
        self.auth = BearerAuth(self._fetch_token, clock, on_rejected=self.api.report_rejected)

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
                kind=self.kind,
            )
        return str(token), float(body.get("expires_in") or 3600)

    async def _call(
        self, method: str, path: str, headers_extra: dict[str, str] | None = None, **kwargs: Any
    ) -> httpx.Response:
        headers = {"Accept": "application/json", **(headers_extra or {})}
        return await self.signed(method, path, headers=headers, **kwargs)

    async def _answer(self, method: str, path: str, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        """The JSON body of a 2xx answer ({} when empty) and the context for errors."""
        response = await self._call(method, path, **kwargs)
        context = {
            "method": method,
            "path": path,
            "provider": self.provider,
            "status": response.status_code,
        }
        return self.api.json_of(response, method, path, empty={}), context

    async def _one(self, model: type[M], method: str, path: str, what: str, **kwargs: Any) -> M:
        body, context = await self._answer(method, path, **kwargs)
        return parse(model, body, what, **context)

    async def _many(self, model: type[M], path: str, key: str, what: str) -> list[M]:
        body, context = await self._answer("GET", path)
        return parse_items(model, body, key, what, **context)

    # -- catalogs ---------------------------------------------------------

    async def versions(self) -> list[Catalog]:
        return await self._many(Catalog, "/deployments/versions", "versions", "versions")

    async def plans(self) -> list[Catalog]:
        return await self._many(Catalog, "/deployments/plans", "plans", "plans")

    async def regions(self) -> list[Catalog]:
        return await self._many(Catalog, "/deployments/regions", "regions", "regions")

    # -- environments and databases --------------------------------------

    async def environments(self) -> list[Environment]:
        return await self._many(
            Environment, "/deployments/environments", "environments", "environments"
        )

    async def databases(self, environment_id: str) -> list[Database]:
        return await self._many(
            Database,
            f"/deployments/environments/{environment_id}/databases",
            "databases",
            f"databases of environment {environment_id}",
        )

    async def database(self, database_id: str) -> Database:
        return await self._one(
            Database, "GET", f"{DB_PATH}/{database_id}", f"database {database_id}"
        )

    async def status(self, database_id: str) -> Status:
        return await self._one(
            Status, "GET", f"{DB_PATH}/{database_id}/status", f"status of {database_id}"
        )

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
        return await self._one(Started, "POST", DB_PATH, f"create {name}", json=body)

    async def restart(
        self, database_id: str, *, station_ids: list[str] | None = None, reset: bool = True
    ) -> Started:
        body = {"stationIds": list(station_ids or []), "reset": reset}
        return await self._one(
            Started, "POST", f"{DB_PATH}/{database_id}/restart", f"restart {database_id}", json=body
        )

    async def pause(self, database_id: str) -> Started:
        path = f"{DB_PATH}/{database_id}/pause"
        return await self._one(Started, "POST", path, f"pause {database_id}")

    async def resume(self, database_id: str) -> Started:
        path = f"{DB_PATH}/{database_id}/start"
        return await self._one(Started, "POST", path, f"resume {database_id}")

    async def clone(self, database_id: str, name: str, environment_id: str) -> Started:
        body = {"name": name, "environmentId": environment_id}
        path = f"{DB_PATH}/{database_id}/clone"
        return await self._one(Started, "POST", path, f"clone {database_id}", json=body)

    async def terminate(self, database_id: str) -> Started:
        path = f"{DB_PATH}/{database_id}"
        return await self._one(Started, "DELETE", path, f"terminate {database_id}")

    async def switch_connection(self, database_id: str, target_database_id: str) -> Started:
        body = {"targetDatabase": target_database_id}
        path = f"{DB_PATH}/{database_id}/connections/switch"
        return await self._one(Started, "POST", path, f"switch {database_id}", json=body)

    # -- snapshots ----------------------------------------------------------

    async def snapshots(self, database_id: str) -> list[Snapshot]:
        return await self._many(
            Snapshot,
            f"{DB_PATH}/{database_id}/snapshots/manual",
            "snapshots",
            f"snapshots of {database_id}",
        )

    async def take_snapshot(self, database_id: str) -> Started:
        path = f"{DB_PATH}/{database_id}/snapshots/manual"
        return await self._one(Started, "POST", path, f"snapshot {database_id}")

    async def create_from_snapshot(
        self, snapshot_id: str, snapshot_environment_id: str, environment_id: str, name: str
    ) -> Started:
        body = {
            "snapshotId": snapshot_id,
            "snapshotEnvironmentId": snapshot_environment_id,
            "environmentId": environment_id,
            "name": name,
        }
        return await self._one(
            Started, "POST", f"{DB_PATH}/restore", f"create {name} from a snapshot", json=body
        )

    async def restore_snapshot(
        self, database_id: str, snapshot_id: str, snapshot_environment_id: str
    ) -> Started:
        body = {"snapshotId": snapshot_id, "snapshotEnvironmentId": snapshot_environment_id}
        path = f"{DB_PATH}/{database_id}/restore"
        return await self._one(Started, "POST", path, f"restore into {database_id}", json=body)

    # -- import -------------------------------------------------------------

    async def import_archive(
        self, database_id: str, archive: Archive | str | PathLike[str]
    ) -> Started:
        """Upload a database archive as multipart field ``file`` (seed: Database Import).

        ``archive`` is a path, or an :class:`Archive` (name, size, chunks). The
        body is streamed, never held in memory whole, and sent with a
        ``Content-Length`` (the seed's curl sends one; no chunked transfer
        encoding). It is never re-sent once sending began. Whatever the server
        answers is reported as it is: a 400 is a ``BadRequest`` with its message.
        """
        path = f"{DB_PATH}/{database_id}/import"
        try:
            source = archive if isinstance(archive, Archive) else Archive.from_path(archive)
        except OSError as exc:
            raise BadRequest(
                f"cannot read the archive: {exc.strerror or exc}",
                method="POST",
                path=path,
                provider=self.provider,
                kind=self.kind,
            ) from None
        if not source.name or any(c in source.name for c in '"\r\n'):
            raise BadRequest(
                f"unusable file name {source.name!r}",
                method="POST",
                path=path,
                provider=self.provider,
                kind=self.kind,
            )
        boundary = uuid.uuid4().hex
        head = (
            f"--{boundary}\r\n"
            f'Content-Disposition: form-data; name="file"; filename="{source.name}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        tail = f"\r\n--{boundary}--\r\n".encode()
        try:
            return await self._one(
                Started,
                "POST",
                path,
                f"import into {database_id}",
                content=_Multipart(head, source, tail),
                headers_extra={
                    "Content-Type": f"multipart/form-data; boundary={boundary}",
                    "Content-Length": str(len(head) + source.size + len(tail)),
                },
            )
        except (ValueError, OSError) as exc:  # the archive itself failed mid-upload
            raise BadRequest(
                f"the archive could not be sent: {exc}",
                method="POST",
                path=path,
                provider=self.provider,
                kind=self.kind,
            ) from None

    # -- operations -----------------------------------------------------------

    async def operations(self, database_id: str) -> list[Operation]:
        return await self._many(
            Operation,
            f"{DB_PATH}/{database_id}/operations",
            "operations",
            f"operations of {database_id}",
        )

    async def operation(self, database_id: str, operation_id: str) -> Operation:
        """One operation, with its steps when the API gives them.

        The seed's collection lists each operation with its ``status`` and ``steps``;
        the observed answer by id has no steps but is the only one with
        ``nextOperationId`` (``{id, nextOperationId, status, startedAt,
        durationInSeconds}``). So an operation still running is read from the
        collection (one request per poll, steps included); once it has ended (unless
        the collection says whether a next operation follows), or when the
        collection cannot be used or does not list it, it is read by id, with the
        collection's steps added when the answer by id has none.
        """
        listed = await self._listed(database_id, operation_id)
        chain_known = listed is not None and "next_operation_id" in listed.model_fields_set
        if listed is not None and listed.has_steps and (not listed.done or chain_known):
            return listed
        op = await self._one(
            Operation,
            "GET",
            f"{DB_PATH}/{database_id}/operations/{operation_id}",
            f"operation {operation_id}",
        )
        if op.has_steps or listed is None or not listed.has_steps:
            return op
        merged = op.model_copy(
            update={
                "steps": listed.steps,
                "operation_type": op.operation_type or listed.operation_type,
            }
        )
        if merged.status == FAILED and merged.error == "no reason given" and merged.steps:
            merged.error = f"failed at step {merged.steps[-1].name}"
        return merged

    async def _listed(self, database_id: str, operation_id: str) -> Operation | None:
        """The operation as the collection lists it, or None (not listed, or unusable)."""
        try:
            listed = await self.operations(database_id)
        except ApiError:
            return None
        return next((o for o in listed if o.id == operation_id), None)


@dataclass(frozen=True)
class Archive:
    """A database archive to upload: its file name, its size in bytes, and its bytes.

    ``chunks`` is an async iterable of bytes that yields exactly ``size`` bytes;
    :meth:`from_path` reads a file in 1 MiB chunks (and can be read again). A
    stream of unknown size is written to a file first (commands/archives.py).
    """

    name: str
    size: int
    chunks: AsyncIterable[bytes]

    @classmethod
    def from_path(cls, path: str | PathLike[str]) -> Archive:
        """The file at ``path`` (its size from the file system)."""
        file = Path(path)
        return cls(file.name, file.stat().st_size, _FileChunks(file))


class _FileChunks:
    """A file's bytes in 1 MiB chunks; iterable again (so a 401 can re-send it)."""

    CHUNK = 1024 * 1024

    def __init__(self, path: Path) -> None:
        self.path = path

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with self.path.open("rb") as handle:
            while chunk := await asyncio.to_thread(handle.read, self.CHUNK):
                yield chunk


class _Multipart:
    """The multipart body around an archive; checks the archive yields its stated size."""

    def __init__(self, head: bytes, archive: Archive, tail: bytes) -> None:
        self.head, self.archive, self.tail = head, archive, tail

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield self.head
        sent = 0
        async for chunk in self.archive.chunks:
            if chunk:
                sent += len(chunk)
                if sent > self.archive.size:
                    break
                yield chunk
        if sent != self.archive.size:
            raise ValueError(
                f"{self.archive.name} gave {sent} bytes, not the {self.archive.size} announced"
            )
        yield self.tail
