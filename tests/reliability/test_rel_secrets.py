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

import asyncio
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

# Secrets only: the Console client id and the TypeDB username are identifiers, shown
# where they appear (an echoed token form shows `client_id=...`), never redacted.
CREDENTIALS = [CONSOLE_SECRET, V1_KEY, TDB_PASSWORD, BOT_TOKEN, SIGNING]
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


ECHO_SHAPES = {
    "text": ("text", "echo: {part}"),
    "error": ("body", {"error": "echo: {part}"}),
    "message": ("body", {"message": "echo: {part}"}),
    "nested": ("body", {"error": {"message": "echo: {part}"}}),
    "detail": ("body", {"detail": "echo: {part}"}),
    "code": ("body", {"code": "{part}", "message": "rejected", "nonce": "{part}"}),
    # a secret across the point where the message is cut: redacted before the cut
    "long": ("text", "x" * 290 + "{part}"),
}


def echo_rule(shape: str, part: str) -> dict[str, Any]:
    where, template = ECHO_SHAPES[shape]
    filled = json.loads(json.dumps(template).replace("{part}", part))
    return {where: filled, "echo": True}


@pytest.mark.parametrize("shape", sorted(ECHO_SHAPES))
async def test_echoed_credentials_and_tokens_leave_no_trace_in_errors(sims, shape: str) -> None:
    """Each client against servers echoing what they were sent, in several shapes: the
    ApiError's str, repr, args, code and support reference hold no credential and no token."""
    console, v1, typedb = sims
    errors: list[ApiError] = []

    async def expect_error(coro) -> None:  # type: ignore[no-untyped-def]
        try:
            await coro
        except ApiError as exc:
            errors.append(exc)
        else:
            raise AssertionError("no ApiError")

    def console_client() -> ConsoleClient:
        return ConsoleClient(
            "console",
            console.base_url,
            SecretStr(CONSOLE_ID),
            SecretStr(CONSOLE_SECRET),
            retry=FAST,
            timeout=5,
        )

    def typedb_client() -> TypeDBClient:
        return TypeDBClient(
            "graph", typedb.base_url, SecretStr("admin"), SecretStr(TDB_PASSWORD), retry=FAST
        )

    clients: list[Any] = []
    try:
        # token endpoints echoing the posted form / JSON (the client secret, the password)
        console.faults.fail_next("POST", r"/oauth/token$", status=401, **echo_rule(shape, "{body}"))
        clients.append(console_client())
        await expect_error(clients[-1].environments())
        typedb.faults.fail_next("POST", r"/signin$", status=401, **echo_rule(shape, "{body}"))
        clients.append(typedb_client())
        await expect_error(clients[-1].list_databases())
        # APIs echoing the issued bearer token, bare, and the v1 api_key header
        console.faults.fail_next(
            "GET", r"/environments$", status=500, times=2, **echo_rule(shape, "{token}")
        )
        clients.append(console_client())
        await expect_error(clients[-1].environments())
        typedb.faults.fail_next(
            "GET", r"/v1/databases$", status=500, times=2, **echo_rule(shape, "{token}")
        )
        clients.append(typedb_client())
        await expect_error(clients[-1].list_databases())
        v1.faults.fail_next(
            "GET", r"/databases$", status=500, times=2, **echo_rule(shape, "{header:api_key}")
        )
        clients.append(V1Client("legacy", v1.base_url + "/v1", SecretStr(V1_KEY), retry=FAST))
        await expect_error(clients[-1].databases("legacy"))
    finally:
        for client in clients:
            await client.aclose()
    tokens = issued_tokens(console, typedb)
    assert len(errors) == 5 and len(tokens) >= 2
    secrets = [*CREDENTIALS, *tokens]
    for exc in errors:
        shown = f"{exc!s}\n{exc!r}\n{exc.args!r}\n{exc.code}\n{exc.nonce}\n{exc.message}"
        assert_clean(f"{type(exc).__name__} ({shape})", shown, secrets)
        assert len(exc.message) <= 300
    assert any("[REDACTED]" in f"{e.message} {e.code}" for e in errors)


@pytest.mark.parametrize("shape", ["text", "message", "code"])
async def test_a_sign_in_token_of_any_shape_is_known_once_issued(shape: str) -> None:
    """A TypeDB that issues opaque tokens (not JWTs: no shape gives them away) and echoes
    the bearer token bare in a 500: the token is known from its sign-in answer, so the
    ApiError shows none of it."""
    typedb = TypeDBSimulator(username="admin", password=TDB_PASSWORD, opaque_tokens=True)
    await typedb.start("127.0.0.1", 0)
    client = TypeDBClient(
        "graph", typedb.base_url, SecretStr("admin"), SecretStr(TDB_PASSWORD), retry=FAST
    )
    try:
        typedb.faults.fail_next(
            "GET", r"/v1/databases$", status=500, times=2, **echo_rule(shape, "{token}")
        )
        with pytest.raises(ApiError) as caught:
            await client.list_databases()
    finally:
        await client.aclose()
        await typedb.stop()
    [token] = typedb._tokens
    assert not token.startswith("eyJ")
    exc = caught.value
    shown = f"{exc!s}\n{exc!r}\n{exc.args!r}\n{exc.code}\n{exc.nonce}\n{exc.message}"
    assert_clean(f"ApiError ({shape})", shown, [token, TDB_PASSWORD])
    assert "[REDACTED]" in shown


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


# -- hostile APIs that echo what they were sent -----------------------------------------------
#
# Each simulator answers chosen requests with an error body repeating the request
# (simulators/base.py, `echo`): the posted token form, the bearer token alone, the API key
# header, a password typed in the private modal. Which parts and in which shape a real
# server would echo is a guess, so the shapes vary: raw text, `{"error"}`, `{"message"}`,
# `{"code","message"}`.

HOSTILE_USER_PASSWORD = "sentinel-rel-modal-pw-7d31"


def echo_token_form(console: Any) -> None:
    """The token endpoint repeats the posted form (client_secret included) in a 401."""
    console.faults.fail_next(
        "POST", r"/oauth/token$", status=401, text="invalid_client: got {body}", echo=True
    )


def echo_bearer(console: Any, typedb: Any) -> None:
    """Reads repeat the bearer token, bare, in a 500 (enough to outlast the retries); a
    mutating request repeats the whole request and the token."""
    console.faults.fail_next(
        "GET",
        r"/deployments/environments$",
        status=500,
        times=3,
        body={"error": "upstream failed for {token}", "nonce": "n-{token}"},
        echo=True,
    )
    console.faults.fail_next(
        "POST",
        r"/restart$",
        status=500,
        body={"message": "restart failed: {body} as {token}"},
        echo=True,
    )
    typedb.faults.fail_next(
        "GET",
        r"/v1/users$",
        status=500,
        times=3,
        body={"code": "SRV9", "message": "token {token} rejected"},
        echo=True,
    )


def echo_api_key(v1: Any) -> None:
    """v1 repeats the api_key header in a 500 (raw text)."""
    v1.faults.fail_next(
        "GET", r"/backups$", status=500, times=3, text="bad key {header:api_key}", echo=True
    )


def echo_sign_in(typedb: Any) -> None:
    """The TypeDB sign-in repeats the posted JSON (username and password) in a 401."""
    typedb.faults.fail_next(
        "POST", r"/v1/signin$", status=401, body={"code": "AUT1", "message": "{body}"}, echo=True
    )


def echo_typed_password(typedb: Any) -> None:
    """The user endpoint repeats the password typed in the private modal, bare, in a 400."""
    typedb.faults.fail_next(
        "POST",
        r"/v1/users/carol$",
        status=400,
        body={"code": "INV1", "message": "password {field:password} is too weak"},
        echo=True,
    )


def issued_tokens(console: Any, typedb: Any) -> list[str]:
    """Every token the simulators handed out (Console opaque, TypeDB JWT)."""
    return [*console._tokens, *typedb._tokens]


def sqlite_bytes(db: Path) -> bytes:
    """The SQLite file and its WAL, as bytes."""
    parts = [db, db.with_name(db.name + "-wal")]
    return b"".join(p.read_bytes() for p in parts if p.exists())


def assert_no_bytes(where: str, data: bytes, secrets: Iterable[str]) -> None:
    for secret in secrets:
        assert secret.encode() not in data, f"{secret!r} found in {where}"


def audit_cli_config(tmp: Path, db: Path) -> Path:
    """A graphops.toml naming `db`, for `graphops audit` (no provider is contacted)."""
    config = tmp / "audit.toml"
    config.write_text(f'[bot]\ndatabase = "{db}"\n')
    return config


class HostileStack:
    """Console, v1 and TypeDB simulators, a bot over them with sentinel credentials, the
    real Bolt app over HTTP, a tracker, and the Slack stand-in."""

    async def start(self, tmp_path: Path) -> HostileStack:
        import httpx
        from slack_sdk.web.async_client import AsyncWebClient

        from bot.config import OperationsSettings
        from bot.slack.app import build_app, runtime
        from bot.slack.notifier import SlackNotifier
        from bot.slack.server import SlackServer
        from bot.wiring import build_tracker
        from simulators.slack import SlackStandIn
        from tests.bot.slack.slack_support import BOT_TOKEN as STACK_TOKEN
        from tests.bot.slack.slack_support import SlackClient

        self.console = ConsoleSimulator(
            client_id=CONSOLE_ID, client_secret=CONSOLE_SECRET, step_seconds=0.1
        )
        self.v1 = V1Simulator(api_key=V1_KEY, step_seconds=0.1)
        self.typedb = TypeDBSimulator(username="admin", password=TDB_PASSWORD)
        await self.console.start()
        await self.v1.start()
        await self.typedb.start("127.0.0.1", 0)
        self.db_path = tmp_path / "hostile.sqlite3"
        config = three_provider_config(
            self.console.base_url, self.v1.base_url + "/v1", self.typedb.base_url, self.db_path
        ).model_copy(
            update={
                "operations": OperationsSettings(
                    snapshot_before_destroy="never",
                    poll_first_seconds=0.05,
                    poll_factor=1.2,
                    poll_cap_seconds=0.2,
                    max_poll_failures=2,
                )
            }
        )
        self.bot = build_bot(config, environ=environ())
        store = self.bot.services.permissions
        store.grant(DEV, "console", "development", Role.ADMIN)
        store.grant(DEV, "console", "staging", Role.OPERATOR)
        store.grant(DEV, "legacy", "*", Role.ADMIN)
        store.grant(DEV, "graph", "graph", Role.ADMIN)
        self.standin = SlackStandIn(token=STACK_TOKEN, channels=[DEV])
        await self.standin.start()
        client = AsyncWebClient(token=STACK_TOKEN, base_url=self.standin.api_url)
        self.tracker = build_tracker(self.bot, SlackNotifier(client))
        from tests.bot.slack.slack_support import SIGNING_SECRET as STACK_SIGNING

        app = build_app(
            self.bot,
            signing_secret=STACK_SIGNING,
            token=STACK_TOKEN,
            client=client,
            tracker=self.tracker,
        )
        self.rt = runtime(app)
        self.tracker.start()
        self.server = SlackServer(app, sweep_seconds=None)
        url = await self.server.start()
        self.http = httpx.AsyncClient(timeout=30.0)
        self.slack = SlackClient(url, self.http, self.standin)
        return self

    async def stop(self) -> None:
        await self.server.stop()
        await self.tracker.stop()
        await self.http.aclose()
        await self.bot.aclose()
        for sim in (self.standin, self.typedb, self.v1, self.console):
            await sim.stop()

    def tracked(self) -> int:
        return int(self.bot.db.execute("SELECT COUNT(*) FROM tracked_operations").fetchone()[0])

    def busy(self) -> bool:
        """Work a Slack request started may still be running (see SlackStack.busy)."""
        lazy = [
            task
            for task in asyncio.all_tasks()
            if not task.done()
            and getattr(task.get_coro(), "__qualname__", "") == "to_runnable_function"
        ]
        return bool(lazy or self.rt.tasks)

    async def slash(self, text: str) -> None:
        """Send a slash command as alice and wait until all it started has finished."""
        assert (await self.slack.slash(text, user=ALICE, channel=DEV)).status_code == 200
        await until(lambda: not self.busy(), timeout=30, what=f"{text!r} to finish")


async def test_hostile_apis_through_the_bolt_app_leak_no_secret(tmp_path: Path, caplog) -> None:
    """Echoed credentials, issued tokens and a modal password reach no Slack call, no byte
    of the SQLite file or its WAL, no `graphops audit --json` line and no log line."""
    from tests.bot.slack.slack_support import BOT_TOKEN as STACK_TOKEN
    from tests.bot.slack.slack_support import SIGNING_SECRET as STACK_SIGNING
    from tests.bot.slack.slack_support import texts

    caplog.set_level(logging.DEBUG)
    stack = await HostileStack().start(tmp_path)
    try:
        echo_token_form(stack.console)
        echo_sign_in(stack.typedb)
        await stack.slash("show sandbox-db")  # Console: a 401 echoing the posted form
        await stack.slash("users")  # TypeDB sign-in: a 401 echoing the posted password
        echo_bearer(stack.console, stack.typedb)
        await stack.slash("show sandbox-db env=development")  # 500s echoing the token
        await stack.slash("restart sandbox-db")  # a 500 echoing the request and the token
        await stack.slash("users")  # TypeDB: 500s echoing the token
        echo_api_key(stack.v1)
        await stack.slash("backups legacy-orders")  # v1: 500s echoing the api_key header
        # a password typed in the private modal, echoed bare by the server
        echo_typed_password(stack.typedb)
        await stack.slash("user add carol")
        [prompt] = await wait_prompt(stack.standin)
        button = secret_button(prompt)
        click = stack.standin.action_payload(
            "secret.open", button["value"], user=ALICE, channel=DEV, label=button["text"]["text"]
        )
        await stack.slack.send(click)
        [opened] = await stack.standin.wait_for("views.open")
        submitted = await stack.slack.submit(
            opened.body["view"], HOSTILE_USER_PASSWORD, user=ALICE, block="secret", action="value"
        )
        assert submitted.status_code == 200
        await until(lambda: not stack.busy(), timeout=30, what="the modal's command")
        assert any(r.path == "/v1/users/carol" for r in stack.typedb.requests_to("POST"))
        # an operation whose polls answer 500 echoing the token, until it is lost
        stack.console.faults.fail_next(
            "GET", r"/operations", status=500, times=50, text="poll as {token}", echo=True
        )
        await stack.slash("resume catalog-db")
        await until(lambda: stack.tracked() > 0, timeout=30, what="the resume tracked")
        assert await stack.tracker.wait_idle(timeout=30)

        # the hostile answers were given, and the bot did say something about each
        echoed = [
            r
            for sim in (stack.console, stack.v1, stack.typedb)
            for r in sim.requests
            if r.status in (400, 401, 500)
        ]
        assert len(echoed) >= 10, [(r.method, r.path, r.status) for r in echoed]
        tokens = issued_tokens(stack.console, stack.typedb)
        assert len(stack.console._tokens) >= 1 and len(stack.typedb._tokens) >= 1
        calls = [(c.method, json.dumps(c.body, default=str)) for c in stack.standin.calls]
        shown = "\n".join(texts(c) for c in stack.standin.calls)
        assert shown.count("[REDACTED]") >= 6, shown  # the echoes arrived, redacted
        for said in (
            "too weak",
            "restart failed",
            "poll as",
            "bad key",
            "token [REDACTED] rejected",
        ):
            assert said in shown, said
        # identifiers are not secrets: the echoed form still says which client it was
        assert f"client_id={CONSOLE_ID}" in shown and "invalid_client" in shown

        secrets = [
            *CREDENTIALS,
            STACK_TOKEN,
            STACK_SIGNING,
            HOSTILE_USER_PASSWORD,
            *tokens,
        ]
        for method, body in calls:
            assert_clean(f"Slack call {method}", body, secrets)
        assert_clean("logs", caplog.text, secrets)
        assert_no_bytes("SQLite (file and WAL)", sqlite_bytes(stack.db_path), secrets)
        env = {**environ(), "GRAPHOPS_CONFIG": str(audit_cli_config(tmp_path, stack.db_path))}
        done = cli(env, "audit", "--json", "--limit", "100000")
        assert done.returncode == 0, done.stderr
        assert "oauth/token" in done.stdout and "/v1/users/carol" in done.stdout
        assert_clean("graphops audit --json", done.stdout + done.stderr, secrets)
    finally:
        await stack.stop()


async def wait_prompt(standin: Any) -> list[Any]:
    from tests.bot.slack.slack_support import wait_private

    return await wait_private(standin, ALICE, contains="Enter")


def secret_button(prompt: Any) -> dict[str, Any]:
    [button] = [
        e
        for b in prompt.body["blocks"]
        if b["type"] == "actions"
        for e in b["elements"]
        if e["action_id"] == "secret.open"
    ]
    return button


def test_hostile_apis_through_a_serve_process_leak_no_secret(tmp_path: Path) -> None:
    """The same hostile answers to a real `graphops serve`: nothing secret in the Slack
    calls, its stderr, the SQLite file and WAL, or `graphops audit --json`."""
    from simulators.slack import SlackStandIn

    sims = SimThread(
        client_id=CONSOLE_ID,
        client_secret=CONSOLE_SECRET,
        api_key=V1_KEY,
        typedb_password=TDB_PASSWORD,
        bot_token=BOT_TOKEN,
        step_seconds=0.1,
    )
    serve: Serve | None = None
    db = tmp_path / "g.sqlite3"
    config = _serve_config(tmp_path, sims, port := free_port())
    config.write_text(  # no start-up prime of the name cache: the first token is hostile
        config.read_text()
        .replace("[operations]", "[operations]\nmax_poll_failures = 2")
        .replace("[bot]", "[bot]\nname_refresh_seconds = 0")
    )
    env = bot_env(config, **environ())
    try:
        for grant in (
            ("C0DEV", "console", "development", "admin"),
            ("C0DEV", "console", "staging", "operator"),
            ("C0DEV", "legacy", "*", "admin"),
            ("C0DEV", "graph", "graph", "admin"),
        ):
            assert cli(env, "access", "grant", *grant).returncode == 0
        serve = Serve(env, port, tmp_path / "serve.log")

        def said(phrase: str, method: str = "chat.postEphemeral") -> list[Any]:
            return [
                c
                for c in sims.calls()
                if c.method == method and phrase in json.dumps(c.body, default=str)
            ]

        def slash(text: str, answer: str, method: str = "chat.postEphemeral") -> None:
            assert serve is not None
            assert serve.slash(text, user=ALICE, secret=SIGNING).status_code == 200
            wait_until(lambda: bool(said(answer, method)), 30, f"{text!r} answered {answer!r}")

        # TypeDB first: `show` of a name the Console cannot list looks among TypeDB too
        sims.call(lambda: echo_sign_in(sims.typedb_sim))
        slash("users", "AUT1")
        sims.call(lambda: echo_token_form(sims.console_sim))
        slash("show sandbox-db", "invalid_client")
        sims.call(lambda: echo_bearer(sims.console_sim, sims.typedb_sim))
        slash("show sandbox-db env=development", "upstream failed")
        slash("restart sandbox-db", "restart failed")
        slash("users", "SRV9")
        sims.call(lambda: echo_api_key(sims.v1_sim))
        slash("backups legacy-orders", "bad key")
        # the private modal: the button, the modal, the password, echoed back bare
        sims.call(lambda: echo_typed_password(sims.typedb_sim))
        slash("user add carol", "secret.open")
        [prompt] = said("secret.open")
        button = secret_button(prompt)
        click = sims.call(
            lambda: sims.standin.action_payload(
                "secret.open",
                button["value"],
                user=ALICE,
                channel="C0DEV",
                label=button["text"]["text"],
            )
        )
        assert serve.post(*SlackStandIn.form_body(click), secret=SIGNING).status_code == 200
        wait_until(lambda: bool(said("", "views.open")), 30, "the private modal")
        [opened] = said("", "views.open")
        values = {"secret": {"value": {"type": "plain_text_input", "value": HOSTILE_USER_PASSWORD}}}
        submission = sims.call(
            lambda: sims.standin.submission_payload(opened.body["view"], values, user=ALICE)
        )
        assert serve.post(*SlackStandIn.form_body(submission), secret=SIGNING).status_code == 200
        wait_until(lambda: bool(said("too weak")), 30, "the 400 echoing the password")
        # an operation whose polls answer 500s echoing the token, until it is lost
        sims.call(
            lambda: sims.console_sim.faults.fail_next(
                "GET", r"/operations", status=500, times=50, text="poll as {token}", echo=True
            )
        )
        slash("resume catalog-db", "poll as", method="chat.postMessage")
        stored_while_running = sqlite_bytes(db)
        tokens = sims.call(lambda: [*sims.console_sim._tokens, *sims.typedb_sim._tokens])
    finally:
        if serve is not None:
            serve.stop()
        calls = sims.calls()
        sims.stop()

    assert len(tokens) >= 2
    secrets = [*CREDENTIALS, HOSTILE_USER_PASSWORD, *tokens]
    shown = "\n".join(json.dumps(c.body, default=str) for c in calls)
    assert shown.count("[REDACTED]") >= 6
    for call in calls:
        assert_clean(f"Slack call {call.method}", json.dumps(call.body, default=str), secrets)
    assert_clean("serve stderr", (tmp_path / "serve.log").read_text(errors="replace"), secrets)
    assert_no_bytes("SQLite while serving", stored_while_running, secrets)
    assert_no_bytes("SQLite after exit", sqlite_bytes(db), secrets)
    done = cli(env, "audit", "--json", "--limit", "100000")
    assert done.returncode == 0 and "/v1/users/carol" in done.stdout, done.stderr
    assert_clean("graphops audit --json", done.stdout + done.stderr, secrets)


# -- credentials inside URLs ----------------------------------------------------------------

AMZ_SIGNATURE = "9e" * 32
AMZ_CREDENTIAL = "AKIASENTINELREL0001%2F20240101%2Feu-west-1%2Fs3%2Faws4_request"
AMZ_SESSION = "IQoJsentinelRelSessionToken0001"
PRESIGNED = (
    "https://my-bucket.s3.eu-west-1.amazonaws.com/graphdb.zip"
    f"?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential={AMZ_CREDENTIAL}"
    f"&X-Amz-Date=20240101T000000Z&X-Amz-Expires=3600&X-Amz-Security-Token={AMZ_SESSION}"
    f"&X-Amz-SignedHeaders=host&X-Amz-Signature={AMZ_SIGNATURE}"
)
URL_SECRETS = [AMZ_SIGNATURE, AMZ_CREDENTIAL, "AKIASENTINELREL0001", AMZ_SESSION]


async def test_a_presigned_import_url_shows_no_credential(tmp_path: Path, caplog) -> None:
    """Through the real Bolt app: `plan`, the approval card, the result line and its thread,
    the audit log and the SQLite tables that keep what was said show where the archive is,
    never its signature, credential or session token; the API gets the whole URL."""
    from tests.bot.slack.slack_support import texts

    caplog.set_level(logging.DEBUG)
    stack = await HostileStack().start(tmp_path)
    try:
        await stack.slash(f"plan import legacy-orders {PRESIGNED}")
        await stack.slash(f"import legacy-orders {PRESIGNED}")
        [(approval, card_ts)] = stack.bot.db.execute(
            "SELECT id, message_ts FROM approvals"
        ).fetchall()
        click = stack.standin.action_payload(
            "approval.approve", approval, user=BOB, channel=DEV, message_ts=card_ts
        )
        assert (await stack.slack.send(click)).status_code == 200
        await until(lambda: not stack.busy(), timeout=30, what="the approved import")
        await until(lambda: stack.tracked() > 0, timeout=30, what="the import tracked")
        assert await stack.tracker.wait_idle(timeout=30)

        imports = stack.v1.requests_to("PUT", r"/import$")
        assert [r.body for r in imports] == [{"url": PRESIGNED}]  # the API got it whole
        shown = "\n".join(texts(c) for c in stack.standin.calls)
        assert "my-bucket.s3.eu-west-1.amazonaws.com/graphdb.zip" in shown  # where it is
        assert "X-Amz-Expires=3600" in shown and "Importing into legacy-orders" in shown
        for call in stack.standin.calls:
            assert_clean(f"Slack call {call.method}", json.dumps(call.body), URL_SECRETS)
        # what graphops keeps of what was said (the approval itself must keep the URL to
        # run it: the approvals table is the one place it is stored whole)
        for table in ("audit", "outbox", "tracked_operations"):
            kept = json.dumps(stack.bot.db.execute(f"SELECT * FROM {table}").fetchall())
            assert_clean(f"table {table}", kept, URL_SECRETS)
        env = {**environ(), "GRAPHOPS_CONFIG": str(audit_cli_config(tmp_path, stack.db_path))}
        done = cli(env, "audit", "--json", "--limit", "100000")
        assert done.returncode == 0 and "graphdb.zip" in done.stdout, done.stderr
        assert_clean("graphops audit --json", done.stdout, URL_SECRETS)
        assert_clean("logs", caplog.text, URL_SECRETS)
    finally:
        await stack.stop()


async def test_a_signed_url_typed_in_the_wrong_place_is_not_echoed(sims, tmp_path: Path) -> None:
    """Usage errors and "no database called ..." repeat what was typed: the Reply the
    pipeline answers (before any transport renders it) shows the URL's place, never its
    signature, credential or session token; nor does the audit."""
    console, v1, typedb = sims
    db = tmp_path / "w.sqlite3"
    bot = build_bot(
        three_provider_config(console.base_url, v1.base_url + "/v1", typedb.base_url, db),
        environ=environ(),
    )
    try:
        bot.services.permissions.grant(DEV, "console", "development", Role.ADMIN)
        bot.services.permissions.grant(DEV, "legacy", "*", Role.ADMIN)
        replies = [
            await run(bot, f"show sandbox-db {PRESIGNED}"),
            await run(bot, f"restart {PRESIGNED}"),
        ]
        shown = "\n".join(r.model_dump_json() for r in replies)
        assert "unexpected extra words" in shown and "no database called" in shown
        assert shown.count("my-bucket.s3.eu-west-1.amazonaws.com/graphdb.zip") == 2
        assert_clean("replies", shown, URL_SECRETS)
        assert_clean("audit", audit_text(bot), URL_SECRETS)
    finally:
        await bot.aclose()


# -- only secrets are redacted; the audit of a database holds every row about it --------------


@pytest.mark.parametrize(
    ("username", "password"),
    [("admin", "password"), ("reporting-svc", TDB_PASSWORD)],
    ids=["typedb-defaults", "long-username"],
)
async def test_identifiers_and_common_words_are_never_redacted(
    tmp_path: Path, username: str, password: str
) -> None:
    """TypeDB's default credentials (admin/password) or a long username: role names,
    usernames and the word "password" stay in replies and audit rows."""
    typedb = TypeDBSimulator(username=username, password=password)
    await typedb.start("127.0.0.1", 0)
    config = Config(
        bot=BotSettings(admins=(ADMIN,), database=str(tmp_path / "i.sqlite3")),
        providers=(
            TypeDBProvider(
                name="graph",
                kind="typedb",
                base_url=typedb.base_url,
                username_env="T_TDB_USER",
                password_env="T_TDB_PASS",
            ),
        ),
    )
    bot = build_bot(config, environ={"T_TDB_USER": username, "T_TDB_PASS": password})
    try:
        granted = await run(bot, f"grant graph graph admin channel={ADM}", user=ADMIN)
        assert granted.status == "ok", granted.text
        users = await run(bot, "users", channel=ADM)
        prompt = await run(bot, "user add carol", channel=ADM)
        replies = [granted, users, prompt]
        shown = "\n".join(r.model_dump_json() for r in replies)
        assert "is now admin on graph" in shown
        assert [username] == [row[0] for row in users.tables[0].rows]
        assert "Enter the password in the private prompt" in prompt.text
        audit = audit_text(bot)
        assert "is now admin on graph" in audit and f'"user": "{ADMIN}"' in audit
        for where, text in (("replies", shown), ("audit", audit)):
            assert "[REDACTED]" not in text, where
    finally:
        await bot.aclose()
        await typedb.stop()


async def test_the_audit_of_a_database_holds_every_row_about_it(sims, tmp_path: Path) -> None:
    """`graphops audit --db sandbox-db`: the commands (refused ones too), the decisions
    (denied before any request, denied by role, allowed), the API calls and the outcome."""
    console, v1, typedb = sims
    db = tmp_path / "a.sqlite3"
    bot = build_bot(
        three_provider_config(console.base_url, v1.base_url + "/v1", typedb.base_url, db),
        environ=environ(),
    )
    try:
        store = bot.services.permissions
        store.grant(DEV, "console", "development", Role.ADMIN)
        store.grant("C0VIEW", "console", "development", Role.VIEWER)
        store.grant("C0STAGE", "console", "staging", Role.OPERATOR)
        refused_unbound = await run(bot, "restart sandbox-db", channel="C0NOBODY")
        refused_viewer = await run(bot, "restart sandbox-db", channel="C0VIEW")
        refused_env = await run(bot, "restart sandbox-db", channel="C0STAGE")
        assert {r.status for r in (refused_unbound, refused_viewer, refused_env)} <= {
            "denied",
            "error",
        }
        assert (await run(bot, "show sandbox-db", channel="C0VIEW")).status == "ok"
        assert (await run(bot, "restart sandbox-db")).status == "ok"
        assert (await run(bot, "show orders-db env=staging", channel="C0STAGE")).status == "ok"
    finally:
        await bot.aclose()
    env = {**environ(), "GRAPHOPS_CONFIG": str(audit_cli_config(tmp_path, db))}
    done = cli(env, "audit", "--db", "sandbox-db", "--json", "--limit", "1000")
    assert done.returncode == 0, done.stderr
    found = [json.loads(line) for line in done.stdout.splitlines()]
    assert {row["database"] for row in found} == {"sandbox-db"}
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for row in found:
        by_kind.setdefault(row["kind"], []).append(row)
    assert {"command", "decision", "api_call", "operation"} <= set(by_kind), sorted(by_kind)
    commands = {(row["channel"], row["verb"]) for row in by_kind["command"]}
    for channel in ("C0NOBODY", "C0VIEW", "C0STAGE", DEV):
        assert (channel, "restart") in commands, (channel, commands)
    denied = {row["channel"] for row in by_kind["decision"] if row["outcome"] == "denied"}
    assert {"C0NOBODY", "C0VIEW"} <= denied, denied
    assert any("/restart" in row["verb"] for row in by_kind["api_call"])
    assert {"show", "restart"} == {row["verb"] for row in by_kind["operation"]}
    # a row about another database is not in it
    assert all("orders-db" not in json.dumps(row) for row in found)


def test_graphops_audit_shows_old_rows_redacted_with_the_configs_secrets(tmp_path: Path) -> None:
    """Rows written raw (before a secret was known, or by an older version) are shown by
    `graphops audit --db <database>` redacted like new ones: the config's credentials, a
    signed URL's signature, a secret-named detail; identifiers and words stay."""
    import sqlite3

    import sqlite_utils

    from permissions.audit import AuditLog

    db = tmp_path / "old.sqlite3"
    AuditLog(sqlite_utils.Database(db))  # the tables, as `serve` leaves them
    signed = f"https://b.s3.amazonaws.com/g.zip?X-Amz-Expires=60&X-Amz-Signature={AMZ_SIGNATURE}"
    with sqlite3.connect(db) as conn:
        conn.execute(
            "INSERT INTO audit (ts, iso, kind, user, channel, database, verb, outcome, detail) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                time.time(),
                "2026-01-01T00:00:00.000+00:00",
                "operation",
                ALICE,
                DEV,
                "sandbox-db",
                "import",
                f"api_error: 401 token {CONSOLE_SECRET} bound to development as admin",
                json.dumps(
                    {"text": f"import sandbox-db {signed}", "client_secret": "raw-old-secret"}
                ),
            ],
        )
    config = tmp_path / "graphops.toml"
    config.write_text(f"""
[bot]
database = "{db}"

[[providers]]
name = "console"
kind = "graphenedb"
base_url = "http://127.0.0.1:9"
client_id_env = "T_CLIENT_ID"
client_secret_env = "T_CLIENT_SECRET"
""")
    env = {**environ(), "GRAPHOPS_CONFIG": str(config)}
    for fmt in ((), ("--json",)):
        done = cli(env, "audit", "--db", "sandbox-db", *fmt)
        assert done.returncode == 0, done.stderr
        shown = done.stdout + done.stderr
        assert_clean(
            f"graphops audit {fmt}", shown, [CONSOLE_SECRET, AMZ_SIGNATURE, "raw-old-secret"]
        )
        assert "bound to development as admin" in shown and "b.s3.amazonaws.com/g.zip" in shown
