"""The Protocols every provider kind's adapter implements (see commands/adapters/__init__.py)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol, runtime_checkable

import httpx
from pydantic import SecretStr

from clients.http import CallRecord
from commands.context import Context
from commands.plan import Plan
from commands.resolve import Found
from core.kinds import ProviderKind
from core.provider import OperationSource, ProviderClient
from core.reply import Reply

Catalog = Literal["versions", "plans", "regions"]


@dataclass(frozen=True)
class ClientOptions:
    """How bot/ wants every client built: a shared connection pool (None: the client's
    own), the request timeout in seconds, and the hook that sees every API call (audit,
    metrics)."""

    http: httpx.AsyncClient | None
    timeout: float
    on_call: Callable[[CallRecord], None]

    def kwargs(self) -> dict[str, Any]:
        """The keyword arguments every client of clients/ takes for these."""
        return {"http": self.http, "timeout": self.timeout, "on_call": self.on_call}


class Adapter(Protocol):
    """What graphops needs to know of one provider kind."""

    kind: ProviderKind
    # Requests that only sign in (token, sign-in): previews leave them out.
    auth_paths: frozenset[str]

    def connect(
        self, name: str, base_url: str, credentials: Mapping[str, SecretStr], options: ClientOptions
    ) -> ProviderClient:
        """The client of provider `name`; `credentials` by the names bot/config.py gives."""
        ...

    def operation_source(self, client: ProviderClient) -> OperationSource | None:
        """What reads one async operation of this kind (None: the kind has none)."""
        ...


# Fields that identify a catalog entry (what `create plan=` / `version=` / `region=` take),
# in the order they are preferred; `catalog_value` picks the first an entry has.
ID_FIELDS = ("id", "name", "number", "version", "key", "slug", "code")


def catalog_value(entry: dict[str, str]) -> str | None:
    """The value `create` takes for a catalog entry (its first `ID_FIELDS` field), or None."""
    return next((entry[k] for k in ID_FIELDS if entry.get(k) not in (None, "", "-")), None)


@runtime_checkable
class DatabaseAdapter(Adapter, Protocol):
    """A kind whose databases the shared database verbs act on (GrapheneDB Console and v1)."""

    async def show(self, ctx: Context, plan: Plan) -> Reply:
        """`show <db>`: the database's fields."""
        ...

    async def catalog(self, ctx: Context, provider: str, which: Catalog) -> list[dict[str, str]]:
        """The provider's versions, plans or regions: each entry's fields as text, as the
        API named them (the verb builds the table from whatever fields there are)."""
        ...

    async def operations(self, ctx: Context, plan: Plan) -> Reply:
        """`ops <db>`: recent operations of the database."""
        ...

    def create_params(self, values: dict[str, Any]) -> dict[str, Any]:
        """Plan params of `create` this kind adds or checks (UserError when wrong)."""
        ...

    async def create(self, ctx: Context, plan: Plan) -> Reply:
        """Create the planned database."""
        ...

    def restart_params(self, values: dict[str, Any]) -> dict[str, Any]:
        """Plan params of `restart` this kind understands (`reset`)."""
        ...

    async def restart(self, ctx: Context, plan: Plan) -> Reply:
        """Restart the planned database."""
        ...

    def terminate_params(self, ctx: Context, found: Found) -> dict[str, Any]:
        """Plan params of `terminate` (the safety snapshot, where the kind has snapshots)."""
        ...

    async def terminate(self, ctx: Context, plan: Plan) -> Reply:
        """Delete the planned database."""
        ...

    async def plan_import(self, ctx: Context, found: Found, values: dict[str, Any]) -> Plan:
        """The plan of `import <db> <file>` (what this kind imports from)."""
        ...

    async def import_archive(self, ctx: Context, plan: Plan) -> Reply:
        """Replace the planned database's data with the archive."""
        ...
