"""Rendering a Reply as plain or coloured text (the shell transport).

Every reply is redacted first (core/redaction.py); its private part, shown to the
person at the terminal, keeps the one-time links they asked for."""

from __future__ import annotations

import re
from collections.abc import Mapping

from core import refs
from core.redaction import redact_reply
from core.reply import Choice, Reply, Table

_MARK = {"ok": "✔", "info": "ℹ", "pending": "⏳", "denied": "⛔", "error": "✖"}
_COLOUR = {"ok": "32", "info": "36", "pending": "33", "denied": "31", "error": "31"}
_MENTION = re.compile(r"<([#@]|!subteam\^)([A-Z0-9]+)(?:\|([^>]*))?>")
_LINK = re.compile(r"<(https?://[^|>]+)\|([^>]*)>")


def humanize(text: str, names: Mapping[str, str]) -> str:
    """References (core.refs) as #name / @name, using `names` where it knows the id;
    Slack mentions (<#C1>, <@U1>, <!subteam^S1>) typed by people likewise; links as labels."""
    if "<" not in text and refs.OPEN not in text and refs.CLOSE not in text:
        return text  # nothing to replace: most table cells (a long table renders at once)

    def show(sigil: str, ident: str, label: str | None = None) -> str:
        return sigil + (label or names.get(ident, ident)).lstrip("#@")

    def replace(match: re.Match[str]) -> str:
        sigil, ident, label = match.groups()
        return show("#" if sigil == "#" else "@", ident, label)

    def ref(r: refs.Ref) -> str:
        if isinstance(r, refs.ThreadRef):
            return "thread"  # always written beside its channel (`in #ops (thread)`)
        return show("#" if r.kind == "channel" else "@", r.id)

    text = refs.render(text, ref)
    return _LINK.sub(r"\2", _MENTION.sub(replace, text))


def render_table(table: Table, names: Mapping[str, str] | None = None) -> list[str]:
    """A table as aligned columns (mentions shown as names before measuring)."""
    rows = [
        [humanize(str(cell), names or {}) for cell in row] for row in [table.columns, *table.rows]
    ]
    widths = [
        max(len(str(row[i])) if i < len(row) else 0 for row in rows)
        for i in range(len(table.columns))
    ]
    lines = []
    for index, row in enumerate(rows):
        cells = [str(cell).ljust(widths[i]) for i, cell in enumerate(row)]
        lines.append("  " + "  ".join(cells).rstrip())
        if index == 0:
            lines.append("  " + "  ".join("-" * w for w in widths))
    if table.note:
        lines.append(f"  ({table.note})")
    return lines


def render(reply: Reply, names: Mapping[str, str] | None = None, colour: bool = False) -> str:
    """The whole reply as text, redacted; buttons become the command lines they stand for."""
    reply = redact_reply(reply)
    names = names or {}
    lines: list[str] = []
    mark = _MARK[reply.status]
    text = reply.text
    title = reply.title
    if not title and text:  # never a bare mark: the first line of the text heads the reply
        title, _, text = text.partition("\n")
    head = f"{mark} {title}" if title else mark
    if colour:
        head = f"\x1b[1;{_COLOUR[reply.status]}m{head}\x1b[0m"
    lines.append(head)
    if reply.visibility == "ephemeral":
        lines[-1] += "  (only you see this)" if not colour else "  \x1b[2m(only you)\x1b[0m"
    if text:
        lines.extend("  " + line for line in text.splitlines())
    if reply.fields:
        width = max(len(label) for label, _ in reply.fields)
        indent = "\n" + " " * (width + 5)  # a value's further lines, under its first
        lines.extend(
            f"  {label.ljust(width)} : {value.replace(chr(10), indent)}"
            for label, value in reply.fields
        )
    for table in reply.tables:
        lines.append("")
        lines.extend(render_table(table, names))
    if reply.private_text:
        lines.append("  [private to you] " + reply.private_text)
    if reply.choice is not None:
        lines.extend(choice_lines(reply.choice))
    for action in reply.actions:
        lines.append(f"  [{action.label}] {action.command}")
    return humanize("\n".join(lines), names)


def choice_lines(choice: Choice) -> list[str]:
    """A question's options as numbered command lines (`  1. /gdb restart x   x (staging)`);
    the interactive shell runs the N-th when `N` is typed."""
    width = max((len(o.command) for o in choice.options), default=0)
    return [
        f"  {index}. {option.command.ljust(width)}   {option.label}"
        for index, option in enumerate(choice.options, start=1)
    ]
