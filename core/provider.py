"""A configured provider as every room sees it: its name, kind, client and operations.

The client of each kind is in clients/ (`ConsoleClient`, `V1Client`,
`TypeDBClient`); this module names only what rooms that do not know the kind
use: listing environments and databases (name resolution, the watcher's
incident scan), following operations (the tracker), closing. Code that needs
a kind's own calls gets its client through that kind's adapter
(commands/adapters/), which checks the class.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from core.kinds import ProviderKind


class EnvironmentInfo(Protocol):
    """An environment as a client returns it (`clients.graphenedb.Environment`...)."""

    @property
    def id(self) -> str:
        """The API's id (a one-environment provider uses its own name)."""
        ...

    @property
    def name(self) -> str:
        """The label people type in `env=`."""
        ...

    @property
    def production(self) -> bool:
        """Whether the API marks it production (protected by default)."""
        ...

    @property
    def type(self) -> str | None:
        """The API's kind of environment (a Console environment's colour), if any."""
        ...


class DatabaseInfo(Protocol):
    """A database as a client lists it: an id and a name, whatever else it carries."""

    @property
    def id(self) -> str:
        """The API's id (TypeDB: the name)."""
        ...

    @property
    def name(self) -> str:
        """The name people type."""
        ...


class ProviderClient(Protocol):
    """What every kind's client offers: its environments and their databases."""

    async def environments(self) -> Sequence[EnvironmentInfo]:
        """Every environment of the account (one for v1 and TypeDB)."""
        ...

    async def databases(self, environment_id: str) -> Sequence[DatabaseInfo]:
        """The databases of one environment."""
        ...

    async def aclose(self) -> None:
        """Close the connection pool (when the client owns it)."""
        ...


class OperationSource(Protocol):
    """Reads one async operation (Console `Operation`, v1 `V1Operation`); used to follow it.

    The answer has `status`, `steps`, `next_operation_id` and `error`
    (operations/follow.py reads them); `NotFound` when it is gone.
    """

    async def operation(self, database_id: str, operation_id: str) -> Any:
        """The operation now; NotFound when the API no longer knows it."""
        ...


@dataclass(frozen=True)
class Provider:
    """A configured provider: its name, kind and client.

    `operations` is what reads one async operation (`operation(database_id,
    operation_id)`), or None for a kind without async operations (TypeDB).
    """

    name: str
    kind: ProviderKind
    client: ProviderClient
    operations: OperationSource | None = None
