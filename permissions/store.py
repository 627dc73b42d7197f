"""Persistent channel bindings, protection overrides, approvers, incident channels.

``PermissionStore`` writes; ``policy_for(channel, invocation)`` hands an
immutable ``ChannelPolicy`` snapshot to the pure functions in
``permissions.policy``, resolved for the person acting (their role in each
binding, from ``users=`` and their user groups). In a direct message (``D…``)
the person's personal bindings (keyed by their user id) apply.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterable

import sqlite_utils

from core.invocation import Invocation
from core.refs import ChannelRef, UserRef
from permissions.migrations import migrate
from permissions.model import (
    Binding,
    ChannelPolicy,
    IncidentChannel,
    ProtectionOverride,
    binding_key,
    environment_matches,
    is_person,
    specificity,
)
from permissions.policy import resolve_for
from permissions.roles import Role

__all__ = [
    "NONE",
    "Binding",
    "ChannelPolicy",
    "IncidentChannel",
    "PermissionStore",
    "ProtectionOverride",
    "check_fallback",
    "fallback_label",
    "migrate",
    "normalize_approver",
    "normalize_binding_key",
    "normalize_channel",
    "parse_fallback",
]

NONE = "none"  # the fallback that gives nothing

_CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]{2,}$")
_APPROVER_ID = re.compile(r"^[USW][A-Z0-9]{2,}$")
_USER_ID = re.compile(r"^[UW][A-Z0-9]{2,}$")


def normalize_channel(text: str) -> str:
    """Return a Slack channel id from ``C123`` or a mention ``<#C123|name>``.

    Raises ``ValueError`` when the text is not a channel id.
    """
    value = str(text).strip()
    mention = re.fullmatch(r"<#([A-Z0-9]+)(?:\|[^>]*)?>", value)
    if mention:
        value = mention.group(1)
    if not _CHANNEL_ID.match(value):
        raise ValueError(f"{text!r} is not a Slack channel id (like C0123ABCD)")
    return value


def normalize_approver(text: str) -> str:
    """Return a user id (U.../W...) or user-group id (S...) from an id or mention.

    Accepts ``U123``, ``<@U123>``, ``<!subteam^S123>`` or ``<!subteam^S123|@team>``.
    Raises ``ValueError`` otherwise.
    """
    value = str(text).strip()
    mention = re.fullmatch(r"<(?:@|!subteam\^)([A-Z0-9]+)(?:\|[^>]*)?>", value)
    if mention:
        value = mention.group(1)
    if _APPROVER_ID.match(value.removeprefix("@")):
        value = value.removeprefix("@")
    if not _APPROVER_ID.match(value):
        raise ValueError(f"{text!r} is not a Slack user id (U...) or user-group id (S...)")
    return value


def normalize_binding_key(text: str) -> str:
    """A channel id (``C…``, ``G…``, ``D…``, or its mention), or a user id (``U…``, ``W…``,
    or ``<@U…>``) for a personal binding: what a binding is keyed by.

    Raises ``ValueError`` naming both shapes.
    """
    value = str(text).strip()
    mention = re.fullmatch(r"<@([A-Z0-9]+)(?:\|[^>]*)?>", value)
    if mention:
        value = mention.group(1)
    if _USER_ID.match(value.removeprefix("@")):
        return value.removeprefix("@")
    try:
        return normalize_channel(value)
    except ValueError:
        raise ValueError(
            f"{text!r} is neither a Slack channel id (like C0123ABCD) nor a user id "
            "(like U0123ABCD, for the rights of their direct messages with graphops)"
        ) from None


def parse_fallback(text: str | None) -> Role | None:
    """``viewer``/``operator``/``admin`` or ``none`` (the role of those a binding does not
    name in ``users=``); ``ValueError`` naming the valid values."""
    cleaned = str(text or "").strip().lower()
    if cleaned == NONE:
        return None
    try:
        return Role.parse(cleaned)
    except ValueError:
        raise ValueError(
            f"unknown fallback {text!r}; valid values are: viewer, operator, admin, none"
        ) from None


def check_fallback(role: Role, fallback: Role) -> None:
    """ValueError when `fallback` (everyone else's role) is above `role` (the role of the
    users a binding names): `users=` narrows who holds a role, it never widens it."""
    if fallback > role:
        raise ValueError(
            f"the fallback ({fallback.label}) would give everyone not named more than "
            f"the role ({role.label}) the named users hold; use a fallback of at most "
            f"{role.label}, or none"
        )


def fallback_label(role: Role | None) -> str:
    """The fallback as typed: a role name, or ``none``."""
    return role.label if role is not None else NONE


def _check_name(kind: str, value: str) -> str:
    value = str(value).strip()
    if not value:
        raise ValueError(f"{kind} must not be empty")
    return value


class FallbackWithoutUsers(ValueError):
    """A fallback was given for a binding held by the whole channel (nobody named): it
    would change nothing. The caller says so in its own spelling (`users=`, `--users`)."""


KEEP = "keep"  # `grant_held`: leave the binding's fallback as it is
PLACES_REMEMBERED = 10_000  # `bindings_at` keeps the bindings of at most this many places


class PermissionStore:
    """Channel bindings and related settings stored in the shared SQLite file."""

    def __init__(
        self,
        db: sqlite_utils.Database,
        admins: frozenset[str] = frozenset(),
        clock: Callable[[], float] = time.time,
        allowed_teams: frozenset[str] = frozenset(),
    ) -> None:
        """Wrap ``db`` (migrating the permissions tables) with bot ``admins`` and the Slack
        workspaces admitted besides the installing one (``allowed_teams``)."""
        self.db = db
        self.admins = frozenset(admins)
        self.allowed_teams = frozenset(allowed_teams)
        self._clock = clock
        self._remembered: dict[str, tuple[Binding, ...]] = {}  # `bindings_at`, per place
        self._remembered_stamp: tuple[int, int] | None = None
        migrate(db)

    # bindings ------------------------------------------------------------

    def grant(
        self, channel: str, provider: str, environment: str, role: Role, by: str | None = None
    ) -> Binding:
        """Give ``channel`` ``role`` on ``environment`` (name, id or ``*``); upsert.

        ``channel`` may be a user id: a personal binding, for that person's direct
        messages with the bot. Approvers, users and fallback of an existing binding
        are kept (a fallback above the new role is lowered to it).
        """
        channel = normalize_binding_key(channel)
        provider = _check_name("provider", provider)
        environment = _check_name("environment", environment)
        role = Role(role)
        with self.db.atomic():
            self.db.execute(
                """
                INSERT INTO channel_bindings
                    (channel, provider, environment, role, granted_by, granted_at)
                VALUES (?, ?, ?, ?, ?, ?)
                ON CONFLICT (channel, provider, environment) DO UPDATE SET
                    role = excluded.role,
                    environment = excluded.environment,
                    granted_by = excluded.granted_by,
                    granted_at = excluded.granted_at
                """,
                [channel, provider, environment, int(role), by, self._clock()],
            )
            # A lower role lowers a fallback above it (`check_fallback`): everyone not
            # named never holds more than the named users.
            self.db.execute(
                "UPDATE channel_bindings SET fallback = ? WHERE channel = ? AND provider = ? "
                "AND environment = ? AND fallback > ?",
                [int(role), channel, provider, environment, int(role)],
            )
            binding = self._binding(channel, provider, environment)
        assert binding is not None
        return binding

    def grant_held(
        self,
        channel: str,
        provider: str,
        environment: str,
        role: Role,
        *,
        by: str | None,
        users: Iterable[str] | None = None,
        fallback: Role | str | None = KEEP,
    ) -> Binding:
        """`grant`, and who holds the role (`set_users`) when `users` (None: kept) or a
        `fallback` (KEEP: kept; None: nothing) is given: together or not at all.

        Raises FallbackWithoutUsers for a fallback when nobody is named (given or kept),
        and what `grant` and `set_users` raise.
        """
        current = self.binding(channel, provider, environment)
        named = list(users) if users is not None else list(current.users if current else ())
        if fallback != KEEP and not named:
            raise FallbackWithoutUsers("a fallback without users changes nothing")
        with self.db.atomic():
            binding = self.grant(channel, provider, environment, role, by=by)
            if users is not None or fallback != KEEP:
                kept = binding.fallback if fallback == KEEP else fallback
                assert kept is None or isinstance(kept, Role)
                binding = self.set_users(
                    binding.channel, binding.provider, binding.environment, named, kept
                )
        return binding

    def revoke(self, channel: str, provider: str, environment: str) -> bool:
        """Remove a binding; True when one existed."""
        cursor = self.db.execute(
            "DELETE FROM channel_bindings WHERE channel = ? AND provider = ? AND environment = ?",
            [normalize_binding_key(channel), provider, environment],
        )
        return cursor.rowcount > 0

    def bindings(self, channel: str | None = None) -> list[Binding]:
        """All bindings, or those of one channel, ordered for display."""
        sql = "SELECT * FROM channel_bindings"
        params: list[str] = []
        if channel is not None:
            sql += " WHERE channel = ?"
            params.append(channel)
        sql += " ORDER BY channel, provider, environment"
        return [_row_to_binding(row) for row in self.db.query(sql, params)]

    def bindings_at(self, place: str) -> tuple[Binding, ...]:
        """The bindings of one place: a channel id, or a user id for a person's direct
        messages (their personal bindings), as granted (`resolve_for` gives a person's
        role in each).

        For the Slack ack path, which asks it for every request: answered from memory
        while the store is unchanged since it was read, else by one indexed read. Unchanged
        means the same `PRAGMA data_version` (it moves when another connection, such as
        `graphops access` in another process, commits: sqlite.org/pragma.html#pragma_data_version)
        and the same `total_changes` of this connection (its own writes). At most
        `PLACES_REMEMBERED` places are kept."""
        stamp = (
            self.db.execute("PRAGMA data_version").fetchone()[0],
            self.db.conn.total_changes,
        )
        if stamp != self._remembered_stamp or len(self._remembered) >= PLACES_REMEMBERED:
            self._remembered.clear()
            self._remembered_stamp = stamp
        known = self._remembered.get(place)
        if known is None:
            known = self._remembered[place] = tuple(self.bindings(place))
        return known

    def binding(self, channel: str, provider: str, environment: str) -> Binding | None:
        """The binding of `channel` for that environment (name, id or `*`), or None."""
        return self._binding(normalize_binding_key(channel), provider, environment)

    def _binding(self, channel: str, provider: str, environment: str) -> Binding | None:
        rows = list(
            self.db.query(
                "SELECT * FROM channel_bindings "
                "WHERE channel = ? AND provider = ? AND environment = ?",
                [channel, provider, environment],
            )
        )
        return _row_to_binding(rows[0]) if rows else None

    def set_approvers(
        self, channel: str, provider: str, environment: str, approvers: Iterable[str]
    ) -> Binding:
        """Set who may approve destructive actions of a binding (empty = clear).

        Raises ``KeyError`` when the binding does not exist and ``ValueError``
        for an approver that is not a user or user-group id.
        """
        channel = normalize_binding_key(channel)
        cleaned = tuple(dict.fromkeys(normalize_approver(a) for a in approvers))
        cursor = self.db.execute(
            "UPDATE channel_bindings SET approvers = ? "
            "WHERE channel = ? AND provider = ? AND environment = ?",
            [json.dumps(list(cleaned)), channel, provider, environment],
        )
        if cursor.rowcount == 0:
            raise KeyError(
                f"{_key_label(channel)} has no binding for environment {environment} "
                f"of {provider}; "
                "grant one first"
            )
        binding = self._binding(channel, provider, environment)
        assert binding is not None
        return binding

    def set_users(
        self,
        channel: str,
        provider: str,
        environment: str,
        users: Iterable[str],
        fallback: Role | None = Role.VIEWER,
    ) -> Binding:
        """Set who holds a binding's role (user ids ``U…``/``W…``, user-group ids ``S…``;
        empty: the whole channel, as before) and the role of everyone else
        (``fallback``; None: nothing).

        Raises ``KeyError`` when the binding does not exist and ``ValueError`` for an
        id that is not a user or user group, or a fallback above the binding's role.
        """
        channel = normalize_binding_key(channel)
        cleaned = tuple(dict.fromkeys(normalize_approver(u) for u in users))
        current = self._binding(channel, provider, environment)
        if current is not None and fallback is not None and cleaned:
            check_fallback(current.role, fallback)
        cursor = self.db.execute(
            "UPDATE channel_bindings SET users = ?, fallback = ? "
            "WHERE channel = ? AND provider = ? AND environment = ?",
            [
                json.dumps(list(cleaned)),
                int(fallback) if fallback is not None else 0,
                channel,
                provider,
                environment,
            ],
        )
        if cursor.rowcount == 0:
            raise KeyError(
                f"{_key_label(channel)} has no binding for environment {environment} of "
                f"{provider}; grant one first"
            )
        binding = self._binding(channel, provider, environment)
        assert binding is not None
        return binding

    # protection ----------------------------------------------------------

    def set_protected(self, provider: str, environment: str, protected: bool | None) -> None:
        """Override protection of (provider, environment); ``None`` removes the override."""
        provider = _check_name("provider", provider)
        environment = _check_name("environment", environment)
        if protected is None:
            self.db.execute(
                "DELETE FROM protected_environments WHERE provider = ? AND environment = ?",
                [provider, environment],
            )
            return
        self.db.execute(
            """
            INSERT INTO protected_environments (provider, environment, protected)
            VALUES (?, ?, ?)
            ON CONFLICT (provider, environment) DO UPDATE SET
                protected = excluded.protected, environment = excluded.environment
            """,
            [provider, environment, int(bool(protected))],
        )

    def protection_overrides(self) -> list[ProtectionOverride]:
        """All explicit protection overrides."""
        return [
            ProtectionOverride(row["provider"], row["environment"], bool(row["protected"]))
            for row in self.db.query(
                "SELECT * FROM protected_environments ORDER BY provider, environment"
            )
        ]

    # incident channels -----------------------------------------------------

    def set_incident_channel(self, provider: str, environment: str, channel: str | None) -> None:
        """Set (or with ``None`` remove) the incident channel of (provider, environment|*)."""
        provider = _check_name("provider", provider)
        environment = _check_name("environment", environment)
        if channel is None:
            self.db.execute(
                "DELETE FROM incident_channels WHERE provider = ? AND environment = ?",
                [provider, environment],
            )
            return
        self.db.execute(
            """
            INSERT INTO incident_channels (provider, environment, channel) VALUES (?, ?, ?)
            ON CONFLICT (provider, environment) DO UPDATE SET
                channel = excluded.channel, environment = excluded.environment
            """,
            [provider, environment, normalize_channel(channel)],
        )

    def incident_channels(self) -> list[IncidentChannel]:
        """All incident channel settings."""
        return [
            IncidentChannel(row["provider"], row["environment"], row["channel"])
            for row in self.db.query(
                "SELECT * FROM incident_channels ORDER BY provider, environment"
            )
        ]

    def incident_channel(
        self, provider: str, environment_id: str, environment_name: str
    ) -> str | None:
        """The incident channel for an environment: exact id/name first, then ``*``."""
        best: tuple[int, str] | None = None
        for row in self.db.query("SELECT * FROM incident_channels WHERE provider = ?", [provider]):
            if environment_matches(row["environment"], environment_id, environment_name):
                rank = specificity(row["environment"])
                if best is None or rank > best[0]:
                    best = (rank, row["channel"])
        return best[1] if best else None

    # snapshot ------------------------------------------------------------

    def policy_for(self, channel: str, invocation: Invocation | None = None) -> ChannelPolicy:
        """An immutable snapshot of ``channel``'s bindings, overrides and admins.

        With an ``invocation``, the bindings are resolved for the person acting
        (``permissions.policy.resolve_for``: their role in each, and why), and in a
        direct message (``D…``) they are that person's personal bindings.
        """
        key = channel if invocation is None else binding_key(channel, invocation.user)
        bindings = tuple(self.bindings(key))
        policy = ChannelPolicy(
            channel=key,
            bindings=bindings,
            protection_overrides=tuple(self.protection_overrides()),
            admins=self.admins,
            allowed_teams=self.allowed_teams,
            granted=bindings,
        )
        if invocation is None:
            return policy
        return resolve_for(
            policy, invocation.user, invocation.user_groups, invocation.unresolved_groups
        )

    def groups_named(self, channel: str | None = None) -> set[str]:
        """User groups (``S…``) that bindings name as users or approvers (of one channel)."""
        return {
            ident
            for binding in self.bindings(channel)
            for ident in (*binding.users, *binding.approvers)
            if ident.startswith("S")
        }


def _key_label(key: str) -> str:
    return f"{UserRef(key)} (personal)" if is_person(key) else str(ChannelRef(key))


def _ids(text: str | None) -> tuple[str, ...]:
    return () if not text or text == "[]" else tuple(json.loads(text))


def _row_to_binding(row: dict) -> Binding:
    fallback = row.get("fallback", Role.VIEWER)
    return Binding(
        channel=row["channel"],
        provider=row["provider"],
        environment=row["environment"],
        role=Role(row["role"]),
        approvers=_ids(row["approvers"]),
        granted_by=row["granted_by"],
        granted_at=row["granted_at"],
        users=_ids(row.get("users")),
        fallback=Role(fallback) if fallback else None,
    )
