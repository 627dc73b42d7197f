"""The README and help never drift from the registry."""

from __future__ import annotations

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
