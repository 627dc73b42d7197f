"""One rule for reading answers, shared by the three clients.

The seeds give paths and request bodies but few response bodies, so every
model here follows the same rule (see ``../shared/DESIGN.md``):

- ids are required; every other field is optional;
- unknown fields are kept (``model.model_extra``), never an error;
- every name a seed or ``graphenedb-observed-shapes.md`` uses for a field is an
  alias of it (``Field(validation_alias=names("status", "currentState", "state"))``);
- times may be UNIX epoch seconds (a number or a numeric string), ISO-8601 or
  RFC 7231 dates; they are kept as ISO-8601 UTC text (``2026-11-30T01:24:00Z``),
  and text that is none of these is kept as it came;
- a body the client cannot use becomes :class:`clients.errors.UnusableAnswer`
  naming the field (``operation 42: no `id` in the answer``), never a
  ``ValidationError``, ``KeyError`` or ``TypeError``.

Collections may come bare (``[...]``) or wrapped (``{"databases": [...]}``).
"""

from __future__ import annotations

import functools
import math
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Annotated, Any, TypeVar

from pydantic import AliasChoices, BaseModel, BeforeValidator, ConfigDict, ValidationError

from clients.errors import UnusableAnswer

M = TypeVar("M", bound=BaseModel)


class Model(BaseModel):
    """Base of every answer model: unknown fields kept, names or aliases accepted."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)


def names(*choices: str) -> AliasChoices:
    """The names a field may carry in an answer, first match wins."""
    return AliasChoices(*choices)


def _iso(moment: datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def as_time(value: Any) -> str | None:
    """A time as ISO-8601 UTC text; epoch seconds, ISO-8601 and RFC 7231 accepted.

    Epoch values above 10^11 are taken as milliseconds. Text that is not a time
    is kept as it is; anything else (a list, an object, NaN) is dropped (None).
    """
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, str):
        return _text_time(value) if len(value) <= 64 else _read_text_time(value)
    if isinstance(value, (int, float)):
        if not math.isfinite(value):
            return None
        seconds = value / 1000 if abs(value) > 1e11 else value
        try:
            return _iso(datetime.fromtimestamp(seconds, UTC))
        except (OverflowError, OSError, ValueError):
            return None
    return None


def _read_text_time(value: str) -> str | None:
    text = value.strip()
    if not text:
        return None
    try:
        return as_time(float(text)) or text
    except ValueError:
        pass
    try:
        return _iso(datetime.fromisoformat(text.replace("Z", "+00:00")))
    except ValueError:
        pass
    try:
        return _iso(parsedate_to_datetime(text))
    except (TypeError, ValueError, IndexError):
        return text


#: `_read_text_time` remembered: a listing repeats the same few times (each database's
#: createdAt, every poll of an operation its startedAt), and reading an RFC 7231 date
#: costs two exceptions and the email parser (~30 µs; issue 17).
_text_time = functools.lru_cache(maxsize=4096)(_read_text_time)


Timestamp = Annotated[str | None, BeforeValidator(as_time)]


def _text(value: Any) -> Any:
    """Numbers and booleans as text; None, lists and objects left for the type check."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    return value


def optional_text(value: Any) -> Any:
    """Like ``_text``, but an empty string, a list or an object reads as absent."""
    if type(value) is str:  # the common case, first (a listing reads ~10 per item)
        return value or None
    value = _text(value)
    if value == "" or isinstance(value, (list, dict)):
        return None
    return value


def flag(value: Any) -> Any:
    """A boolean from true/false, 1/0, "true"/"false"; anything else reads as unknown."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0", "yes", "no"):
        return value.strip().lower() in ("true", "1", "yes")
    return None


def _count(value: Any) -> Any:
    """A non-negative count or size; text digits accepted, anything else unknown."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)) and math.isfinite(value):
        return int(value)
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return None
        return int(number) if math.isfinite(number) else None
    return None


def _identifier(value: Any) -> Any:
    """An id as text: numbers accepted, empty text refused (ids are required)."""
    if type(value) is str and value and not value[0].isspace():
        return value
    value = _text(value)
    if isinstance(value, str) and not value.strip():
        return None
    return value


def _seconds(value: Any) -> Any:
    """A duration in seconds; text digits accepted, anything else unknown."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return None
        return number if math.isfinite(number) else None
    return None


def _message(value: Any) -> Any:
    """An error message: text, or the ``message``/``error`` of an object."""
    if isinstance(value, dict):
        value = value.get("message") or value.get("error") or value.get("detail")
    return optional_text(value)


#: the seed's words for an operation's status, and the synonyms read as them
FINISHED, FAILED, STARTED = "finished", "failed", "started"
_STATUS_WORDS = {
    "completed": FINISHED,
    "complete": FINISHED,
    "succeeded": FINISHED,
    "success": FINISHED,
    "successful": FINISHED,
    "done": FINISHED,
    "error": FAILED,
    "errored": FAILED,
    "failure": FAILED,
    "cancelled": FAILED,
    "canceled": FAILED,
    "aborted": FAILED,
}


def status_word(value: Any) -> str | None:
    """An operation or step status in lower case, synonyms mapped to the seed's words.

    The seed says ``started | finished | failed``; ``completed``, ``succeeded``,
    ``done``... read as finished, ``error``, ``cancelled``, ``aborted``... as failed.
    """
    text = optional_text(value)
    if not isinstance(text, str):
        return None
    word = text.strip().lower()
    return _STATUS_WORDS.get(word, word) or None


Id = Annotated[str, BeforeValidator(_identifier)]
Text = Annotated[str | None, BeforeValidator(optional_text)]
Label = Annotated[str, BeforeValidator(lambda v: v if type(v) is str else optional_text(v) or "")]
Flag = Annotated[bool, BeforeValidator(lambda v: v if type(v) is bool else bool(flag(v)))]
Count = Annotated[int | None, BeforeValidator(_count)]
Seconds = Annotated[float | None, BeforeValidator(_seconds)]
Message = Annotated[str | None, BeforeValidator(_message)]


def _describe_value(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _field_path(loc: tuple[int | str, ...]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def explain(error: ValidationError, body: Any) -> str:
    """The first problem of a ValidationError as a short phrase naming the field."""
    problems = error.errors(include_url=False)
    if not problems:
        return "the answer could not be read"
    first = problems[0]
    loc = tuple(first.get("loc", ()))
    kind = first.get("type", "")
    field = _field_path(loc)
    if not loc or kind in ("model_type", "model_attributes_type", "dict_type"):
        where = f"`{field}`" if field else "the answer"
        return f"{where} is {_describe_value(first.get('input'))}, not an object"
    if kind == "missing":
        return f"no `{field}` in the answer"
    return f"`{field}` is {_describe_value(first.get('input'))}, which is not usable"


def reference(value: Any) -> str | None:
    """An id given as text, a number, or an object with an ``id``."""
    if isinstance(value, dict):
        value = value.get("id")
    text = optional_text(value)
    return text if isinstance(text, str) and text.strip() else None


def valid_or_none(model: type[BaseModel], value: Any) -> Any:
    """``value`` if it reads as ``model``, else None (an unusable part is left out)."""
    if not isinstance(value, dict):
        return None
    try:
        model.model_validate(value)
    except ValidationError:
        return None
    return value


def parse(model: type[M], body: Any, what: str, **context: Any) -> M:
    """``body`` read as ``model``; :class:`UnusableAnswer` naming the field otherwise.

    ``what`` names the thing for a person (``operation 42``); ``context`` is
    passed to the error (``method``, ``path``, ``provider``, ``status``).
    """
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        reason = explain(exc, body)
    except (ValueError, TypeError, KeyError, AttributeError, IndexError) as exc:
        reason = f"the answer could not be read ({type(exc).__name__})"
    raise UnusableAnswer(f"{what}: {reason}", **context)


def items(body: Any, key: str, what: str, **context: Any) -> list[Any]:
    """A collection answer as a list: bare, ``{key: [...]}``, or an object with one list.

    An empty answer (None, ``{}``) is an empty list; anything else is UnusableAnswer.
    """
    if body is None:
        return []
    if isinstance(body, list):
        return body
    if isinstance(body, dict):
        if isinstance(body.get(key), list):
            return list(body[key])
        lists = [value for value in body.values() if isinstance(value, list)]
        if len(lists) == 1:
            return list(lists[0])
        if not body or (key not in body and not lists and _looks_empty(body)):
            return []
        reason = (
            f"`{key}` is {_describe_value(body.get(key))}, not a list"
            if key in body
            else f"no `{key}` list in the answer"
        )
        raise UnusableAnswer(f"{what}: {reason}", **context)
    raise UnusableAnswer(f"{what}: the answer is {_describe_value(body)}, not a list", **context)


def _looks_empty(body: dict[str, Any]) -> bool:
    """A paging envelope with nothing in it (``{"total": 0}``)."""
    return all(isinstance(v, (int, float, bool)) or v is None for v in body.values())


def parse_items(model: type[M], body: Any, key: str, what: str, **context: Any) -> list[M]:
    """Each item of a collection answer read as ``model`` (UnusableAnswer names the item)."""
    return [
        parse(model, item, f"{what}[{index}]", **context)
        for index, item in enumerate(items(body, key, what, **context))
    ]
