"""Pure permission decisions: no I/O, only a ``ChannelPolicy`` snapshot.

``decide`` answers "may this channel run this verb on this target?" when a
command arrives; ``may_approve`` answers "may this person approve it?" when
the approval button is clicked. Both deny by default and deny on any error.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from core.refs import ChannelRef, UserRef, person
from permissions.model import (
    Binding,
    ChannelPolicy,
    environment_matches,
    specificity,
)
from permissions.roles import Role

log = logging.getLogger("graphops.permissions")
# What a person reads when deciding itself failed (the exception goes to the log only).
UNDECIDED = "could not decide (an internal error, in the bot's log); denied to be safe"

__all__ = [
    "ChannelPolicy",
    "Decision",
    "EffectiveBinding",
    "Protection",
    "Target",
    "decide",
    "default_protection",
    "effective_binding",
    "is_protected",
    "may_approve",
    "protection",
]

#: environment labels protected by default (compared case-insensitively)
PRODUCTION_LABELS = frozenset({"production", "prod"})
#: Console environment types (``grantType``, the environment's colour) protected by default
PROTECTED_GRANT_TYPES = frozenset({"red"})
SET_BY_POLICY = "set by policy"


def default_protection(label: str | None, grant_type: str | None) -> str | None:
    """Why an environment is protected by default (``"label production"``,
    ``"grantType red"``), or None when it is not.

    Real Console environments carry ``label`` and ``grantType`` (observed
    shapes), not a type: a label production/prod (any case) or a grantType red
    is production.
    """
    if label and label.strip().lower() in PRODUCTION_LABELS:
        return f"label {label.strip()}"
    if grant_type and grant_type.strip().lower() in PROTECTED_GRANT_TYPES:
        return f"grantType {grant_type.strip()}"
    return None


@dataclass(frozen=True)
class Target:
    """What a command acts on.

    ``production`` means protected by default; ``production_reason`` says why
    (see :func:`default_protection`); an explicit policy override wins over both.
    """

    provider: str
    environment_id: str
    environment_name: str
    production: bool
    production_reason: str = ""

    @classmethod
    def of_environment(cls, provider: str, environment: Any) -> Target:
        """The target for a client's environment (``.id .name .label .grant_type``)."""
        label = getattr(environment, "label", None) or environment.name
        reason = default_protection(label, getattr(environment, "grant_type", None))
        return cls(provider, environment.id, environment.name, reason is not None, reason or "")

    @classmethod
    def named(cls, provider: str, environment: str) -> Target:
        """The target for an environment known only by its name (its grantType unknown)."""
        reason = default_protection(environment, None)
        return cls(provider, environment, environment, reason is not None, reason or "")


@dataclass(frozen=True)
class Protection:
    """Whether an environment is protected, and why (``label production``,
    ``grantType red``, ``set by policy``...)."""

    protected: bool
    reason: str

    @property
    def text(self) -> str:
        """``yes (label production)``, ``no (set by policy)`` or ``no``."""
        if self.protected:
            return f"yes ({self.reason})" if self.reason else "yes"
        return "no (set by policy)" if self.reason == SET_BY_POLICY else "no"


@dataclass(frozen=True)
class Decision:
    """The answer of ``decide``/``may_approve`` with a reason a person understands."""

    outcome: Literal["allowed", "denied", "needs_approval"]
    reason: str
    role: Role | None = None
    protected: bool = False
    approvers: tuple[str, ...] = ()

    @property
    def allowed(self) -> bool:
        """True only for outcome ``allowed``."""
        return self.outcome == "allowed"


@dataclass(frozen=True)
class EffectiveBinding:
    """The winning binding(s) of a channel for a target, merged."""

    role: Role
    environment: str
    approvers: tuple[str, ...]


def _env_label(target: Target) -> str:
    return target.environment_name or target.environment_id


def effective_binding(policy: ChannelPolicy, target: Target) -> EffectiveBinding | None:
    """The most specific matching binding; highest role among equally specific ones.

    Approvers of the equally specific bindings holding that role are merged.
    """
    matching: list[Binding] = [
        b
        for b in policy.bindings
        if b.channel == policy.channel
        and b.provider == target.provider
        and environment_matches(b.environment, target.environment_id, target.environment_name)
    ]
    if not matching:
        return None
    best_rank = max(specificity(b.environment) for b in matching)
    tier = [b for b in matching if specificity(b.environment) == best_rank]
    role = max(b.role for b in tier)
    winners = [b for b in tier if b.role == role]
    approvers = tuple(dict.fromkeys(a for b in winners for a in b.approvers))
    return EffectiveBinding(
        role=Role(role), environment=winners[0].environment, approvers=approvers
    )


def is_protected(policy: ChannelPolicy, target: Target) -> bool:
    """Explicit override (exact beats ``*``) or else ``target.production``."""
    return protection(policy, target).protected


def protection(policy: ChannelPolicy, target: Target) -> Protection:
    """Whether ``target`` is protected and why: an explicit override (exact beats
    ``*``, reason ``set by policy``), else the default (``target.production`` and
    its reason)."""
    best: tuple[int, bool] | None = None
    for override in policy.protection_overrides:
        if override.provider != target.provider:
            continue
        if not environment_matches(
            override.environment, target.environment_id, target.environment_name
        ):
            continue
        rank = specificity(override.environment)
        if best is None or rank > best[0]:
            best = (rank, override.protected)
    if best is not None:
        return Protection(best[1], SET_BY_POLICY)
    if target.production:
        return Protection(True, target.production_reason or "production environment")
    return Protection(False, "")


def _mention(approver: str) -> str:
    return str(person(approver))


def _join_or(items: Sequence[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " or " + items[-1]


def _who_may_approve(policy: ChannelPolicy, binding: EffectiveBinding) -> str:
    if binding.approvers:
        return _join_or([_mention(a) for a in binding.approvers] + ["a bot admin"])
    if binding.role >= Role.ADMIN:
        return f"a member of {ChannelRef(policy.channel)} (admin-bound) or a bot admin"
    return "a bot admin (no approvers are set)"


def _role_check(
    policy: ChannelPolicy, verb: str, required_role: Role, target: Target
) -> tuple[Decision | None, EffectiveBinding | None, bool]:
    """Shared first step: denial (or None) + effective binding + protection."""
    protected = is_protected(policy, target)
    channel = str(ChannelRef(policy.channel))
    binding = effective_binding(policy, target)
    if binding is None:
        reason = (
            f"{channel} is not bound to environment {_env_label(target)} of {target.provider}; "
            "a bot admin can grant it with `grant`"
        )
        return Decision("denied", reason, protected=protected), None, protected
    if binding.role < Role(required_role):
        reason = (
            f"{channel} is bound to environment {_env_label(target)} as {binding.role.label}; "
            f"{verb} needs {Role(required_role).label}"
        )
        return (
            Decision("denied", reason, role=binding.role, protected=protected),
            binding,
            protected,
        )
    return None, binding, protected


def decide(
    policy: ChannelPolicy,
    user: str,
    verb: str,
    required_role: Role,
    destructive: bool,
    target: Target,
) -> Decision:
    """Decide whether ``user`` may run ``verb`` on ``target`` from ``policy.channel``.

    Deny by default; any unexpected error yields a denial.
    """
    try:
        return _decide(policy, user, verb, required_role, destructive, target)
    except Exception:  # in doubt, deny
        log.exception("deciding failed")
        return Decision("denied", UNDECIDED)


def _decide(
    policy: ChannelPolicy,
    user: str,
    verb: str,
    required_role: Role,
    destructive: bool,
    target: Target,
) -> Decision:
    denial, binding, protected = _role_check(policy, verb, required_role, target)
    if denial is not None:
        return denial
    assert binding is not None
    env = _env_label(target)
    if destructive:
        reason = f"{verb} on {env} needs approval by {_who_may_approve(policy, binding)}"
        if protected:
            reason += " (protected environment: someone other than the requester must approve)"
        return Decision(
            "needs_approval",
            reason,
            role=binding.role,
            protected=protected,
            approvers=binding.approvers,
        )
    return Decision(
        "allowed",
        f"{ChannelRef(policy.channel)} is bound to {env} as {binding.role.label}",
        role=binding.role,
        protected=protected,
        approvers=binding.approvers,
    )


def may_approve(
    policy: ChannelPolicy,
    approver: str,
    approver_groups: frozenset[str],
    requester: str,
    verb: str,
    required_role: Role,
    target: Target,
) -> Decision:
    """Decide, at click time, whether ``approver`` may approve ``requester``'s request.

    Outcome is ``allowed`` or ``denied`` only; any unexpected error denies.
    """
    try:
        return _may_approve(
            policy, approver, approver_groups, requester, verb, required_role, target
        )
    except Exception:  # in doubt, deny
        log.exception("deciding failed")
        return Decision("denied", UNDECIDED)


def _may_approve(
    policy: ChannelPolicy,
    approver: str,
    approver_groups: frozenset[str],
    requester: str,
    verb: str,
    required_role: Role,
    target: Target,
) -> Decision:
    denial, binding, protected = _role_check(policy, verb, required_role, target)
    if denial is not None:
        return Decision(
            "denied",
            f"this request can no longer be approved: {denial.reason}",
            role=denial.role,
            protected=protected,
        )
    assert binding is not None
    env = _env_label(target)

    def result(allowed: bool, reason: str) -> Decision:
        return Decision(
            "allowed" if allowed else "denied",
            reason,
            role=binding.role,
            protected=protected,
            approvers=binding.approvers,
        )

    if protected and approver == requester:
        return result(
            False, "in a protected environment the requester cannot approve their own request"
        )
    if approver in policy.admins:
        return result(True, f"{UserRef(approver)} is a bot admin")
    if binding.approvers:
        if approver in binding.approvers:
            return result(True, f"{UserRef(approver)} is an approver for {env}")
        groups = sorted(set(approver_groups) & set(binding.approvers))
        if groups:
            return result(
                True,
                f"{UserRef(approver)} is a member of {_mention(groups[0])}, an approver for {env}",
            )
        return result(
            False,
            f"{UserRef(approver)} may not approve {verb} on {env}; "
            f"ask {_who_may_approve(policy, binding)}",
        )
    if binding.role >= Role.ADMIN:
        return result(
            True,
            f"{ChannelRef(policy.channel)} is bound to {env} as admin; "
            "its members approve by default",
        )
    return result(
        False,
        f"no approvers are set for {env} in {ChannelRef(policy.channel)}; "
        "a bot admin can set them with `approvers`",
    )
