"""A Console provider and a v1 provider side by side in one bot, through the command layer."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.config import BotSettings, Config, ConsoleProvider, V1Provider
from bot.wiring import Bot, build_bot
from core.invocation import Invocation
from core.reply import Reply
from permissions.roles import Role
from simulators.base import ManualClock
from simulators.graphenedb_v1 import V1Simulator
from tests.support import ENVIRON

API_KEY = "sentinel-v1-api-key-51d0"


@pytest.fixture
async def v1_sim(clock: ManualClock, v1_shapes: tuple[str, ...]) -> AsyncIterator[V1Simulator]:
    sim = V1Simulator(api_key=API_KEY, step_seconds=1.0, shapes=v1_shapes)
    sim.clock = clock
    await sim.start()
    try:
        yield sim
    finally:
        await sim.stop()


@pytest.fixture
async def both(console_sim, v1_sim, tmp_path: Path) -> AsyncIterator[Bot]:
    config = Config(
        bot=BotSettings(admins=("U0ADMIN",), database=str(tmp_path / "b.sqlite3")),
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
    bot = build_bot(config, environ={**ENVIRON, "T_V1_KEY": API_KEY})
    store = bot.services.permissions
    store.grant("C0DEV", "console", "development", Role.ADMIN)
    store.grant("C0DEV", "legacy", "*", Role.ADMIN)
    store.grant("C0LEGACYRO", "legacy", "legacy", Role.VIEWER)
    try:
        yield bot
    finally:
        await bot.aclose()


async def run(bot: Bot, line: str, channel: str = "C0DEV", user: str = "U0ALICE") -> Reply:
    return await bot.run(Invocation(user=user, channel=channel, text=line))


def approve(reply: Reply) -> str:
    return next(a.command for a in reply.actions if a.action_id == "approval.approve")


@pytest.mark.parametrize(
    "v1_shapes", [(), ("v1-create-201",), ("v1-create-empty",)], ids=["202", "201", "empty"]
)
async def test_create_follows_an_operation_id_never_a_database_id(both, v1_sim, v1_shapes):
    reply = await run(both, "create legacy-new plan=s1 version=v4416 env=legacy region=eu-west-1")
    assert reply.status == "ok", reply.text
    new = v1_sim.find_database("legacy-new")
    if not v1_shapes:  # observed: {"operation": id}
        (ref,) = reply.operations
        assert ref.operation_id != new.id and ref.operation_id in v1_sim._ops
        return
    assert reply.operations == []  # nothing to follow: no GET /v1/operations/<database id>
    if v1_shapes == ("v1-create-201",):
        assert dict(reply.fields)["New database"] == f"legacy-new ({new.id})"
    assert v1_sim.requests_to("GET", r"^/v1/operations/") == []


async def test_list_shows_both_providers_labelled(both):
    reply = await run(both, "list")
    rows = {(row[0], row[1]) for row in reply.tables[0].rows}
    assert ("sandbox-db", "development/console") in rows
    assert ("legacy-orders", "legacy") in rows
    envs = await run(both, "envs")
    assert ["legacy", "legacy", "graphenedb-v1", "admin", "no"] in envs.tables[0].rows


async def test_shared_verbs_on_v1(both, v1_sim, clock):
    show = await run(both, "show legacy-orders")
    assert dict(show.fields)["Plan"] == "s1"
    versions = await run(both, "versions")  # one table per provider
    assert [t.rows[0][0] for t in versions.tables] == ["console", "legacy"]
    plans = await run(both, "plans provider=legacy")
    assert [row[1] for row in plans.tables[0].rows][:2] == ["sandbox", "developer"]
    restart = await run(both, "restart legacy-orders")
    assert restart.status == "ok" and restart.operations
    assert len(v1_sim.requests_to("PUT", r".*/restart$")) == 1
    no_region = await run(both, "create legacy-new plan=s1 version=v4416 env=legacy")
    assert no_region.status == "info" and "region=" in no_region.text  # asks which
    assert no_region.choice is not None and no_region.choice.argument == "region"
    assert no_region.choice.options[0].command.endswith("env=legacy region=us-east-1")
    created = await run(both, "create legacy-new plan=s1 version=v4416 env=legacy region=eu-west-1")
    assert created.status == "ok", created.text
    body = v1_sim.requests_to("POST", r"^/v1/databases$")[0].body
    assert body["awsRegion"] == "eu-west-1" and body["name"] == "legacy-new"


async def test_unsupported_verb_names_the_kind(both, v1_sim):
    reply = await run(both, "pause legacy-orders")
    assert reply.status == "error"
    assert "kind graphenedb-v1" in reply.text and "does not work" in reply.text
    only_v1 = await run(both, "pause legacy-orders", channel="C0LEGACYRO")
    assert only_v1.status == "denied"
    assert "works on graphenedb providers" in only_v1.text and "graphenedb-v1" in only_v1.text
    assert v1_sim.mutating_requests() == []


async def test_v1_terminate_and_empty_need_approval(both, v1_sim):
    card = await run(both, "terminate legacy-sandbox")
    assert card.status == "pending"
    assert v1_sim.mutating_requests() == []
    done = await run(both, approve(card))
    assert done.status == "ok", done.text
    assert len(v1_sim.requests_to("DELETE")) == 1
    card = await run(both, "empty legacy-users")
    assert card.status == "pending" and approve(card).endswith("confirm=legacy-users")
    done = await run(both, approve(card))
    assert done.status == "ok", done.text


async def test_backups(both, v1_sim, clock):
    listing = await run(both, "backups legacy-orders")
    assert listing.tables[0].rows
    backup_id = listing.tables[0].rows[0][0]
    taken = await run(both, "backup legacy-orders")
    assert taken.status == "ok" and taken.operations
    clock.advance(30)
    schedule = await run(both, "backup-schedule legacy-orders")
    assert dict(schedule.fields)["Frequency"] == "daily"
    bad = await run(both, "backup-schedule legacy-orders time=25:00:00")
    assert bad.status == "error" and "H:MM:SS" in bad.text
    changed = await run(both, "backup-schedule legacy-orders time=3:30:00")
    assert changed.status == "ok" and "3:30:00" in dict(changed.fields)["Time"]
    viewer = await run(both, "backup-schedule legacy-orders time=4:00:00", channel="C0LEGACYRO")
    assert viewer.status == "denied"
    card = await run(both, f"restore-backup legacy-orders {backup_id[:8]}")
    assert card.status == "pending" and backup_id in dict(card.fields)["Backup"]
    done = await run(both, approve(card))
    assert done.status == "ok", done.text
    assert len(v1_sim.requests_to("PUT", r".*/restore$")) == 1


async def test_one_time_links_go_only_to_the_requester(both, v1_sim, caplog):
    caplog.set_level(logging.DEBUG)
    export = await run(both, "export legacy-orders")
    assert export.status == "ok" and export.private_text
    link = export.private_text.split(": ", 1)[1]
    assert link.startswith("https://") and link not in export.text + (export.title or "")
    backups = await run(both, "backups legacy-orders")
    package = await run(both, f"backup-link legacy-orders {backups.tables[0].rows[0][0]}")
    package_link = package.private_text.split(": ", 1)[1]
    rows = repr(both.services.audit.query(limit=10_000))
    for secret in (link, package_link, API_KEY):
        assert secret not in rows
        assert secret not in caplog.text


async def test_v1_import_takes_an_s3_url(both, v1_sim):
    bad = await run(both, "import legacy-orders ./local.dump")
    assert bad.status == "error" and "https://" in bad.text
    card = await run(both, "import legacy-orders https://bucket.s3.amazonaws.com/graphdb.zip")
    assert card.status == "pending"
    done = await run(both, approve(card))
    assert done.status == "ok", done.text
    (request,) = v1_sim.requests_to("PUT", r".*/import$")
    assert request.body["url"].endswith("graphdb.zip")


async def test_v1_operations_are_tracked_and_listed(both, clock):
    from operations.follow import Backoff
    from operations.tracker import Tracker, TrackerSettings
    from tests.support import RecordingNotifier

    notifier = RecordingNotifier()
    tracker = Tracker(
        both.db,
        both.services.providers,
        notifier,
        permissions=both.services.permissions,
        settings=TrackerSettings(backoff=Backoff(0.0, 1.0, 0.0)),
    )
    reply = await run(both, "restart legacy-orders")
    tracked = await tracker.track(
        reply.operations[0], channel="C0DEV", thread_ts="1.0", user="U0ALICE"
    )
    for _ in range(20):
        await tracker.run_once()
        clock.advance(1)
    assert tracker.state(tracked) == "finished"
    assert len([r for _, _, r in notifier.posts if not r.title]) >= 2
    ops = await run(both, "ops legacy-orders")
    assert ops.tables[0].rows[0][2] == "finished"
