"""`access` and `approvers` (showing), and for bot admins `grant`, `revoke`, `protect`,
`approvers ... users=`, `incident-channel`.

Changes go to permissions/store.py (the same store `graphops access` writes)
and are audited as `command` rows with outcome `changed`. Who may change
access is decided by `permissions.store.PermissionStore.admins` (the config's
`[bot] admins`); anyone else is refused through the pipeline's `refuse`. A
channel's bindings and approvers are shown in that channel, to bot admins, and
to members of it (`Services.membership`, the transport's answer).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from clients.errors import ApiError
from commands.context import Context
from commands.options import ChannelOption, NoOptions
from commands.pipeline import refuse
from commands.registry import Rights, verb
from core.refs import ChannelRef, UserRef, person
from core.reply import Reply, Table, error
from core.words import WILDCARD, environment_label
from permissions.model import Binding, ChannelPolicy, environment_matches, is_direct, is_person
from permissions.policy import Target, protection, where
from permissions.roles import Role
from permissions.store import (
    KEEP,
    FallbackWithoutUsers,
    fallback_label,
    normalize_binding_key,
    parse_fallback,
)

CLEAR = "none"  # `approvers ... users=none` clears the approvers of a binding


class ApproversOptions(ChannelOption):
    """`approvers`: `users=` a comma-separated list of user or group ids; `users=none`
    clears them; without `users=`, the approvers are shown."""

    users: str | None = None


class GrantOptions(ChannelOption):
    """`grant`: `users=` who hold the role (users and user groups, comma-separated; `none`
    clears: the whole channel), `fallback=` the role of everyone else (viewer, operator,
    admin or none)."""

    users: str | None = None
    fallback: str | None = None


def _channel(ctx: Context, values: dict[str, Any]) -> str:
    return str(values.get("channel") or ctx.invocation.channel)


def _ids(text: str) -> list[str]:
    """`U1,S2 U3` as ids; `none` (or nothing) as none."""
    return [u for u in text.replace(" ", ",").split(",") if u and u.lower() != "none"]


def _people(ids: tuple[str, ...] | list[str]) -> str:
    return ", ".join(str(person(i)) for i in ids)


def holders(binding: Binding) -> str:
    """Who holds a binding's role, in words (references for each transport to name)."""
    if not binding.users:
        return "everyone in the channel" if not is_person(binding.channel) else "them"
    return f"{_people(binding.users)}; others: {fallback_label(binding.fallback)}"


def your_role(policy: ChannelPolicy, binding: Binding) -> str:
    """The role the asker holds in `binding`, and the rule that gave it."""
    key = (binding.provider, binding.environment.casefold())
    for mine in policy.bindings:
        if (mine.provider, mine.environment.casefold()) == key:
            why = mine.rule or (
                "your own direct messages" if policy.personal else "everyone in the channel"
            )
            return f"{mine.role.label}: {why}"
    for withheld in policy.withheld:
        if (withheld.provider, withheld.environment.casefold()) == key:
            return f"none: {withheld.rule}"
    return "none"


async def refuse_unless_visible(ctx: Context, verb_name: str, channel: str) -> Reply | None:
    """A refusal unless the requester may see `channel`'s bindings and approvers: in that
    channel itself, a bot admin, or a member of it (`Services.membership`: the transport's
    answer, e.g. Slack's conversations.members). None when they may."""
    user = ctx.invocation.user
    if channel == ctx.invocation.channel or user in ctx.services.permissions.admins:
        return None
    if await ctx.services.membership.is_member(user, channel):
        return None
    return refuse(
        ctx,
        verb_name,
        f"the bindings and approvers of {ChannelRef(channel)} are shown only in it, to its "
        "members, and to bot admins; ask there, or ask a bot admin (listed in `access`)",
    )


@verb(
    "access",
    options=ChannelOption,
    example="access",
    group="Access",
    rights=(Rights(who="anyone"),),
)
async def access(ctx: Context, values: dict[str, Any]) -> Reply:
    """What this channel may do, who holds each role, and why you hold yours

    One row per binding of the channel (or `channel=`; in a direct message, your
    personal bindings): provider, environment, role, who holds it (`users=` and
    the fallback of everyone else), the role you hold and the rule that gave it,
    approvers, protection; and the bot admins. Anyone may ask about the channel
    they are in; another channel is shown only to its members and to bot admins
    (`refuse_unless_visible`). Ephemeral.
    """
    store = ctx.services.permissions
    channel = _channel(ctx, values)
    refusal = await refuse_unless_visible(ctx, "access", channel)
    if refusal is not None:
        return refusal
    policy = store.policy_for(channel, ctx.invocation)
    table = Table(
        columns=[
            "Provider",
            "Environment",
            "Role",
            "Held by",
            "Your role",
            "Approvers",
            "Protected",
        ]
    )
    for b in policy.granted:
        protected = protection(policy, Target.named(b.provider, b.environment))
        table.rows.append(
            [
                b.provider,
                "all environments" if b.environment == WILDCARD else b.environment,
                b.role.label,
                holders(b),
                your_role(policy, b),
                _people(b.approvers) or "admins of this binding",
                protected.text
                if protected.protected or protected.reason
                else "if it is a production environment",
            ]
        )
    place = where(policy)
    if not policy.granted:
        table.note = f"none: {place} may do nothing yet (deny by default)"
    admins = ", ".join(str(UserRef(a)) for a in sorted(store.admins)) or "none configured"
    text = (
        f"What {place} may do, for {UserRef(ctx.invocation.user)}. viewer reads; operator "
        "also creates, pauses, resumes, restarts, clones, snapshots and imports; admin also "
        "terminates, switches, restores into a database and runs DR. Destructive commands "
        f"wait for an approval. Bot admins: {admins}."
    )
    return Reply(
        status="info",
        title=f"Access of {place}",
        text=text,
        tables=[table],
        visibility="ephemeral",
    )


def _change(
    ctx: Context, verb_name: str, values: dict[str, Any], action: Callable[..., str]
) -> Reply:
    """Run `action` for a bot admin (refused otherwise), audit the change, answer with it.

    `action(ctx, values)` returns the change in words; ValueError or KeyError
    is a bad value, answered with its message.
    """
    if ctx.invocation.user not in ctx.services.permissions.admins:
        reason = f"`{verb_name}` is for bot admins; ask one of them (listed in `access`)."
        return refuse(ctx, verb_name, reason)
    try:
        text = action(ctx, values)
    except (ValueError, KeyError) as exc:
        message = exc.args[0] if exc.args else str(exc)
        return error(str(message))
    ctx.services.audit.record(
        "command",
        user=ctx.invocation.user,
        channel=ctx.invocation.channel,
        verb=verb_name,
        outcome="changed",
        detail={"change": text},
    )
    return Reply(status="ok", title="Access changed", text=text)


@verb(
    "grant",
    "<provider> <environment> <role>",
    grammars=("<provider> <environment> <role>", "<where> <provider> <environment> <role>"),
    options=GrantOptions,
    bot_admin_only=True,
    example="grant C0PROD console production admin users=S0ONCALL,U0LEAD fallback=viewer",
    group="Access",
)
async def grant(ctx: Context, values: dict[str, Any]) -> Reply:
    """Give a channel (or a person's DMs) a role on an environment (* for all)

    `<where>` is a channel (default: this one, or `channel=`) or a person (`@alice`:
    the rights of their direct messages with graphops). `<role>` is viewer,
    operator or admin; the provider must be configured. `users=` names who hold
    the role (people and user groups; `none`: the whole channel again) and
    `fallback=` what everyone else in the channel holds (default viewer; `none`).
    """
    unknown = await unknown_place(ctx, values["provider"], values["environment"])
    if unknown is not None:
        return error(unknown)
    return _change(ctx, "grant", values, _grant)


async def unknown_place(ctx: Context, provider: str, environment: str) -> str | None:
    """Why `provider`/`environment` names nothing graphops knows (a typo in `grant`,
    `protect`, `incident-channel`: the setting would apply to nothing), or None. Asked
    only for a bot admin (for anyone else the change is refused without a request)."""
    if ctx.invocation.user not in ctx.services.permissions.admins:
        return None
    if provider not in ctx.services.providers:
        known = ", ".join(ctx.services.providers) or "none"
        return f"no provider called {provider!r} (providers: {known}); nothing was changed"
    return await unknown_environment(ctx, provider, environment)


async def unknown_environment(ctx: Context, provider: str, environment: str) -> str | None:
    """Why `environment` names no environment of `provider` (a typo in a grant), or None:
    it does, it is `*`, the provider is not configured (`unknown_place` says so), or its
    environments cannot be listed now (the grant is not held up by an outage)."""
    found = ctx.services.providers.get(provider)
    if environment == WILDCARD or found is None:
        return None
    try:
        known = await ctx.services.resolver.environments(found, fresh=True)
    except ApiError:
        return None
    if any(environment_matches(environment, e.id, e.name) for e in known):
        return None
    names = ", ".join(sorted(e.name for e in known)) or "none"
    return (
        f"{provider} has no environment called {environment!r} (its environments: {names}); "
        "nothing was changed. `envs` lists them"
    )


@verb(
    "revoke",
    "<provider> <environment>",
    grammars=("<provider> <environment>", "<where> <provider> <environment>"),
    options=ChannelOption,
    bot_admin_only=True,
    example="revoke #dev-db console staging",
    group="Access",
)
async def revoke(ctx: Context, values: dict[str, Any]) -> Reply:
    """Take a channel's (or a person's DMs') binding away

    `<where>` as in `grant`: a channel (default: this one, or `channel=`) or a
    person. An error when there was no such binding.
    """
    return _change(ctx, "revoke", values, _revoke)


@verb(
    "protect",
    "<provider> <environment> <mode>",
    options=NoOptions,
    bot_admin_only=True,
    example="protect console staging on",
    group="Access",
)
async def protect(ctx: Context, values: dict[str, Any]) -> Reply:
    """Mark an environment protected (on), not (off), or by its type (default)

    In a protected environment the requester cannot approve their own
    destructive command (permissions/policy.py).
    """
    unknown = await unknown_place(ctx, values["provider"], values["environment"])
    if unknown is not None:
        return error(unknown)
    return _change(ctx, "protect", values, _protect)


@verb(
    "approvers",
    "<provider> <environment>",
    options=ApproversOptions,
    example="approvers console production users=U0LEAD,S0DBTEAM",
    group="Access",
    rights=(
        Rights(form="<provider> <environment>", who="anyone"),
        Rights(form="<provider> <environment> users=", who="bot admins"),
    ),
)
async def approvers(ctx: Context, values: dict[str, Any]) -> Reply:
    """Who approves a binding's destructive commands; users= sets them (none clears)

    Without `users=` it only shows them (to whoever may see the channel's
    access). `users=U…,S…` sets users (`U…`) or user groups (`S…`);
    `users=none` clears them, and then the admins of the binding approve.
    """
    if values.get("users") is None:
        return await _show_approvers(ctx, values)
    return _change(ctx, "approvers", values, _approvers)


async def _show_approvers(ctx: Context, values: dict[str, Any]) -> Reply:
    channel = _channel(ctx, values)
    refusal = await refuse_unless_visible(ctx, "approvers", channel)
    if refusal is not None:
        return refusal
    provider, environment = values["provider"], values["environment"]
    binding = next(
        (
            b
            for b in ctx.services.permissions.bindings(channel)
            if b.provider == provider and b.environment == environment
        ),
        None,
    )
    where = f"{environment} ({provider}) in {ChannelRef(channel)}"
    if binding is None:
        return error(f"{ChannelRef(channel)} has no binding for {environment} ({provider}).")
    who = ", ".join(str(person(a)) for a in binding.approvers) or (
        "none set: the members of an admin-bound channel and the bot admins approve"
    )
    slash = ctx.services.slash_command
    return Reply(
        status="info",
        title=f"Approvers of {where}",
        text=(
            f"{who}.\nTo change them (bot admins): `{slash} approvers {provider} {environment} "
            f"users=U…,S…`; `users={CLEAR}` clears them."
        ),
        visibility="ephemeral",
    )


@verb(
    "incident-channel",
    "<provider> <environment> <channel>",
    options=NoOptions,
    bot_admin_only=True,
    example="incident-channel console production C0INCIDENT",
    group="Access",
)
async def incident_channel(ctx: Context, values: dict[str, Any]) -> Reply:
    """Where failures and risky actions of an environment are announced

    `none` stops announcing; operations/tracker.py and operations/watch.py post there.
    """
    unknown = await unknown_place(ctx, values["provider"], values["environment"])
    if unknown is not None:
        return error(unknown)
    return _change(ctx, "incident-channel", values, _incident)


def _grant_key(ctx: Context, v: dict[str, Any]) -> str:
    """The channel or person a grant is for; in a DM it must be said."""
    key = normalize_binding_key(str(v.get("where") or _channel(ctx, v)))
    if is_direct(key):
        raise ValueError(
            "the rights of a direct message are its person's: name them, as in "
            "`grant @alice console staging operator`"
        )
    return key


def _grant(ctx: Context, v: dict[str, Any]) -> str:
    """The grant itself; `unknown_place` has checked the provider and environment."""
    store = ctx.services.permissions
    key = _grant_key(ctx, v)
    try:  # the role and who holds it change together, or not at all
        binding = store.grant_held(
            key,
            v["provider"],
            v["environment"],
            Role.parse(v["role"]),
            by=ctx.invocation.user,
            users=_ids(v["users"]) if v.get("users") is not None else None,
            fallback=parse_fallback(v["fallback"]) if v.get("fallback") is not None else KEEP,
        )
    except FallbackWithoutUsers:
        raise ValueError(
            "fallback= is what everyone not named in users= holds: without users= the whole "
            "channel holds the role, so it would change nothing; add users=…"
        ) from None
    env = environment_label(binding.provider, binding.environment)
    place = (
        f"the direct messages of {UserRef(key)} with graphops"
        if is_person(key)
        else str(ChannelRef(key))
    )
    text = f"{place} is now {binding.role.label} on {env}"
    if binding.users:
        text += (
            f", held by {_people(binding.users)}; everyone else there holds "
            f"{fallback_label(binding.fallback)}"
        )
    return text + "."


def _revoke(ctx: Context, v: dict[str, Any]) -> str:
    channel = normalize_binding_key(str(v.get("where") or _channel(ctx, v)))
    where = environment_label(v["provider"], v["environment"])
    if not ctx.services.permissions.revoke(channel, v["provider"], v["environment"]):
        raise ValueError(f"{ChannelRef(channel)} had no binding on {where}")
    return f"{ChannelRef(channel)} no longer has access to {where}."


_PROTECT = {"on": True, "off": False, "default": None}


def _protect(ctx: Context, v: dict[str, Any]) -> str:
    mode = v["mode"].lower()
    if mode not in _PROTECT:
        raise ValueError(f"protect takes on, off or default, not {v['mode']!r}")
    ctx.services.permissions.set_protected(v["provider"], v["environment"], _PROTECT[mode])
    meaning = {
        "on": "protected: the requester cannot approve their own destructive commands",
        "off": "not protected: requesters may confirm their own destructive commands",
        "default": "protected if it is a production environment",
    }[mode]
    return f"{environment_label(v['provider'], v['environment'])} is now {meaning}."


def _approvers(ctx: Context, v: dict[str, Any]) -> str:
    words = [u for u in v["users"].replace(" ", ",").split(",") if u]
    if not words:
        raise ValueError(
            f"users= needs user or group ids (users=U0LEAD,S0DBTEAM), or users={CLEAR} to clear"
        )
    if CLEAR in (w.lower() for w in words) and len(words) > 1:
        raise ValueError(f"users={CLEAR} clears the approvers; it cannot be given with ids")
    users = [u for u in words if u.lower() != CLEAR]
    binding = ctx.services.permissions.set_approvers(
        _channel(ctx, v), v["provider"], v["environment"], users
    )
    who = _people(binding.approvers) or "the admins of this binding (default)"
    where = (
        f"{environment_label(binding.provider, binding.environment)} in "
        f"{ChannelRef(binding.channel)}"
    )
    return f"Approvers of {where}: {who}."


def _incident(ctx: Context, v: dict[str, Any]) -> str:
    channel = None if v["channel"].lower() == "none" else v["channel"]
    ctx.services.permissions.set_incident_channel(v["provider"], v["environment"], channel)
    where = str(ChannelRef(channel)) if channel else "nowhere"
    return f"Incidents of {environment_label(v['provider'], v['environment'])} now go to {where}."
