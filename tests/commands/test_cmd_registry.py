"""The registry: every verb declared once, usable, with a working example."""

from __future__ import annotations

import pytest

from commands.grammar import parse
from commands.registry import Registry, Rights, UsageError, Verb


def test_every_example_binds(bot):
    verbs = bot.registry.all()
    issue_4_verbs = {
        "envs",
        "list",
        "show",
        "versions",
        "plans",
        "regions",
        "create",
        "pause",
        "resume",
        "restart",
        "clone",
        "snapshots",
        "snapshot",
        "restore",
        "terminate",
        "switch",
        "import",
        "ops",
        "dr",
        "access",
        "grant",
        "revoke",
        "protect",
        "approvers",
        "incident-channel",
        "help",
    }
    assert issue_4_verbs <= {v.name for v in verbs}
    for verb in verbs:
        parsed = parse(verb.example)
        assert bot.registry.get(parsed.verb) is verb, verb.name
        verb.bind(parsed.args, parsed.options)  # raises UsageError if the example is wrong
        assert verb.summary and verb.usage.startswith(verb.name)


def test_destructive_verbs_are_marked(bot):
    destructive = {v.name for v in bot.registry.all() if v.destructive}
    assert {"terminate", "switch", "dr", "import"} <= destructive
    assert "pause" not in destructive


def test_bind_errors_carry_usage(bot):
    pause = bot.registry.get("pause")
    with pytest.raises(UsageError, match=r"missing <db>.*Usage: pause <db>"):
        pause.bind((), {})
    with pytest.raises(UsageError, match=r"unexpected extra words: b"):
        pause.bind(("a", "b"), {})
    # a password typed on the line by mistake is not repeated back
    with pytest.raises(UsageError, match=r"extra words: now \(and one word not repeated") as caught:
        pause.bind(("a", "Xq7pLm2Zr9Kw", "now"), {})
    assert "Xq7pLm2Zr9Kw" not in str(caught.value)
    with pytest.raises(UsageError, match=r"unknown option colour= \(options: env=\)"):
        pause.bind(("a",), {"colour": "x"})
    restart = bot.registry.get("restart")
    with pytest.raises(UsageError, match=r"reset= takes true or false, not 'maybe'"):
        restart.bind(("a",), {"reset": "maybe"})


def test_multiple_forms(bot):
    restore = bot.registry.get("restore")
    assert restore.bind(("abc123", "into", "x"), {})["db"] == "x"
    assert restore.bind(("abc123", "as", "new-x"), {})["new_name"] == "new-x"
    with pytest.raises(UsageError, match="expected the word `into`, not `onto`"):
        restore.bind(("abc123", "onto", "x"), {})


def test_names_are_unique():
    registry = Registry()
    registry.add(Verb(name="a", summary="s", grammar="", example="a", role=None, aliases=("b",)))
    with pytest.raises(ValueError, match="twice"):
        registry.add(Verb(name="b", summary="s", grammar="", example="b", role=None))


def test_suggestions(bot):
    assert "pause" in bot.registry.suggest("pasue")
    assert bot.registry.suggest("zzzzzz") == []


def test_each_verb_is_declared_on_its_function(bot):
    """A verb is one @verb function in commands/verbs/; help's summary is its docstring."""
    from commands.registry import summary_of

    for each in bot.registry.all():
        function = each.execute or each.direct
        assert function is not None, each.name
        assert function.__module__.startswith("commands.verbs."), each.name
        assert summary_of(function) == each.summary, each.name
        assert (each.role is None) == (each.prepare is None), each.name


def test_collect_keeps_definition_order_and_wants_a_docstring():
    import types

    from commands.registry import verb

    module = types.ModuleType("example_verbs")

    @verb("zeta", example="zeta", group="Test", rights=(Rights(who="anyone"),))
    async def zeta(ctx, values):  # type: ignore[no-untyped-def]
        """Last letter first

        Developer notes are not part of the summary.
        """

    @verb("alpha", "<db>", example="alpha x", group="Test", rights=(Rights(who="anyone"),))
    async def alpha(ctx, values):  # type: ignore[no-untyped-def]
        """First letter
        second."""

    for fn in (zeta, alpha):
        fn.__module__ = module.__name__
        setattr(module, fn.__name__, fn)
    registry = Registry.collect([module])
    assert [v.name for v in registry.all()] == ["zeta", "alpha"]
    assert [v.summary for v in registry.all()] == ["Last letter first", "First letter second"]
    with pytest.raises(TypeError, match="needs a docstring"):

        @verb("nodoc", example="nodoc", group="Test", rights=(Rights(who="anyone"),))
        async def nodoc(ctx, values):  # type: ignore[no-untyped-def]
            return None


def test_the_roles_an_ack_foresees_with(bot):
    """`most_role`: every form may be run with it (a query's kind is read later);
    `source_role`: where a clone or restore copies data out of."""
    from permissions.roles import Role

    query, clone, restart = (bot.registry.get(name) for name in ("query", "clone", "restart"))
    assert (query.role, query.most_role, query.source_role) == (Role.VIEWER, Role.ADMIN, None)
    assert (clone.role, clone.most_role, clone.source_role) == (
        Role.OPERATOR,
        Role.OPERATOR,
        Role.OPERATOR,
    )
    assert (restart.most_role, restart.source_role) == (Role.OPERATOR, None)
    for verb in bot.registry.all():
        declared = [r.role for r in verb.rights if r.role is not None]
        if verb.role is not None:
            assert verb.most_role == max([*declared, verb.role]), verb.name
