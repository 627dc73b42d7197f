"""The TypeDB HTTP API kind (`typedb`): clients.typedb.TypeDBClient.

Source: seeds/typedb-http-api.txt. Sign-in with a username and password for a
bearer token (`/v1/signin`, renewed by the client); one environment named
after the provider; no async operations. The shared database verbs do not
apply: TypeDB has its own (commands/verbs/typedb.py, commands/verbs/queries.py).
"""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import SecretStr

from clients.typedb import TypeDBClient
from commands.adapters.base import ClientOptions
from commands.context import Context
from commands.targets import client_of
from core.kinds import ProviderKind
from core.provider import OperationSource, ProviderClient


def typedb_client(ctx: Context, provider: str) -> TypeDBClient:
    """The TypeDB client of provider `provider`; UserError if it is of another kind."""
    value: TypeDBClient = client_of(ctx, provider, TypeDBClient)
    return value


class TypeDBAdapter:
    """The `typedb` kind (see commands/adapters/base.py)."""

    kind = ProviderKind.TYPEDB
    auth_paths = frozenset({TypeDBClient.SIGNIN_PATH})

    def connect(
        self, name: str, base_url: str, credentials: Mapping[str, SecretStr], options: ClientOptions
    ) -> TypeDBClient:
        """A TypeDBClient with `username` and `password`."""
        return TypeDBClient(
            name, base_url, credentials["username"], credentials["password"], **options.kwargs()
        )

    def operation_source(self, client: ProviderClient) -> OperationSource | None:
        """TypeDB has no async operations."""
        return None


ADAPTER = TypeDBAdapter()
