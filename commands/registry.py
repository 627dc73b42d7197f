"""The registry of verbs: each verb is declared once, on its function, with `@verb`.

A verb's `grammar` is its positional syntax: `<name>` is a required argument,
`[<name>]` an optional one, and a bare word (`into`, `to`) must be typed as is;
a verb with several forms lists them in `grammars`. Options (`key=value`) are
the fields of its pydantic `options` model. A verb with a `role` acts on
environments and goes through the permission check of commands/pipeline.py;
a verb without one (help, access, approve) decides its own rights. `help` and
its summary come from here: the first paragraph of the function's docstring.

Who may run a verb is declared with it too (`Rights`, one per form whose rights
differ): help and the README's command tables show exactly these, and
tests/commands/test_cmd_rights.py checks them against what the pipeline decides.

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
from core.words import explain
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
class Rights:
    """Who may run one form of a verb, as help and the README say it.

    `role`: the role the channel needs on every environment the command acts on;
    `approval`: it waits for an approval, always, or only `approval_if` (e.g. "in a
    protected environment"); `who`: for rights that are not a role ("anyone",
    "bot admins", "an approver"); `note`: a condition, shown in parentheses.
    `form`: the words after the verb that pick this form (`<snapshot> into <db>`,
    `add|passwd <name>`, `<db> time=`); "" for every form. `when`: what picks it
    when the words do not (`read` for a read query). `source`: the role needed on
    the environment data is copied out of (clone, restore), shown as a note.
    """

    role: Role | None = None
    approval: bool = False
    approval_if: str = ""
    who: str = ""
    note: str = ""
    form: str = ""
    when: str = ""
    source: Role | None = None

    def __post_init__(self) -> None:
        if (self.role is None) == (not self.who):
            raise TypeError("Rights: give a role or say who (`who=`), not both")

    @property
    def needs(self) -> str:
        """`admin + approval`, `operator + approval in a protected environment`, `anyone`."""
        text = self.role.label if self.role is not None else self.who
        if self.approval:
            text += " + approval" + (f" {self.approval_if}" if self.approval_if else "")
        if self.source is not None:
            text += f" (source: {self.source.label})"
        if self.note:
            text += f" ({self.note})"
        return text

    @property
    def label(self) -> str:
        """What picks this form, in a word or two: `read`, `into`, `add|passwd`."""
        typed = " ".join(token.strip("[]") for token in self.form.split() if "<" not in token)
        return self.when or typed.replace("|", "/") or self.form


def literal_groups(form: str) -> list[frozenset[str]]:
    """The typed words of a form, each `a|b` a group of choices: `refresh <db> from <x>`
    -> [{refresh}, {from}]; `<db> time=` -> [{time=}] (an option counts by its key)."""
    groups = []
    for token in form.split():
        word = token.strip("[]")
        if word.startswith("<") or word.startswith('"'):
            continue
        if "=" in word:
            word = word.split("=", 1)[0] + "="
        groups.append(frozenset(word.lower().split("|")))
    return groups


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
    rights: tuple[Rights, ...] = field(default=())

    @property
    def needs(self) -> str:
        """Every form's rights in one line: `as: operator; into: admin + approval`."""
        if len({r.needs for r in self.rights}) == 1:
            return self.rights[0].needs
        return "; ".join(f"{r.label}: {r.needs}" for r in self.rights)

    @property
    def most_role(self) -> Role | None:
        """The role every form of the verb may be run with (the highest any form needs;
        `role` is the lowest): what a Slack ack needs to foresee before the form is read."""
        roles = [r.role for r in self.rights if r.role is not None]
        return max([*roles, self.role]) if self.role is not None else None

    @property
    def conditional(self) -> bool:
        """Whether some form may wait for an approval (destructive, or `approval` in its
        rights: a write query in a protected environment) or has a condition (a note:
        `tx open … write` not in a protected environment): a Slack ack then promises
        nothing but a check."""
        return self.destructive or any(r.approval or r.note for r in self.rights)

    @property
    def source_role(self) -> Role | None:
        """The role needed where data is copied out of (clone, restore), or None."""
        sources = [r.source for r in self.rights if r.source is not None]
        return max(sources) if sources else None

    def rights_for(self, words: str) -> list[Rights]:
        """The rights of the forms `words` (what follows the verb, as docs write it) stand
        for: those whose typed words are all there (an optional `[time=]` stands for the
        forms with and without it), and of those the ones that use most of the words."""
        required = " ".join(w for w in words.split() if not w.startswith("["))
        typed = frozenset().union(*literal_groups(required))
        every = frozenset().union(typed, *literal_groups(words))
        matching = [
            (sum(bool(group & typed) for group in literal_groups(r.form)), r)
            for r in self.rights
            if all(group & every for group in literal_groups(r.form))
        ]
        best = max((score for score, _ in matching), default=0)
        return [r for score, r in matching if score == best]

    @property
    def positional(self) -> tuple[str, ...]:
        """Each form's syntax without its options: `restore <snapshot> into <db>`."""
        return tuple(
            " ".join(part for part in (self.name, form) if part)
            for form in (self.grammars or (self.grammar,))
        )

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
            errors = exc.errors(include_url=False)
            for err in errors:
                name = ".".join(str(p) for p in err["loc"])
                key = f"{option_name(name)}=" if name else ""
                if err["type"] == "extra_forbidden":
                    allowed = ", ".join(f"{option_name(n)}=" for n in self.options.model_fields)
                    reasons.append(
                        f"unknown option {key} (options: {allowed})"
                        if allowed
                        else f"unknown option {key}: {self.name} takes no options"
                    )
                else:
                    reasons.append(explain(err, key, self.options.model_fields.get(name)))
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

    @property
    def positional(self) -> tuple[str, ...]:
        """Each form of the usage, without options and what follows a `;`."""
        forms = (part.split(";")[0] for part in self.usage.split(" | "))
        return tuple(" ".join(w for w in form.split() if "=" not in w) for form in forms)

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
    rights: tuple[Rights, ...] = (),
) -> Callable[[Fn], Fn]:
    """Declare the decorated function as the verb `name` (see the module docstring).

    With a `role`, the function is the verb's execute `(ctx, plan) -> Reply` and
    `prepare` `(ctx, values) -> Plan` is required; without one, the function is
    called with `(ctx, values)` and checks its own rights. `words` is the usage
    of a verb that reads its positional words itself (`values["words"]`).
    `example` must bind (tests/commands/test_cmd_registry.py runs each one).
    `rights` says who may run each form; without it, the rights are `role` (+
    approval when `destructive`), or bot admins for `bot_admin_only`. A verb
    without a role checks its own rights, so it must declare them.
    """
    if (role is None) != (prepare is None):
        raise TypeError(f"verb {name!r}: a role goes with a prepare function, and only then")
    if not rights:
        if bot_admin_only:
            rights = (Rights(who="bot admin"),)
        elif role is not None:
            rights = (Rights(role=role, approval=destructive),)
        else:
            raise TypeError(f"verb {name!r} checks its own rights: declare them with rights=")

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
            "rights": rights,
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

    def topic(self, name: str, slash: str) -> Verb | None:
        """The verb `help <name>` is about (`name` may carry the slash command, as in
        `help /gdb restart`), or None."""
        return self.get(name.removeprefix(slash).strip() or name)

    def suggest(self, name: str) -> list[str]:
        """Close matches for a mistyped verb."""
        found = difflib.get_close_matches(name.lower(), list(self._names), n=3, cutoff=0.6)
        return sorted({self._names[item] for item in found})

    def all(self) -> list[Verb]:
        """Every verb in registration order."""
        return list(self._verbs.values())
