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
