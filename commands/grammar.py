"""The command grammar: `[/gdb] verb [args] [key=value ...]` with shell-style quoting
(a quoted word is never an option: `query db 'x=1'` has the argument `x=1`).

`parse` splits a line; `match_form` binds its positional words to one form of
a verb's grammar (commands/registry.py's `Verb.bind` tries each form and
validates the options with the verb's pydantic model).
"""

from __future__ import annotations

import io
import re
import shlex
from dataclasses import dataclass, field
from typing import Any

from core.redaction import looks_like_a_password

MAX_LINE = 4000
_KEY = re.compile(r"^([a-z][a-z0-9_-]{0,31})=(.*)$", re.DOTALL)
_TOKEN = re.compile(r"^(\[)?<([a-z][a-z0-9-]*)>(\])?$")
# Other spaces (a no-break space from Slack's composer or a paste, an em space, a
# vertical tab...) separate words as a space does, here as people read them; inside
# quotes they stay what they are.
OTHER_SPACES = "\x0b\x0c\x1c\x1d\x1e\x1f\x85\xa0\u1680" + "".join(map(chr, range(0x2000, 0x200B)))
OTHER_SPACES += "\u2028\u2029\u202f\u205f\u3000"  # every other str.isspace() character
SPACES = " \t\r\n" + OTHER_SPACES
# Without a quote or a backslash in the line, splitting does nothing but split.
_SPACE_RUN = re.compile("[" + re.escape(SPACES) + "]+")
_QUOTING = frozenset("'\"\\")


class GrammarError(ValueError):
    """The line cannot be read as a command; the message says why and what would work."""


@dataclass(frozen=True)
class ParsedCommand:
    """A command line split into its verb, positional arguments and key=value options."""

    verb: str
    args: tuple[str, ...] = ()
    options: dict[str, str] = field(default_factory=dict)
    text: str = ""
    typed_verb: str = ""  # the verb as typed (`verb` is lower-cased)

    @property
    def verb_shown(self) -> str | None:
        """The verb to repeat back (an unknown one too), or None when what was typed
        looks like a password (pasted as the whole command by mistake)."""
        return None if looks_like_a_password(self.typed_verb) else self.verb


def approval_command(parsed: ParsedCommand) -> tuple[bool, str, str | None] | None:
    """(approve?, approval id, confirm) when `parsed` is `approve <id>` or `deny <id>`."""
    if parsed.verb not in ("approve", "deny") or len(parsed.args) != 1:
        return None
    extra = set(parsed.options) - ({"confirm"} if parsed.verb == "approve" else set())
    if extra:
        return None
    return parsed.verb == "approve", parsed.args[0], parsed.options.get("confirm")


def parse(line: str, slash_command: str = "/gdb") -> ParsedCommand:
    """Split `line`; a leading slash command is optional, in any case. Raises GrammarError."""
    text = line.strip()
    if len(text) > MAX_LINE:
        raise GrammarError(f"the command is {len(text)} characters long; the limit is {MAX_LINE}")
    if "\x00" in text:
        raise GrammarError("the command contains a NUL character")
    first = text.split(maxsplit=1)[0] if text else ""
    if first.lower() == slash_command.lower():  # `/GDB list` is `/gdb list`
        text = text[len(first) :].strip()
    try:
        words = split_marked(text)
    except ValueError as exc:
        problem = (
            "a quote is not closed"
            if "quotation" in str(exc)
            else "it ends with a backslash that escapes nothing"
        )
        raise GrammarError(
            f"{problem}: close the quote, or put a backslash before a quote meant literally"
        ) from None
    if not words:
        raise GrammarError(f"no verb given; try `{slash_command} help`")
    typed_verb = words[0][0]
    verb = typed_verb.lower()
    args: list[str] = []
    options: dict[str, str] = {}
    for word, bare in words[1:]:
        match = _KEY.match(word) if bare else None  # a quoted `'a=b'` is a word
        if match:
            key, value = match.group(1).replace("-", "_"), match.group(2)
            if key in options:
                raise GrammarError(f"option {match.group(1)}= is given twice")  # as typed
            options[key] = value
        else:
            args.append(word)
    return ParsedCommand(
        verb=verb, args=tuple(args), options=options, text=line.strip(), typed_verb=typed_verb
    )


def split_words(text: str) -> list[str]:
    """Words as a POSIX shell splits them (`shlex`: quotes group, a backslash escapes),
    on any space (`SPACES`: a no-break space too, outside quotes). Lines without a
    quote or a backslash (nearly all) take a regular expression instead of shlex's
    character-by-character reader, with the same result. ValueError as shlex raises it
    (an open quote, a trailing backslash)."""
    return [word for word, _bare in split_marked(text)]


def split_marked(text: str) -> list[tuple[str, bool]]:
    """`split_words`, each word with whether it was typed bare: False when it begins
    with a quote or a backslash (`'a=b'` is a word, never the option `a=`)."""
    if _QUOTING.isdisjoint(text):
        return [(word, True) for word in _SPACE_RUN.split(text) if word]
    stream = io.StringIO(text)
    lexer = shlex.shlex(stream, posix=True)
    lexer.whitespace = SPACES
    lexer.whitespace_split = True
    lexer.commenters = ""
    marked = []
    start = 0
    for word in lexer:
        end = stream.tell()  # shlex reads the stream one character at a time
        typed = text[start:end].lstrip(SPACES)
        marked.append((word, typed[:1] not in _QUOTING))
        start = end
    return marked


def password_like_words(text: str) -> list[str]:
    """The words of `text` (or `key=` values) that look like a password typed by
    mistake (`core.redaction.looks_like_a_password`)."""
    found = []
    for word in text.split():
        match = _KEY.match(word)
        candidate = match.group(2) if match else word
        if looks_like_a_password(candidate):
            found.append(candidate)
    return found


def option_name(field_name: str) -> str:
    """How an option is typed: `source_env` is shown as `source-env`."""
    return field_name.replace("_", "-")


class FormMismatch(ValueError):
    """Positional words that do not fit one form; `position` is how far they matched and
    `missing` the argument that was missing there (None for another mismatch)."""

    def __init__(self, message: str, position: int, missing: str | None = None) -> None:
        super().__init__(message)
        self.position = position
        self.missing = missing


def _repeatable(words: tuple[str, ...]) -> str:
    """Extra words as they may be repeated back: one that looks like a password (a
    password typed on the command line by mistake) is not, in the answer or anywhere
    it is kept."""
    shown = [w for w in words if not looks_like_a_password(w)]
    hidden = len(words) - len(shown)
    if hidden:
        what = "one word" if hidden == 1 else f"{hidden} words"
        shown.append(f"({'and ' if shown else ''}{what} not repeated: it looks like a password)")
    return " ".join(shown)


def match_form(form: str, args: tuple[str, ...]) -> dict[str, Any]:
    """Bind `args` to a form such as `<snapshot> into <db>`: `<name>` takes one word,
    `[<name>]` takes one if there is one (None otherwise), a bare word must be typed as is.
    Returns {name: word} (dashes in names become underscores); FormMismatch if they do not fit.
    """
    values: dict[str, Any] = {}
    tokens = form.split()
    position = 0
    for token in tokens:
        match = _TOKEN.match(token)
        if match is None:  # a literal word such as `into`
            if position < len(args) and args[position].lower() == token:
                position += 1
                continue
            got = f", not `{args[position]}`" if position < len(args) else ""
            raise FormMismatch(f"expected the word `{token}`{got}", position)
        optional, name = bool(match.group(1)), match.group(2).replace("-", "_")
        if position < len(args):
            values[name] = args[position]
            position += 1
        elif optional:
            values[name] = None
        else:
            raise FormMismatch(f"missing <{match.group(2)}>", position, missing=name)
    if position < len(args):
        raise FormMismatch(f"unexpected extra words: {_repeatable(args[position:])}", position)
    return values
