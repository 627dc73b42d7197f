"""The registry of verbs: each verb is declared once, and help is generated from it.

A verb's `pattern` is its positional syntax: `<name>` is a required argument,
`[<name>]` an optional one, and a bare word (`into`, `to`) must be typed as is.
Options (`key=value`) are the fields of its pydantic `options` model. A verb
with a `role` acts on an environment and goes through the permission check;
a verb without one (help, access, approve) decides its own rights.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from commands.plan import Plan
from core.reply import Reply
from permissions.roles import Role

_TOKEN = re.compile(r"^(\[)?<([a-z][a-z0-9-]*)>(\])?$")


class UsageError(ValueError):
    """Arguments that do not fit the verb; the message includes its usage."""


class NoOptions(BaseModel):
    """Options model of a verb that takes none."""

    model_config = ConfigDict(extra="forbid")


class AnyOptions(BaseModel):
    """Options model of a verb that passes options on to another command (`plan`)."""

    model_config = ConfigDict(extra="allow")


# The first argument of each is the `commands.context.Context` of the command. It is not
# named here because Context carries the Registry (help and approvals look verbs up), so
# naming it would make the two modules import each other.
PrepareFn = Callable[..., Awaitable[Plan]]  # (ctx, values) -> the plan to decide on
ExecuteFn = Callable[..., Awaitable[Reply]]  # (ctx, plan) -> the answer
DirectFn = Callable[..., Awaitable[Reply]]  # (ctx, values) -> the answer; checks its own rights


@dataclass(frozen=True)
class Verb:
    """One verb: its syntax, rights, and the functions that carry it out."""

    name: str
    summary: str
    pattern: str
    example: str
    role: Role | None
    options: type[BaseModel] = NoOptions
    aliases: tuple[str, ...] = ()
    destructive: bool = False
    kinds: frozenset[str] = frozenset({"graphenedb"})
    group: str = "Databases"
    prepare: PrepareFn | None = None
    execute: ExecuteFn | None = None
    direct: DirectFn | None = None
    bot_admin_only: bool = False
    patterns: tuple[str, ...] = field(default=())

    @property
    def usage(self) -> str:
        """`verb <args> [key=value]` as shown in help and errors."""
        options = [
            f"{option_name(name)}=" if spec.is_required() else f"[{option_name(name)}=]"
            for name, spec in self.options.model_fields.items()
        ]
        forms = self.patterns or (self.pattern,)
        lines = [" ".join(part for part in (self.name, form, *options) if part) for form in forms]
        return " | ".join(lines)

    def bind(self, args: tuple[str, ...], options: dict[str, str]) -> dict[str, Any]:
        """Match positional args against the pattern(s) and validate options."""
        forms = self.patterns or (self.pattern,)
        problems: list[tuple[int, str]] = []
        for form in forms:
            try:
                values = _match(form, args)
                break
            except _Mismatch as exc:
                problems.append((exc.position, str(exc)))
        else:
            # Report the form that matched furthest: it is most likely the one meant.
            best = max(problems, key=lambda item: item[0])[1]
            if len(forms) > 1 and all(p[0] == problems[0][0] for p in problems):
                best = " or ".join(p[1] for p in problems)
            raise UsageError(f"{best}. Usage: {self.usage}")
        try:
            validated = self.options.model_validate(options)
        except ValidationError as exc:
            reasons = []
            for err in exc.errors(include_url=False, include_input=False):
                key = ".".join(str(p) for p in err["loc"]) or "options"
                key = option_name(key)
                if err["type"] == "extra_forbidden":
                    allowed = (
                        ", ".join(f"{option_name(n)}=" for n in self.options.model_fields) or "none"
                    )
                    reasons.append(f"unknown option {key}= (options: {allowed})")
                else:
                    reasons.append(f"{key}=: {err['msg']}")
            raise UsageError("; ".join(reasons) + f". Usage: {self.usage}") from None
        values.update(validated.model_dump())
        return values


def option_name(field_name: str) -> str:
    """How an option is typed: `source_env` is shown as `source-env`."""
    return field_name.replace("_", "-")


class _Mismatch(ValueError):
    def __init__(self, message: str, position: int) -> None:
        super().__init__(message)
        self.position = position


def _match(form: str, args: tuple[str, ...]) -> dict[str, Any]:
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
            raise _Mismatch(f"expected the word `{token}`{got}", position)
        optional, name = bool(match.group(1)), match.group(2).replace("-", "_")
        if position < len(args):
            values[name] = args[position]
            position += 1
        elif optional:
            values[name] = None
        else:
            raise _Mismatch(f"missing <{match.group(2)}>", position)
    if position < len(args):
        extra = " ".join(args[position:])
        raise _Mismatch(f"unexpected extra words: {extra}", position)
    return values


@dataclass(frozen=True)
class WordsVerb(Verb):
    """A verb that takes its positional words as a list (`values["words"]`).

    Options are still validated by the `options` model; `usage_text` is shown
    in help and in errors.
    """

    usage_text: str = ""

    @property
    def usage(self) -> str:
        """The usage as written by the verb."""
        return self.usage_text or self.name

    def bind(self, args: tuple[str, ...], options: dict[str, str]) -> dict[str, Any]:
        """Validate the options; pass the words through."""
        values = super().bind((), options)
        values["words"] = list(args)
        return values


class Registry:
    """All verbs by name and alias."""

    def __init__(self) -> None:
        self._verbs: dict[str, Verb] = {}
        self._names: dict[str, str] = {}

    def add(self, verb: Verb) -> Verb:
        """Register a verb; names and aliases must be unique."""
        for name in (verb.name, *verb.aliases):
            if name in self._names:
                raise ValueError(f"verb name {name!r} registered twice")
            self._names[name] = verb.name
        self._verbs[verb.name] = verb
        return verb

    def get(self, name: str) -> Verb | None:
        """The verb called `name` (or aliased so), or None."""
        canonical = self._names.get(name.lower())
        return self._verbs[canonical] if canonical else None

    def suggest(self, name: str) -> list[str]:
        """Close matches for a mistyped verb."""
        found = difflib.get_close_matches(name.lower(), list(self._names), n=3, cutoff=0.6)
        return sorted({self._names[item] for item in found})

    def all(self) -> list[Verb]:
        """Every verb in registration order."""
        return list(self._verbs.values())
