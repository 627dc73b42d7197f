"""One adapter per provider kind: what graphops does differently for each kind.

`Adapter` is what every kind has: how bot/ builds its client from the config
(`connect`), how an operation is read (`operation_source`), which requests
only sign in (left out of previews). `DatabaseAdapter` adds what the shared
database verbs (show, create, restart, terminate, ops, import, the catalogs;
commands/verbs/databases.py) do on a kind that has them. A verb that works on
one kind only calls that kind's client (`console_client`, `v1_client`,
`typedb_client` in the adapter modules).

Adding a kind: a member of `core.kinds.ProviderKind`, its client in clients/,
its adapter module here (listed in `ADAPTERS`), and its `[[providers]]` entry
in bot/config.py. See docs/ARCHITECTURE.md.
"""

from __future__ import annotations

from commands.adapters import console, typedb, v1
from commands.adapters.base import Adapter, DatabaseAdapter
from core.errors import UserError
from core.kinds import ProviderKind

ADAPTERS: dict[ProviderKind, Adapter] = {
    module.ADAPTER.kind: module.ADAPTER for module in (console, v1, typedb)
}


def adapter(kind: str) -> Adapter:
    """The adapter of a kind (a ProviderKind or its value); KeyError for an unknown one."""
    return ADAPTERS[ProviderKind(kind)]


def database_adapter(kind: str) -> DatabaseAdapter:
    """The adapter of a kind whose databases the shared verbs act on; UserError otherwise."""
    found = adapter(kind)
    if not isinstance(found, DatabaseAdapter):
        raise UserError(f"providers of kind {kind} have no databases these commands act on")
    return found
