"""`access`, and for bot admins `grant`, `revoke`, `protect`, `approvers`, `incident-channel`.

Changes go to permissions/store.py (the same store `graphops access` writes)
and are audited as `command` rows with outcome `changed`. Who may change
access is decided by `permissions.store.PermissionStore.admins` (the config's
`[bot] admins`); anyone else is refused through the pipeline's `refuse`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from commands.context import Context
from commands.options import ChannelOption, NoOptions
from commands.pipeline import refuse
from commands.registry import Rights, verb
from core.refs import ChannelRef, UserRef
from core.reply import Reply, Table, error
from core.words import WILDCARD, environment_label
from permissions.policy import Target, protection
from permissions.roles import Role


class ApproversOptions(ChannelOption):
    """`approvers`: `users=` a comma-separated list of user or group ids (`none` clears)."""

    users: str = ""


def _channel(ctx: Context, values: dict[str, Any]) -> str:
    return str(values.get("channel") or ctx.invocation.channel)


@verb(
    "access",
    options=ChannelOption,
    example="access",
    group="Access",
    rights=(Rights(who="anyone"),),
)
async def access(ctx: Context, values: dict[str, Any]) -> Reply:
    """What this channel may do, and why

    One row per binding of the channel (or `channel=`): provider, environment,
    role, approvers, protection; and the bot admins. Anyone may ask. Ephemeral.
    """
    store = ctx.services.permissions
    channel = _channel(ctx, values)
    policy = store.policy_for(channel)
    table = Table(columns=["Provider", "Environment", "Role", "Approvers", "Protected"])
    for b in policy.bindings:
        protected = protection(policy, Target.named(b.provider, b.environment))
        table.rows.append(
            [
                b.provider,
                "all environments" if b.environment == WILDCARD else b.environment,
                b.role.label,
                ", ".join(b.approvers) or "admins of this binding",
                protected.text
                if protected.protected or protected.reason
                else "if it is a production environment",
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
    bot_admin_only=True,
    example="approvers console production users=U0LEAD,S0DBTEAM",
    group="Access",
)
async def approvers(ctx: Context, values: dict[str, Any]) -> Reply:
    """Set who approves a binding's destructive commands (users=none clears)

    Users (`U…`) or user groups (`S…`); with none, the admins of the binding approve.
    """
    return _change(ctx, "approvers", values, _approvers)


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
        known = ", ".join(ctx.services.providers) or "none"
        raise ValueError(f"no provider called {v['provider']!r} (providers: {known})")
    binding = ctx.services.permissions.grant(
        _channel(ctx, v),
        v["provider"],
        v["environment"],
        Role.parse(v["role"]),
        by=ctx.invocation.user,
    )
    where = environment_label(binding.provider, binding.environment)
    return f"{ChannelRef(binding.channel)} is now {binding.role.label} on {where}."


def _revoke(ctx: Context, v: dict[str, Any]) -> str:
    channel = _channel(ctx, v)
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
    users = [u for u in v["users"].replace(" ", ",").split(",") if u and u != "none"]
    binding = ctx.services.permissions.set_approvers(
        _channel(ctx, v), v["provider"], v["environment"], users
    )
    who = ", ".join(binding.approvers) or "the admins of this binding (default)"
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
