"""`plan` and `help`: verbs about commands themselves."""

from __future__ import annotations

from typing import Any

from commands.context import Context
from commands.options import AnyOptions
from commands.registry import Verb, verb
from core.reply import Reply, Table, error


@verb(
    "plan",
    words="plan <command ...>",
    options=AnyOptions,
    example="plan restart sandbox-db reset=false",
    group="General",
)
async def plan(ctx: Context, values: dict[str, Any]) -> Reply:
    """Show what a command would do (API calls, decision, safety nets); sends nothing

    The pipeline reads `plan <command>` itself (commands/preview.py,
    `dry_run_form`) and previews the command; this function is reached only
    when `plan` has no command after it, and answers with how to use it.
    """
    return error("`plan` previews a command: `plan terminate sandbox-db`, or add dry-run=true.")


@verb("help", "[<verb>]", example="help restore", group="General")
async def help_command(ctx: Context, values: dict[str, Any]) -> Reply:
    """List the commands, or explain one

    Generated from the registry, so it never drifts from it: `help` is one
    table per group (usage, summary, rights); `help <verb>` the usage, an
    example, the rights, the kinds it works on and its aliases. An unknown
    verb gets close matches. Ephemeral.
    """
    registry = ctx.registry
    slash = ctx.services.slash_command
    name = values.get("verb")
    if name:
        found = registry.get(name)
        if found is None:
            hints = registry.suggest(name)
            maybe = f" Did you mean {' or '.join(hints)}?" if hints else ""
            return error(f"No command `{name}`.{maybe}")
        rights = found.role.label if found.role else "anyone (checks its own rights)"
        if found.bot_admin_only:
            rights = "bot admins"
        fields = [
            ("Usage", f"{slash} {found.usage}"),
            ("Example", f"{slash} {found.example}"),
            ("Needs", rights + (" + approval" if found.destructive else "")),
            ("Works on", ", ".join(sorted(found.kinds)) if found.role else "the bot"),
        ]
        if found.aliases:
            fields.append(("Also", ", ".join(found.aliases)))
        return Reply(
            status="info",
            title=found.name,
            text=found.summary,
            fields=fields,
            visibility="ephemeral",
        )
    groups: dict[str, list[Verb]] = {}
    for each in registry.all():
        groups.setdefault(each.group, []).append(each)
    tables = []
    for group, verbs in groups.items():
        table = Table(columns=[group, "What it does", "Needs"])
        for each in verbs:
            needs = (
                "admins of the bot"
                if each.bot_admin_only
                else (each.role.label if each.role else "-")
            )
            if each.destructive:
                needs += " + approval"
            table.rows.append([f"{slash} {each.usage}", each.summary, needs])
        tables.append(table)
    return Reply(
        status="info",
        title="graphops commands",
        text=f"`{slash} help <command>` shows one command with an example.",
        tables=tables,
        visibility="ephemeral",
    )
