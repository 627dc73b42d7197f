"""What a command acts on: the channel's environments, a database in them, the plan.

Shared by the verbs of every provider kind. Each function takes the provider
kinds the verb works on. A database name is looked up in every environment bound
to the channel (so a name in two of them is ambiguous for every verb), then the
channel's role where it was found is checked; an environment the channel may only
view is never acted on.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from clients.errors import ApiError
from commands.context import Context, NeedsChoice, RoleTooLow
from commands.plan import Plan
from commands.resolve import (
    Found,
    NameNotFound,
    Scope,
    eligible_bindings,
    nothing_answered,
    why_unreachable,
)
from core.errors import UserError
from core.kinds import ProviderKind
from core.provider import Provider
from core.reply import OperationRef, Reply
from core.words import environment_label
from permissions.policy import Target, effective_binding, where
from permissions.roles import Role

# The kinds a verb works on (`@verb(kinds=...)`).
CONSOLE = frozenset({ProviderKind.GRAPHENEDB})
V1 = frozenset({ProviderKind.GRAPHENEDB_V1})
GRAPHENEDB = CONSOLE | V1
TYPEDB = frozenset({ProviderKind.TYPEDB})
EVERY_KIND = frozenset(ProviderKind)

# Verbs after which a name may point elsewhere or nowhere (commands/resolve.py).
CHANGES_NAMES = frozenset(
    {"create", "terminate", "clone", "restore", "import", "dr", "create-db", "delete-db"}
)
_NAME = re.compile(r"^[a-z][a-z0-9-]{2,39}$")
T = TypeVar("T")


def kinds_text(kinds: frozenset[ProviderKind]) -> str:
    """`graphenedb and graphenedb-v1`: provider kinds in words, sorted."""
    names = sorted(kinds)
    return " and ".join([", ".join(names[:-1]), names[-1]]) if len(names) > 1 else names[0]


def how_to_check(providers: Mapping[str, Provider], provider: str | None) -> str:
    """What to look at before asking again after an unknown outcome, in words: a TypeDB
    server's databases and users (`dbs`, `users`), else a database's operations and state
    (`ops`, `show`; also when the provider is not known)."""
    known = providers.get(provider) if provider else None
    if known is not None and known.kind == ProviderKind.TYPEDB:
        return "check the server (`dbs`, `users`)"
    return "check the database (`ops`, `show`)"


def providers_of(ctx: Context, kinds: frozenset[ProviderKind]) -> list[Provider]:
    """The configured providers of these kinds."""
    return [p for p in ctx.services.providers.values() if p.kind in kinds]


async def scopes(
    ctx: Context, kinds: frozenset[ProviderKind], role: Role, env: str | None = None
) -> list[Scope]:
    """Environments of these kinds where this channel holds at least `role`."""
    return await _scopes(ctx, kinds, role, env, ctx.unreachable)


async def _scopes(
    ctx: Context,
    kinds: frozenset[ProviderKind],
    role: Role,
    env: str | None,
    unreachable: dict[str, ApiError],
) -> list[Scope]:
    policy = ctx.policy()
    providers = providers_of(ctx, kinds)
    bindings = eligible_bindings(policy, role, providers)
    found = await ctx.services.resolver.scopes(bindings, providers, env, unreachable)
    failed = {p.name: unreachable[p.name] for p in providers if p.name in unreachable}
    if not found and failed:  # nothing answered: an error, not an empty answer
        raise nothing_answered(failed)
    if env is not None and not found:
        where = (
            ", ".join(sorted({environment_label(b.provider, b.environment) for b in bindings}))
            or "none"
        )
        raise UserError(
            f"environment {env!r} is not one this channel may use for that "
            f"(its environments: {where}){not_searched(unreachable)}"
        )
    return found


def unreachable_lines(unreachable: dict[str, ApiError]) -> list[str]:
    """One line per provider or environment that could not be listed, with the server's
    reason when it gave one: `console-eu: unreachable (500): disk on fire`."""
    return [
        f"{where}: {why_unreachable(exc)}" + (f": {exc.message}" if exc.message else "")
        for where, exc in sorted(unreachable.items())
    ]


def not_searched(unreachable: dict[str, ApiError]) -> str:
    """`; not searched: console-eu: unreachable (500)` (empty when all answered)."""
    return f"; not searched: {', '.join(unreachable_lines(unreachable))}" if unreachable else ""


async def listed(
    ctx: Context, wanted: list[Scope], *, fresh: bool = True
) -> list[tuple[Scope, list[Any]]]:
    """The databases of each scope, fetched concurrently (fresh by default: state shown to
    people); a scope whose listing fails is left out and named in `ctx.unreachable`;
    when every one failed, their error (`nothing_answered`)."""
    found = await ctx.services.resolver.listings(wanted, fresh=fresh, unreachable=ctx.unreachable)
    if wanted and not found:
        failed = {s.label: ctx.unreachable[s.label] for s in wanted if s.label in ctx.unreachable}
        if failed:
            raise nothing_answered(failed)
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
    that kind. An environment or provider whose listing failed is skipped and named
    in a not-found answer (`ctx.unreachable`); when none answered, the error is
    theirs. Reads only (look-ups); the caller decides what runs.
    """
    resolver = ctx.services.resolver
    unreachable = ctx.unreachable
    where = await scopes(ctx, kinds, Role.VIEWER, env)
    try:
        found = await resolver.find_database(where, name, unreachable)
    except NameNotFound as exc:
        other = frozenset(p.kind for p in ctx.services.providers.values()) - kinds
        aside: dict[str, ApiError] = {}  # failures of this extra search are not the command's
        try:
            elsewhere = (
                await resolver.find_database(
                    await _scopes(ctx, other, Role.VIEWER, None, aside), name, aside
                )
                if other
                else None
            )
        except (UserError, ApiError):  # only for a better message: its failures are not ours
            elsewhere = None
        if elsewhere is not None:
            provider = elsewhere.scope.provider
            works_on = ", ".join(sorted(kinds))
            raise UserError(
                f"{name!r} is a database of provider {provider.name} (kind {provider.kind}); "
                f"this command does not work on {provider.kind} providers, only on {works_on}"
            ) from None
        if unreachable:
            raise NameNotFound(f"{exc}{not_searched(unreachable)}") from None
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
        f"{name} is in {scope.label}, where {where(policy)} is {held}; "
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
    raise UserError(message + not_searched(ctx.unreachable))


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


async def database_named(ctx: Context, provider: str, environment_id: str, name: str) -> Any | None:
    """The database called `name` in one environment, listed afresh (a command has just
    created it), or None. For answers that name no new database (clone, restore as)."""
    if ctx.dry_run:
        return None
    resolver = ctx.services.resolver
    resolver.invalidate(provider, environment_id)
    for database in await resolver.databases(ctx.provider(provider), environment_id):
        if database.name == name:
            return database
    return None


async def new_database_reply(ctx: Context, plan: Plan, title: str, started: Any) -> Reply:
    """The answer to a command that creates a database (Console create, restore as).

    Its operation runs under the new database: the answer's `database`, else the one of
    that name in the plan's environment (`database_named`). When neither is known the
    operation is not handed to the tracker (it would be polled under no database and
    reported lost although the database is being made); the answer says so.
    """
    p = plan.params
    new = getattr(started, "database", None) or await database_named(
        ctx, plan.provider, p["environment_id"], p["database_name"]
    )
    operation_id = getattr(started, "operation_id", None)
    if new is None and operation_id:
        ctx.services.resolver.invalidate(plan.provider)
        return Reply(
            status="ok",
            title=title,
            text=f"Started (operation {operation_id}), but the answer named no new database "
            f"and none called {p['database_name']} is listed yet, so its progress cannot be "
            "followed here; `list` shows it once it appears.",
            fields=[("Database", p["database_name"]), ("Operation", operation_id)],
        )
    p["database_id"] = new.id if new is not None else ""
    return started_reply(ctx, plan, title, started)


def started_reply(ctx: Context, plan: Plan, title: str, started: Any) -> Reply:
    """The answer to a command that started (or finished) work on a database.

    `started` is any client answer with `operation_id` (and maybe `database`). A verb
    that adds or removes a database (`CHANGES_NAMES`, or an answer naming a new
    database) drops the cached listings of the environments it touched.
    """
    new = getattr(started, "database", None)
    if plan.verb in CHANGES_NAMES or (new is not None and new.id != plan.params["database_id"]):
        ctx.services.resolver.forget(
            plan.provider, [t.environment_id for t in plan.targets if t.environment_id]
        )
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
    if new is not None and new.id != database_id:
        fields.append(("New database", f"{new.name} ({new.id})"))
    return Reply(
        status="ok",
        title=title,
        text="Started; progress follows in the thread." if operations else "Done.",
        fields=fields,
        operations=operations,
    )


def fields_text(data: dict[str, Any]) -> dict[str, str]:
    """An answer's fields as text for a table: numbers and words as they are, nested
    values as compact JSON, absent (None) ones left out."""
    return {
        key: value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
        for key, value in data.items()
        if value is not None
    }


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


async def free_database_name(
    ctx: Context, scope: Scope, name: str, option: str = "a new name"
) -> str:
    """`name` if it is a valid new database name and no database of `scope` is called
    so; UserError saying what to do otherwise (`option`: how the command takes another
    name, e.g. `name=`). Asked before any approval: the API refuses a name taken in the
    environment (400 "a database named … already exists"), and a refusal found only
    after the approval wastes the approver's click. From the name cache (refreshed in
    the background, dropped on the bot's own creates): a database made elsewhere since
    the last refresh is still refused by the API, before anything has changed."""
    check_database_name(name)
    for database in await ctx.services.resolver.databases(scope.provider, scope.environment.id):
        if getattr(database, "name", None) == name:
            raise UserError(
                f"{scope.label} already has a database called {name}; pick another name "
                f"({option}), or `show {name} env={scope.environment.name}` to see it"
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
