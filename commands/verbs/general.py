"""`plan` and `help`: verbs about commands themselves."""

from __future__ import annotations

import textwrap
from typing import Any

from commands.context import Context
from commands.options import AnyOptions
from commands.registry import Rights, Verb, verb
from core.redaction import looks_like_a_password
from core.reply import Reply, Table, error


@verb(
    "plan",
    words="plan <command ...>",
    options=AnyOptions,
    example="plan restart sandbox-db reset=false",
    group="General",
    rights=(Rights(who="as the command"),),
)
async def plan(ctx: Context, values: dict[str, Any]) -> Reply:
    """Show what a command would do (API calls, decision, safety nets); sends nothing

    The pipeline reads `plan <command>` itself (commands/preview.py,
    `dry_run_form`) and previews the command; this function is reached only
    when `plan` has no command after it, and answers with how to use it.
    """
    return error("`plan` previews a command: `plan terminate sandbox-db`, or add dry-run=true.")


# `help` fits a terminal or a Slack code block of 80-100 columns: the widths (in
# characters) each column of the overview is wrapped to.
COMMAND_WIDTH = 30
SUMMARY_WIDTH = 34
NEEDS_WIDTH = 26
RIGHTS_WIDTH = 76  # `help <verb>`: each line of its rights


def rights_rows(found: Verb) -> list[tuple[str, str]]:
    """(form, needs) for each form of `found` whose rights differ; one row when they agree."""
    if len({r.needs for r in found.rights}) == 1:
        return [(" | ".join(found.positional), found.rights[0].needs)]
    rows = []
    for rights in found.rights:
        form = f"{found.name} {rights.form}" if rights.form else found.positional[0]
        if rights.when and rights.when not in rights.form:
            form += f" ({rights.when})"
        rows.append((form, rights.needs))
    return rows


def _wrapped(text: str, width: int, indent: str = "") -> list[str]:
    return textwrap.wrap(text, width, subsequent_indent=indent, break_on_hyphens=False) or [""]


def overview_rows(found: Verb) -> list[list[str]]:
    """The rows of one verb in the `help` table: forms, summary and rights, each wrapped."""
    rows: list[list[str]] = []
    for form, needs in rights_rows(found):
        commands = [
            line for part in form.split(" | ") for line in _wrapped(part, COMMAND_WIDTH, "  ")
        ]
        needs_lines = _wrapped(needs, NEEDS_WIDTH)
        for index in range(max(len(commands), len(needs_lines))):
            rows.append(
                [
                    commands[index] if index < len(commands) else "",
                    "",
                    needs_lines[index] if index < len(needs_lines) else "",
                ]
            )
    summary = _wrapped(found.summary, SUMMARY_WIDTH)
    rows.extend(["", "", ""] for _ in range(len(summary) - len(rows)))
    for row, line in zip(rows, summary, strict=False):
        row[1] = line
    return rows


@verb(
    "help",
    "[<verb>]",
    example="help restore",
    group="General",
    rights=(Rights(who="anyone"),),
)
async def help_command(ctx: Context, values: dict[str, Any]) -> Reply:
    """List the commands, or explain one

    Generated from the registry, so it never drifts from it: `help` is one
    table per group (each form, what it does, who may run it), wrapped to fit
    80-100 columns; `help <verb>` the usage of each form, an example, the
    rights of each form, the kinds it works on and its aliases. An unknown
    verb gets close matches. Ephemeral.
    """
    registry = ctx.registry
    slash = ctx.services.slash_command
    name = values.get("verb")
    if name:
        found = registry.topic(name, slash)
        if found is None:
            hints = registry.suggest(name)
            maybe = f" Did you mean {' or '.join(f'`{h}`' for h in hints)}?" if hints else ""
            named = f"`{name}`"
            if looks_like_a_password(name):  # the pipeline made it a secret before anything
                named = "like that (not repeated: it looks like a password)"
            return error(
                f"There is no command {named}.{maybe} `{slash} help` lists them.",
                title="Unknown command",
            )
        forms, _, note = found.usage.partition("; ")  # `schedule`: `; <when>: ...`
        usage = [f"{slash} {line}" for line in forms.split(" | ")] + ([note] if note else [])
        rows = rights_rows(found)
        needs = "\n".join(
            line
            for form, each in rows
            for line in _wrapped(each if len(rows) == 1 else f"{form}: {each}", RIGHTS_WIDTH, "  ")
        )
        fields = [
            ("Usage", "\n".join(usage)),
            ("Example", f"{slash} {found.example}"),
            ("Needs", needs),
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
            table.rows.extend(overview_rows(each))
        tables.append(table)
    return Reply(
        status="info",
        title="graphops commands",
        text=f"`{slash} help <command>` shows a command's options and an example.\n"
        "Needs: the role the channel holds on the environment a command acts on.",
        tables=tables,
        visibility="ephemeral",
    )
