"""Ask, don't fail: the values a missing argument may take, for the person asking.

A command that lacks an argument with a finite set of answers (a database, a
TypeDB database, a snapshot, a v1 backup, a plan, a version, a region, or the
environment of a command that needs exactly one) is answered with a
`core.reply.Choice` instead of its usage. Each option is the whole command line
with the value filled in, so a pick runs through `Pipeline.run` exactly like a
typed command (rights checked again, approvals asked, everything audited).

Only values the person may act on with that verb are listed: databases of the
environments where they hold the verb's role (`commands.targets.scopes`, which
reads the policy resolved for them), and catalogs of the providers where they
do. Nothing is listed, and no API request is sent, where they hold no such role
(the pipeline refuses first, as it would the typed command).

`options_for(ctx, verb, parsed, missing)` gives the options, or None when the
argument has no finite set of answers (a new name, free text): the usage is
shown then.
"""

from __future__ import annotations

import shlex
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from commands.adapters import database_adapter
from commands.adapters.base import Catalog, DatabaseAdapter, catalog_value
from commands.adapters.console import console_client
from commands.adapters.v1 import v1_client
from commands.context import Context
from commands.grammar import ParsedCommand, option_name
from commands.registry import MissingArgument, Verb
from commands.resolve import Scope, eligible_bindings
from commands.targets import CONSOLE, V1, find, providers_of, scopes
from core.reply import Option
from permissions.roles import Role

MAX_OPTIONS = 1000  # Slack's external_select searches them; the shell numbers them all
MAX_LISTED_DATABASES = 25  # databases whose snapshots are listed for one question

# Arguments of one verb that are another argument's kind of value.
SAME_AS = {("delete-db", "name"): "db", ("switch", "target_db"): "db"}
# How a catalog is asked for, and its columns (the first is the value typed).
CATALOGS: dict[str, Catalog] = {"plan": "plans", "version": "versions", "region": "regions"}
PROMPTS = {
    "db": "Which database",
    "snapshot": "Which snapshot",
    "backup": "Which backup",
    "plan": "Which plan",
    "version": "Which version",
    "region": "Which region",
    "env": "Which environment",
}


@dataclass(frozen=True)
class Missing:
    """What a command lacks: positional `argument` at `position`, or option `argument`."""

    argument: str
    position: int = 0
    option: bool = False

    @classmethod
    def of(cls, exc: MissingArgument) -> Missing:
        """The missing argument a `Verb.bind` error names."""
        return cls(exc.argument, exc.position, exc.option)


@dataclass(frozen=True)
class Value:
    """One answer: what it shows, what is typed, and options the command needs with it."""

    label: str
    value: str
    extra: tuple[tuple[str, str], ...] = ()


Source = Callable[[Context, Verb, ParsedCommand, Role], Awaitable[list[Value]]]


def prompt(verb: Verb, argument: str) -> str:
    """`Which database for restart?`: the verb named as a command, since not every
    verb reads as one in a sentence (`ops`, `status`, `snapshots`)."""
    kind = SAME_AS.get((verb.name, argument), argument)
    head = PROMPTS.get(kind, f"Which {option_name(argument)}")
    return f"{head} for {verb.name}?"


def command_line(slash: str, parsed: ParsedCommand, missing: Missing, value: Value) -> str:
    """The command as typed with `value` filled in (and its extra options)."""
    args = list(parsed.args)
    options = dict(parsed.options)
    if missing.option:
        options[missing.argument] = value.value
    else:
        args.insert(missing.position, value.value)
    for key, extra in value.extra:
        options.setdefault(key, extra)
    words = [parsed.verb, *args, *(f"{option_name(k)}={v}" for k, v in options.items())]
    return f"{slash} {shlex.join(words)}"


def with_option(slash: str, parsed: ParsedCommand, argument: str, value: str) -> str:
    """The command as typed with `argument=value` added (the environment of `create`)."""
    return command_line(slash, parsed, Missing(argument, option=True), Value(value, value))


def _env_extra(verb: Verb, parsed: ParsedCommand, scope: Scope) -> tuple[tuple[str, str], ...]:
    """`env=` for a database of a provider with several environments (names may repeat)."""
    if "env" not in verb.options.model_fields or "env" in parsed.options:
        return ()
    if scope.environment.name == scope.provider.name:  # a one-environment provider
        return ()
    return (("env", scope.environment.name),)


async def _databases(ctx: Context, verb: Verb, parsed: ParsedCommand, role: Role) -> list[Value]:
    """Databases of the verb's kinds where the person holds `role`."""
    found: list[Value] = []
    listed = await ctx.services.resolver.listings(
        await scopes(ctx, verb.kinds, role, parsed.options.get("env"))
    )
    for scope, databases in listed:
        for db in databases:
            found.append(
                Value(f"{db.name} ({scope.label})", db.name, _env_extra(verb, parsed, scope))
            )
    return found


async def _snapshots(ctx: Context, verb: Verb, parsed: ParsedCommand, role: Role) -> list[Value]:
    """Manual snapshots of the Console databases where the person holds `role`."""
    found: list[Value] = []
    listed = 0
    for scope in await scopes(ctx, CONSOLE, role, parsed.options.get("env")):
        api = console_client(ctx, scope.provider.name)
        for db in await ctx.services.resolver.databases(scope.provider, scope.environment.id):
            if listed >= MAX_LISTED_DATABASES:
                return found
            listed += 1
            for snap in await api.snapshots(db.id):
                when = f", {snap.created_at}" if snap.created_at else ""
                label = f"{snap.id[:12]} of {db.name} ({scope.label}{when})"
                found.append(Value(label, snap.id))
    return found


async def _backups(ctx: Context, verb: Verb, parsed: ParsedCommand, role: Role) -> list[Value]:
    """Backups of the v1 database named before (`backup-link <db> <backup>`)."""
    if not parsed.args:
        return []
    database = await find(ctx, V1, role, parsed.args[0])
    api = v1_client(ctx, database.scope.provider.name)
    found = []
    for backup in await api.backups(database.database.id):
        when = f", {backup.timestamp}" if backup.timestamp else ""
        label = f"{backup.id} ({backup.state or 'state unknown'}{when})"
        found.append(Value(label, str(backup.id)))
    return found


def _catalog(argument: str) -> Source:
    which = CATALOGS[argument]

    async def listing(ctx: Context, verb: Verb, parsed: ParsedCommand, role: Role) -> list[Value]:
        providers = providers_of(ctx, verb.kinds)
        names = sorted({b.provider for b in eligible_bindings(ctx.policy(), role, providers)})
        found = []
        for name in names:
            adapter = database_adapter(ctx.provider(name).kind)
            if not isinstance(adapter, DatabaseAdapter):
                continue
            # One line per value a pick can type: entries sharing it (a version in two
            # editions) are one line naming what differs, never two lines that run the
            # same command under different labels.
            details: dict[str, list[str]] = {}
            for entry in await adapter.catalog(ctx, name, which):
                value = catalog_value(entry)
                if value is None:  # an entry without an identifying field cannot be picked
                    continue
                seen = details.setdefault(value, [])
                text = ", ".join(v for v in entry.values() if v and v not in ("-", value))
                if text and text not in seen:
                    seen.append(text)
            for value, texts in details.items():
                label = f"{value} ({name}{': ' + ' | '.join(texts) if texts else ''})"
                found.append(Value(label, value))
        return found

    return listing


SOURCES: dict[str, Source] = {
    "db": _databases,
    "snapshot": _snapshots,
    "backup": _backups,
    **{name: _catalog(name) for name in CATALOGS},
}


def has_source(verb: Verb, argument: str) -> bool:
    """Whether a missing `argument` of `verb` has a finite set of answers to offer."""
    return SAME_AS.get((verb.name, argument), argument) in SOURCES and verb.role is not None


async def options_for(
    ctx: Context, verb: Verb, parsed: ParsedCommand, missing: Missing, role: Role
) -> list[Option] | None:
    """The options for `missing` (None when it has no finite set of answers).

    At most MAX_OPTIONS, in the order the APIs list them.
    """
    kind = SAME_AS.get((verb.name, missing.argument), missing.argument)
    source = SOURCES.get(kind)
    if source is None:
        return None
    slash = ctx.services.slash_command
    typed = set(parsed.args)  # `switch orders-db to ...`: not orders-db again
    values = [v for v in await source(ctx, verb, parsed, role) if v.value not in typed]
    return [
        Option(label=v.label, value=v.value, command=command_line(slash, parsed, missing, v))
        for v in values[:MAX_OPTIONS]
    ]
