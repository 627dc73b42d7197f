"""Verbs about the bot itself: help, access, approvals, and (bot admins) managing access."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ConfigDict

from commands.context import Context
from commands.executor import Executor
from commands.registry import AnyOptions, Registry, Verb, WordsVerb
from commands.reply import Action, Reply, Table, denied, error
from permissions.roles import Role


class _Options(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ChannelOption(_Options):
    channel: str | None = None


class ApproversOptions(ChannelOption):
    users: str = ""


class ConfirmOption(_Options):
    confirm: str | None = None


def _require_bot_admin(ctx: Context, verb: str) -> Reply | None:
    if ctx.invocation.user in ctx.services.permissions.admins:
        return None
    ctx.services.audit.record(
        "decision",
        user=ctx.invocation.user,
        channel=ctx.invocation.channel,
        verb=verb,
        outcome="denied",
        detail={"reason": "not a bot admin"},
    )
    return denied(f"`{verb}` is for bot admins; ask one of them (listed in `access`).")


def _channel(ctx: Context, values: dict[str, Any]) -> str:
    return str(values.get("channel") or ctx.invocation.channel)


async def _plan_usage(ctx: Context, values: dict[str, Any]) -> Reply:
    """Reached only when `plan` is given something that is not a command (see executor)."""
    return error("`plan` previews a command: `plan terminate sandbox-db`, or add dry-run=true.")


def help_verb(registry: Registry) -> Callable[[Context, dict[str, Any]], Any]:
    """`help` and `help <verb>`, generated from the registry."""

    async def run(ctx: Context, values: dict[str, Any]) -> Reply:
        slash = ctx.services.slash_command
        name = values.get("verb")
        if name:
            verb = registry.get(name)
            if verb is None:
                hints = registry.suggest(name)
                maybe = f" Did you mean {' or '.join(hints)}?" if hints else ""
                return error(f"No command `{name}`.{maybe}")
            rights = verb.role.label if verb.role else "anyone (checks its own rights)"
            if verb.bot_admin_only:
                rights = "bot admins"
            fields = [
                ("Usage", f"{slash} {verb.usage}"),
                ("Example", f"{slash} {verb.example}"),
                ("Needs", rights + (" + approval" if verb.destructive else "")),
                ("Works on", ", ".join(sorted(verb.kinds)) if verb.role else "the bot"),
            ]
            if verb.aliases:
                fields.append(("Also", ", ".join(verb.aliases)))
            return Reply(
                status="info",
                title=verb.name,
                text=verb.summary,
                fields=fields,
                visibility="ephemeral",
            )
        groups: dict[str, list[Verb]] = {}
        for verb in registry.all():
            groups.setdefault(verb.group, []).append(verb)
        tables = []
        for group, verbs in groups.items():
            table = Table(columns=[group, "What it does", "Needs"])
            for verb in verbs:
                needs = (
                    "admins of the bot"
                    if verb.bot_admin_only
                    else (verb.role.label if verb.role else "-")
                )
                if verb.destructive:
                    needs += " + approval"
                table.rows.append([f"{slash} {verb.usage}", verb.summary, needs])
            tables.append(table)
        return Reply(
            status="info",
            title="graphops commands",
            text=f"`{slash} help <command>` shows one command with an example.",
            tables=tables,
            visibility="ephemeral",
        )

    return run


async def run_access(ctx: Context, values: dict[str, Any]) -> Reply:
    from permissions.policy import Target, protection

    store = ctx.services.permissions
    channel = _channel(ctx, values)
    policy = store.policy_for(channel)
    table = Table(columns=["Provider", "Environment", "Role", "Approvers", "Protected"])
    for b in policy.bindings:
        protected = protection(policy, Target.named(b.provider, b.environment))
        table.rows.append(
            [
                b.provider,
                b.environment,
                b.role.label,
                ", ".join(b.approvers) or "admins of this binding",
                protected.text
                if protected.protected or protected.reason
                else "if label production/prod or grantType red",
            ]
        )
    if not policy.bindings:
        table.note = "none: this channel may do nothing yet (deny by default)"
    admins = ", ".join(f"<@{a}>" for a in sorted(store.admins)) or "none configured"
    text = (
        f"What <#{channel}> may do. viewer reads; operator also creates, pauses, resumes, "
        "restarts, clones, snapshots and imports; admin also terminates, switches, restores "
        "into a database and runs DR. Destructive commands wait for an approval. "
        f"Bot admins: {admins}."
    )
    return Reply(
        status="info",
        title=f"Access of <#{channel}>",
        text=text,
        tables=[table],
        visibility="ephemeral",
    )


def _managed(verb: str, action: Callable[[Context, dict[str, Any]], str]) -> Any:
    async def run(ctx: Context, values: dict[str, Any]) -> Reply:
        refusal = _require_bot_admin(ctx, verb)
        if refusal is not None:
            return refusal
        try:
            text = action(ctx, values)
        except (ValueError, KeyError) as exc:
            message = exc.args[0] if exc.args else str(exc)
            return error(str(message))
        ctx.services.audit.record(
            "command",
            user=ctx.invocation.user,
            channel=ctx.invocation.channel,
            verb=verb,
            outcome="changed",
            detail={"change": text},
        )
        return Reply(status="ok", title="Access changed", text=text)

    return run


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
    return f"<#{binding.channel}> is now {binding.role.label} on {where}."


def _revoke(ctx: Context, v: dict[str, Any]) -> str:
    channel = _channel(ctx, v)
    if not ctx.services.permissions.revoke(channel, v["provider"], v["environment"]):
        raise ValueError(f"<#{channel}> had no binding on {v['environment']} ({v['provider']})")
    return f"<#{channel}> no longer has access to {v['environment']} ({v['provider']})."


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
    users = [u for u in v["users"].replace(" ", ",").split(",") if u and u != "none"]
    binding = ctx.services.permissions.set_approvers(
        _channel(ctx, v), v["provider"], v["environment"], users
    )
    who = ", ".join(binding.approvers) or "the admins of this binding (default)"
    return (
        f"Approvers of {binding.environment} ({binding.provider}) in <#{binding.channel}>: {who}."
    )


def _incident(ctx: Context, v: dict[str, Any]) -> str:
    channel = None if v["channel"].lower() == "none" else v["channel"]
    ctx.services.permissions.set_incident_channel(v["provider"], v["environment"], channel)
    where = f"<#{channel}>" if channel else "nowhere"
    return f"Incidents of {v['environment']} ({v['provider']}) now go to {where}."


def approval_verbs(executor: Executor) -> tuple[Any, Any, Any]:
    """approve / deny / pending, bound to the executor that runs approved plans."""

    async def approve(ctx: Context, values: dict[str, Any]) -> Reply:
        return await executor.decide_approval(ctx, values["id"], True, values.get("confirm"))

    async def deny(ctx: Context, values: dict[str, Any]) -> Reply:
        return await executor.decide_approval(ctx, values["id"], False, None)

    async def pending(ctx: Context, values: dict[str, Any]) -> Reply:
        slash = ctx.services.slash_command
        table = Table(columns=["Approval", "Requested by", "What", "Expires"])
        actions = []
        for approval in ctx.services.approvals.pending(ctx.invocation.channel):
            minutes = max(0, round((approval.expires_at - time.time()) / 60))
            table.rows.append(
                [approval.id, f"<@{approval.requester}>", approval.summary, f"in {minutes} min"]
            )
            actions.append(
                Action(label=f"Deny {approval.id}", command=f"{slash} deny {approval.id}")
            )
        if not table.rows:
            table.note = "nothing is waiting for approval here"
        return Reply(
            status="info",
            title="Pending approvals",
            tables=[table],
            actions=actions[:5],
            visibility="ephemeral",
        )

    return approve, deny, pending


def register(registry: Registry, executor: Executor) -> None:
    """Add help, access, approval and access-management verbs."""

    def add(**kwargs: Any) -> None:
        registry.add(Verb(role=None, group=kwargs.pop("group", "Access"), **kwargs))

    registry.add(
        WordsVerb(
            name="plan",
            summary="Show what a command would do (API calls, decision, safety nets); "
            "sends nothing",
            pattern="",
            usage_text="plan <command ...>",
            example="plan restart sandbox-db reset=false",
            role=None,
            options=AnyOptions,
            direct=_plan_usage,
            group="General",
        )
    )
    add(
        name="help",
        summary="List the commands, or explain one",
        pattern="[<verb>]",
        example="help restore",
        direct=help_verb(registry),
        group="General",
    )
    add(
        name="access",
        summary="What this channel may do, and why",
        pattern="",
        example="access",
        options=ChannelOption,
        direct=run_access,
    )
    approve, deny, pending = approval_verbs(executor)
    add(
        name="approve",
        summary="Approve a waiting destructive command (runs it once)",
        pattern="<id>",
        example="approve Xk2pQ9aZ confirm=sandbox-db",
        options=ConfirmOption,
        direct=approve,
        group="Approvals",
    )
    add(
        name="deny",
        summary="Deny a waiting command (the requester may also withdraw it)",
        pattern="<id>",
        example="deny Xk2pQ9aZ",
        direct=deny,
        group="Approvals",
    )
    add(
        name="pending",
        summary="List the approvals waiting in this channel",
        pattern="",
        example="pending",
        direct=pending,
        group="Approvals",
    )
    for name, summary, pattern, example, options, action in (
        (
            "grant",
            "Give a channel a role on an environment (* for all)",
            "<provider> <environment> <role>",
            "grant console staging operator channel=C0DEV",
            ChannelOption,
            _grant,
        ),
        (
            "revoke",
            "Take a channel's binding away",
            "<provider> <environment>",
            "revoke console staging channel=C0DEV",
            ChannelOption,
            _revoke,
        ),
        (
            "protect",
            "Mark an environment protected (on), not (off), or by its type (default)",
            "<provider> <environment> <mode>",
            "protect console staging on",
            _Options,
            _protect,
        ),
        (
            "approvers",
            "Set who approves a binding's destructive commands (users=none clears)",
            "<provider> <environment>",
            "approvers console production users=U0LEAD,S0DBTEAM",
            ApproversOptions,
            _approvers,
        ),
        (
            "incident-channel",
            "Where failures and risky actions of an environment are announced",
            "<provider> <environment> <channel>",
            "incident-channel console production C0INCIDENT",
            _Options,
            _incident,
        ),
    ):
        add(
            name=name,
            summary=summary,
            pattern=pattern,
            example=example,
            options=options,
            direct=_managed(name, action),
            bot_admin_only=True,
        )


def build_registry(services: Any) -> tuple[Registry, Executor]:
    """The full registry of verbs and an executor over `services`."""
    from commands import verbs_console, verbs_schedule, verbs_typedb, verbs_v1, verbs_watch

    registry = Registry()
    executor = Executor(registry, services)
    register(registry, executor)
    verbs_console.register(registry)
    verbs_v1.register(registry)
    verbs_watch.register(registry)
    verbs_typedb.register(registry)
    verbs_schedule.register(registry, executor)
    return registry, executor
