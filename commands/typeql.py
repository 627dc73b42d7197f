"""Just enough TypeQL to decide who may run a query: no parser, keywords only.

`classify` puts a query in one of three kinds, from the keywords it contains
once string literals, comments and `$variables` are removed:

- ``schema``: any ``define``, ``undefine`` or ``redefine``;
- ``write``: any ``insert``, ``delete``, ``update`` or ``put`` clause, wherever it
  is in the pipeline (``match ... insert ...`` is a write);
- ``read``: a pipeline that starts with a read stage (``match``, ``fetch``,
  ``reduce``, ``select``, ``with`` ...) and has no write or schema keyword.

Anything else (empty, unknown first word, unbalanced quotes) is ``write``:
when in doubt, the query needs the higher role, never the lower one. The
server still parses the query for real and refuses what it does not accept.
"""

from __future__ import annotations

import re
from typing import Literal

QueryKind = Literal["read", "write", "schema"]

SCHEMA_KEYWORDS = frozenset({"define", "undefine", "redefine"})
WRITE_KEYWORDS = frozenset({"insert", "delete", "update", "put"})
READ_STARTS = frozenset(
    {"match", "fetch", "reduce", "select", "sort", "limit", "offset", "with", "distinct", "require"}
)

# A string literal (either quote, backslash escapes) or a `#` comment to the end of the line.
_NOISE = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|#[^\n]*', re.DOTALL)
# Words as TypeQL spells labels (dashes allowed), with an optional `$`/`?` variable sigil.
_WORD = re.compile(r"[$?]?[A-Za-z_][\w-]*")


def keywords(query: str) -> list[str]:
    """The lower-cased bare words of `query`, outside strings and comments, without variables."""
    text = _NOISE.sub(" ", query)
    return [w.lower() for w in _WORD.findall(text) if not w.startswith(("$", "?"))]


def classify(query: str) -> QueryKind:
    """``schema``, ``write`` or ``read`` (see the module docstring); never raises."""
    words = keywords(query)
    found = set(words)
    if found & SCHEMA_KEYWORDS:
        return "schema"
    if found & WRITE_KEYWORDS or not words:
        return "write"
    stripped = _NOISE.sub(" ", query)
    if stripped.count('"') or stripped.count("'"):
        return "write"  # an unterminated string could hide anything
    return "read" if words[0] in READ_STARTS else "write"


def count_types(schema: str) -> dict[str, int]:
    """How many entity, relation and attribute types and functions a schema defines.

    Counts ``entity X``/``relation X``/``attribute X`` statements (TypeQL 3) and
    ``X sub entity`` style ones; good enough for a summary line.
    """
    counts = {"entity": 0, "relation": 0, "attribute": 0, "function": 0}
    text = _NOISE.sub(" ", schema)
    for statement in text.split(";"):
        words = _WORD.findall(statement)
        lowered = [w.lower() for w in words]
        if not lowered:
            continue
        if lowered[0] == "define":
            lowered = lowered[1:]
        if not lowered:
            continue
        if lowered[0] in ("entity", "relation", "attribute"):
            counts[lowered[0]] += 1
        elif lowered[0] == "fun":
            counts["function"] += 1
        elif len(lowered) >= 3 and lowered[1] == "sub" and lowered[2] in counts:
            counts[lowered[2]] += 1
    return counts
