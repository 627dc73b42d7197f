"""The whole permission policy as a TOML file: load, validate, export, diff, apply.

Format::

    [[binding]]
    channel = "C0DEV"
    provider = "console"
    environment = "staging"   # name, id, or "*"
    role = "operator"
    approvers = ["U0ALICE", "S0DBTEAM"]   # optional
    users = ["S0ONCALL", "U0LEAD"]        # optional: only they hold `role` ...
    fallback = "viewer"                   # ... and everyone else this (or "none")

    [[binding]]
    channel = "U0ALICE"       # a user id: Alice's direct messages with the bot
    provider = "console"
    environment = "staging"
    role = "operator"

    [[protected]]
    provider = "console"
    environment = "production"
    protected = true

    [[incident_channel]]
    provider = "console"
    environment = "*"
    channel = "C0INCIDENT"

Importing a file makes the store equal to it (entries missing from the file
are removed), in one transaction.
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator, model_validator

from core.words import explain
from permissions.roles import Role
from permissions.store import (
    PermissionStore,
    check_fallback,
    fallback_label,
    normalize_approver,
    normalize_binding_key,
    normalize_channel,
    parse_fallback,
)


class PolicyFileError(ValueError):
    """The policy file is unreadable or invalid; the message names the entry and key."""


class _Entry(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @field_validator("provider", "environment", check_fields=False)
    @classmethod
    def _not_empty(cls, value: str) -> str:
        if not value:
            raise ValueError("must not be empty")
        return value


class BindingEntry(_Entry):
    """One ``[[binding]]``."""

    channel: str
    provider: str
    environment: str
    role: str
    approvers: list[str] = []
    users: list[str] = []
    fallback: str = Role.VIEWER.label

    @field_validator("channel")
    @classmethod
    def _channel(cls, value: str) -> str:
        return normalize_binding_key(value)

    @field_validator("role")
    @classmethod
    def _role(cls, value: str) -> str:
        return Role.parse(value).label

    @field_validator("approvers", "users")
    @classmethod
    def _approvers(cls, value: list[str]) -> list[str]:
        return list(dict.fromkeys(normalize_approver(v) for v in value))

    @field_validator("fallback")
    @classmethod
    def _fallback(cls, value: str) -> str:
        return fallback_label(parse_fallback(value))

    @model_validator(mode="after")
    def _fallback_at_most_the_role(self) -> BindingEntry:
        fallback = parse_fallback(self.fallback)
        if self.users and fallback is not None:
            check_fallback(Role.parse(self.role), fallback)
        return self


class ProtectedEntry(_Entry):
    """One ``[[protected]]``."""

    provider: str
    environment: str
    protected: bool


class IncidentChannelEntry(_Entry):
    """One ``[[incident_channel]]``."""

    provider: str
    environment: str
    channel: str

    @field_validator("channel")
    @classmethod
    def _channel(cls, value: str) -> str:
        return normalize_channel(value)


class PolicyFile(BaseModel):
    """The whole file."""

    model_config = ConfigDict(extra="forbid")

    binding: list[BindingEntry] = []
    protected: list[ProtectedEntry] = []
    incident_channel: list[IncidentChannelEntry] = []


_ENTRIES: dict[str, type[BaseModel]] = {
    "binding": BindingEntry,
    "protected": ProtectedEntry,
    "incident_channel": IncidentChannelEntry,
}


def _format_validation_error(exc: ValidationError) -> str:
    """Each error in words (core.words.explain): the entry and key, what works."""
    parts = []
    for error in exc.errors(include_url=False):
        loc = error["loc"]
        where = ""
        for item in loc:
            if isinstance(item, int):
                where += f"[{item}]"
            else:
                where += f".{item}" if where else str(item)
        model = _ENTRIES.get(str(loc[0])) if len(loc) == 3 else None
        if error["type"] == "extra_forbidden":
            known = ", ".join(model.model_fields) if model else ", ".join(_ENTRIES)
            parts.append(f"{where or 'file'}: unknown key (keys: {known})")
        else:
            field = model.model_fields.get(str(loc[-1])) if model else None
            parts.append(explain(error, where, field))
    return "; ".join(parts)


def parse_policy(text: str) -> PolicyFile:
    """Parse and validate policy TOML; raise ``PolicyFileError`` naming entry and key."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PolicyFileError(f"not valid TOML: {exc}") from None
    try:
        policy = PolicyFile.model_validate(data)
    except ValidationError as exc:
        raise PolicyFileError(_format_validation_error(exc)) from None
    _check_duplicates(policy)
    return policy


def _check_duplicates(policy: PolicyFile) -> None:
    groups: list[tuple[str, list[tuple[str, ...]]]] = [
        (
            "binding",
            [(b.channel, b.provider, b.environment.casefold()) for b in policy.binding],
        ),
        ("protected", [(p.provider, p.environment.casefold()) for p in policy.protected]),
        (
            "incident_channel",
            [(i.provider, i.environment.casefold()) for i in policy.incident_channel],
        ),
    ]
    for name, keys in groups:
        seen: dict[tuple[str, ...], int] = {}
        for index, key in enumerate(keys):
            if key in seen:
                raise PolicyFileError(
                    f"{name}[{index}]: duplicate of {name}[{seen[key]}] ({', '.join(key)})"
                )
            seen[key] = index


def load_policy_file(path: str) -> PolicyFile:
    """Read and validate a policy file from ``path``."""
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except OSError as exc:
        raise PolicyFileError(f"cannot read {path}: {exc.strerror or exc}") from None
    return parse_policy(text)


def policy_from_store(store: PermissionStore) -> PolicyFile:
    """The store's current policy as a ``PolicyFile``."""
    return PolicyFile(
        binding=[
            BindingEntry(
                channel=b.channel,
                provider=b.provider,
                environment=b.environment,
                role=b.role.label,
                approvers=list(b.approvers),
                users=list(b.users),
                fallback=fallback_label(b.fallback),
            )
            for b in store.bindings()
        ],
        protected=[
            ProtectedEntry(provider=p.provider, environment=p.environment, protected=p.protected)
            for p in store.protection_overrides()
        ],
        incident_channel=[
            IncidentChannelEntry(provider=i.provider, environment=i.environment, channel=i.channel)
            for i in store.incident_channels()
        ],
    )


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} to TOML")


def dump_policy(policy: PolicyFile) -> str:
    """Serialise a policy as TOML (readable by ``parse_policy``)."""
    out: list[str] = ["# graphops permission policy", ""]
    sections: list[tuple[str, list[BaseModel]]] = [
        ("binding", list(policy.binding)),
        ("protected", list(policy.protected)),
        ("incident_channel", list(policy.incident_channel)),
    ]
    for name, entries in sections:
        for entry in entries:
            out.append(f"[[{name}]]")
            fields = entry.model_dump()
            for key, value in fields.items():
                if key in ("approvers", "users") and not value:
                    continue
                if key == "fallback" and (value == Role.VIEWER.label or not fields["users"]):
                    continue  # the default, or meaningless without users
                out.append(f"{key} = {_toml_value(value)}")
            out.append("")
    return "\n".join(out)


@dataclass
class PolicyDiff:
    """Changes that turn the store into the file's policy."""

    lines: list[str] = field(default_factory=list)
    grant: list[BindingEntry] = field(default_factory=list)
    revoke: list[BindingEntry] = field(default_factory=list)
    approvers: list[BindingEntry] = field(default_factory=list)
    users: list[BindingEntry] = field(default_factory=list)
    protect: list[tuple[str, str, bool | None]] = field(default_factory=list)
    incident: list[tuple[str, str, str | None]] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        """True when the store already equals the file."""
        return not self.lines


def _label(entry: BindingEntry) -> str:
    return f"binding {entry.channel} {entry.provider}/{entry.environment}"


def diff_policy(current: PolicyFile, desired: PolicyFile) -> PolicyDiff:
    """Compute ``+``/``-``/``~`` lines and the operations from ``current`` to ``desired``."""
    diff = PolicyDiff()

    cur_b = {(b.channel, b.provider, b.environment.casefold()): b for b in current.binding}
    new_b = {(b.channel, b.provider, b.environment.casefold()): b for b in desired.binding}
    for key, b in new_b.items():
        old = cur_b.get(key)
        approvers = f" approvers={','.join(b.approvers)}" if b.approvers else ""
        users = f" users={','.join(b.users)} fallback={b.fallback}" if b.users else ""
        if old is None:
            diff.lines.append(f"+ {_label(b)} role={b.role}{approvers}{users}")
            diff.grant.append(b)
            if b.approvers:
                diff.approvers.append(b)
            if b.users:
                diff.users.append(b)
            continue
        changes = []
        if old.role != b.role or old.environment != b.environment:
            changes.append(f"role {old.role} -> {b.role}")
            diff.grant.append(b)
        if old.approvers != b.approvers:
            changes.append(f"approvers [{', '.join(old.approvers)}] -> [{', '.join(b.approvers)}]")
            diff.approvers.append(b)
        if old.users != b.users or (b.users and old.fallback != b.fallback):
            changes.append(
                f"users [{', '.join(old.users)}] fallback {old.fallback} -> "
                f"[{', '.join(b.users)}] fallback {b.fallback}"
            )
            diff.users.append(b)
        if changes:
            diff.lines.append(f"~ {_label(b)} {'; '.join(changes)}")
    for key, b in cur_b.items():
        if key not in new_b:
            diff.lines.append(f"- {_label(b)} role={b.role}")
            diff.revoke.append(b)

    cur_p = {(p.provider, p.environment.casefold()): p for p in current.protected}
    new_p = {(p.provider, p.environment.casefold()): p for p in desired.protected}
    for pkey, p in new_p.items():
        old_p = cur_p.get(pkey)
        state = "on" if p.protected else "off"
        if old_p is None:
            diff.lines.append(f"+ protected {p.provider}/{p.environment} {state}")
            diff.protect.append((p.provider, p.environment, p.protected))
        elif old_p.protected != p.protected or old_p.environment != p.environment:
            old_state = "on" if old_p.protected else "off"
            diff.lines.append(f"~ protected {p.provider}/{p.environment} {old_state} -> {state}")
            diff.protect.append((p.provider, p.environment, p.protected))
    for pkey, p in cur_p.items():
        if pkey not in new_p:
            diff.lines.append(f"- protected {p.provider}/{p.environment} (back to default)")
            diff.protect.append((p.provider, p.environment, None))

    cur_i = {(i.provider, i.environment.casefold()): i for i in current.incident_channel}
    new_i = {(i.provider, i.environment.casefold()): i for i in desired.incident_channel}
    for ikey, i in new_i.items():
        old_i = cur_i.get(ikey)
        if old_i is None:
            diff.lines.append(f"+ incident_channel {i.provider}/{i.environment} {i.channel}")
            diff.incident.append((i.provider, i.environment, i.channel))
        elif old_i.channel != i.channel or old_i.environment != i.environment:
            diff.lines.append(
                f"~ incident_channel {i.provider}/{i.environment} {old_i.channel} -> {i.channel}"
            )
            diff.incident.append((i.provider, i.environment, i.channel))
    for ikey, i in cur_i.items():
        if ikey not in new_i:
            diff.lines.append(f"- incident_channel {i.provider}/{i.environment} {i.channel}")
            diff.incident.append((i.provider, i.environment, None))
    return diff


def apply_diff(store: PermissionStore, diff: PolicyDiff, by: str | None = None) -> None:
    """Apply ``diff`` to ``store`` in one transaction (all or nothing)."""
    with store.db.atomic():
        for b in diff.revoke:
            store.revoke(b.channel, b.provider, b.environment)
        for b in diff.grant:
            store.grant(b.channel, b.provider, b.environment, Role.parse(b.role), by=by)
        for b in diff.approvers:
            store.set_approvers(b.channel, b.provider, b.environment, b.approvers)
        for b in diff.users:
            store.set_users(
                b.channel, b.provider, b.environment, b.users, parse_fallback(b.fallback)
            )
        for provider, environment, protected in diff.protect:
            store.set_protected(provider, environment, protected)
        for provider, environment, channel in diff.incident:
            store.set_incident_channel(provider, environment, channel)
