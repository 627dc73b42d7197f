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

from commands.context import Context
from commands.options import ChannelOption, NoOptions
from commands.pipeline import refuse
from commands.registry import verb
from core.refs import ChannelRef, UserRef, person
from core.reply import Reply, Table, error
from permissions.policy import Target, is_protected
from permissions.roles import Role

CLEAR = "none"  # `approvers ... users=none` clears the approvers of a binding


class ApproversOptions(ChannelOption):
    """`approvers`: `users=` a comma-separated list of user or group ids; `users=none`
    clears them; without `users=`, the approvers are shown."""

    users: str | None = None


def _channel(ctx: Context, values: dict[str, Any]) -> str:
    return str(values.get("channel") or ctx.invocation.channel)


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


@verb("access", options=ChannelOption, example="access", group="Access")
async def access(ctx: Context, values: dict[str, Any]) -> Reply:
    """What this channel may do, and why

    One row per binding of the channel (or `channel=`): provider, environment,
    role, approvers, protection; and the bot admins. Anyone may ask about the
    channel they are in; another channel is shown only to its members and to bot
    admins (`refuse_unless_visible`). Ephemeral.
    """
    store = ctx.services.permissions
    channel = _channel(ctx, values)
    refusal = await refuse_unless_visible(ctx, "access", channel)
    if refusal is not None:
        return refusal
    policy = store.policy_for(channel)
    table = Table(columns=["Provider", "Environment", "Role", "Approvers", "Protected"])
    for b in policy.bindings:
        target = Target(b.provider, b.environment, b.environment, False)
        protected = is_protected(policy, target)
        table.rows.append(
            [
                b.provider,
                b.environment,
                b.role.label,
                ", ".join(b.approvers) or "admins of this binding",
                "yes" if protected else "if production",
            ]
        )
    if not policy.bindings:
        table.note = "none: this channel may do nothing yet (deny by default)"
    admins = ", ".join(str(UserRef(a)) for a in sorted(store.admins)) or "none configured"
    text = (
        f"What {ChannelRef(channel)} may do. viewer reads; operator also creates, pauses, resumes, "
        "restarts, clones, snapshots and imports; admin also terminates, switches, restores "
        "into a database and runs DR. Destructive commands wait for an approval. "
        f"Bot admins: {admins}."
    )
    return Reply(
        status="info",
        title=f"Access of {ChannelRef(channel)}",
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
    options=ChannelOption,
    bot_admin_only=True,
    example="grant console staging operator channel=C0DEV",
    group="Access",
)
async def grant(ctx: Context, values: dict[str, Any]) -> Reply:
    """Give a channel a role on an environment (* for all)

    `<role>` is viewer, operator or admin; the provider must be configured.
    """
    return _change(ctx, "grant", values, _grant)


@verb(
    "revoke",
    "<provider> <environment>",
    options=ChannelOption,
    bot_admin_only=True,
    example="revoke console staging channel=C0DEV",
    group="Access",
)
async def revoke(ctx: Context, values: dict[str, Any]) -> Reply:
    """Take a channel's binding away

    An error when the channel had no such binding.
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
    return _change(ctx, "protect", values, _protect)


@verb(
    "approvers",
    "<provider> <environment>",
    options=ApproversOptions,
    example="approvers console production users=U0LEAD,S0DBTEAM",
    group="Access",
)
async def approvers(ctx: Context, values: dict[str, Any]) -> Reply:
    """Show who approves a binding's destructive commands; with users=, set them
    (bot admins; users=none clears)

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
    return _change(ctx, "incident-channel", values, _incident)


def _grant(ctx: Context, v: dict[str, Any]) -> str:
    if v["provider"] not in ctx.services.providers:
        raise ValueError(f"no provider called {v['provider']!r}; see the bot's config")
    binding = ctx.services.permissions.grant(
        _channel(ctx, v),
        v["provider"],
        v["environment"],
        Role.parse(v["role"]),
        by=ctx.invocation.user,
    )
    where = f"{binding.environment} ({binding.provider})"
    return f"{ChannelRef(binding.channel)} is now {binding.role.label} on {where}."


def _revoke(ctx: Context, v: dict[str, Any]) -> str:
    channel = _channel(ctx, v)
    if not ctx.services.permissions.revoke(channel, v["provider"], v["environment"]):
        raise ValueError(
            f"{ChannelRef(channel)} had no binding on {v['environment']} ({v['provider']})"
        )
    return f"{ChannelRef(channel)} no longer has access to {v['environment']} ({v['provider']})."


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
    return f"{v['environment']} ({v['provider']}) is now {meaning}."


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
    who = ", ".join(binding.approvers) or "the admins of this binding (default)"
    where = f"{binding.environment} ({binding.provider}) in {ChannelRef(binding.channel)}"
    return f"Approvers of {where}: {who}."


def _incident(ctx: Context, v: dict[str, Any]) -> str:
    channel = None if v["channel"].lower() == "none" else v["channel"]
    ctx.services.permissions.set_incident_channel(v["provider"], v["environment"], channel)
    where = str(ChannelRef(channel)) if channel else "nowhere"
    return f"Incidents of {v['environment']} ({v['provider']}) now go to {where}."
