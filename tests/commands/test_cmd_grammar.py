"""The grammar: shell-style quoting, key=value options, clear rejections."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from commands.grammar import MAX_LINE, GrammarError, parse


def test_slash_command_is_optional_and_verb_lowercased():
    assert parse("/gdb Pause orders-db").verb == "pause"
    assert parse("pause orders-db").args == ("orders-db",)


def test_options_and_quoting():
    parsed = parse('/gdb create "my db" plan=ds1 source-env=staging extras="a b"')
    assert parsed.args == ("my db",)
    assert parsed.options == {"plan": "ds1", "source_env": "staging", "extras": "a b"}


def test_other_slash_command_configured():
    assert parse("/graph list", slash_command="/graph").verb == "list"


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("", "no verb"),
        ("/gdb", "no verb"),
        ('pause "orders', "close the quote"),
        ("pause x env=a env=b", "twice"),
        ("x" * (MAX_LINE + 1), "limit"),
        ("pause \x00", "NUL"),
    ],
)
def test_rejections_say_why(line, reason):
    with pytest.raises(GrammarError) as info:
        parse(line)
    assert reason in str(info.value)


@given(st.text(max_size=300))
def test_no_input_crashes_the_parser(text):
    try:
        parsed = parse(text)
    except GrammarError as exc:
        assert str(exc)
    else:
        assert parsed.verb and parsed.verb == parsed.verb.lower()
