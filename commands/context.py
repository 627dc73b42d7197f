"""What a command runs with: who asked where (`Invocation`), the services, the verbs.

`Services` is built once by bot/wiring.py; `Context` is one command in flight
and is what every verb function receives.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Protocol

from clients.dryrun import RecordingTransport
from clients.errors import ApiError
from commands.archives import ArchiveStore, OpenedFile
from commands.registry import Registry
from commands.resolve import Resolver
from commands.transactions import Transactions
from core.errors import UserError
from core.invocation import Invocation
from core.provider import Provider
from core.redaction import redact
from operations.follow import Backoff, FollowLimits
from operations.locked import pause_a_second
from operations.notify import IncidentPort
from operations.schedules import ScheduleStore
from operations.store import OperationHistory, SwitchBacks
from operations.watch import WatchStore
from permissions.approvals import ApprovalStore
from permissions.audit import AuditLog
from permissions.model import ChannelPolicy
from permissions.store import PermissionStore

log = logging.getLogger("graphops.commands")

# How a command polls what it waits on itself (dr's clone, the safety snapshot), in seconds.
WAIT_BACKOFF = Backoff(first=1.0, factor=1.3, cap=10.0)

#: Says one line of progress of a long wait (`Context.progress`).
Progress = Callable[[str], Awaitable[None]]

_progress: ContextVar[Progress | None] = ContextVar("progress", default=None)


@contextlib.contextmanager
def reporting_progress(progress: Progress) -> Iterator[None]:
    """Commands run inside (and the tasks they start) say how their long waits go
    through `progress` (a transport: the approval card's thread, the shell)."""
    token = _progress.set(progress)
    try:
        yield
    finally:
        _progress.reset(token)


class Refused(UserError):
    """A command the rules refuse, found while preparing it (not a mistake in it).

    The pipeline answers it as a denial (audited, `pipeline.refuse`), not as an error.
    """


class NeedsChoice(UserError):
    """The command can go on once one value of option `argument` is picked among `values`
    ((label, value) pairs): the pipeline asks for it (commands/choices.py) instead of
    failing; the message is what a transport without menus shows."""

    def __init__(self, message: str, argument: str, values: list[tuple[str, str]]) -> None:
        super().__init__(message)
        self.argument = argument
        self.values = values


class RoleTooLow(Refused):
    """The target exists, but where the channel's role is too low for the command."""


class FileSource(Protocol):
    """Opens an archive named in a command (bot/files.py): an https URL from any
    transport; a local path only from the shell (a path on the bot's server is never
    readable from Slack)."""

    def __call__(self, invocation: Invocation, reference: str) -> OpenedFile:
        """`reference` opened for reading once (its size when known without reading);
        UserError when it may not or cannot be read. Nothing is read yet."""
        ...


class Membership(Protocol):
    """Who is in a channel, as the transport knows it (a port: commands/ knows no Slack).

    Slack answers with conversations.members (bot/slack/membership.py); the shell
    knows no channel's members (`CurrentChannelOnly`). Used where a channel's
    settings are shown outside it (`access channel=`, `approvers`).
    """

    async def is_member(self, user: str, channel: str) -> bool:
        """Whether `user` is a member of `channel`; False when it cannot be known."""
        ...


class CurrentChannelOnly:
    """The membership of a transport without a directory (the shell, tests): nobody is
    known to be in another channel, so only the channel a command is typed in counts."""

    async def is_member(self, user: str, channel: str) -> bool:
        """Always False: membership of other channels is unknown here."""
        return False


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


class Memberships(Protocol):
    """Which of `groups` (user-group ids, `S…`) `user` belongs to: (member of, not known in
    time). bot/ gives the Slack transport's cache (bot/slack/groups.py); without one
    (the shell) nobody is a member of any group."""

    def __call__(
        self, user: str, groups: Iterable[str]
    ) -> Awaitable[tuple[frozenset[str], frozenset[str]]]:
        """(groups `user` is in, groups whose members could not be known in time)."""
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
    archives: ArchiveStore | None = None  # where `import` keeps what it downloads
    history: OperationHistory | None = None  # what the tracker followed (v1 `ops`)
    # Builds providers whose clients record instead of sending (dry-runs, previews).
    dry_run_providers: DryRunProviders | None = None
    snapshot_before_destroy: str = "protected"
    switch_back_minutes: int = 60
    switch_backs: SwitchBacks | None = None
    watches: WatchStore | None = None
    schedules: ScheduleStore | None = None
    transactions: Transactions = field(default_factory=Transactions)
    # Approved work left unfinished by a stopped bot is resumed only this long after its
    # approval; older work is ended with a clear failure (nothing is sent).
    resume_within_seconds: float = 3600.0
    # Who is in which user group, for invocations no transport filled in (schedules).
    memberships: Memberships | None = None
    # Channel membership from the transport (Slack sets its own; see `Membership`).
    membership: Membership = field(default_factory=CurrentChannelOnly)
    # Waits inside a command (dr's clone, the safety snapshot): the same limits as the
    # tracker's ([operations] max_poll_failures, deadline_minutes), and how often to poll.
    follow_limits: FollowLimits = field(default_factory=FollowLimits)
    wait_backoff: Backoff = field(default_factory=lambda: WAIT_BACKOFF)
    # The environment's incident channel (through the outbox): a wait that gives up (or
    # fails), failures of approved work. None: nowhere (a bare test bot).
    incidents: IncidentPort | None = None
    # Waits (off the loop) until another process lets go of the store's write lock; what
    # approved work awaits before it writes its next step again (operations/locked.py).
    store_ready: Callable[[], Awaitable[bool]] = pause_a_second


@dataclass
class Context:
    """A command in flight: the invocation, the services and the verbs it may look up."""

    invocation: Invocation
    services: Services
    registry: Registry
    # True while a dry-run or an approval card's preview runs the verb's code against
    # recording clients: code with effects outside the API (stores, schedules) must skip them.
    dry_run: bool = False
    # Providers (`console-eu`) or environments (`staging/console`) whose listing failed
    # while this command looked for its targets, with the error; they were skipped, and
    # the answer says so (commands/targets.py, `unreachable_lines`).
    unreachable: dict[str, ApiError] = field(default_factory=dict)
    # Set while approved work runs (commands/execution.py): its steps survive a restart.
    journal: StepJournal | None = None
    # Where a long wait inside the command (a safety snapshot, dr's clone) says how it
    # goes (the approval card's thread, the shell); None: nowhere.
    progress: Progress | None = field(default_factory=lambda: _progress.get())

    async def report(self, text: str) -> None:
        """Say how a long wait goes where the transport shows it (if anywhere), redacted
        (step names are the API's words); a failure to say it is logged, never fatal to
        the work."""
        if self.progress is None or self.dry_run:  # a preview waits for nothing
            return
        try:
            await self.progress(redact(text))
        except Exception as exc:  # the work goes on; its end is reported anyway
            log.warning("progress not shown: %s", type(exc).__name__)

    def policy(self) -> ChannelPolicy:
        """The permissions where this command was typed, resolved for the person acting
        (their role in each binding, from `users=` and their user groups; in a direct
        message, their personal bindings)."""
        return self.services.permissions.policy_for(self.invocation.channel, self.invocation)

    def provider(self, name: str) -> Provider:
        """The provider called `name`; UserError if there is none."""
        try:
            return self.services.providers[name]
        except KeyError:
            known = ", ".join(sorted(self.services.providers)) or "none configured"
            raise UserError(f"no provider called {name!r} (providers: {known})") from None
