"""core.words: counts, times, environments and validation errors in the project's words."""

from __future__ import annotations

from typing import Annotated, Literal

import pytest
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_core import PydanticCustomError

from core.words import environment_label, explain, plural, utc_text


def test_plural():
    assert plural(1, "answer") == "1 answer"
    assert plural(0, "answer") == "0 answers"
    assert plural(2, "query", "queries") == "2 queries"


def test_times_are_utc_dates_from_epochs_and_iso_text():
    assert utc_text(1795995941) == "2026-11-29 23:45 UTC"  # the epoch `ops` once showed
    assert utc_text(1795995941.7) == "2026-11-29 23:45 UTC"
    assert utc_text("2026-11-30T03:45:41Z") == "2026-11-30 03:45 UTC"
    assert utc_text("2026-11-30T04:45:41+01:00") == "2026-11-30 03:45 UTC"
    assert utc_text("2026-11-30T03:45:41") == "2026-11-30 03:45 UTC"  # no zone: UTC
    assert utc_text(None) == "-" and utc_text("") == "-"
    assert utc_text("yesterday") == "yesterday"  # not a time: as it is


def test_a_wildcard_environment_is_all_environments():
    assert environment_label("graph", "*") == "all environments of graph"
    assert environment_label("console", "staging") == "staging (console)"


class Options(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reset: bool = True
    hours: int = Field(default=2, ge=1, le=12)
    ratio: float = Field(default=1.0, gt=0)
    mode: Literal["protected", "always", "never"] = "protected"
    slash: str = Field(default="/gdb", pattern=r"^/[a-z]+$", description="a slash and letters")
    code: str = Field(default="abc", pattern=r"^[a-z]+$")
    plan: str = Field(default="x", description="a plan name")
    name: Annotated[str, Field(min_length=3)] = "abc"
    secret: str = ""

    @field_validator("secret")
    @classmethod
    def _ours(cls, value: str) -> str:
        if value:
            raise ValueError("a secret is never typed here")
        return value


class Required(BaseModel):
    plan: str = Field(description="a plan name")


class Custom(BaseModel):
    x: int = 0

    def model_post_init(self, context: object) -> None:
        raise PydanticCustomError("typed_password", "a password is never typed here")


def words(model: type[BaseModel], data: dict[str, object]) -> str:
    with pytest.raises(ValidationError) as info:
        model.model_validate(data)
    (error,) = info.value.errors(include_url=False)
    name = str(error["loc"][0]) if error["loc"] else ""
    return explain(error, f"{name}=" if name else "", model.model_fields.get(name))


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"reset": "maybe"}, "reset= takes true or false, not 'maybe'"),
        ({"hours": "99"}, "hours= takes a whole number from 1 to 12, not 99"),
        ({"hours": "two"}, "hours= takes a whole number from 1 to 12, not 'two'"),
        ({"hours": "1.5"}, "hours= takes a whole number from 1 to 12, not 1.5"),
        ({"ratio": "-1"}, "ratio= takes a number above 0, not -1"),
        ({"mode": "sometimes"}, "mode= takes protected, always or never, not 'sometimes'"),
        ({"slash": "gdb"}, "slash= takes a slash and letters, not 'gdb'"),
        ({"code": "ABC"}, "code= cannot be 'ABC'"),
        ({"name": "ab"}, "name= takes at least 3 characters, not 'ab'"),
        ({"secret": "hunter2"}, "secret=: a secret is never typed here"),
        ({"colour": "red"}, "colour= is not a known setting"),
        ({"plan": ["a"]}, "plan= takes a plan name"),
    ],
)
def test_a_validation_error_says_what_works(data, expected):
    assert words(Options, data) == expected


def test_a_missing_value_says_what_it_is():
    assert words(Required, {}) == "plan= is required (a plan name)"


def test_long_values_are_cut_when_repeated():
    text = words(Options, {"reset": "x" * 100})
    assert text.endswith("…'") and len(text) < 80


def test_a_custom_error_keeps_its_own_words():
    with pytest.raises(ValidationError) as info:
        Custom.model_validate({"x": 1})
    (error,) = info.value.errors(include_url=False)
    assert explain(error, "") == "a password is never typed here"
