"""The README and help never drift from the registry."""

from __future__ import annotations

import re
from pathlib import Path

README = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")


def test_every_verb_is_in_the_readme(bot):
    missing = [v.name for v in bot.registry.all() if f"`{v.name}" not in README]
    assert missing == []


def test_readme_has_the_two_setup_commands():
    assert "make demo" in README and "make test" in README
    assert "graphops demo" in README


def test_every_public_definition_in_core_and_commands_has_a_docstring():
    """Public functions, classes and methods say what they take, give and raise."""
    import ast

    root = Path(__file__).parents[1]
    missing = []
    for path in sorted([*root.glob("core/**/*.py"), *root.glob("commands/**/*.py")]):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        nodes = [(tree, "")]
        while nodes:
            node, prefix = nodes.pop()
            for child in ast.iter_child_nodes(node):
                if not isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                    continue
                if child.name.startswith("_"):
                    continue
                if ast.get_docstring(child) is None:
                    missing.append(f"{path.relative_to(root)}:{child.lineno} {prefix}{child.name}")
                if isinstance(child, ast.ClassDef):
                    nodes.append((child, f"{prefix}{child.name}."))
    assert missing == []


# -- the README's command tables agree with the registry ----------------------------------


def command_table_rows() -> list[tuple[int, str, str]]:
    """(line number, command cell, needs cell) of every row of the README's command
    tables (those headed `| command | what it does | needs |`)."""
    rows = []
    in_table = False
    for number, line in enumerate(README.splitlines(), 1):
        if line.startswith("| command | what it does | needs |"):
            in_table = True
            continue
        if not line.startswith("|"):
            in_table = False
            continue
        if not in_table or set(line) <= {"|", "-", " "}:
            continue
        cells = [cell.strip().replace("\\|", "|") for cell in re.split(r"(?<!\\)\|", line)[1:-1]]
        rows.append((number, cells[0], cells[-1]))
    return rows


def expected_needs(verb, words: str) -> str:
    """What the registry says a README row for `verb <words>` needs."""
    rights = verb.rights_for(words)
    if len({r.needs for r in rights}) == 1:
        return rights[0].needs
    return "; ".join(f"{r.label}: {r.needs}" for r in rights)


def disagreements(registry, rows) -> list[str]:
    """README rows whose needs differ from the registry's rights of the forms they show."""
    wrong = []
    for number, command, needs in rows:
        for span in re.findall(r"`([^`]+)`", command):
            name, _, words = span.partition(" ")
            verb = registry.get(name)
            if verb is None:
                continue
            if needs != expected_needs(verb, words):
                wrong.append(
                    f"README line {number}: `{span}` says {needs!r}, "
                    f"the registry {expected_needs(verb, words)!r}"
                )
    return wrong


def test_readme_command_tables_state_the_registrys_rights(bot):
    rows = command_table_rows()
    assert len(rows) > 40
    assert disagreements(bot.registry, rows) == []
    shown = {
        span.split()[0] for _, command, _ in rows for span in re.findall(r"`([^`]+)`", command)
    }
    assert {v.name for v in bot.registry.all()} <= shown  # every verb has a checked row


def test_a_readme_row_that_understates_the_rights_fails(bot):
    """The check can fail: `restore … into` as operator, `schedule` as anyone."""
    rows = [
        (1, "`restore <snapshot> into <db>`", "operator"),
        (
            2,
            "`restore <snapshot> as <new-name>`",
            "operator (source: operator)",
        ),
        (3, "`schedule pause|resume|snapshot <db> <when>`", "anyone"),
        (4, "`backup-schedule <db> [time=H:MM:SS]`", "viewer"),
    ]
    wrong = disagreements(bot.registry, rows)
    assert [line.split(":")[0] for line in wrong] == [
        "README line 1",
        "README line 3",
        "README line 4",
    ]
    assert "admin + approval (source: operator)" in wrong[0]
