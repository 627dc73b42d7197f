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


# -- splitting: shlex's split, on every kind of space ---------------------------------------

# Characters that matter to shlex (quotes, escapes, its whitespace), mixed with word characters.
_SHLEX_CHARS = st.text(alphabet=" \t\r\n'\"\\#=aZ9-_.<>|@&;", max_size=30)
# Every kind of space, without quotes or escapes.
_PLAIN = st.text(alphabet=" \t\r\n\x0b\x0c\x85\xa0\u2003\u3000aZ9-_=.#", max_size=30)


@given(_SHLEX_CHARS)
def test_split_words_is_shlex_split_for_any_line_of_ascii_spaces(line: str) -> None:
    try:
        expected: list[str] | str = shlex.split(line)
    except ValueError as exc:
        expected = f"ValueError: {exc}"
    try:
        got: list[str] | str = split_words(line)
    except ValueError as exc:
        got = f"ValueError: {exc}"
    assert got == expected


@given(_PLAIN)
def test_without_quotes_any_space_separates_words(line: str) -> None:
    assert split_words(line) == line.split()  # str.split: every str.isspace() character


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
    assert parse('show "a\u00a0b"').args == ("a\u00a0b",)  # inside quotes it stays


@pytest.mark.parametrize(
    ("line", "args", "options"),
    [
        ("query graph 'x=1'", ("graph", "x=1"), {}),
        ('query graph "match $p has age=3;"', ("graph", "match $p has age=3;"), {}),
        ("query graph \\x=1", ("graph", "x=1"), {}),
        ("query graph  'x=1' limit=5", ("graph", "x=1"), {"limit": "5"}),
        ('query graph x="1 2"', ("graph",), {"x": "1 2"}),  # a quoted value stays an option
        ("query graph x=1", ("graph",), {"x": "1"}),
    ],
)
def test_a_quoted_word_is_never_an_option(
    line: str, args: tuple[str, ...], options: dict[str, str]
) -> None:
    parsed = parse(line)
    assert (parsed.args, parsed.options) == (args, options)


@given(st.from_regex(r"[a-z]{1,8}=[a-z0-9 ]{0,8}", fullmatch=True), st.sampled_from("'\""))
def test_any_quoted_key_value_is_an_argument(word: str, quote: str) -> None:
    parsed = parse(f"query graph {quote}{word}{quote}")
    assert parsed.args == ("graph", word) and parsed.options == {}


def test_an_option_given_twice_is_named_as_typed() -> None:
    with pytest.raises(GrammarError, match=r"option dry-run= is given twice"):
        parse("restart sandbox-db dry-run=true dry-run=false")
