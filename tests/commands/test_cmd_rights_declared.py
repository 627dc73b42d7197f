"""The rights help and the README state are the rights the pipeline enforces.

Every form of every verb declares its rights in the registry (`Rights`); help and
the README's command tables are generated from, or checked against, them. Here each
declared right is checked against what the pipeline decides (`evaluate`, nothing
runs) on the demo's three simulators, from channels bound as viewer, operator and
admin: at the declared role the form is allowed (or waits for an approval exactly
when it says so), one role lower it is refused.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.demo import Demo, start_demo
from commands.context import RoleTooLow
from commands.grammar import parse
from commands.pipeline import evaluate
from commands.registry import Rights
from core.invocation import Invocation
from core.reply import Reply
from permissions.roles import Role

USER = "U0RIGHTS"
TX_HOLDER = "U0HOLDER"  # holds an open read transaction, for `tx rollback`
CHANNEL = {Role.VIEWER: "C0RVIEW", Role.OPERATOR: "C0ROPER", Role.ADMIN: "C0RADMN"}
BELOW = {Role.OPERATOR: Role.VIEWER, Role.ADMIN: Role.OPERATOR}

# One command line per declared right: (verb, what picks the form) -> line. `{snapshot}`,
# `{backup}`, `{archive}` and `{schedule}` are filled in from the demo's state.
LINES = {
    ("envs", ""): "envs",
    ("list", ""): "list",
    ("versions", ""): "versions",
    ("plans", ""): "plans",
    ("regions", ""): "regions",
    ("show", ""): "show sandbox-db",
    ("create", ""): "create fresh-db plan=ds1 version=5.24.0 env=development",
    ("pause", ""): "pause sandbox-db",
    ("resume", ""): "resume catalog-db",
    ("restart", ""): "restart sandbox-db",
    ("clone", ""): "clone sandbox-db sandbox-copy",
    ("terminate", ""): "terminate sandbox-db",
    ("import", ""): "import sandbox-db {archive}",
    ("ops", ""): "ops sandbox-db",
    ("snapshots", ""): "snapshots sandbox-db",
    ("snapshot", ""): "snapshot sandbox-db",
    ("restore", "as"): "restore {snapshot} as restored-db",
    ("restore", "into"): "restore {snapshot} into sandbox-db",
    ("switch", ""): "switch orders-db to sandbox-db",
    ("dr", ""): "dr sandbox-db",
    ("backups", ""): "backups legacy-orders",
    ("backup", ""): "backup legacy-orders",
    ("restore-backup", ""): "restore-backup legacy-orders {backup}",
    ("empty", ""): "empty legacy-sandbox",
    ("backup-schedule", "to show"): "backup-schedule legacy-orders",
    ("backup-schedule", "to set"): "backup-schedule legacy-orders time=3:30:00",
    ("export", ""): "export legacy-orders",
    ("backup-link", ""): "backup-link legacy-orders {backup}",
    ("watch", ""): "watch sandbox-db",
    ("unwatch", ""): "unwatch sandbox-db",
    ("health", ""): "health",
    ("dbs", ""): "dbs",
    ("create-db", ""): "create-db fresh",
    ("delete-db", ""): "delete-db social",
    ("schema", ""): "schema social",
    ("query", "read"): "query social 'match $p isa person;'",
    ("query", "write"): "query social 'insert $p isa person, has name \"Zoe\";'",
    ("query", "schema"): "query social 'define entity gadget;'",
    ("tx", "read"): "tx open social read",
    ("tx", "write"): "tx open social write",
    ("tx", "schema"): "tx open social schema",
    ("tx", "rollback/close"): "tx rollback",
    ("users", ""): "users",
    ("user", "add/passwd"): "user add newbie",
    ("user", "delete"): "user delete newbie",
    ("schedule-activate", ""): "schedule-activate {schedule}",
}
# Rights that are not a role the pipeline checks up front, and where they are tested.
NOT_A_ROLE = {
    ("tx", "query/commit"): "the role of the open transaction: test_cmd_typedb.py",
}
# Verbs whose line needs history this test does not make, and where they are tested.
ELSEWHERE = {
    "switch-back": "a switch made first: test_cmd_safety.py / test_cmd_execute.py",
}


@pytest.fixture
async def demo(tmp_path: Path) -> AsyncIterator[Demo]:
    started = await start_demo(step_seconds=0.01)
    store = started.bot.services.permissions
    for role, channel in CHANNEL.items():
        for provider, environment in (
            ("console", "development"),
            ("console", "staging"),
            ("legacy", "*"),
            ("graph", "*"),
        ):
            store.grant(channel, provider, environment, role, by="test")
    try:
        yield started
    finally:
        await started.aclose()


async def run(demo: Demo, line: str, channel: str, user: str = USER) -> Reply:
    return await demo.bot.run(Invocation(user=user, channel=channel, text=line))


async def decided(demo: Demo, line: str, role: Role, user: str = USER) -> str:
    """What the pipeline decides for `line` from the channel bound as `role` (runs nothing)."""
    bot = demo.bot
    invocation = Invocation(user=user, channel=CHANNEL[role], text=line)
    parsed = parse(line)
    verb = bot.registry.get(parsed.verb)
    assert verb is not None
    values = verb.bind(parsed.args, parsed.options)
    try:
        evaluation = await evaluate(bot.pipeline.context(invocation), verb, values)
    except RoleTooLow:
        return "denied"
    return evaluation.decision.outcome


async def state(demo: Demo, tmp_path: Path) -> dict[str, str]:
    """Values the lines need: a snapshot, a backup, an archive, a pending schedule."""
    console = demo.simulators.console
    sandbox = next(db for db in console.databases if db.name == "sandbox-db")
    archive = tmp_path / "graph.dump"
    archive.write_bytes(b"dump")
    backups = await run(demo, "backups legacy-orders", CHANNEL[Role.VIEWER])
    card = await run(
        demo, "schedule refresh sandbox-db from orders-db daily 02:00", CHANNEL[Role.ADMIN]
    )
    assert card.status == "pending", card
    schedules = demo.bot.services.schedules
    assert schedules is not None
    (pending,) = schedules.for_channel(CHANNEL[Role.ADMIN])
    return {
        "snapshot": console.add_snapshot(sandbox.id).id,
        "backup": backups.tables[0].rows[0][0],
        "archive": str(archive),
        "schedule": str(pending.id),
    }


def declared(demo: Demo) -> list[tuple[str, Rights]]:
    """(verb, rights) of every verb the pipeline decides (it has a role)."""
    return [(v.name, r) for v in demo.bot.registry.all() if v.role is not None for r in v.rights]


async def test_every_declared_right_is_what_the_pipeline_decides(demo: Demo, tmp_path: Path):
    values = await state(demo, tmp_path)
    opened = await run(demo, "tx open social read", CHANNEL[Role.VIEWER], TX_HOLDER)
    assert opened.status == "ok", opened
    checked = set()
    for name, rights in declared(demo):
        key = (name, rights.label)
        if key in NOT_A_ROLE or name in ELSEWHERE:
            continue
        assert key in LINES, f"no line checks the rights of {key}"
        assert rights.role is not None
        line = LINES[key].format(**values)
        user = TX_HOLDER if line.startswith("tx rollback") else USER
        channel_line = f"{line!r} from a channel bound as {rights.role.label}"
        expected = "needs_approval" if rights.approval and not rights.approval_if else "allowed"
        assert await decided(demo, line, rights.role, user) == expected, channel_line
        if rights.role in BELOW:
            below = BELOW[rights.role]
            assert await decided(demo, line, below) == "denied", f"{line!r} as {below.label}"
        if rights.approval_if:  # the condition is a protected environment
            demo.bot.services.permissions.set_protected("graph", "*", True)
            assert await decided(demo, line, rights.role) == "needs_approval", line
            demo.bot.services.permissions.set_protected("graph", "*", None)
        checked.add(key)
    assert checked == set(LINES)


async def test_schedule_needs_operator_and_refresh_admin_with_an_approval(demo: Demo):
    """`schedule` checks its own rights: what help and the README say is what it does."""
    rights = {r.label: r for r in demo.bot.registry.get("schedule").rights}  # type: ignore[union-attr]
    assert rights["pause/resume/snapshot"].role == Role.OPERATOR
    pause = "schedule pause sandbox-db daily 20:00"
    refused = await run(demo, pause, CHANNEL[Role.VIEWER])
    assert refused.status == "denied" and "operator" in refused.text
    assert (await run(demo, pause, CHANNEL[Role.OPERATOR])).status == "ok"
    assert rights["refresh"].role == Role.ADMIN and rights["refresh"].approval
    refresh = "schedule refresh sandbox-db from orders-db daily 02:00"
    assert (await run(demo, refresh, CHANNEL[Role.OPERATOR])).status == "denied"
    assert (await run(demo, refresh, CHANNEL[Role.ADMIN])).status == "pending"
