"""How graphops says things to people: counts, times, environments, and what a
validation error means, in the project's words rather than a library's.

- `plural(3, "answer")` -> "3 answers"; `plural(1, "query", "queries")` -> "1 query".
- `utc_text(1795995941)` and `utc_text("2026-11-30T03:45:12Z")` -> "2026-11-30 03:45 UTC":
  every time a reply shows is a date and a time in UTC (the user's zone is not known
  to graphops; schedules also show the zone they were made in).
- `environment_label("graph", "*")` -> "all environments of graph": a binding on `*`
  never shows as a bare `*`.
- `explain(error, "reset=")` turns one pydantic error (`ValidationError.errors()`) into
  "reset= takes true or false, not 'maybe'": what was wrong and what works. Command
  options (commands/registry.py), graphops.toml (bot/config.py) and policy files
  (permissions/policy_file.py) all say it this way.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, get_args

from pydantic.fields import FieldInfo

WILDCARD = "*"  # a binding on every environment of a provider (permissions.model.WILDCARD)
_MAX_SHOWN = 40  # characters of a rejected value repeated back
_NUMBER = re.compile(r"^-?\d+(\.\d+)?$")


def plural(count: int, singular: str, many: str | None = None) -> str:
    """`count` and the noun, singular for exactly one (`many` defaults to singular + "s")."""
    return f"{count} {singular if count == 1 else (many or singular + 's')}"


def duration(seconds: float) -> str:
    """A time taken, as progress lines say it: `42s`, `3m05s` (whole seconds)."""
    whole = max(0, round(seconds))
    return f"{whole // 60}m{whole % 60:02d}s" if whole >= 60 else f"{whole}s"


def utc_text(value: float | str | None) -> str:
    """A moment as `YYYY-MM-DD HH:MM UTC`, from epoch seconds or ISO-8601 text.

    "-" for None or empty; text that is not a time is returned as it is.
    """
    if value is None or value == "":
        return "-"
    moment: datetime
    if isinstance(value, int | float):
        moment = datetime.fromtimestamp(value, UTC)
    else:
        try:
            moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            return value
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def environment_label(provider: str, environment: str) -> str:
    """`staging (console)`, or `all environments of graph` for a binding on `*`."""
    if environment == WILDCARD:
        return f"all environments of {provider}"
    return f"{environment} ({provider})"


def shown(value: Any) -> str:
    """A rejected value as repeated back to a person: quoted text, cut when long."""
    if isinstance(value, str) and _NUMBER.match(value):
        return value
    if isinstance(value, str):
        text = value if len(value) <= _MAX_SHOWN else value[: _MAX_SHOWN - 1] + "…"
        return repr(text)
    return str(value)


def _bounds(field: FieldInfo | None, error: Mapping[str, Any]) -> tuple[Any, Any, bool, bool]:
    """(low, high, low excluded, high excluded) of a number, from the field or the error."""
    low = high = None
    low_open = high_open = False
    metadata = list(field.metadata) if field is not None else []
    context = error.get("ctx") or {}
    for item in [*metadata, context]:
        if _limit(item, "ge") is not None:
            low = _limit(item, "ge")
        if _limit(item, "gt") is not None:
            low, low_open = _limit(item, "gt"), True
        if _limit(item, "le") is not None:
            high = _limit(item, "le")
        if _limit(item, "lt") is not None:
            high, high_open = _limit(item, "lt"), True
    return low, high, low_open, high_open


def _limit(item: Any, name: str) -> Any:
    """A bound (`ge`, `le`...) of an annotated-types constraint or of an error's ctx, as
    a person writes it (`0`, not `0.0`)."""
    value = item.get(name) if isinstance(item, Mapping) else getattr(item, name, None)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _number(whole: bool, field: FieldInfo | None, error: Mapping[str, Any]) -> str:
    """`a whole number from 1 to 12`, `a number above 0`, ..."""
    noun = "a whole number" if whole else "a number"
    low, high, low_open, high_open = _bounds(field, error)
    if low is not None and high is not None and not low_open and not high_open:
        return f"{noun} from {low} to {high}"
    parts = []
    if low is not None:
        parts.append(f"above {low}" if low_open else f"of at least {low}")
    if high is not None:
        parts.append(f"below {high}" if high_open else f"of at most {high}")
    return " ".join([noun, " and ".join(parts)]).strip()


def _is_whole(field: FieldInfo | None, error: Mapping[str, Any]) -> bool:
    if error["type"].startswith("int_"):
        return True
    annotation = field.annotation if field is not None else None
    return annotation is int or int in get_args(annotation)


def _choices(expected: str) -> str:
    """`'a', 'b' or 'c'` (pydantic's list of choices, with or without the `or`) as `a, b or c`."""
    text = expected.replace("'", "")
    first, comma, last = text.rpartition(", ")
    return f"{first} or {last}" if comma and " or " not in text else text


def what_works(error: Mapping[str, Any], field: FieldInfo | None = None) -> str | None:
    """What the value should be, in words (`true or false`), or None when unknown."""
    kind = error["type"]
    context = error.get("ctx") or {}
    described = field.description if field is not None else None
    if kind in ("bool_parsing", "bool_type"):
        return "true or false"
    if kind.startswith(("int_", "float_", "greater_than", "less_than")) or kind in (
        "finite_number",
        "multiple_of",
    ):
        return _number(_is_whole(field, error), field, error)
    if kind == "literal_error":
        return _choices(str(context.get("expected", "")))
    if kind == "string_too_short":
        return described or f"at least {plural(int(context.get('min_length', 1)), 'character')}"
    if kind == "string_too_long":
        return described or f"at most {plural(int(context.get('max_length', 1)), 'character')}"
    if kind == "string_pattern_mismatch":
        return described
    if kind in ("string_type", "string_unicode"):
        return described or "text"
    if kind in ("list_type", "tuple_type", "set_type", "frozen_set_type"):
        return 'a list, e.g. ["a", "b"]'
    if kind in ("dict_type", "model_type", "model_attributes_type"):
        return "a table of keys and values"
    return described


def explain(error: Mapping[str, Any], key: str, field: FieldInfo | None = None) -> str:
    """One pydantic error about `key` in words: what was wrong and what works.

    `key` is how the person typed or wrote it (`reset=`, `slack.port`); `field`, when
    known, gives the bounds and description. A message our own validators wrote
    (`value_error`, custom errors) is kept as written.
    """
    kind = error["type"]
    message = str(error.get("msg", ""))
    if kind in ("value_error", "assertion_error"):
        message = message.removeprefix("Value error, ").removeprefix("Assertion failed, ")
        return f"{key}: {message}" if key else message
    if kind == "missing":
        works = what_works(error, field)
        return f"{key} is required" + (f" ({works})" if works else "")
    if kind == "extra_forbidden":
        return f"{key} is not a known setting"
    if kind in ("union_tag_invalid", "union_tag_not_found"):  # `kind = "..."` picks the model
        context = error.get("ctx") or {}
        tag = str(context.get("discriminator", "")).strip("'")
        key = f"{key}.{tag}" if key and tag else key or tag
        if kind == "union_tag_not_found":
            return f"{key} is required"
        return f"{key} takes {_choices(str(context.get('expected_tags', '')))}, not " + shown(
            context.get("tag", "")
        )
    works = what_works(error, field)
    given = error.get("input")
    plain = given is not None and not isinstance(given, dict | list | tuple)
    if works is None:
        if kind not in _PYDANTIC_TYPES:  # a PydanticCustomError: our own words
            return f"{key}: {message}" if key else message
        return f"{key} cannot be {shown(given)}" if plain else f"{key} has an unusable value"
    return f"{key} takes {works}, not {shown(given)}" if plain else f"{key} takes {works}"


# Error types pydantic itself raises that `what_works` does not word (a custom error,
# raised by our validators with our own message, has a type not listed here).
_PYDANTIC_TYPES = frozenset(
    {
        "string_pattern_mismatch",
        "url_parsing",
        "url_scheme",
        "url_type",
        "enum",
        "is_instance_of",
        "date_parsing",
        "datetime_parsing",
        "time_parsing",
        "decimal_parsing",
        "json_invalid",
        "none_required",
        "too_short",
        "too_long",
        "frozen_instance",
        "frozen_field",
    }
)
