"""A small, real TypeQL 3 subset for the TypeDB simulator, evaluated over its data.

What it covers (anything else is an error, never a made-up answer):

- a query is a pipeline of stages, each ending with ``;`` (``fetch { ... }``
  may omit it): ``match``, ``insert``, ``delete``, ``fetch``, ``limit N``;
- ``match`` statements: ``$x isa T`` (T an entity or relation type of the
  schema; subtypes by ``sub`` count), each optionally followed by ``, has A $v``
  or ``, has A <literal>``; ``$x has A $v|<literal>``; comparisons ``$v OP
  <literal>|$w`` with OP one of ``== != < <= > >=``;
- ``insert``: ``$x isa T, has A <literal>|$v, ...;`` makes a new instance
  (values must fit the attribute's ``value`` type); ``$x has A <literal>|$v;``
  adds an attribute to a matched instance. Without ``match``, it runs once;
  after it, once per matched row;
- ``delete``: ``$x;`` removes a matched instance; ``has $v of $x;`` removes
  one attribute from it;
- ``fetch { "key": $v, "key": $x.A, "key": { $x.* }, $x.* }``;
- literals: ``"text"`` or ``'text'``, integers, decimals, ``true``/``false``;
- the schema is read from the simulator's ``define`` text: ``entity|relation|
  attribute LABEL [sub PARENT], owns A, value T, ...`` (``plays``/``relates``
  and functions are kept but not evaluated).

A type or attribute the schema does not define is ``UnknownLabel``; a query
outside the subset is ``NotInSubset`` (both say what was wrong).
"""

from __future__ import annotations

import copy
import operator
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

_TOKEN = re.compile(
    r"""\s*(?:
      (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
    | (?P<var>\$[A-Za-z_][\w-]*)
    | (?P<number>-?\d+(?:\.\d+)?)
    | (?P<op>==|!=|<=|>=|<|>)
    | (?P<word>[A-Za-z_][\w:-]*)
    | (?P<punct>[;,{}.:*()\[\]])
    )""",
    re.VERBOSE,
)
_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
STAGES = ("match", "insert", "delete", "fetch", "limit")
WRITE_STAGES = ("insert", "delete")


class TypeQLError(Exception):
    """The query cannot be run; the message says why."""


class NotInSubset(TypeQLError):
    """Valid TypeQL perhaps, but outside what the simulator evaluates, or not TypeQL."""


class UnknownLabel(TypeQLError):
    """A type or attribute that the schema does not define."""


# ---- schema ---------------------------------------------------------------------------


@dataclass
class TypeDef:
    """One type of the schema."""

    kind: str  # entity | relation | attribute
    label: str
    parent: str | None = None
    owns: set[str] = field(default_factory=set)
    value_type: str | None = None


def parse_schema(text: str) -> dict[str, TypeDef]:
    """The types of a ``define`` body (functions skipped)."""
    types: dict[str, TypeDef] = {}
    body = re.sub(r"(?s)\bfun\b.*?return\s*\{[^}]*\}\s*;", "", text)
    body = re.sub(r"^\s*define\b", "", body)
    for statement in body.split(";"):
        words = statement.replace(",", " , ").split()
        if len(words) < 2 or words[0] not in ("entity", "relation", "attribute"):
            continue
        kind, label = words[0], words[1]
        typedef = types.setdefault(label, TypeDef(kind, label))
        for index, word in enumerate(words[:-1]):
            following = words[index + 1]
            if word == "sub":
                typedef.parent = following
            elif word == "owns":
                typedef.owns.add(following)
            elif word == "value":
                typedef.value_type = following
    return types


# ---- data -----------------------------------------------------------------------------


@dataclass
class Instance:
    """An entity or relation with its attributes, in insertion order."""

    iid: str
    type: str
    attributes: list[tuple[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class Attribute:
    """An attribute value bound to a variable."""

    label: str
    value: Any


@dataclass
class Data:
    """The instances of one database."""

    instances: list[Instance] = field(default_factory=list)
    next_iid: int = 0

    def new_iid(self) -> str:
        iid = f"0x1e{self.next_iid:020x}"
        self.next_iid += 1
        return iid

    def copy(self) -> Data:
        return copy.deepcopy(self)


# ---- parsing --------------------------------------------------------------------------


@dataclass
class Statement:
    """`$x isa T, has A v` / `$x has A v` / `$v OP w` / `delete` forms."""

    var: str | None = None
    isa: str | None = None
    has: list[tuple[str, Any]] = field(default_factory=list)  # value: ("var", n)|("lit", v)
    compare: tuple[str, Any] | None = None
    delete_has: str | None = None  # `has $v of $x`: $v


@dataclass
class Stage:
    kind: str
    statements: list[Statement] = field(default_factory=list)
    fetch: list[tuple[str | None, Any]] = field(default_factory=list)
    limit: int = 0


class _Tokens:
    def __init__(self, text: str) -> None:
        self.items: list[tuple[str, str]] = []
        position = 0
        text = text.rstrip()
        while position < len(text):
            match = _TOKEN.match(text, position)
            if not match or match.end() == position:
                raise NotInSubset(f"cannot read the query at {text[position : position + 20]!r}")
            kind = match.lastgroup or ""
            self.items.append((kind, match.group(kind)))
            position = match.end()
        self.index = 0

    def peek(self, offset: int = 0) -> tuple[str, str]:
        at = self.index + offset
        return self.items[at] if at < len(self.items) else ("end", "")

    def take(self, kind: str | None = None, value: str | None = None) -> str:
        got_kind, got = self.peek()
        if (kind and got_kind != kind) or (value and got != value):
            wanted = value or kind
            raise NotInSubset(f"expected {wanted} but found {got or 'the end'!r}")
        self.index += 1
        return got

    def accept(self, value: str) -> bool:
        if self.peek()[1] == value and self.peek()[0] in ("punct", "word", "op"):
            self.index += 1
            return True
        return False


def _literal(kind: str, text: str) -> Any:
    if kind == "string":
        return bytes(text[1:-1], "utf-8").decode("unicode_escape")
    if kind == "number":
        return float(text) if "." in text else int(text)
    if text in ("true", "false"):
        return text == "true"
    raise NotInSubset(f'{text!r} is not a value (use a $variable, "text", a number)')


def _operand(tokens: _Tokens) -> tuple[str, Any]:
    kind, text = tokens.peek()
    tokens.index += 1
    if kind == "var":
        return ("var", text)
    return ("lit", _literal(kind, text))


def _statement(tokens: _Tokens, stage: str) -> Statement:
    if stage == "delete" and tokens.peek()[1] == "has":
        tokens.take("word", "has")
        value = tokens.take("var")
        tokens.take("word", "of")
        owner = tokens.take("var")
        tokens.take("punct", ";")
        return Statement(var=owner, delete_has=value)
    statement = Statement(var=tokens.take("var"))
    kind, word = tokens.peek()
    if kind == "op":
        tokens.index += 1
        statement.compare = (word, _operand(tokens))
        tokens.take("punct", ";")
        return statement
    if stage == "delete":
        tokens.take("punct", ";")
        return statement
    first = True
    while True:
        if tokens.accept("isa") and first:
            statement.isa = tokens.take("word")
        elif tokens.accept("has"):
            label = tokens.take("word")
            statement.has.append((label, _operand(tokens)))
        else:
            raise NotInSubset(
                f"expected `isa TYPE` or `has ATTRIBUTE value` but found {tokens.peek()[1]!r}"
            )
        first = False
        if tokens.accept(";"):
            return statement
        tokens.take("punct", ",")


def _fetch(tokens: _Tokens) -> list[tuple[str | None, Any]]:
    tokens.take("punct", "{")
    entries: list[tuple[str | None, Any]] = []
    while not tokens.accept("}"):
        if tokens.peek()[0] == "var":  # $x.*
            var = tokens.take("var")
            tokens.take("punct", ".")
            tokens.take("punct", "*")
            entries.append((None, ("all", var)))
        else:
            key = _literal("string", tokens.take("string"))
            tokens.take("punct", ":")
            if tokens.accept("{"):
                var = tokens.take("var")
                tokens.take("punct", ".")
                tokens.take("punct", "*")
                tokens.take("punct", "}")
                entries.append((key, ("all", var)))
            else:
                var = tokens.take("var")
                if tokens.accept("."):
                    entries.append((key, ("attr", var, tokens.take("word"))))
                else:
                    entries.append((key, ("var", var)))
        if not tokens.accept(","):
            tokens.take("punct", "}")
            break
    tokens.accept(";")
    return entries


def parse_query(text: str) -> list[Stage]:
    """The stages of a data query; NotInSubset when it is not in the subset."""
    tokens = _Tokens(text)
    stages: list[Stage] = []
    while tokens.peek()[0] != "end":
        word = tokens.take("word").lower() if tokens.peek()[0] == "word" else tokens.peek()[1]
        if word not in STAGES:
            raise NotInSubset(
                f"`{word}` is not a stage the simulator runs (it runs {', '.join(STAGES)})"
            )
        stage = Stage(word)
        if word == "fetch":
            stage.fetch = _fetch(tokens)
        elif word == "limit":
            stage.limit = int(tokens.take("number"))
            tokens.take("punct", ";")
        else:
            while tokens.peek()[0] == "var" or (word == "delete" and tokens.peek()[1] == "has"):
                stage.statements.append(_statement(tokens, word))
            if not stage.statements:
                raise NotInSubset(f"`{word}` needs at least one statement ending with `;`")
        stages.append(stage)
    if not stages:
        raise NotInSubset("the query is empty")
    return stages


def query_kind(stages: list[Stage]) -> str:
    """``write`` when a stage inserts or deletes, else ``read``."""
    return "write" if any(s.kind in WRITE_STAGES for s in stages) else "read"


# ---- evaluation -----------------------------------------------------------------------

Row = dict[str, Any]  # variable name (without $) -> Instance | Attribute


@dataclass
class Answer:
    """Rows (variable -> Instance | Attribute), or documents after a fetch."""

    rows: list[Row]
    documents: list[dict[str, Any]] | None = None


class Evaluator:
    """Runs parsed stages over `data` with the schema `types` (changes `data` in place)."""

    def __init__(self, types: dict[str, TypeDef], data: Data) -> None:
        self.types = types
        self.data = data

    def run(self, stages: list[Stage]) -> Answer:
        rows: list[Row] = [{}]
        documents: list[dict[str, Any]] | None = None
        for stage in stages:
            if documents is not None:
                raise NotInSubset("`fetch` must be the last stage")
            if stage.kind == "match":
                for statement in stage.statements:
                    rows = [out for row in rows for out in self._match(statement, row)]
            elif stage.kind == "insert":
                rows = [self._insert(stage.statements, row) for row in rows]
            elif stage.kind == "delete":
                for row in rows:
                    self._delete(stage.statements, row)
                rows = []
            elif stage.kind == "limit":
                rows = rows[: stage.limit]
            else:
                documents = [self._document(stage.fetch, row) for row in rows]
        return Answer(rows=[row for row in rows if row], documents=documents)

    # -- labels

    def _type(self, label: str, kinds: tuple[str, ...] = ("entity", "relation")) -> TypeDef:
        typedef = self.types.get(label)
        if typedef is None or typedef.kind not in kinds:
            known = ", ".join(sorted(t for t, d in self.types.items() if d.kind in kinds))
            what = "attribute type" if kinds == ("attribute",) else "type"
            raise UnknownLabel(
                f"the schema has no {what} '{label}'" + (f" (it has: {known})" if known else "")
            )
        return typedef

    def _is_a(self, label: str, wanted: str) -> bool:
        seen: set[str] = set()
        current: str | None = label
        while current is not None and current not in seen:
            if current == wanted:
                return True
            seen.add(current)
            current = self.types[current].parent if current in self.types else None
        return False

    # -- match

    def _value(self, operand: tuple[str, Any], row: Row) -> tuple[bool, Any]:
        kind, value = operand
        if kind == "lit":
            return True, value
        name = value[1:]
        if name not in row:
            return False, None
        bound = row[name]
        if not isinstance(bound, Attribute):
            raise NotInSubset(f"{value} is an instance, not a value")
        return True, bound.value

    def _match(self, statement: Statement, row: Row) -> Iterator[Row]:
        assert statement.var is not None
        name = statement.var[1:]
        if statement.compare is not None:
            op, operand = statement.compare
            left_known, left = self._value(("var", statement.var), row)
            right_known, right = self._value(operand, row)
            if not (left_known and right_known):
                raise NotInSubset("a comparison needs its variables bound earlier in `match`")
            try:
                if _OPS[op](left, right):
                    yield row
            except TypeError:
                return
            return
        if statement.isa is not None:
            self._type(statement.isa)
        for label, _ in statement.has:
            self._type(label, ("attribute",))
        bound = row.get(name)
        if bound is not None and not isinstance(bound, Instance):
            raise NotInSubset(f"{statement.var} is a value; `isa`/`has` need an instance")
        candidates = [bound] if bound is not None else list(self.data.instances)
        if bound is None and statement.isa is None:
            raise NotInSubset(f"say what {statement.var} is first: `{statement.var} isa TYPE`")
        for instance in candidates:
            if statement.isa is not None and not self._is_a(instance.type, statement.isa):
                continue
            yield from self._match_has({**row, name: instance}, instance, statement.has)

    def _match_has(self, row: Row, instance: Instance, has: list[tuple[str, Any]]) -> Iterator[Row]:
        if not has:
            yield row
            return
        (label, (kind, value)), rest = has[0], has[1:]
        for owned_label, owned_value in instance.attributes:
            if owned_label != label:
                continue
            if kind == "lit":
                if owned_value == value:
                    yield from self._match_has(row, instance, rest)
                continue
            name = value[1:]
            attribute = Attribute(label, owned_value)
            if name in row:
                if row[name] == attribute:
                    yield from self._match_has(row, instance, rest)
                continue
            yield from self._match_has({**row, name: attribute}, instance, rest)

    # -- insert and delete

    def _checked(self, label: str, value: Any) -> Any:
        typedef = self._type(label, ("attribute",))
        expected = {
            "string": (str,),
            "integer": (int,),
            "double": (int, float),
            "decimal": (int, float),
            "boolean": (bool,),
        }.get(typedef.value_type or "", (object,))
        if isinstance(value, bool) and bool not in expected:
            expected = ()
        if not isinstance(value, expected):
            raise TypeQLError(
                f"attribute '{label}' holds {typedef.value_type} values, not {value!r}"
            )
        return value

    def _insert(self, statements: list[Statement], row: Row) -> Row:
        row = dict(row)
        for statement in statements:
            assert statement.var is not None
            name = statement.var[1:]
            if statement.isa is not None:
                typedef = self._type(statement.isa)
                created = Instance(self.data.new_iid(), typedef.label)
                self.data.instances.append(created)
                row[name] = created
            instance = row.get(name)
            if not isinstance(instance, Instance):
                raise NotInSubset(f"{statement.var} must be matched or given `isa TYPE`")
            for label, operand in statement.has:
                known, value = self._value(operand, row)
                if not known:
                    raise NotInSubset(f"{operand[1]} is not bound by the `match`")
                instance.attributes.append((label, self._checked(label, value)))
                if operand[0] == "var":
                    row[operand[1][1:]] = Attribute(label, value)
        return row

    def _delete(self, statements: list[Statement], row: Row) -> None:
        for statement in statements:
            assert statement.var is not None
            instance = row.get(statement.var[1:])
            if not isinstance(instance, Instance):
                raise NotInSubset(f"{statement.var} is not an instance bound by the `match`")
            if statement.delete_has is None:
                if instance in self.data.instances:
                    self.data.instances.remove(instance)
                continue
            attribute = row.get(statement.delete_has[1:])
            if not isinstance(attribute, Attribute):
                raise NotInSubset(f"{statement.delete_has} is not a value bound by the `match`")
            pair = (attribute.label, attribute.value)
            if pair in instance.attributes:
                instance.attributes.remove(pair)

    # -- fetch

    def _document(self, entries: list[tuple[str | None, Any]], row: Row) -> dict[str, Any]:
        document: dict[str, Any] = {}
        for key, spec in entries:
            name = spec[1][1:]
            if name not in row:
                raise NotInSubset(f"{spec[1]} is not bound by the `match`")
            bound = row[name]
            if spec[0] == "var":
                if not isinstance(bound, Attribute):
                    raise NotInSubset(f"fetch {spec[1]}.* or {spec[1]}.ATTRIBUTE, not an instance")
                document[str(key)] = bound.value
                continue
            if not isinstance(bound, Instance):
                raise NotInSubset(f"{spec[1]} is a value, not an instance")
            if spec[0] == "attr":
                self._type(spec[2], ("attribute",))
                values = [v for label, v in bound.attributes if label == spec[2]]
                document[str(key)] = values[0] if len(values) == 1 else (values or None)
                continue
            everything: dict[str, Any] = {}
            for label, value in bound.attributes:
                if label in everything:
                    previous = everything[label]
                    everything[label] = (
                        [*previous, value]
                        if isinstance(previous, list)
                        else [
                            previous,
                            value,
                        ]
                    )
                else:
                    everything[label] = value
            if key is None:
                document.update(everything)
            else:
                document[key] = everything
        return document
