"""What a command runs with: who asked where, the services, and the plan it makes."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from commands.resolve import Resolver
from core.errors import UserError
from core.invocation import Invocation
from core.provider import Provider
from permissions.approvals import ApprovalStore
from permissions.audit import AuditLog
from permissions.policy import Target
from permissions.roles import Role
from permissions.store import PermissionStore


class RoleTooLow(UserError):
    """The target exists, but where the channel's role is too low for the command."""


class FileSource(Protocol):
    """Opens a file named in a command (a local path in the shell, a shared file in Slack)."""

    def __call__(self, invocation: Invocation, reference: str) -> tuple[str, AsyncIterator[bytes]]:
        """(file name, chunks) for `reference`; raises UserError when it cannot be read."""
        ...


@dataclass
class Services:
    """Everything the command layer needs, built once by bot/."""

    providers: dict[str, Provider]
    permissions: PermissionStore
    approvals: ApprovalStore
    audit: AuditLog
    resolver: Resolver
    slash_command: str = "/gdb"
    approval_ttl_seconds: int = 900
    open_file: FileSource | None = None
    history: Any = None  # operations.store.OperationHistory: what the tracker followed
    # Builds providers whose clients record instead of sending (dry-runs, previews).
    dry_run_providers: Callable[[Any], dict[str, Provider]] | None = None
    snapshot_before_destroy: str = "protected"
    switch_back_minutes: int = 60
    switch_backs: Any = None  # operations.store.SwitchBacks
    watches: Any = None  # operations.watch.WatchStore


@dataclass
class Plan:
    """A resolved command, ready to run now or after approval.

    `params` is JSON-able and holds resolved ids, so an approved plan acts on
    exactly what was shown in the approval card even if names changed since.
    """

    verb: str
    provider: str
    targets: list[Target]
    params: dict[str, Any]
    summary: str
    destructive: bool = False
    confirm_name: str | None = None  # the name an approver must type (terminate)
    role: Role | None = None  # overrides the verb's role (e.g. a read-only form)
    details: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class Context:
    """A command in flight: the invocation and the services."""

    invocation: Invocation
    services: Services
    # True while a dry-run or an approval card's preview runs the verb's code against
    # recording clients: code with effects outside the API (stores, schedules) must skip them.
    dry_run: bool = False

    def provider(self, name: str) -> Provider:
        """The provider called `name`; UserError if there is none."""
        try:
            return self.services.providers[name]
        except KeyError:
            known = ", ".join(sorted(self.services.providers)) or "none configured"
            raise UserError(f"no provider called {name!r} (providers: {known})") from None
