"""What a command acts on: the channel's environments, a database in them, the plan.

Shared by the verbs of every provider kind. Each function takes the provider
kinds the verb works on. A database name is looked up in every environment bound
to the channel (so a name in two of them is ambiguous for every verb), then the
channel's role where it was found is checked; an environment the channel may only
view is never acted on.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, TypeVar

from commands.context import Context, NeedsChoice, RoleTooLow
from commands.plan import Plan
from commands.resolve import Found, NameNotFound, Scope, eligible_bindings
from core.errors import UserError
from core.kinds import ProviderKind
from core.provider import Provider
from core.refs import ChannelRef
from core.reply import OperationRef, Reply
from core.words import environment_label
from permissions.policy import Target, effective_binding
from permissions.roles import Role

# The kinds a verb works on (`@verb(kinds=...)`).
CONSOLE = frozenset({ProviderKind.GRAPHENEDB})
V1 = frozenset({ProviderKind.GRAPHENEDB_V1})
GRAPHENEDB = CONSOLE | V1
TYPEDB = frozenset({ProviderKind.TYPEDB})
EVERY_KIND = frozenset(ProviderKind)

_NAME = re.compile(r"^[a-z][a-z0-9-]{2,39}$")
T = TypeVar("T")


def kinds_text(kinds: frozenset[ProviderKind]) -> str:
    """`graphenedb and graphenedb-v1`: provider kinds in words, sorted."""
    names = sorted(kinds)
    return " and ".join([", ".join(names[:-1]), names[-1]]) if len(names) > 1 else names[0]


def providers_of(ctx: Context, kinds: frozenset[ProviderKind]) -> list[Provider]:
    """The configured providers of these kinds."""
    return [p for p in ctx.services.providers.values() if p.kind in kinds]


async def scopes(
    ctx: Context, kinds: frozenset[ProviderKind], role: Role, env: str | None = None
) -> list[Scope]:
    """Environments of these kinds where this channel holds at least `role`."""
    policy = ctx.policy()
    providers = providers_of(ctx, kinds)
    bindings = eligible_bindings(policy, role, providers)
    found = await ctx.services.resolver.scopes(bindings, providers, env)
    if env is not None and not found:
        where = (
            ", ".join(sorted({environment_label(b.provider, b.environment) for b in bindings}))
            or "none"
        )
        raise UserError(
            f"environment {env!r} is not one this channel may use for that "
            f"(its environments: {where})"
        )
    return found


def target_of(scope: Scope) -> Target:
    """The permission target for an environment."""
    return Target.of_environment(scope.provider.name, scope.environment)


async def find(
    ctx: Context, kinds: frozenset[ProviderKind], role: Role, name: str, env: str | None = None
) -> Found:
    """The database `name` in the channel's environments of these kinds, where it holds `role`.

    The name is looked up in every environment bound to the channel, whatever the
    role there, so the answer does not depend on the verb: found in more than one
    is ambiguous for every verb (UserError naming where, and asking for `env=`);
    found in one where the channel's role is below `role`, RoleTooLow naming the
    environment and the role. When the name is not there but is a database of
    another kind of provider, the error says that this command does not work on
    that kind. Reads only (look-ups); the caller decides what runs.
    """
    resolver = ctx.services.resolver
    try:
        found = await resolver.find_database(await scopes(ctx, kinds, Role.VIEWER, env), name)
    except NameNotFound:
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
    require_role(ctx, found.scope, role, found.database.name)
    return found


def require_role(ctx: Context, scope: Scope, role: Role, name: str) -> None:
    """RoleTooLow (naming the environment, the channel's role and `role`) unless the
    channel holds `role` on `scope`."""
    policy = ctx.policy()
    binding = effective_binding(policy, target_of(scope))
    if binding is not None and binding.role >= role:
        return
    held = binding.role.label if binding else "no role"
    raise RoleTooLow(
        f"{name} is in {scope.label}, where {ChannelRef(ctx.invocation.channel)} is {held}; "
        f"that command needs {role.label}"
    )


async def single_scope(
    ctx: Context, kinds: frozenset[ProviderKind], role: Role, env: str | None
) -> Scope:
    """The one environment a command means: `env=`, or the only one the channel may use."""
    found = await scopes(ctx, kinds, role, env)
    if len(found) == 1:
        return found[0]
    names = ", ".join(s.environment.name for s in found) or "none"
    message = f"say which environment with env= (this channel may use: {names})"
    if len(found) > 1:
        raise NeedsChoice(message, "env", [(s.label, s.environment.name) for s in found])
    raise UserError(message)


def client_of(ctx: Context, provider: str, cls: type[Any]) -> Any:
    """The client of a provider, checked to be of the expected class (UserError if not).

    The adapters wrap it with the right type (`console_client`, `v1_client`,
    `typedb_client`).
    """
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


def flags(db: Any) -> str:
    """`pending, locked, INCIDENT, needs restart`: the flags of a listed database's status."""
    status = db.status
    on = [
        name
        for name, value in (
            ("pending", status.is_pending),
            ("locked", status.is_locked),
            ("INCIDENT", status.under_incident),
            ("needs restart", status.needs_restart),
        )
        if value
    ]
    return ", ".join(on)


async def prepare_read(ctx: Context, values: dict[str, Any]) -> Plan:
    """The plan of a read over every environment the channel may view (no single target).

    The verb's execute then looks only where the channel holds viewer (`scopes`).
    """
    return Plan(verb="read", provider="", targets=[], params=values, summary="read")


def check_database_name(name: str) -> str:
    """`name` if it is a valid new GrapheneDB database name; UserError saying what is."""
    if not _NAME.match(name):
        raise UserError(
            f"{name!r} is not a valid database name: use 3-40 characters, lower-case letters, "
            "digits and dashes, starting with a letter (e.g. orders-copy)"
        )
    return name


ID_PREFIX = 6  # the fewest characters of an id (snapshot, backup) a command accepts


def require_id_prefix(wanted: str, what: str) -> None:
    """UserError unless `wanted` has at least ID_PREFIX characters (checked before any request)."""
    if len(wanted) < ID_PREFIX:
        raise UserError(f"give at least the first {ID_PREFIX} characters of the {what} id")


def one_by_id(items: list[T], id_of: Callable[[T], str], wanted: str, what: str, where: str) -> T:
    """The one item whose id is `wanted` or starts with it; UserError when none or several.

    `what` names the items (`snapshot`; `snapshots <db>` lists them), `where` says
    where none was found (`found`, `of that database`).
    """
    matches = [item for item in items if id_of(item) == wanted or id_of(item).startswith(wanted)]
    if not matches:
        raise UserError(f"no {what} {wanted!r} {where}; `{what}s <db>` lists them")
    if len(matches) > 1:
        raise UserError(f"{wanted!r} matches {len(matches)} {what}s; give more of the id")
    return matches[0]
