"""`help` says the real rights of every form, from the registry (issue 18, case 5)."""

from __future__ import annotations

from commands.context import Context
from commands.verbs.general import help_command, overview_rows
from core.invocation import Invocation
from core.reply import Reply


async def helped(bot, verb: str | None = None) -> Reply:  # type: ignore[no-untyped-def]
    ctx = Context(
        Invocation(user="U0ALICE", channel="C0DEV", text="help"), bot.services, bot.registry
    )
    return await help_command(ctx, {"verb": verb})


async def test_help_restore_states_the_rights_of_each_form(bot):
    needs = dict((await helped(bot, "restore")).fields)["Needs"].splitlines()
    assert needs == [
        "restore <snapshot> as <new-name>: operator (source: operator)",
        "restore <snapshot> into <db>: admin + approval (source: operator)",
    ]


async def test_help_schedule_says_operator_as_the_readme_does(bot):
    reply = await helped(bot, "schedule")
    needs = dict(reply.fields)["Needs"]
    assert "anyone" not in needs
    assert needs.startswith("schedule pause|resume|snapshot <db> <when>: operator (checked now")
    assert "schedule refresh <db> from <source-db> <when>: admin + approval" in needs


async def test_no_verb_says_it_checks_its_own_rights(bot):
    for verb in bot.registry.all():
        reply = await helped(bot, verb.name)
        needs = dict(reply.fields)["Needs"]
        assert needs and "checks its own rights" not in needs, verb.name
        assert verb.rights, verb.name


async def test_the_overview_has_a_row_per_form_whose_rights_differ(bot):
    rows = overview_rows(bot.registry.get("restore"))
    forms: list[tuple[str, str]] = []
    for row in rows:  # a cell too long for its column goes on in the next row
        if (row[0] and not row[0].startswith(" ")) or not forms:
            forms.append((row[0], row[2]))
        elif row[2]:
            forms[-1] = (forms[-1][0], f"{forms[-1][1]} {row[2]}")
    assert [form for form in forms if form[1]] == [
        ("restore <snapshot> as", "operator (source: operator)"),
        ("restore <snapshot> into <db>", "admin + approval (source: operator)"),
    ]
    summary = " ".join(row[1] for row in rows if row[1])
    assert summary == bot.registry.get("restore").summary


async def test_help_of_an_unknown_verb_suggests(bot):
    reply = await helped(bot, "termnate")
    assert reply.title == "Unknown command" and "Did you mean `terminate`?" in reply.text
