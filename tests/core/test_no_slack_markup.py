"""Slack markup is bot/'s business: the rest of the code embeds core.refs references.

Reply text outside bot/ never writes `<@U…>`, `<#C…>` or `<!…>`: it embeds
`UserRef`, `ChannelRef`, `GroupRef` (core/refs.py) and each transport renders
them. This scans every string literal outside bot/ (docstrings and regular
expressions that *read* such markup, as permissions/store.py does, excepted).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
ROOMS = ["core", "commands", "operations", "permissions", "clients", "simulators"]
# The Slack stand-in is Slack itself: it writes mentions the way Slack sends them.
SLACK_ITSELF = {"simulators/slack.py"}
MARKUP = ("<@", "<#", "<!", "<http")


def _docstrings(tree: ast.AST) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                found.add(id(body[0].value))
    return found


def _regex_arguments(tree: ast.AST) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id == "re"
        ):
            found.update(id(arg) for arg in node.args)
    return found


def markup_literals(source: str) -> list[tuple[int, str]]:
    """(line, text) of each string literal in `source` that writes Slack markup."""
    tree = ast.parse(source)
    skip = _docstrings(tree) | _regex_arguments(tree)
    return [
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and id(node) not in skip
        and any(mark in node.value for mark in MARKUP)
    ]


def test_the_scan_finds_markup_in_fstrings_and_plain_strings():
    source = 'def f(u):\n    """Doc: <@U1>."""\n    return f"by <@{u}>" + "<!here>"\n'
    assert [line for line, _ in markup_literals(source)] == [3, 3]
    assert markup_literals('import re\nre.compile(r"<#(C\\w+)>")\n') == []


@pytest.mark.parametrize("room", ROOMS)
def test_no_slack_markup_outside_bot(room: str):
    found = [
        f"{path.relative_to(ROOT)}:{line}: {text!r}"
        for path in sorted((ROOT / room).rglob("*.py"))
        if str(path.relative_to(ROOT)) not in SLACK_ITSELF
        for line, text in markup_literals(path.read_text(encoding="utf-8"))
    ]
    assert found == []
