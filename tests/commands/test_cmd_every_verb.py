"""Every Console and v1 verb, to its final message, against each shape the APIs may answer.

Issue 14's "done when": through the real command layer (pipeline, approvals, the
safety snapshot, `dr`'s waits) and the real tracker (SQLite, outbox), each verb is
run to its end against the documented shapes and against every variant of each
uncertain shape (`shape_params`). A verb that starts an operation must end with one
final "finished" message in its thread; one that starts none must say it is done.
Simulated time passes quickly in the background; the tracker and the commands' own
waits poll every 10 ms.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from bot.config import BotSettings, Config, ConsoleProvider, OperationsSettings, V1Provider
from bot.demo import apply_demo_policy
from bot.wiring import Bot, build_bot
from core.invocation import Invocation
from core.reply import Reply
from operations.follow import Backoff
from operations.tracker import Tracker, TrackerSettings
from permissions.roles import Role
from simulators.base import ManualClock
from simulators.graphenedb import ConsoleSimulator
from simulators.graphenedb_v1 import V1Simulator
from tests.conftest import shape_params
from tests.support import ENVIRON, RecordingNotifier
from tests.waiting import until

ALICE, BOB = "U0ALICE", "U0BOB"
DEV, ONCALL = "C0DEV", "C0ONCALL"
V1_KEY = "sentinel-v1-key-every-verb"
FAST = Backoff(0.01, 1.0, 0.01)


@pytest.fixture
async def v1_sim(clock: ManualClock, v1_shapes: tuple[str, ...]) -> AsyncIterator[V1Simulator]:
    sim = V1Simulator(api_key=V1_KEY, step_seconds=1.0, shapes=v1_shapes)
    sim.clock = clock
    await sim.start()
    try:
        yield sim
    finally:
        await sim.stop()


@dataclass
class World:
    """The bot over both simulators, its tracker, and what the tracker posted."""

    bot: Bot
    tracker: Tracker
    notifier: RecordingNotifier
    threads: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    async def say(
        self, line: str, *, user: str = ALICE, channel: str = DEV, transport: str = "shell"
    ) -> Reply:
        invocation = Invocation(user=user, channel=channel, text=line, transport=transport)
        return await self.bot.run(invocation)

    async def approved(self, line: str, *, by: str = ALICE, channel: str = DEV) -> Reply:
        """Ask for `line`, check it waits for approval, approve it as `by`."""
        card = await self.say(line, channel=channel)
        assert card.status == "pending", f"{line}: {card.text}"
        (approve,) = [a.command for a in card.actions if a.action_id == "approval.approve"]
        return await self.say(approve, user=by, channel=channel)

    async def to_the_end(self, line: str, reply: Reply, channel: str = DEV) -> Reply:
        """Follow what `reply` started to its final message; check it finished."""
        assert reply.status == "ok", f"{line}: {reply.title}: {reply.text}"
        if not reply.operations:
            assert "Started" not in reply.text, f"{line}: nothing to follow: {reply.text}"
            return reply
        thread = f"{next(self.threads)}.000100"
        tracked = [
            await self.tracker.track(ref, channel=channel, thread_ts=thread, user=ALICE)
            for ref in reply.operations
        ]
        await until(
            lambda: (
                all(self.tracker.state(t) != "running" for t in tracked)
                and not self.tracker.outbox.pending(limit=1)
            ),
            timeout=30,
            what=f"the end of {line}",
        )
        states = [self.tracker.state(t) for t in tracked]
        finals = [r for c, ts, r in self.notifier.posts if ts == thread and r.title]
        assert states == ["finished"] * len(tracked), f"{line}: {states} {finals}"
        assert len(finals) == len(tracked) and all("finished in" in (r.title or "") for r in finals)
        return reply


@pytest.fixture
async def world(
    console_sim: ConsoleSimulator, v1_sim: V1Simulator, clock: ManualClock, tmp_path: Path
) -> AsyncIterator[World]:
    config = Config(
        bot=BotSettings(admins=("U0ADMIN",), database=str(tmp_path / "every.sqlite3")),
        operations=OperationsSettings(snapshot_before_destroy="protected"),
        providers=(
            ConsoleProvider(
                name="console",
                kind="graphenedb",
                base_url=console_sim.base_url,
                client_id_env="T_CLIENT_ID",
                client_secret_env="T_CLIENT_SECRET",
            ),
            V1Provider(
                name="legacy",
                kind="graphenedb-v1",
                base_url=v1_sim.base_url + "/v1",
                api_key_env="T_V1_KEY",
            ),
        ),
    )
    bot = build_bot(config, environ={**ENVIRON, "T_V1_KEY": V1_KEY})
    apply_demo_policy(bot)
    bot.services.permissions.grant(DEV, "legacy", "*", Role.ADMIN)
    bot.services.wait_backoff = FAST
    notifier = RecordingNotifier()
    tracker = Tracker(
        bot.db,
        bot.services.providers,
        notifier,
        permissions=bot.services.permissions,
        settings=TrackerSettings(
            backoff=FAST, tick_seconds=0.01, limits=bot.services.follow_limits
        ),
    )

    async def time_passes() -> None:
        while True:
            await asyncio.sleep(0.005)
            clock.advance(1)

    ticking = asyncio.create_task(time_passes())
    tracker.start()
    try:
        yield World(bot, tracker, notifier)
    finally:
        ticking.cancel()
        await tracker.stop()
        await bot.aclose()


READS_CONSOLE = [
    "envs",
    "list",
    "show sandbox-db",
    "versions",
    "plans",
    "regions",
    "snapshots sandbox-db",
    "ops sandbox-db",
]


@pytest.mark.parametrize("console_shapes", shape_params(ConsoleSimulator))
async def test_every_console_verb_ends(world, console_sim, tmp_path, console_shapes):
    w = world
    for line in READS_CONSOLE:
        reply = await w.say(line)
        assert reply.status == "ok" and (reply.tables or reply.fields), f"{line}: {reply.text}"
    for line in (
        "create dev-new plan=ds1 version=5.24.0 edition=enterprise env=development",
        "restart sandbox-db",
        "pause sandbox-db",
        "resume sandbox-db",
        "snapshot sandbox-db",
        "clone sandbox-db sandbox-copy",
    ):
        await w.to_the_end(line, await w.say(line))
    sandbox = console_sim.find_database("sandbox-db")
    snap = next(s for s in console_sim.snapshots if s.database_id == sandbox.id)
    line = f"restore {snap.id[:8]} as sandbox-restored"
    restored = await w.to_the_end(line, await w.say(line))
    new = console_sim.find_database("sandbox-restored")
    assert restored.operations[0].database_id == new.id  # followed under the new database
    line = f"restore {snap.id[:8]} into sandbox-copy"
    await w.to_the_end(line, await w.approved(line))
    dump = tmp_path / "graph.dump"
    dump.write_bytes(b"\x00graph" * 10_000)
    line = f"import sandbox-db {dump}"
    await w.to_the_end(line, await w.approved(line))
    line = "switch sandbox-db to sandbox-copy"
    switched = await w.to_the_end(line, await w.approved(line))
    (back,) = [a.command for a in switched.actions if "switch-back" in a.command]
    await w.to_the_end(back, await w.approved(back))
    line = "dr sandbox-db name=sandbox-dr"
    await w.to_the_end(line, await w.approved(line))
    line = "terminate dev-new confirm=dev-new"
    card = await w.say("terminate dev-new")
    (approve,) = [a.command for a in card.actions if a.action_id == "approval.approve"]
    await w.to_the_end(line, await w.say(approve))
    # Production is protected: bob approves, a safety snapshot is taken and waited for first.
    line = "terminate billing-db"
    card = await w.say(line, channel=ONCALL)
    (approve,) = [a.command for a in card.actions if a.action_id == "approval.approve"]
    done = await w.to_the_end(line, await w.say(approve, user=BOB, channel=ONCALL), ONCALL)
    assert dict(done.fields)["Safety snapshot"]
    billing = [r.path for r in console_sim.mutating_requests()][-2:]
    assert billing[0].endswith("/snapshots/manual") and billing[1].startswith(
        "/deployments/databases/graphneo/"
    )


READS_V1 = [
    "show legacy-orders",
    "versions provider=legacy",
    "plans provider=legacy",
    "regions provider=legacy",
    "ops legacy-orders",
    "backups legacy-orders",
    "backup-schedule legacy-orders",
]


@pytest.mark.parametrize("v1_shapes", shape_params(V1Simulator))
async def test_every_v1_verb_ends(world, v1_sim, v1_shapes):
    w = world
    for line in READS_V1:
        reply = await w.say(line)
        assert reply.status == "ok" and (reply.tables or reply.fields), f"{line}: {reply.text}"
    listing = await w.say("list legacy")
    assert any("legacy-orders" in row for row in listing.tables[0].rows)
    for line in (
        "create legacy-new plan=s1 version=v4416 env=legacy region=eu-west-1",
        "restart legacy-orders",
        "backup legacy-orders",
        "backup-schedule legacy-orders time=3:30:00",
        "export legacy-orders",
    ):
        await w.to_the_end(line, await w.say(line))
    backup = (await w.say("backups legacy-orders")).tables[0].rows[0][0]
    line = f"backup-link legacy-orders {backup[:8]}"
    link = await w.to_the_end(line, await w.say(line))
    assert link.private_text and link.private_text not in link.text
    line = "import legacy-orders https://bucket.s3.amazonaws.com/graphdb.zip"
    await w.to_the_end(line, await w.approved(line))
    line = f"restore-backup legacy-orders {backup[:8]}"
    await w.to_the_end(line, await w.approved(line))
    for line in ("empty legacy-users", "terminate legacy-sandbox"):
        card = await w.say(line)
        (approve,) = [a.command for a in card.actions if a.action_id == "approval.approve"]
        await w.to_the_end(line, await w.say(approve))
    assert not [r for r in v1_sim.requests if r.status >= 500]
