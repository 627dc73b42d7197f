"""`import` on the Console: where an archive may come from, what the card shows, what is sent.

An archive server on loopback (aiohttp, real HTTP) serves the downloads; plain http is
allowed to it only because these bots are configured with `allow_http_loopback`.
"""

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
from core.invocation import Invocation
from core.reply import Reply
from tests.support import ENVIRON, make_config

ALICE, DEV = "U0ALICE", "C0DEV"
ARCHIVE = bytes(range(256)) * 4096  # 1 MiB
DIGEST = hashlib.sha256(ARCHIVE).hexdigest()
SIGNATURE = "X-Amz-Signature=sentinel-signature-0b7c"


@pytest.fixture
async def archives() -> AsyncIterator[TestServer]:
    """`/graph.dump` (with a length), `/chunked.dump` (without), `/missing` (404),
    `/away` (a redirect to plain http elsewhere)."""

    async def whole(request: web.Request) -> web.Response:
        return web.Response(body=ARCHIVE)

    async def chunked(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        for start in range(0, len(ARCHIVE), 65536):
            await response.write(ARCHIVE[start : start + 65536])
        await response.write_eof()
        return response

    async def away(request: web.Request) -> web.Response:
        raise web.HTTPFound("http://192.0.2.1/graph.dump")

    app = web.Application()
    app.router.add_get("/graph.dump", whole)
    app.router.add_get("/chunked.dump", chunked)
    app.router.add_get("/away", away)
    server = TestServer(app, host="127.0.0.1", port=0)
    await server.start_server()
    try:
        yield server
    finally:
        await server.close()


def url(server: TestServer, path: str) -> str:
    return f"http://127.0.0.1:{server.port}{path}"


def importing_bot(console_sim, tmp_path: Path, **imports: object) -> Bot:  # type: ignore[no-untyped-def]
    config = make_config(console_sim.base_url, tmp_path / "i.sqlite3")
    settings = ImportSettings(**{"allow_http_loopback": True, **imports})  # type: ignore[arg-type]
    bot = build_bot(config.model_copy(update={"imports": settings}), environ=ENVIRON)
    apply_demo_policy(bot)
    return bot


@pytest.fixture
async def bot(console_sim, tmp_path: Path) -> AsyncIterator[Bot]:  # type: ignore[no-untyped-def]
    built = importing_bot(console_sim, tmp_path)
    try:
        yield built
    finally:
        await built.aclose()


async def run(bot: Bot, line: str, transport: str = "slack", user: str = ALICE) -> Reply:
    return await bot.run(Invocation(user=user, channel=DEV, text=line, transport=transport))


def approve(card: Reply) -> str:
    (action,) = [a for a in card.actions if a.action_id == "approval.approve"]
    return action.command


def spooled(bot: Bot) -> list[Path]:
    folder = bot.services.archives.folder  # type: ignore[union-attr]
    return sorted(folder.glob("*")) if folder.is_dir() else []


def card_text(card: Reply) -> str:
    return "\n".join([card.title or "", card.text, *(f"{a}: {b}" for a, b in card.fields)])


@pytest.mark.parametrize("path", ["/graph.dump", "/chunked.dump"])
async def test_slack_import_of_a_url_shows_size_and_digest_then_uploads_those_bytes(
    bot, console_sim, archives, path
):
    card = await run(bot, f"import sandbox-db {url(archives, path)}?{SIGNATURE}")
    assert card.status == "pending", card.text
    fields = dict(card.fields)
    assert fields["SHA-256"] == DIGEST
    assert fields["Size"] == f"1.0 MB ({len(ARCHIVE):,} bytes)"
    assert fields["Archive"] == f"{path[1:]} from 127.0.0.1:{archives.port}{path}"
    assert "sentinel-signature" not in card_text(card)  # the query is never shown
    assert len(spooled(bot)) == 1  # downloaded once, kept for the approval
    assert console_sim.requests_to("POST", r".*/import$") == []
    done = await run(bot, approve(card))
    assert done.status == "ok", done.text
    (upload,) = console_sim.requests_to("POST", r".*/import$")
    assert upload.body == f"<multipart {len(ARCHIVE)} bytes>"
    assert "transfer-encoding" not in upload.headers
    assert int(upload.headers["content-length"]) > len(ARCHIVE)
    assert DIGEST in dict(done.fields)["Archive"]
    assert done.operations  # the tracker follows the import
    assert spooled(bot) == []  # removed once uploaded


async def test_a_server_local_path_is_never_read_from_slack(bot, console_sim, tmp_path):
    secret = tmp_path / "graph.dump"
    secret.write_bytes(b"server-local")
    for line in (f"import sandbox-db {secret}", "import sandbox-db /etc/passwd"):
        reply = await run(bot, line)
        assert reply.status == "error" and "cannot be read from here" in reply.text
        assert "https://" in reply.text
    assert console_sim.mutating_requests() == [] and spooled(bot) == []


async def test_the_shell_reads_a_local_file_where_it_is(bot, console_sim, tmp_path):
    dump = tmp_path / "graph.dump"
    dump.write_bytes(ARCHIVE)
    card = await run(bot, f"import sandbox-db {dump}", transport="shell")
    assert card.status == "pending", card.text
    assert dict(card.fields)["SHA-256"] == DIGEST
    assert spooled(bot) == []  # nothing copied: its size is known
    done = await run(bot, approve(card), transport="shell")
    assert done.status == "ok", done.text
    (upload,) = console_sim.requests_to("POST", r".*/import$")
    assert upload.body == f"<multipart {len(ARCHIVE)} bytes>"
    assert dump.exists()  # a local file is never removed


async def test_a_file_changed_after_the_card_is_not_sent(bot, console_sim, tmp_path):
    dump = tmp_path / "graph.dump"
    dump.write_bytes(ARCHIVE)
    card = await run(bot, f"import sandbox-db {dump}", transport="shell")
    dump.write_bytes(ARCHIVE[:-1] + b"\x00")  # same size, other bytes
    done = await run(bot, approve(card), transport="shell")
    assert done.status == "error" and "changed since it was shown" in done.text
    assert console_sim.requests_to("POST", r".*/import$") == []


@pytest.mark.parametrize(
    ("target", "why"),
    [
        ("http://192.0.2.1/graph.dump", "https:// only"),
        ("ftp://127.0.0.1/graph.dump", "ftp: URLs cannot be imported"),
        ("file:///etc/passwd", "file: URLs cannot be imported"),
    ],
)
async def test_only_https_or_configured_loopback_http(bot, console_sim, target, why):
    reply = await run(bot, f"import sandbox-db {target}")
    assert reply.status == "error" and why in reply.text
    assert console_sim.mutating_requests() == [] and spooled(bot) == []


async def test_plain_http_to_loopback_needs_the_setting(console_sim, archives, tmp_path):
    bot = importing_bot(console_sim, tmp_path, allow_http_loopback=False)
    try:
        reply = await run(bot, f"import sandbox-db {url(archives, '/graph.dump')}")
    finally:
        await bot.aclose()
    assert reply.status == "error" and "https:// only" in reply.text


async def test_a_redirect_is_checked_like_the_url(bot, console_sim, archives):
    reply = await run(bot, f"import sandbox-db {url(archives, '/away')}")
    assert reply.status == "error" and "https:// only (not http://192.0.2.1)" in reply.text
    assert spooled(bot) == []


async def test_a_download_failure_says_so(bot, console_sim, archives):
    reply = await run(bot, f"import sandbox-db {url(archives, '/missing')}?{SIGNATURE}")
    assert reply.status == "error" and "HTTP 404" in reply.text
    assert f"127.0.0.1:{archives.port}/missing" in reply.text
    assert "sentinel-signature" not in reply.text
    assert spooled(bot) == []


async def test_a_download_stops_at_the_size_limit(console_sim, archives, tmp_path):
    bot = importing_bot(console_sim, tmp_path, max_archive_mb=1)  # 10^6 < 1 MiB
    try:
        reply = await run(bot, f"import sandbox-db {url(archives, '/chunked.dump')}")
        assert reply.status == "error" and "larger than the limit of 1.0 MB" in reply.text
        assert spooled(bot) == [] and bot.services.approvals.pending() == []
    finally:
        await bot.aclose()


async def test_the_servers_answer_is_reported_as_it_is(bot, console_sim, archives):
    card = await run(bot, f"import sandbox-db {url(archives, '/graph.dump')}")
    console_sim.faults.fail_next(
        "POST", r".*/import$", status=400, body={"error": "archive format not recognised"}
    )
    done = await run(bot, approve(card))
    assert done.status == "error"
    assert "Rejected as invalid (400)" in done.text
    assert "archive format not recognised" in done.text
    assert "connection" not in done.text
    assert spooled(bot) == []


async def test_a_dry_run_downloads_nothing(bot, console_sim, archives):
    reply = await run(bot, f"plan import sandbox-db {url(archives, '/graph.dump')}?{SIGNATURE}")
    assert reply.status == "info", reply.text
    assert "not read: dry run" in dict(reply.fields)["Archive"]
    assert [row[0] for row in reply.tables[0].rows] == ["POST"]
    assert "sentinel-signature" not in card_text(reply)
    assert spooled(bot) == [] and console_sim.mutating_requests() == []


async def test_spool_files_of_abandoned_approvals_are_swept(bot, archives):
    await run(bot, f"import sandbox-db {url(archives, '/graph.dump')}")
    (left,) = spooled(bot)
    store = bot.services.archives
    assert store is not None and store.sweep() == 0  # still within the approval's life
    store._clock = lambda: left.stat().st_mtime + store.keep_seconds + 1
    assert store.sweep() == 1 and spooled(bot) == []


async def test_a_spooled_archive_is_its_owners_only(bot, archives):
    """A downloaded archive is a database dump: its folder 0700, the file 0600."""
    import stat

    await run(bot, f"import sandbox-db {url(archives, '/graph.dump')}")
    (left,) = spooled(bot)
    assert stat.S_IMODE(left.stat().st_mode) == 0o600
    assert stat.S_IMODE(left.parent.stat().st_mode) == 0o700
