"""The registry of verbs: each verb is declared once, on its function, with `@verb`.

A verb's `grammar` is its positional syntax: `<name>` is a required argument,
`[<name>]` an optional one, and a bare word (`into`, `to`) must be typed as is;
a verb with several forms lists them in `grammars`. Options (`key=value`) are
the fields of its pydantic `options` model. A verb with a `role` acts on
environments and goes through the permission check of commands/pipeline.py;
a verb without one (help, access, approve) decides its own rights. `help` and
its summary come from here: the first paragraph of the function's docstring.

    @verb("pause", "<db>", role=Role.OPERATOR, prepare=prepare_pause, options=DbOptions,
          example="pause catalog-db", group="Databases")
    async def pause(ctx: Context, plan: Plan) -> Reply:
        '''Pause a running database (saves costs)

        ...what it calls, its answer, its errors...
        '''

`Registry.collect(modules)` gathers the verbs declared in modules, in the
order they are defined (commands/verbs/__init__.py lists the modules).
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from commands.grammar import FormMismatch, match_form, option_name
from commands.options import NoOptions
from commands.plan import Plan
from core.kinds import ProviderKind
from core.reply import Reply
from permissions.roles import Role


class UsageError(ValueError):
    """Arguments that do not fit the verb; the message includes its usage."""


class MissingArgument(UsageError):
    """The command lacks one argument: positional `argument` at `position` (the first of
    its kind missing), or the required option `argument` (`option` true). The pipeline
    may ask for it (commands/choices.py) instead of answering with the usage."""

    def __init__(self, message: str, argument: str, *, position: int = 0, option: bool = False):
        super().__init__(message)
        self.argument = argument
        self.position = position
        self.option = option


# The first argument of each is the `commands.context.Context` of the command. It is not
# named here because Context carries the Registry (help and approvals look verbs up), so
# naming it would make the two modules import each other.
PrepareFn = Callable[..., Awaitable[Plan]]  # (ctx, values) -> the plan to decide on
ExecuteFn = Callable[..., Awaitable[Reply]]  # (ctx, plan) -> the answer
DirectFn = Callable[..., Awaitable[Reply]]  # (ctx, values) -> the answer; checks its own rights

CONSOLE_ONLY = frozenset({ProviderKind.GRAPHENEDB})


@dataclass(frozen=True)
class Verb:
    """One verb: its syntax, rights, and the functions that carry it out."""

    name: str
    summary: str
    grammar: str
    example: str
    role: Role | None
    options: type[BaseModel] = NoOptions
    aliases: tuple[str, ...] = ()
    destructive: bool = False
    kinds: frozenset[ProviderKind] = CONSOLE_ONLY
    group: str = "Databases"
    prepare: PrepareFn | None = None
    execute: ExecuteFn | None = None
    direct: DirectFn | None = None
    bot_admin_only: bool = False
    grammars: tuple[str, ...] = field(default=())

    @property
    def usage(self) -> str:
        """`verb <args> [key=value]` as shown in help and errors."""
        options = [
            f"{option_name(name)}=" if spec.is_required() else f"[{option_name(name)}=]"
            for name, spec in self.options.model_fields.items()
        ]
        forms = self.grammars or (self.grammar,)
        lines = [" ".join(part for part in (self.name, form, *options) if part) for form in forms]
        return " | ".join(lines)

    def bind(self, args: tuple[str, ...], options: dict[str, str]) -> dict[str, Any]:
        """Match positional args against the grammar(s) and validate options.

        Returns {argument or option name: value}; UsageError (with the usage) otherwise.
        """
        forms = self.grammars or (self.grammar,)
        problems: list[tuple[int, str, str | None]] = []
        for form in forms:
            try:
                values = match_form(form, args)
                break
            except FormMismatch as exc:
                problems.append((exc.position, str(exc), exc.missing))
        else:
            # Report the form that matched furthest: it is most likely the one meant.
            best = max(problems, key=lambda item: item[0])[1]
            if len(forms) > 1 and all(p[0] == problems[0][0] for p in problems):
                best = " or ".join(p[1] for p in problems)
            missing = {p[2] for p in problems if p[0] == max(q[0] for q in problems)}
            if len(missing) == 1 and None not in missing:
                (name,) = missing
                position = max(p[0] for p in problems)
                raise MissingArgument(f"{best}. Usage: {self.usage}", str(name), position=position)
            raise UsageError(f"{best}. Usage: {self.usage}")
        try:
            validated = self.options.model_validate(options)
        except ValidationError as exc:
            reasons = []
            errors = exc.errors(include_url=False, include_input=False)
            for err in errors:
                key = ".".join(str(p) for p in err["loc"]) or "options"
                key = option_name(key)
                if err["type"] == "extra_forbidden":
                    allowed = (
                        ", ".join(f"{option_name(n)}=" for n in self.options.model_fields) or "none"
                    )
                    reasons.append(f"unknown option {key}= (options: {allowed})")
                else:
                    reasons.append(f"{key}=: {err['msg']}")
            message = "; ".join(reasons) + f". Usage: {self.usage}"
            if errors and all(err["type"] == "missing" for err in errors):
                first = str(errors[0]["loc"][0])
                raise MissingArgument(message, first, option=True) from None
            raise UsageError(message) from None
        values.update(validated.model_dump())
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


_DECLARED = "__graphops_verb__"
Fn = TypeVar("Fn", bound=Callable[..., Awaitable[Reply]])


def verb(
    name: str,
    grammar: str = "",
    *,
    example: str,
    group: str,
    role: Role | None = None,
    prepare: PrepareFn | None = None,
    kinds: frozenset[ProviderKind] = CONSOLE_ONLY,
    options: type[BaseModel] = NoOptions,
    aliases: tuple[str, ...] = (),
    destructive: bool = False,
    grammars: tuple[str, ...] = (),
    bot_admin_only: bool = False,
    words: str | None = None,
    cls: type[Verb] = Verb,
) -> Callable[[Fn], Fn]:
    """Declare the decorated function as the verb `name` (see the module docstring).

    With a `role`, the function is the verb's execute `(ctx, plan) -> Reply` and
    `prepare` `(ctx, values) -> Plan` is required; without one, the function is
    called with `(ctx, values)` and checks its own rights. `words` is the usage
    of a verb that reads its positional words itself (`values["words"]`).
    `example` must bind (tests/commands/test_cmd_registry.py runs each one).
    """
    if (role is None) != (prepare is None):
        raise TypeError(f"verb {name!r}: a role goes with a prepare function, and only then")

    def declare(fn: Fn) -> Fn:
        common: dict[str, Any] = {
            "name": name,
            "summary": summary_of(fn),
            "grammar": grammar,
            "example": example,
            "role": role,
            "options": options,
            "aliases": aliases,
            "destructive": destructive,
            "kinds": kinds,
            "group": group,
            "prepare": prepare,
            "execute": fn if role is not None else None,
            "direct": fn if role is None else None,
            "bot_admin_only": bot_admin_only,
            "grammars": grammars,
        }
        declared = WordsVerb(**common, usage_text=words) if words is not None else cls(**common)
        setattr(fn, _DECLARED, declared)
        return fn

    return declare


def summary_of(fn: Callable[..., Any]) -> str:
    """The first paragraph of `fn`'s docstring, on one line, without a final period."""
    doc = inspect.getdoc(fn)
    if not doc:
        raise TypeError(f"verb function {fn.__qualname__} needs a docstring: help shows it")
    return " ".join(doc.split("\n\n", 1)[0].split()).removesuffix(".")


def declared_in(module: ModuleType) -> list[Verb]:
    """The verbs declared with `@verb` in `module`, in the order they are defined."""
    return [
        found
        for value in vars(module).values()
        if getattr(value, "__module__", None) == module.__name__
        and isinstance(found := getattr(value, _DECLARED, None), Verb)
    ]


class Registry:
    """All verbs by name and alias."""

    def __init__(self) -> None:
        self._verbs: dict[str, Verb] = {}
        self._names: dict[str, str] = {}

    @classmethod
    def collect(cls, modules: Iterable[ModuleType]) -> Registry:
        """A registry of every verb declared in `modules`, in their order."""
        registry = cls()
        for module in modules:
            for declared in declared_in(module):
                registry.add(declared)
        return registry

    def add(self, verb: Verb) -> Verb:
        """Register a verb; ValueError when a name or alias is taken."""
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
