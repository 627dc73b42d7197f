"""Pure permission decisions: no I/O, only a ``ChannelPolicy`` snapshot.

``admit`` answers "may this person act through graphops at all?" (their Slack
workspace or organization); ``resolve_for`` gives the role each binding grants
one person (``users=`` and user groups, else the binding's fallback) and why;
``decide`` answers "may this person run this verb on this target from this
channel?" when a command arrives; ``may_approve`` answers "may this person
approve it?" when the approval button is clicked. All deny by default and deny
on any error.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from core.invocation import Workspace
from core.refs import ChannelRef, UserRef, person
from permissions.model import (
    WILDCARD,
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
    "SOURCE_ROLE",
    "ChannelPolicy",
    "Decision",
    "EffectiveBinding",
    "Foresight",
    "Need",
    "Protection",
    "Target",
    "admit",
    "decide",
    "decide_source",
    "default_protection",
    "effective_binding",
    "foresee",
    "held",
    "is_protected",
    "may_approve",
    "protection",
    "resolve_for",
    "role_for",
    "where",
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
    """The winning binding(s) of a channel for a target, merged.

    ``rule`` says why the person the policy is resolved for holds ``role`` (empty
    when the binding names no ``users``: the whole channel holds it); ``users`` are
    who the winning binding names.
    """

    role: Role
    environment: str
    approvers: tuple[str, ...]
    users: tuple[str, ...] = ()
    rule: str = ""


def _env_label(target: Target) -> str:
    return target.environment_name or target.environment_id


def _matching(bindings: Sequence[Binding], channel: str, target: Target) -> list[Binding]:
    return [
        b
        for b in bindings
        if b.channel == channel
        and b.provider == target.provider
        and environment_matches(b.environment, target.environment_id, target.environment_name)
    ]


def effective_binding(policy: ChannelPolicy, target: Target) -> EffectiveBinding | None:
    """The most specific matching binding; highest role among equally specific ones.

    Approvers of the equally specific bindings holding that role are merged.
    """
    matching = _matching(policy.bindings, policy.channel, target)
    if not matching:
        return None
    best_rank = max(specificity(b.environment) for b in matching)
    tier = [b for b in matching if specificity(b.environment) == best_rank]
    role = max(b.role for b in tier)
    winners = [b for b in tier if b.role == role]
    approvers = tuple(dict.fromkeys(a for b in winners for a in b.approvers))
    users = tuple(dict.fromkeys(u for b in winners for u in b.users))
    return EffectiveBinding(
        role=Role(role),
        environment=winners[0].environment,
        approvers=approvers,
        users=users,
        rule=winners[0].rule,
    )


# -- who holds what: users= and user groups -------------------------------------------------


def _names(ids: Sequence[str]) -> str:
    return ", ".join(str(person(i)) for i in ids)


def role_for(
    binding: Binding,
    user: str,
    groups: frozenset[str] = frozenset(),
    unresolved: frozenset[str] = frozenset(),
) -> tuple[Role | None, str]:
    """The role ``binding`` gives ``user`` (None: nothing) and why, in words.

    A binding naming no ``users`` gives its role to the whole channel (why: "").
    Otherwise its role goes to the users it names and the members of the user
    groups it names (``groups``: the groups ``user`` is in); everyone else holds
    its ``fallback``, never more than the binding's role. A group in ``unresolved``
    (membership not known) does not count, and the reason says so.
    """
    if not binding.users:
        return binding.role, ""
    if user in binding.users:
        return binding.role, "named in its users="
    member_of = [g for g in binding.users if g in groups]
    if member_of:
        return binding.role, f"a member of {person(member_of[0])}, named in its users="
    fallback = binding.fallback
    held_by = _names(binding.users)
    unknown = [g for g in binding.users if g in unresolved]
    note = (
        f"; membership of {_names(unknown)} could not be checked (Slack did not answer in "
        "time), so it does not count: try again in a moment"
        if unknown
        else ""
    )
    if fallback is None:
        return None, f"only {held_by} hold it (fallback none){note}"
    # Never more than the binding's role: `users=` narrows who holds it (the store refuses
    # a higher fallback; a store or file written before that is read the same way).
    return min(fallback, binding.role), f"not among its users {held_by}: its fallback role{note}"


def resolve_for(
    policy: ChannelPolicy,
    user: str,
    groups: frozenset[str] = frozenset(),
    unresolved: frozenset[str] = frozenset(),
) -> ChannelPolicy:
    """``policy`` (as granted) with each binding holding the role it gives ``user``.

    Bindings that give the person nothing move to ``withheld``, so a refusal can
    say why; ``granted`` keeps the bindings as granted.
    """
    granted = policy.granted or policy.bindings
    mine: list[Binding] = []
    withheld: list[Binding] = []
    for binding in granted:
        if not binding.users:  # the whole channel holds it: nothing to resolve
            mine.append(binding)
            continue
        role, rule = role_for(binding, user, groups, unresolved)
        if role is None:
            withheld.append(dataclasses.replace(binding, rule=rule))
        else:
            mine.append(dataclasses.replace(binding, role=role, rule=rule))
    return ChannelPolicy(
        channel=policy.channel,
        bindings=tuple(mine),
        protection_overrides=policy.protection_overrides,
        admins=policy.admins,
        person=user,
        withheld=tuple(withheld),
        allowed_teams=policy.allowed_teams,
        granted=granted,
    )


Foresight = Literal["likely", "maybe", "refused"]
# An environment a command acts on, as far as the ack knows it: (provider, environment
# id or None when only typed, its name as typed or cached, or None when not known).
Place = tuple[str, str | None, str | None]
_Span = tuple[Role | None, Role | None]  # a person's role in a binding: surely, at most


@dataclass(frozen=True)
class Need:
    """What a command needs, as the ack can read it without I/O: `least`, the role its
    cheapest form needs (less is refused at once); `most`, the role every form of it
    may be run with (a query's kind, a restore's form are read later); `source`, the
    role needed where data is copied out of (clone, restore), or None."""

    least: Role
    most: Role
    source: Role | None = None


def foresee(
    bindings: Sequence[Binding],
    user: str,
    providers: Collection[str],
    need: Need,
    targets: Sequence[Place] | None = None,
    sources: Sequence[Place] | None = None,
) -> Foresight:
    """What a Slack ack may promise about a command, before any I/O.

    `bindings`: the place's, as granted (`PermissionStore.bindings_at`); `providers`:
    the names of those the verb works on; `targets`: the environments the command may
    act on, as far as known without I/O (the `env=` typed, resolved by the resolver's
    cache where it can; else where the cache last saw the database named); `sources`:
    where data is copied out of (`source_env=`, or where the database is). None: not
    known (anywhere); empty: nowhere (the command will fail). `decide` has the last
    word once the command has found its target; this only keeps the ack from promising
    work that will be refused:

    - "refused": no binding gives `user` `need.least`, even counting every user group
      it names as one `user` is in (their membership needs I/O);
    - "likely": `user` surely holds `need.most` in every target (and `need.source` in
      every source), or, not knowing where, in every binding of the verb's providers.
      The most specific binding wins (`effective_binding`), so a binding that may be
      that environment (by an id the ack cannot match to a typed name) must not give
      less. What it cannot foresee: a database or environment that does not exist, or
      a database moved since the cache saw it;
    - "maybe": neither: the ack says only that the command is being checked.
    """
    # What the person holds in each binding: without any group, and with every group it
    # names (membership needs I/O).
    spans: dict[Binding, _Span] = {
        b: (role_for(b, user)[0], role_for(b, user, _groups_named(b))[0])
        for b in bindings
        if b.provider in providers
    }
    if not any(_at_least(most, need.least) for _, most in spans.values()):
        return "refused"
    by_provider = {
        name: {b: span for b, span in spans.items() if b.provider == name} for name in providers
    }

    def holds(role: Role, places: Sequence[Place] | None) -> bool:
        if places is None:  # anywhere: every binding of every provider must give it
            return all(_holds(mine, role, None) for mine in by_provider.values() if mine)
        return bool(places) and all(
            _holds(by_provider.get(p, {}), role, (i, n)) for p, i, n in places
        )

    target = holds(need.most, targets)
    source = need.source is None or holds(max(need.source, need.most), sources)
    return "likely" if target and source else "maybe"


def _holds(
    spans: dict[Binding, _Span], role: Role, where: tuple[str | None, str | None] | None
) -> bool:
    """Whether the person surely holds `role` through these bindings (of one provider)
    in the environment `where` (its id when known, its name), or, None, in whichever
    environment the command acts on: then every binding must give it (one that gives
    the person nothing may cover that environment too, and it would not be searched)."""
    if not spans:
        return False
    if where is None:
        return all(_at_least(least, role) for least, _ in spans.values())
    # One that gives the person nothing either way is as if absent (`resolve_for`
    # withholds it), so the next most specific decides.
    present = {b: span for b, span in spans.items() if span[1] is not None}
    env_id, name = where

    def named(b: Binding) -> bool:
        by_name = name is not None and b.environment.casefold() == name.casefold()
        return by_name or b.environment == env_id

    exact = [b for b in present if b.environment != WILDCARD and named(b)]
    if any(_at_least(present[b][0], role) for b in exact):
        return True  # equally specific ones can only add (the highest role wins)
    if any(present[b][0] is not None for b in exact):
        return False  # surely there, and below
    wild = [b for b in present if b.environment == WILDCARD]
    if not any(_at_least(present[b][0], role) for b in wild):
        return False
    # `*` holds unless a more specific binding that may be there gives less: one named
    # so that only a user group brings in, or (its id or name not known) one by
    # another word.
    unsure = env_id is None or name is None  # another word may be its id or name
    maybe_here = exact + (
        [b for b in present if b.environment != WILDCARD and not named(b)] if unsure else []
    )
    return all(
        _at_least(most, role) and (least is None or least >= role)
        for least, most in (present[b] for b in maybe_here)
    )


def _at_least(held_role: Role | None, role: Role) -> bool:
    return held_role is not None and held_role >= role


def _groups_named(binding: Binding) -> frozenset[str]:
    """The user groups (`S…`) among a binding's users."""
    return frozenset(u for u in binding.users if u.startswith("S"))


def where(policy: ChannelPolicy) -> str:
    """The place a policy is about, in words: `#channel`, or someone's direct messages."""
    if policy.personal:
        return f"the direct messages of {UserRef(policy.channel)} with graphops"
    return str(ChannelRef(policy.channel))


def held(policy: ChannelPolicy, role: Role, rule: str) -> str:
    """`as operator`, or `as viewer for @alice (not among its users ...)`: a role and why."""
    if not rule or not policy.person:
        return f"as {role.label}"
    return f"as {role.label} for {UserRef(policy.person)} ({rule})"


# -- which workspaces may act ----------------------------------------------------------------


def admit(
    workspace: Workspace | None, home: Workspace | None, allowed_teams: frozenset[str]
) -> Decision:
    """Whether a person of ``workspace`` may act through the graphops installed by ``home``.

    Local transports (the shell, schedules) have no workspace: admitted. A Slack
    person is admitted when their workspace is ``home``'s, when both belong to the
    same Enterprise organization, or when their workspace or organization is in
    ``allowed_teams`` (config ``[slack] allowed_teams``). A person of another
    organization (a Slack Connect channel shared with a partner) is refused, and so
    is anyone when the installation is unknown (in doubt, deny).
    """
    if workspace is None:
        return Decision("allowed", "a local transport (no Slack workspace)")
    theirs = {workspace.team_id, workspace.enterprise_id} - {""}
    if not theirs:
        return Decision(
            "denied",
            "Slack did not say which workspace you belong to, so graphops cannot "
            "check that you may use it; nothing was done",
        )
    if home is None or not (home.team_id or home.enterprise_id):
        return Decision(
            "denied",
            "graphops does not know which workspace installed it (auth.test did "
            "not answer), so it cannot check yours; nothing was done, try again",
        )
    if home.team_id and workspace.team_id == home.team_id:
        return Decision("allowed", f"a member of the installing workspace {home.team_id}")
    if home.enterprise_id and home.enterprise_id in theirs:
        return Decision("allowed", f"a member of the installing organization {home.enterprise_id}")
    admitted = sorted(theirs & set(allowed_teams))
    if admitted:
        return Decision("allowed", f"{admitted[0]} is admitted by allowed_teams")
    return Decision(
        "denied",
        f"you belong to workspace {workspace.label}, not to the one that installed "
        f"graphops ({home.label}); people of other workspaces or organizations (a shared "
        "Slack Connect channel) may not run commands, open its dialogs or approve unless a "
        "bot admin adds their workspace to `allowed_teams` in graphops.toml",
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
    if binding.role >= Role.ADMIN and binding.users:
        return _join_or([_mention(u) for u in binding.users] + ["a bot admin"])
    if binding.role >= Role.ADMIN:
        return f"a member of {where(policy)} (admin-bound) or a bot admin"
    return "a bot admin (no approvers are set)"


def _withheld_reason(policy: ChannelPolicy, target: Target) -> str | None:
    """Why the person holds nothing where a binding exists for others (fallback none)."""
    found = _matching(policy.withheld, policy.channel, target)
    if not found:
        return None
    binding = found[0]
    return (
        f"{where(policy)} is bound to environment {_env_label(target)} of {target.provider} "
        f"as {binding.role.label}, but {binding.rule}, and {UserRef(policy.person)} is not "
        "among them; a bot admin can add you with `grant ... users=`"
    )


def _role_check(
    policy: ChannelPolicy, verb: str, required_role: Role, target: Target
) -> tuple[Decision | None, EffectiveBinding | None, bool]:
    """Shared first step: denial (or None) + effective binding + protection."""
    protected = is_protected(policy, target)
    channel = where(policy)
    binding = effective_binding(policy, target)
    if binding is None:
        reason = _withheld_reason(policy, target) or (
            f"{channel} is not bound to environment {_env_label(target)} of {target.provider}; "
            "a bot admin can grant it with `grant`"
        )
        return Decision("denied", reason, protected=protected), None, protected
    if binding.role < Role(required_role):
        reason = (
            f"{channel} is bound to environment {_env_label(target)} "
            f"{held(policy, binding.role, binding.rule)}; "
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
        f"{where(policy)} is bound to {env} {held(policy, binding.role, binding.rule)}",
        role=binding.role,
        protected=protected,
        approvers=binding.approvers,
    )


# Moving data out of an environment (clone, restore from its snapshot, refresh from it)
# needs at least this role there: viewers may look, not copy.
SOURCE_ROLE = Role.OPERATOR


def decide_source(policy: ChannelPolicy, user: str, verb: str, source: Target) -> Decision:
    """Decide whether ``verb`` may copy data out of ``source`` for ``policy.channel``.

    At least ``SOURCE_ROLE`` (operator) on the source environment, whatever the
    rights on the environment the data goes to (``decide`` checks that one). The
    outcome is ``allowed`` or ``denied``; the denial names the source environment
    and the role it needs. Any unexpected error denies.
    """
    try:
        return _decide_source(policy, verb, source)
    except Exception as exc:  # in doubt, deny
        return Decision("denied", f"could not decide ({exc!r}); denied to be safe")


def _decide_source(policy: ChannelPolicy, verb: str, source: Target) -> Decision:
    channel = str(ChannelRef(policy.channel))
    env = f"{_env_label(source)} ({source.provider})"
    protected = is_protected(policy, source)
    binding = effective_binding(policy, source)
    needs = f"moving data out of an environment needs at least {SOURCE_ROLE.label} there"
    if binding is None:
        reason = f"{verb} copies data out of {env}, where {channel} has no role; {needs}"
        return Decision("denied", reason, protected=protected)
    if binding.role < SOURCE_ROLE:
        reason = (
            f"{verb} copies data out of {env}, where {channel} is {binding.role.label}; {needs}"
        )
        return Decision("denied", reason, role=binding.role, protected=protected)
    return Decision(
        "allowed",
        f"{channel} is {binding.role.label} on {env}, the source of the data",
        role=binding.role,
        protected=protected,
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
    # Can it still be approved at all: does the channel still grant the role to anyone?
    denial, binding, protected = _role_check(policy.as_granted, verb, required_role, target)
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
    if binding.role >= Role.ADMIN and binding.users:
        # Only those who hold admin there approve by default: its users, not its fallback.
        mine = effective_binding(policy, target) if policy.person == approver else None
        if mine is not None and mine.role >= Role.ADMIN and mine.rule:
            return result(True, f"{UserRef(approver)} holds admin on {env} ({mine.rule})")
        return result(
            False,
            f"{UserRef(approver)} does not hold admin on {env} in {where(policy)}; "
            f"ask {_who_may_approve(policy.as_granted, binding)}",
        )
    if binding.role >= Role.ADMIN:
        return result(
            True,
            f"{where(policy)} is bound to {env} as admin; its members approve by default",
        )
    return result(
        False,
        f"no approvers are set for {env} in {where(policy)}; "
        "a bot admin can set them with `approvers`",
    )
