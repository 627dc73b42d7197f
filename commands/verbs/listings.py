"""Read-only listings over every environment the channel may view: `envs`, `list`, and
the catalogs `versions`, `plans`, `regions`.

None has a single target: `prepare_read` plans a read and the function looks
only in environments where the channel holds viewer (commands/targets.py,
`scopes`), so nothing outside the channel's bindings is ever listed.
"""

from __future__ import annotations

from clients.errors import ApiError
from commands.adapters import database_adapter
from commands.adapters.base import ID_FIELDS, Catalog
from commands.context import Context
from commands.options import NoOptions
from commands.plan import Plan
from commands.registry import verb
from commands.resolve import eligible_bindings
from commands.targets import (
    EVERY_KIND,
    GRAPHENEDB,
    databases_in,
    flags,
    kinds_text,
    prepare_read,
    providers_of,
    scopes,
    target_of,
)
from core.errors import UserError
from core.reply import Reply, Table
from permissions.policy import effective_binding, protection
from permissions.roles import Role


class ProviderOption(NoOptions):
    """`provider=`: one provider only."""

    provider: str | None = None


@verb(
    "envs",
    role=Role.VIEWER,
    prepare=prepare_read,
    kinds=EVERY_KIND,
    aliases=("environments",),
    example="envs",
    group="Databases",
)
async def envs(ctx: Context, plan: Plan) -> Reply:
    """List the environments this channel may use, with its role

    Every provider kind: environment, provider, type, the channel's role, protection.
    """
    policy = ctx.policy()
    table = Table(columns=["Environment", "Provider", "Type", "This channel", "Protected"])
    every_kind = frozenset(p.kind for p in ctx.services.providers.values())
    for scope in await scopes(ctx, every_kind, Role.VIEWER):
        target = target_of(scope)
        binding = effective_binding(policy, target)
        table.rows.append(
            [
                scope.environment.name,
                scope.provider.name,
                scope.environment.type or scope.provider.kind,
                binding.role.label if binding else "-",
                protection(policy, target).text,
            ]
        )
    return Reply(title="Environments", tables=[table])


@verb(
    "list",
    "[<env>]",
    role=Role.VIEWER,
    prepare=prepare_read,
    kinds=GRAPHENEDB,
    aliases=("ls",),
    example="list staging",
    group="Databases",
)
async def list_databases(ctx: Context, plan: Plan) -> Reply:
    """List databases, in one environment or all this channel may see

    Database, environment, state, plan, version and flags, from the (cached)
    listings of each environment.
    """
    table = Table(columns=["Database", "Environment", "State", "Plan", "Version", "Flags"])
    for scope in await scopes(ctx, GRAPHENEDB, Role.VIEWER, plan.params.get("env")):
        for db in await databases_in(ctx, scope):
            table.rows.append(
                [
                    db.name,
                    scope.label,
                    db.status.state,
                    db.plan or "",
                    str(db.version or ""),
                    flags(db),
                ]
            )
    if not table.rows:
        table.note = "no databases"
    return Reply(title="Databases", tables=[table])


def catalog_table(provider: str, entries: list[dict[str, str]]) -> Table:
    """A table of one provider's catalog entries: the Provider column, then every field
    the entries have, identifying fields first (`ID_FIELDS`), the others in the order
    they first appear; a field an entry lacks reads `-`."""
    keys: list[str] = []
    for fields in entries:
        keys.extend(k for k in fields if k not in keys)
    keys.sort(key=lambda k: ID_FIELDS.index(k) if k in ID_FIELDS else len(ID_FIELDS))
    table = Table(columns=["Provider", *keys])
    for fields in entries:
        table.rows.append([provider, *(fields.get(k, "-") for k in keys)])
    return table


async def _catalog(ctx: Context, plan: Plan, which: Catalog) -> Reply:
    """A catalog over the providers the channel may view (or `provider=`), one table per
    provider (each names its fields as its API does); a provider whose catalog cannot be
    read is one line under them."""
    policy = ctx.policy()
    providers = providers_of(ctx, GRAPHENEDB)
    wanted = plan.params.get("provider")
    names = {b.provider for b in eligible_bindings(policy, Role.VIEWER, providers)}
    if wanted:
        configured = ctx.services.providers
        if wanted not in configured:
            known = ", ".join(sorted(p.name for p in providers)) or "none"
            raise UserError(f"no provider called {wanted!r} (providers: {known})")
        kind = configured[wanted].kind
        if kind not in GRAPHENEDB:
            raise UserError(
                f"{which} works on {kinds_text(GRAPHENEDB)} providers; {wanted} is a {kind} "
                "provider"
            )
        if wanted not in names:
            raise UserError(
                f"this channel has no binding on provider {wanted}; `access` shows its bindings"
            )
        names = {wanted}
    tables: list[Table] = []
    for name in sorted(names):
        adapter = database_adapter(ctx.provider(name).kind)
        try:
            entries = await adapter.catalog(ctx, name, which)
        except ApiError as exc:
            ctx.unreachable[name] = exc
            continue
        table = catalog_table(name, entries)
        if not entries:
            table.note = f"no {which}"
        tables.append(table)
    return Reply(title=which.capitalize(), tables=tables)


@verb(
    "versions",
    role=Role.VIEWER,
    prepare=prepare_read,
    kinds=GRAPHENEDB,
    options=ProviderOption,
    example="versions",
    group="Catalogs",
)
async def versions(ctx: Context, plan: Plan) -> Reply:
    """List the versions the provider offers

    Every field the API gives, the version first (what `create version=` takes).
    """
    return await _catalog(ctx, plan, "versions")


@verb(
    "plans",
    role=Role.VIEWER,
    prepare=prepare_read,
    kinds=GRAPHENEDB,
    options=ProviderOption,
    example="plans",
    group="Catalogs",
)
async def plans(ctx: Context, plan: Plan) -> Reply:
    """List the plans the provider offers

    Every field the API gives, the plan's id first (what `create plan=` takes).
    """
    return await _catalog(ctx, plan, "plans")


@verb(
    "regions",
    role=Role.VIEWER,
    prepare=prepare_read,
    kinds=GRAPHENEDB,
    options=ProviderOption,
    example="regions",
    group="Catalogs",
)
async def regions(ctx: Context, plan: Plan) -> Reply:
    """List the regions the provider offers

    Every field the API gives, the region's id first (what v1's `create region=` takes).
    """
    return await _catalog(ctx, plan, "regions")
