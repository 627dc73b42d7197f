"""What a command runs with: who asked where (`Invocation`), the services, the verbs.

`Services` is built once by bot/wiring.py; `Context` is one command in flight
and is what every verb function receives.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from clients.dryrun import RecordingTransport
from commands.registry import Registry
from commands.resolve import Resolver
from commands.transactions import Transactions
from core.errors import UserError
from core.invocation import Invocation
from core.provider import Provider
from operations.incidents import Incidents
from operations.schedules import ScheduleStore
from operations.store import OperationHistory, SwitchBacks
from operations.watch import WatchStore
from permissions.approvals import ApprovalStore
from permissions.audit import AuditLog
from permissions.store import PermissionStore


class RoleTooLow(UserError):
    """The target exists, but where the channel's role is too low for the command.

    The pipeline answers it as a denial (audited), not as an error.
    """


class FileSource(Protocol):
    """Opens a file named in a command (a local path in the shell, a shared file in Slack)."""

    def __call__(self, invocation: Invocation, reference: str) -> tuple[str, AsyncIterator[bytes]]:
        """(file name, chunks) for `reference`; raises UserError when it cannot be read."""
        ...


DryRunProviders = Callable[[RecordingTransport], dict[str, Provider]]

StepResult = dict[str, Any]  # what a step's request answered, as JSON


class StepJournal(Protocol):
    """The persisted steps of approved work (commands/execution.py's `Journal`)."""

    async def step(
        self,
        name: str,
        send: Callable[[], Awaitable[StepResult]],
        *,
        baseline: Callable[[], Awaitable[Any]] | None = None,
        find: Callable[[Any], Awaitable[StepResult | None]] | None = None,
    ) -> StepResult:
        """Run `send` once across restarts (see commands/execution.py)."""
        ...


@dataclass
class Services:
    """Everything the command layer needs, built once by bot/wiring.py.

    The stores of operations/ are optional so that a test can build the
    command layer alone; a verb that needs a missing one says it is not
    available in this bot.
    """

    providers: dict[str, Provider]
    permissions: PermissionStore
    approvals: ApprovalStore
    audit: AuditLog
    resolver: Resolver
    slash_command: str = "/gdb"
    approval_ttl_seconds: int = 900
    open_file: FileSource | None = None
    history: OperationHistory | None = None  # what the tracker followed (v1 `ops`)
    # Builds providers whose clients record instead of sending (dry-runs, previews).
    dry_run_providers: DryRunProviders | None = None
    snapshot_before_destroy: str = "protected"
    switch_back_minutes: int = 60
    switch_backs: SwitchBacks | None = None
    watches: WatchStore | None = None
    schedules: ScheduleStore | None = None
    transactions: Transactions = field(default_factory=Transactions)
    # The environment's incident channel (through the outbox): failures of approved work.
    incidents: Incidents | None = None
    # Approved work left unfinished by a stopped bot is resumed only this long after its
    # approval; older work is ended with a clear failure (nothing is sent).
    resume_within_seconds: float = 3600.0


@dataclass
class Context:
    """A command in flight: the invocation, the services and the verbs it may look up."""

    invocation: Invocation
    services: Services
    registry: Registry
    # True while a dry-run or an approval card's preview runs the verb's code against
    # recording clients: code with effects outside the API (stores, schedules) must skip them.
    dry_run: bool = False
    # Set while approved work runs (commands/execution.py): its steps survive a restart.
    journal: StepJournal | None = None

    def provider(self, name: str) -> Provider:
        """The provider called `name`; UserError if there is none."""
        try:
            return self.services.providers[name]
        except KeyError:
            known = ", ".join(sorted(self.services.providers)) or "none configured"
            raise UserError(f"no provider called {name!r} (providers: {known})") from None
