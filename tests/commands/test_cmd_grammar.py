"""The grammar: shell-style quoting, key=value options, clear rejections."""

from __future__ import annotations

import shlex

import pytest
from hypothesis import given
from hypothesis import strategies as st

from commands.grammar import MAX_LINE, OTHER_SPACES, GrammarError, parse, split_words


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


# -- splitting: the fast path is shlex's split ------------------------------------------------

# Characters that matter to shlex (quotes, escapes, its whitespace) and to str.split (other
# Unicode spaces), mixed with word characters.
_TRICKY = st.text(alphabet=" \t\r\n\x0b\x0c\xa0\u2003'\"\\#=aZ9-_.<>|@&;", max_size=30)


@given(_TRICKY)
def test_split_words_is_shlex_split_for_any_line(line: str) -> None:
    try:
        expected: list[str] | str = shlex.split(line)
    except ValueError as exc:
        expected = f"ValueError: {exc}"
    try:
        got: list[str] | str = split_words(line)
    except ValueError as exc:
        got = f"ValueError: {exc}"
    assert got == expected


def test_split_words_keeps_unicode_spaces_inside_words_as_shlex_does() -> None:
    # str.split() would cut at a no-break space; shlex (and so the command line) does not.
    assert split_words("show a\xa0b env=x\u2003y") == ["show", "a\xa0b", "env=x\u2003y"]


def test_every_other_unicode_space_separates_words_as_a_space_does() -> None:
    # Slack's composer and pastes bring no-break spaces; `show\u00a0sandbox-db` is two words.
    others = {chr(c) for c in range(0x110000) if chr(c).isspace()} - set(" \t\r\n")
    assert set(OTHER_SPACES) == others
    for space in sorted(others):
        parsed = parse(f"show{space}sandbox-db env=dev{space}x")
        assert (parsed.verb, parsed.args, parsed.options) == (
            "show",
            ("sandbox-db", "x"),
            {"env": "dev"},
        ), repr(space)
    assert parse('show "a\u00a0b"').args == ("a b",)  # inside quotes too: names hold none
