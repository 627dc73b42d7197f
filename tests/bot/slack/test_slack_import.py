"""`import` typed in Slack, through the real Bolt app: a URL is downloaded, a path is not read."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from bot.config import ImportSettings
from bot.demo import apply_demo_policy
from bot.wiring import Bot, build_bot
from simulators.graphenedb import ConsoleSimulator
from simulators.slack import SlackStandIn
from tests.bot.slack.conftest import SlackHarness, serving
from tests.bot.slack.slack_support import texts, wait_private
from tests.support import ENVIRON, make_config
from tests.waiting import until

ARCHIVE = b"graph-archive-" * 50_000
DIGEST = hashlib.sha256(ARCHIVE).hexdigest()


@pytest.fixture
async def archive_url() -> AsyncIterator[str]:
    async def whole(request: web.Request) -> web.Response:
        return web.Response(body=ARCHIVE)

    app = web.Application()
    app.router.add_get("/exports/graph.dump", whole)
    server = TestServer(app, host="127.0.0.1", port=0)
    await server.start_server()
    try:
        yield f"http://127.0.0.1:{server.port}/exports/graph.dump"
    finally:
        await server.close()


@pytest.fixture
async def importing(
    console_sim: ConsoleSimulator, standin: SlackStandIn, tmp_path: Path
) -> AsyncIterator[SlackHarness]:
    config = make_config(console_sim.base_url, tmp_path / "slack-import.sqlite3")
    imports = ImportSettings(allow_http_loopback=True)  # the archive server is on loopback
    bot: Bot = build_bot(config.model_copy(update={"imports": imports}), environ=ENVIRON)
    apply_demo_policy(bot)
    try:
        async with serving(bot, standin) as harness:
            yield harness
    finally:
        await bot.aclose()


async def test_slack_import_downloads_shows_the_digest_and_uploads(
    importing: SlackHarness, console_sim: ConsoleSimulator, archive_url: str
) -> None:
    await importing.slack.slash(f"import sandbox-db {archive_url}?X-Amz-Signature=sentinel-sig")
    [card] = await importing.standin.wait_for("chat.postMessage")
    assert DIGEST in texts(card) and f"{len(ARCHIVE):,} bytes" in texts(card)
    # The card itself never shows the query (the requester line echoing the typed command
    # is the redactor's business: permissions/redaction.py).
    shown = [b for b in card.body["blocks"] if b["type"] != "context"]
    assert "sentinel-sig" not in str(shown)
    [actions] = [b for b in card.body["blocks"] if b["type"] == "actions"]
    approval_id = next(e["value"] for e in actions["elements"])
    approvals = importing.rt.bot.services.approvals

    def card_ts() -> str | None:
        approval = approvals.get(approval_id)
        return approval.message_ts if approval else None

    await until(lambda: card_ts() is not None)  # stored right after the post
    ts = str(card_ts())
    await importing.slack.click(
        "approval.approve", approval_id, user="U0ALICE", channel="C0DEV", message_ts=ts
    )
    results = await importing.standin.wait_for(
        "chat.postMessage", where=lambda c: c.body.get("thread_ts") == ts
    )
    assert "Importing into sandbox-db" in texts(results[0])
    (upload,) = console_sim.requests_to("POST", r".*/import$")
    assert upload.body == f"<multipart {len(ARCHIVE)} bytes>"
    assert "transfer-encoding" not in upload.headers


async def test_a_path_typed_in_slack_is_not_read(
    importing: SlackHarness, console_sim: ConsoleSimulator, tmp_path: Path
) -> None:
    local = tmp_path / "graph.dump"
    local.write_bytes(ARCHIVE)
    await importing.slack.slash(f"import sandbox-db {local}")
    [answer] = await wait_private(importing.standin, "U0ALICE", contains="cannot be read")
    assert "https://" in texts(answer)
    assert console_sim.mutating_requests() == []
    assert importing.standin.calls_to("chat.postMessage") == []
