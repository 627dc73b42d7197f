"""Secrets never leak: sentinel values in every credential, representative flows, and a
search for every sentinel in everything the bot writes or says.

Credentials with sentinel values: Console client id and secret, v1 api_key, TypeDB admin
password, Slack bot token and signing secret, a TypeDB user password given through the
secret prompt (`Invocation.secret`), and the one-time export/backup links the v1
simulator returns.

Flows: Console commands with an approval, v1 export + backup-link, TypeDB `user add` via
the prompt and a query (in process, caplog at DEBUG); a command through the real Bolt app
over HTTP (SlackStack); `graphops serve` as a real process (its stderr captured).

Searched (no sentinel may appear): every log line, every audit row, every Slack call the
stand-in captured (except the one-time links, allowed only in chat.postEphemeral to the
requester, never chat.postMessage / chat.update), every Reply (links only in its private
part), and `str`/`repr` of the ApiErrors the clients raise under 401 and 500 faults.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from pydantic import SecretStr

from bot.config import BotSettings, Config, ConsoleProvider, TypeDBProvider, V1Provider
from bot.wiring import Bot, build_bot
from clients.errors import ApiError
from clients.graphenedb import ConsoleClient
from clients.graphenedb_v1 import V1Client
from clients.http import RetryPolicy
from clients.typedb import TypeDBClient
from core.invocation import Invocation
from core.reply import Reply
from permissions.roles import Role
from simulators.graphenedb import ConsoleSimulator
from simulators.graphenedb_v1 import V1Simulator
from simulators.typedb import TypeDBSimulator
from tests.reliability.rel_procs import Serve, SimThread, bot_env, cli, rows
from tests.reliability.rel_support import ADMIN, ALICE, BOB, DEV, SlackStack, free_port
from tests.waiting import until, wait_until

CONSOLE_ID = "sentinel-rel-console-id-3b7e"
CONSOLE_SECRET = "sentinel-rel-console-secret-c41d"
V1_KEY = "sentinel-rel-v1-key-6a20"
TDB_PASSWORD = "sentinel-rel-typedb-admin-0f93"
BOT_TOKEN = "xoxb-sentinel-rel-bot-77e1"
SIGNING = "sentinel-rel-signing-5e0b"
USER_PASSWORD = "sentinel-rel-user-pw-d2c8"
WRONG = "sentinel-rel-wrong-credential-19aa"  # a wrong credential is a secret too
TYPED = "hunter2"  # a password typed by mistake as an extra word

CREDENTIALS = [CONSOLE_ID, CONSOLE_SECRET, V1_KEY, TDB_PASSWORD, BOT_TOKEN, SIGNING]
ADM = "C0TDBADM"
READ = "match $p isa person, has name $name, has age $age;"
LINK = re.compile(r"https://s3\.example/[^\s\"'<>|)]+X-Amz-Signature=[0-9a-f]+")
FAST = RetryPolicy(attempts=2, base_delay=0.0, max_delay=0.0)


def environ() -> dict[str, str]:
    return {
        "T_CLIENT_ID": CONSOLE_ID,
        "T_CLIENT_SECRET": CONSOLE_SECRET,
        "T_V1_KEY": V1_KEY,
        "T_TDB_USER": "admin",
        "T_TDB_PASS": TDB_PASSWORD,
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING,
    }


def assert_clean(where: str, text: str, secrets: Iterable[str]) -> None:
    for secret in secrets:
        assert secret not in text, f"{secret!r} found in {where}"


def audit_text(bot: Bot) -> str:
    return json.dumps(bot.services.audit.query(limit=100000), default=str)


# -- in process: Console + v1 + TypeDB in one bot -------------------------------------


@pytest.fixture
async def sims():  # type: ignore[no-untyped-def]
    console = ConsoleSimulator(client_id=CONSOLE_ID, client_secret=CONSOLE_SECRET, step_seconds=0.2)
    v1 = V1Simulator(api_key=V1_KEY, step_seconds=0.2)
    typedb = TypeDBSimulator(username="admin", password=TDB_PASSWORD)
    await console.start()
    await v1.start()
    await typedb.start("127.0.0.1", 0)
    try:
        yield console, v1, typedb
    finally:
        for sim in (console, v1, typedb):
            await sim.stop()


def three_provider_config(console: str, v1: str, typedb: str, db: Path) -> Config:
    return Config(
        bot=BotSettings(admins=(ADMIN,), database=str(db)),
        providers=(
            ConsoleProvider(
                name="console",
                kind="graphenedb",
                base_url=console,
                client_id_env="T_CLIENT_ID",
                client_secret_env="T_CLIENT_SECRET",
            ),
            V1Provider(name="legacy", kind="graphenedb-v1", base_url=v1, api_key_env="T_V1_KEY"),
            TypeDBProvider(
                name="graph",
                kind="typedb",
                base_url=typedb,
                username_env="T_TDB_USER",
                password_env="T_TDB_PASS",
            ),
        ),
    )


async def run(
    bot: Bot, line: str, channel: str = DEV, user: str = ALICE, secret: str | None = None
) -> Reply:
    return await bot.run(
        Invocation(
            user=user,
            channel=channel,
            text=line,
            secret=SecretStr(secret) if secret is not None else None,
        )
    )


def approve_line(reply: Reply) -> str:
    (action,) = [a for a in reply.actions if a.action_id == "approval.approve"]
    return action.command


async def test_in_process_flows_leak_no_secret(sims, tmp_path: Path, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    console, v1, typedb = sims
    bot = build_bot(
        three_provider_config(
            console.base_url, v1.base_url + "/v1", typedb.base_url, tmp_path / "s.sqlite3"
        ),
        environ=environ(),
    )
    try:
        store = bot.services.permissions
        store.grant(DEV, "console", "development", Role.ADMIN)
        store.grant(DEV, "console", "staging", Role.OPERATOR)
        store.grant(DEV, "legacy", "*", Role.ADMIN)
        store.grant(ADM, "graph", "graph", Role.ADMIN)
        replies: list[Reply] = []

        async def go(line: str, **kw: Any) -> Reply:
            reply = await run(bot, line, **kw)
            replies.append(reply)
            return reply

        # Console: reads, an operation, a dry-run, an approval (asked by alice, by bob)
        for line in ("list", "show sandbox-db", "resume catalog-db", "plan terminate sandbox-db"):
            assert (await go(line)).status in ("ok", "info"), replies[-1].text
        card = await go("terminate sandbox-db")
        assert card.status == "pending", card.text
        done = await go(approve_line(card), user=BOB)
        assert done.status == "ok", done.text

        # v1: export and backup-link; the links are private
        export = await go("export legacy-orders")
        assert export.status == "ok" and export.private_text, export.text
        backups = await go("backups legacy-orders")
        package = await go(f"backup-link legacy-orders {backups.tables[0].rows[0][0]}")
        assert package.status == "ok" and package.private_text, package.text
        links = LINK.findall(export.private_text + "\n" + package.private_text)
        assert len(links) == 2, (export.private_text, package.private_text)

        # TypeDB: the prompt, then the password through it; a query
        prompt = await go("user add carol", channel=ADM)
        assert prompt.secret_prompt is not None and prompt.visibility == "ephemeral"
        added = await go("user add carol", channel=ADM, secret=USER_PASSWORD)
        assert added.status == "ok", added.text
        assert typedb._users["carol"] == USER_PASSWORD  # it did reach the server
        query = await go(f"query social '{READ}'", channel=ADM)
        assert query.status == "ok", query.text

        # a password typed as an extra word: refused, only to the requester, not kept
        typed = await go(f"user add bob {TYPED}", channel=ADM)
        assert typed.status == "error" and typed.visibility == "ephemeral"
        assert "bob" not in typedb.usernames
        typed_kw = await go(f"user passwd admin password={TYPED}", channel=ADM)
        assert typed_kw.status == "error"
        for refused in (typed, typed_kw):  # not even repeated back to the one who typed it
            assert TYPED not in refused.model_dump_json(), refused.text

        secrets = [*CREDENTIALS, USER_PASSWORD]
        for reply in replies:
            public = reply.model_dump_json(exclude={"private_text"})
            assert_clean(f"reply {reply.title!r}", public, [*secrets, *links])
            assert_clean(f"private part of {reply.title!r}", reply.private_text or "", secrets)
        audit = audit_text(bot)
        assert "user add carol" in audit and "export" in audit  # the flows were audited
        assert_clean("audit", audit, [*secrets, *links, TYPED])
        assert_clean("logs", caplog.text, [*secrets, *links, TYPED])
        assert len(caplog.records) > 0
    finally:
        await bot.aclose()


async def test_api_errors_under_faults_carry_no_secret(sims, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    console, v1, typedb = sims
    errors: list[ApiError] = []

    async def expect_error(coro) -> None:  # type: ignore[no-untyped-def]
        try:
            await coro
        except ApiError as exc:
            errors.append(exc)
        else:
            raise AssertionError("no ApiError")

    clients: list[Any] = []
    # 401: a wrong credential (itself a sentinel), and the right one rejected by the server
    bad = [
        ConsoleClient(
            "console",
            console.base_url,
            SecretStr(CONSOLE_ID),
            SecretStr(WRONG),
            retry=FAST,
            timeout=5,
        ),
        V1Client("legacy", v1.base_url + "/v1", SecretStr(WRONG), retry=FAST, timeout=5),
        TypeDBClient(
            "graph", typedb.base_url, SecretStr("admin"), SecretStr(WRONG), retry=FAST, timeout=5
        ),
    ]
    good = [
        ConsoleClient(
            "console",
            console.base_url,
            SecretStr(CONSOLE_ID),
            SecretStr(CONSOLE_SECRET),
            retry=FAST,
            timeout=5,
        ),
        V1Client("legacy", v1.base_url + "/v1", SecretStr(V1_KEY), retry=FAST, timeout=5),
        TypeDBClient(
            "graph",
            typedb.base_url,
            SecretStr("admin"),
            SecretStr(TDB_PASSWORD),
            retry=FAST,
            timeout=5,
        ),
    ]
    clients = bad + good
    try:
        await expect_error(bad[0].environments())
        await expect_error(bad[1].databases("legacy"))
        await expect_error(bad[2].list_databases())
        # 500 (retried reads: enough failures to exhaust the retries)
        console.faults.fail_next("GET", r"/environments", status=500, times=5)
        v1.faults.fail_next("GET", r"/databases", status=500, times=5)
        typedb.faults.fail_next("GET", r"/databases", status=500, times=5)
        await expect_error(good[0].environments())
        await expect_error(good[1].databases("legacy"))
        await expect_error(good[2].list_databases())
        # 401 on a later call with the right credentials (token revoked server-side)
        console.faults.fail_next("GET", r"/environments", status=401, times=5)
        await expect_error(good[0].environments())
    finally:
        for client in clients:
            await client.aclose()
    statuses = sorted({e.status for e in errors if e.status})
    assert 401 in statuses and 500 in statuses, statuses
    secrets = [*CREDENTIALS, WRONG]
    for exc in errors:
        chain: list[BaseException] = []
        current: BaseException | None = exc
        while current is not None and len(chain) < 10:
            chain.append(current)
            current = current.__cause__ or current.__context__
        for item in chain:
            assert_clean(
                f"error {type(item).__name__}", f"{item!s}\n{item!r}\n{item.args!r}", secrets
            )
    assert_clean("logs", caplog.text, secrets)


# -- the real Bolt app over HTTP --------------------------------------------------------


async def test_slack_stack_leaks_no_secret(tmp_path: Path, caplog) -> None:
    from tests.bot.slack.slack_support import BOT_TOKEN as STACK_TOKEN
    from tests.bot.slack.slack_support import SIGNING_SECRET as STACK_SIGNING
    from tests.support import SECRET, SECRET_ID

    caplog.set_level(logging.DEBUG)
    stack = await SlackStack(tmp_path, step_seconds=0.1).start()
    try:
        assert (await stack.slack.slash("resume catalog-db")).status_code == 200
        assert (await stack.slack.slash("list")).status_code == 200
        assert (await stack.slack.slash("terminate sandbox-db")).status_code == 200
        await stack.standin.wait_for("chat.postMessage", 2, timeout=15)

        def approvals() -> list[Any]:
            return stack.bot.db.execute("SELECT id FROM approvals").fetchall()

        await until(lambda: bool(approvals()), timeout=15, what="approval card")
        approval = approvals()[0][0]
        resp = await stack.slack.slash(f"approve {approval} confirm=sandbox-db", user=BOB)
        assert resp.status_code == 200
        await stack.settle(2, timeout=30)
        secrets = [SECRET_ID, SECRET, STACK_TOKEN, STACK_SIGNING]
        calls = [(c.method, json.dumps(c.body, default=str)) for c in stack.standin.calls]
        assert len(calls) >= 4
        for method, body in calls:
            assert_clean(f"Slack call {method}", body, secrets)
        assert_clean("audit", audit_text(stack.bot), secrets)
        assert_clean("logs", caplog.text, secrets)
    finally:
        await stack.stop()


# -- `graphops serve` as a real process ---------------------------------------------------


def _serve_config(tmp: Path, sims: SimThread, port: int) -> Path:
    config = tmp / "graphops.toml"
    config.write_text(f"""
[bot]
admins = ["U0ADMIN"]
database = "{tmp / "g.sqlite3"}"

[slack]
api_url = "{sims.slack}/api/"
port = {port}

[operations]
poll_first_seconds = 0.1
poll_factor = 1.2
poll_cap_seconds = 0.3
snapshot_before_destroy = "never"

[[providers]]
name = "console"
kind = "graphenedb"
base_url = "{sims.console}"
client_id_env = "T_CLIENT_ID"
client_secret_env = "T_CLIENT_SECRET"
timeout_seconds = 5

[[providers]]
name = "legacy"
kind = "graphenedb-v1"
base_url = "{sims.v1}"
api_key_env = "T_V1_KEY"
timeout_seconds = 5

[[providers]]
name = "graph"
kind = "typedb"
base_url = "{sims.typedb}"
username_env = "T_TDB_USER"
password_env = "T_TDB_PASS"
timeout_seconds = 5
""")
    return config


def test_serve_process_leaks_no_secret(tmp_path: Path) -> None:
    sims = SimThread(
        client_id=CONSOLE_ID,
        client_secret=CONSOLE_SECRET,
        api_key=V1_KEY,
        typedb_password=TDB_PASSWORD,
        bot_token=BOT_TOKEN,
        step_seconds=0.2,
    )
    serve: Serve | None = None
    try:
        port = free_port()
        env = bot_env(_serve_config(tmp_path, sims, port), **environ())
        for grant in (
            ("C0DEV", "console", "development", "admin"),
            ("C0DEV", "legacy", "*", "admin"),
            ("C0DEV", "graph", "graph", "admin"),
        ):
            done = cli(env, "access", "grant", *grant)
            assert done.returncode == 0, done.stderr
            assert_clean("access CLI output", done.stdout + done.stderr, CREDENTIALS)
        serve = Serve(env, port, tmp_path / "serve.log")

        def slash(text: str, user: str = ALICE) -> None:
            assert serve is not None
            response = serve.slash(text, user=user, secret=SIGNING)
            assert response.status_code == 200, (text, response.status_code)

        def ephemerals() -> list[Any]:
            return [c for c in sims.calls() if c.method == "chat.postEphemeral"]

        slash("list")
        slash("restart sandbox-db")
        slash("export legacy-orders")
        wait_until(lambda: any(LINK.search(json.dumps(c.body)) for c in ephemerals()), 15, "link")
        slash(f"query social '{READ}'")
        slash(f"user add bob {TYPED}")
        slash("terminate sandbox-db")
        db = tmp_path / "g.sqlite3"
        wait_until(lambda: bool(rows(db, "SELECT id FROM approvals")), 15, "approval card")
        (approval,) = rows(db, "SELECT id FROM approvals")[0]
        slash(f"approve {approval} confirm=sandbox-db", user=BOB)
        wait_until(
            lambda: rows(db, "SELECT state FROM approvals")[0][0] in ("executed", "failed"),
            20,
            "approval done",
        )
        wait_until(
            lambda: (
                rows(db, "SELECT COUNT(*) FROM tracked_operations WHERE state='running'")[0][0] == 0
                and rows(db, "SELECT COUNT(*) FROM outbox WHERE sent_at IS NULL")[0][0] == 0
            ),
            30,
            "operations reported",
        )
        time.sleep(0.5)
        # a request signed with a wrong secret: 401, and nothing about the secret in the log
        body = urlencode(
            {
                "team_id": "T0STANDIN",
                "channel_id": "C0DEV",
                "user_id": ALICE,
                "command": "/gdb",
                "text": "list",
                "trigger_id": "1.2.3",
            }
        )
        bad = serve.post(body, "application/x-www-form-urlencoded", secret=WRONG)
        assert bad.status_code == 401
    finally:
        if serve is not None:
            serve.stop()
        calls = sims.calls()
        sims.stop()

    links: set[str] = set()
    for call in calls:
        body = json.dumps(call.body, default=str)
        found = LINK.findall(body)
        if found:
            assert call.method == "chat.postEphemeral", (call.method, body[:300])
            assert call.body.get("user") == ALICE, call.body.get("user")
            links.update(found)
        assert_clean(f"Slack call {call.method}", body, [*CREDENTIALS, WRONG, TYPED])
    assert links, "the export link never reached the requester"
    assert any(c.method == "chat.postMessage" for c in calls)
    log = (tmp_path / "serve.log").read_text(errors="replace")
    assert_clean("serve stderr", log, [*CREDENTIALS, WRONG, TYPED, *links])
    audit = json.dumps(rows(tmp_path / "g.sqlite3", "SELECT * FROM audit"), default=str)
    assert "export" in audit
    assert_clean("audit (serve)", audit, [*CREDENTIALS, WRONG, TYPED, *links])
