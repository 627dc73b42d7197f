"""The open multi-step TypeDB transactions (`tx`): one per (user, channel), in memory.

The `tx` verb (commands/verbs/queries.py) opens, uses and closes them through
`Services.transactions`. They do not survive a bot restart (TypeDB closes them
server-side after their timeout anyway), and are forgotten after
`TX_TIMEOUT_SECONDS`, the `transactionTimeoutMillis` they are opened with.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from clients.typedb import TransactionType
from core.errors import UserError
from permissions.policy import Target

TX_TIMEOUT_SECONDS = 300.0  # lifetime of a multi-step transaction (transactionTimeoutMillis)


@dataclass
class OpenTransaction:
    """A transaction opened with `tx open`, and the queries run in it so far."""

    provider: str
    target: Target
    database: str
    type: TransactionType
    id: str
    deadline: float
    queries: list[str] = field(default_factory=list)


Key = tuple[str, str]  # (user, channel)


class Transactions:
    """Open `tx` transactions: one per (user, channel), in memory only.

    Open transactions are lost when the bot restarts; TypeDB closes them
    server-side after `timeout_seconds` (sent as transactionTimeoutMillis),
    and this registry forgets them after the same time.
    """

    def __init__(
        self,
        timeout_seconds: float = TX_TIMEOUT_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.timeout_seconds = timeout_seconds
        self.clock = clock
        self._open: dict[Key, OpenTransaction] = {}

    def __len__(self) -> int:
        """How many transactions are held (open or not yet swept)."""
        return len(self._open)

    def current(self, key: Key) -> OpenTransaction:
        """The open transaction of `key`; UserError when there is none or it timed out."""
        tx = self._open.get(key)
        if tx is None:
            raise UserError(
                "you have no open transaction in this channel; "
                "open one with `tx open <db> read|write|schema`"
            )
        if self.clock() >= tx.deadline:
            del self._open[key]
            raise UserError(
                f"your {tx.type} transaction on {tx.database} timed out after "
                f"{self.timeout_seconds:g} s and was closed without its changes; open a new one"
            )
        return tx

    def sweep(self) -> None:
        """Forget transactions that expired a whole timeout ago and nobody asked about."""
        stale = self.clock() - self.timeout_seconds
        for key in [k for k, tx in self._open.items() if tx.deadline < stale]:
            del self._open[key]

    def forget(self, key: Key) -> None:
        """Drop the transaction of `key` (closed, committed or gone on the server)."""
        self._open.pop(key, None)

    def held(self, key: Key) -> OpenTransaction | None:
        """The open transaction of `key`, or None (none, or timed out)."""
        try:
            return self.current(key)
        except UserError:
            return None

    def open(self, key: Key, transaction: OpenTransaction) -> None:
        """Remember the transaction `key` just opened."""
        self._open[key] = transaction
