"""What a command acts on: the channel's environments, a database in them, the plan.

Shared by the verbs of every provider kind. Each function takes the provider
kinds the verb works on, and looks only in environments where the channel holds
the role the verb needs.
"""

from __future__ import annotations

from typing import Any

from commands.context import Context, Plan, Provider, RoleTooLow, UserError
from commands.reply import OperationRef, Reply
from commands.resolve import Found, NameNotFound, Scope, eligible_bindings
from permissions.policy import Target, effective_binding
from permissions.roles import Role

CONSOLE = frozenset({"graphenedb"})
V1 = frozenset({"graphenedb-v1"})
GRAPHENEDB = CONSOLE | V1
TYPEDB = frozenset({"typedb"})


def providers_of(ctx: Context, kinds: frozenset[str]) -> list[Provider]:
    """The configured providers of these kinds."""
    return [p for p in ctx.services.providers.values() if p.kind in kinds]


async def scopes(
    ctx: Context, kinds: frozenset[str], role: Role, env: str | None = None
) -> list[Scope]:
    """Environments of these kinds where this channel holds at least `role`."""
    policy = ctx.services.permissions.policy_for(ctx.invocation.channel)
    providers = providers_of(ctx, kinds)
    bindings = eligible_bindings(policy, role, providers)
    found = await ctx.services.resolver.scopes(bindings, providers, env)
    if env is not None and not found:
        where = ", ".join(sorted({b.environment for b in bindings})) or "none"
        raise UserError(
            f"environment {env!r} is not one this channel may use for that "
            f"(its environments: {where})"
        )
    return found


def target_of(scope: Scope) -> Target:
    """The permission target for an environment."""
    return Target.of_environment(scope.provider.name, scope.environment)


async def find(
    ctx: Context, kinds: frozenset[str], role: Role, name: str, env: str | None = None
) -> Found:
    """The database `name` in an environment of these kinds where the channel holds `role`.

    When the name is not there but is a database of another kind of provider,
    the error says that this command does not work on that kind.
    """
    resolver = ctx.services.resolver
    try:
        return await resolver.find_database(await scopes(ctx, kinds, role, env), name)
    except NameNotFound:
        if role > Role.VIEWER:
            await _refuse_if_visible(ctx, kinds, role, name, env)
        other = frozenset(p.kind for p in ctx.services.providers.values()) - kinds
        try:
            elsewhere = (
                await resolver.find_database(await scopes(ctx, other, Role.VIEWER), name)
                if other
                else None
            )
        except UserError:
            elsewhere = None
        if elsewhere is not None:
            provider = elsewhere.scope.provider
            works_on = ", ".join(sorted(kinds))
            raise UserError(
                f"{name!r} is a database of provider {provider.name} (kind {provider.kind}); "
                f"this command does not work on {provider.kind} providers, only on {works_on}"
            ) from None
        raise


async def _refuse_if_visible(
    ctx: Context, kinds: frozenset[str], role: Role, name: str, env: str | None
) -> None:
    """RoleTooLow when `name` is in an environment the channel may only look at."""
    try:
        seen = await ctx.services.resolver.find_database(
            await scopes(ctx, kinds, Role.VIEWER, env), name
        )
    except UserError:
        return
    policy = ctx.services.permissions.policy_for(ctx.invocation.channel)
    binding = effective_binding(policy, target_of(seen.scope))
    held = binding.role.label if binding else "no role"
    raise RoleTooLow(
        f"{name} is in {seen.scope.label}, where <#{ctx.invocation.channel}> is {held}; "
        f"that command needs {role.label}"
    )


async def single_scope(ctx: Context, kinds: frozenset[str], role: Role, env: str | None) -> Scope:
    """The one environment a command means: `env=`, or the only one the channel may use."""
    found = await scopes(ctx, kinds, role, env)
    if len(found) == 1:
        return found[0]
    names = ", ".join(s.environment.name for s in found) or "none"
    raise UserError(f"say which environment with env= (this channel may use: {names})")


def client_of(ctx: Context, provider: str, cls: type[Any]) -> Any:
    """The client of a provider, checked to be of the expected class."""
    value = ctx.provider(provider).client
    if not isinstance(value, cls):
        raise UserError(f"provider {provider!r} is not a {cls.__name__} provider")
    return value


def db_plan(verb: str, found: Found, summary: str, **params: Any) -> Plan:
    """A plan acting on one found database."""
    return Plan(
        verb=verb,
        provider=found.scope.provider.name,
        targets=[target_of(found.scope)],
        params={
            "database_id": found.database.id,
            "database_name": found.database.name,
            "environment_id": found.scope.environment.id,
            "kind": found.scope.provider.kind,
            **params,
        },
        summary=summary,
    )


def started_reply(ctx: Context, plan: Plan, title: str, started: Any) -> Reply:
    """The answer to a command that started (or finished) work on a database.

    `started` is any client answer with `operation_id` (and maybe `database`).
    """
    ctx.services.resolver.invalidate(plan.provider)
    database_id = plan.params["database_id"]
    fields = [("Database", plan.params["database_name"])]
    operations = []
    operation_id = getattr(started, "operation_id", None)
    if operation_id:
        fields.append(("Operation", operation_id))
        first = plan.targets[0] if plan.targets else None
        operations.append(
            OperationRef(
                provider=plan.provider,
                database_id=database_id,
                operation_id=operation_id,
                label=plan.summary,
                environment_id=first.environment_id if first else "",
                environment_name=first.environment_name if first else "",
                verb=plan.verb,
            )
        )
    new = getattr(started, "database", None)
    if new is not None and new.id != database_id:
        fields.append(("New database", f"{new.name} ({new.id})"))
    return Reply(
        status="ok",
        title=title,
        text="Started; progress follows in the thread." if operations else "Done.",
        fields=fields,
        operations=operations,
    )
