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


def is_direct(channel: str) -> bool:
    """True for a direct message (`D…`): there a person's personal bindings apply."""
    return channel.startswith("D")


def binding_key(channel: str, user: str) -> str:
    """Whose bindings apply to `user` typing in `channel`: the channel's, or in a direct
    message (`D…`) the person's own (their personal bindings, keyed by their user id)."""
    return user if is_direct(channel) else channel


def is_person(key: str) -> bool:
    """True for a user id (`U…`, `W…`): the key of a personal binding (its DMs)."""
    return key[:1] in ("U", "W")


@dataclass(frozen=True)
class Binding:
    """A channel's role for one environment (or ``*``) of a provider.

    ``channel`` is a channel id, or a user id for a personal binding (it applies
    to that person's direct messages with the bot). ``users`` (user ids ``U…``/
    ``W…`` and user-group ids ``S…``) are who hold ``role``; when it names anyone,
    everyone else in the channel holds ``fallback`` (None: nothing). With no
    ``users`` the whole channel holds ``role``. A binding resolved for one person
    (``PermissionStore.policy_for(channel, invocation)``) carries that person's
    role in ``role`` and why in ``rule``.
    """

    channel: str
    provider: str
    environment: str
    role: Role
    approvers: tuple[str, ...] = ()
    granted_by: str | None = None
    granted_at: float | None = None
    users: tuple[str, ...] = ()
    fallback: Role | None = Role.VIEWER
    rule: str = ""


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
    """Snapshot of everything the decision functions need for one channel.

    ``channel`` is the key of the bindings (a channel id, or a user id for the
    personal bindings of a DM). When ``person`` is set, ``bindings`` are resolved
    for that person (each holds the role the person has, and why, in ``rule``), and
    ``withheld`` are the bindings that give the person nothing (named ``users=``
    without them, fallback none). ``allowed_teams`` are the Slack workspaces and
    organizations admitted besides the one that installed graphops.
    """

    channel: str
    bindings: tuple[Binding, ...] = ()
    protection_overrides: tuple[ProtectionOverride, ...] = ()
    admins: frozenset[str] = field(default_factory=frozenset)
    person: str = ""
    withheld: tuple[Binding, ...] = ()
    allowed_teams: frozenset[str] = field(default_factory=frozenset)
    granted: tuple[Binding, ...] = ()  # the bindings as granted (before resolving for person)

    @property
    def as_granted(self) -> ChannelPolicy:
        """This policy with the bindings as granted (for nobody in particular)."""
        if not self.person:
            return self
        return ChannelPolicy(
            self.channel,
            self.granted,
            self.protection_overrides,
            self.admins,
            allowed_teams=self.allowed_teams,
            granted=self.granted,
        )

    @property
    def personal(self) -> bool:
        """True for the personal bindings of someone's direct messages."""
        return is_person(self.channel)
