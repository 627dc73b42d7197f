"""Immutable value types shared by the store and the pure policy functions."""

from __future__ import annotations

from dataclasses import dataclass, field

from permissions.roles import Role

WILDCARD = "*"


def environment_matches(pattern: str, environment_id: str, environment_name: str) -> bool:
    """True when a binding/override ``pattern`` names this environment.

    ``*`` matches everything; otherwise the pattern must equal the environment
    id exactly or its name case-insensitively.
    """
    if pattern == WILDCARD:
        return True
    if pattern == environment_id:
        return True
    return bool(environment_name) and pattern.casefold() == environment_name.casefold()


def specificity(pattern: str) -> int:
    """1 for an exact name/id, 0 for ``*``: the more specific entry wins."""
    return 0 if pattern == WILDCARD else 1


@dataclass(frozen=True)
class Binding:
    """A channel's role for one environment (or ``*``) of a provider."""

    channel: str
    provider: str
    environment: str
    role: Role
    approvers: tuple[str, ...] = ()
    granted_by: str | None = None
    granted_at: float | None = None


@dataclass(frozen=True)
class ProtectionOverride:
    """An explicit protected true/false for (provider, environment)."""

    provider: str
    environment: str
    protected: bool


@dataclass(frozen=True)
class IncidentChannel:
    """Where incidents of (provider, environment or ``*``) are announced."""

    provider: str
    environment: str
    channel: str


@dataclass(frozen=True)
class ChannelPolicy:
    """Snapshot of everything the decision functions need for one channel."""

    channel: str
    bindings: tuple[Binding, ...] = ()
    protection_overrides: tuple[ProtectionOverride, ...] = ()
    admins: frozenset[str] = field(default_factory=frozenset)
