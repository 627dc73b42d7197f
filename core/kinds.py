"""The kinds of provider graphops drives; each has one client and one adapter.

The value is what `graphops.toml` says in `[[providers]] kind = ...`. A
`StrEnum`, so a kind compares equal to its string and is stored as one (plans
in approvals, audit rows).
"""

from __future__ import annotations

from enum import StrEnum


class ProviderKind(StrEnum):
    """One kind of provider (see commands/adapters/ for what each can do)."""

    GRAPHENEDB = "graphenedb"  # GrapheneDB Console API (seeds/graphenedb-console-api.txt)
    GRAPHENEDB_V1 = "graphenedb-v1"  # GrapheneDB API v1, legacy (seeds/graphenedb-v1-api.txt)
    TYPEDB = "typedb"  # TypeDB HTTP API (seeds/typedb-http-api.txt)

    @property
    def one_environment(self) -> bool:
        """Whether a provider of this kind has one environment, named after the provider
        (a v1 account, a TypeDB server: clients/graphenedb_v1.py, clients/typedb.py)."""
        return self is not ProviderKind.GRAPHENEDB
