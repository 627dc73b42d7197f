"""The command grammar: `[/gdb] verb [args] [key=value ...]` with shell-style quoting."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field

MAX_LINE = 4000
_KEY = re.compile(r"^([a-z][a-z0-9_-]{0,31})=(.*)$", re.DOTALL)


class GrammarError(ValueError):
    """The line cannot be read as a command; the message says why and what would work."""


@dataclass(frozen=True)
class ParsedCommand:
    """A command line split into its verb, positional arguments and key=value options."""

    verb: str
    args: tuple[str, ...] = ()
    options: dict[str, str] = field(default_factory=dict)
    text: str = ""


def parse(line: str, slash_command: str = "/gdb") -> ParsedCommand:
    """Split `line`; a leading slash command is optional. Raises GrammarError."""
    text = line.strip()
    if len(text) > MAX_LINE:
        raise GrammarError(f"the command is {len(text)} characters long; the limit is {MAX_LINE}")
    if "\x00" in text:
        raise GrammarError("the command contains a NUL character")
    if text == slash_command or text.startswith(slash_command + " "):
        text = text[len(slash_command) :].strip()
    try:
        words = shlex.split(text)
    except ValueError as exc:
        raise GrammarError(
            f"cannot split the command ({exc}); close the quote or escape it with a backslash"
        ) from None
    if not words:
        raise GrammarError(f"no verb given; try `{slash_command} help`")
    verb = words[0].lower()
    args: list[str] = []
    options: dict[str, str] = {}
    for word in words[1:]:
        match = _KEY.match(word)
        if match:
            key, value = match.group(1).replace("-", "_"), match.group(2)
            if key in options:
                raise GrammarError(f"option {key}= is given twice")
            options[key] = value
        else:
            args.append(word)
    return ParsedCommand(verb=verb, args=tuple(args), options=options, text=line.strip())
