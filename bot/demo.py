"""`graphops demo`: the shell on the embedded simulators with a demo policy.

No account and no Slack: a Console API simulator runs in-process on loopback,
the SQLite file lives in a temporary folder, and the policy gives three
channels different rights so every path can be tried in a minute.
"""

from __future__ import annotations

import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from bot.config import (
    BotSettings,
    Config,
    ConsoleProvider,
    ImportSettings,
    TypeDBProvider,
    V1Provider,
)
from bot.shell import ShellSession, colour_wanted, run_lines
from bot.wiring import Bot, build_bot
from core.errors import UserError
from permissions.roles import Role
from simulators.suite import SimulatorSuite

DEFAULT_STEP_SECONDS = 1.5  # how long each step of a simulated operation takes

NAMES = {
    "C0DEV": "dev-db",
    "C0PROD": "prod-db",
    "C0ONCALL": "prod-oncall",
    "C0INCIDENT": "db-incidents",
    "U0ALICE": "alice",
    "U0BOB": "bob",
    "U0ADMIN": "admin",
}

BANNER = """graphops demo: simulated GrapheneDB (Console API and legacy v1) and TypeDB, no Slack.
You are @alice in #dev-db: admin on development, operator on staging, operator on the v1
account `legacy`, admin on the TypeDB server `graph`.
Channels: #dev-db, #prod-db (viewer on production), #prod-oncall (admin on production,
approver @bob). @admin is a bot admin.

Try:  help | envs | list | show orders-db | restart sandbox-db | backups legacy-orders
      terminate sandbox-db   (then approve it: copy the [Approve] line)
      :channel prod-db  then  pause orders-db   (refused: viewer)
      :channel prod-oncall  then  terminate orders-db env=production
      :user bob  then the [Approve] line   (alice cannot approve her own in production)
      Tab completes, Ctrl-C clears the line, :help for shell commands, Ctrl-D to leave."""


@dataclass
class Demo:
    """A running demo: the simulators and the bot over them."""

    simulators: SimulatorSuite
    bot: Bot
    tmp: tempfile.TemporaryDirectory[str]

    async def aclose(self) -> None:
        await self.bot.aclose()
        await self.simulators.stop()
        self.tmp.cleanup()


def apply_demo_policy(bot: Bot) -> None:
    """Bindings, approvers and incident channel of the demo."""
    store = bot.services.permissions
    store.grant("C0DEV", "console", "development", Role.ADMIN, by="demo")
    store.grant("C0DEV", "console", "staging", Role.OPERATOR, by="demo")
    store.grant("C0PROD", "console", "production", Role.VIEWER, by="demo")
    store.grant("C0ONCALL", "console", "production", Role.ADMIN, by="demo")
    store.set_approvers("C0ONCALL", "console", "production", ["U0BOB"])
    store.set_incident_channel("console", "*", "C0INCIDENT")
    store.grant("C0DEV", "legacy", "*", Role.OPERATOR, by="demo")
    store.grant("C0DEV", "graph", "*", Role.ADMIN, by="demo")
    store.grant("C0PROD", "legacy", "*", Role.VIEWER, by="demo")
    store.grant("C0PROD", "graph", "*", Role.VIEWER, by="demo")
    store.set_incident_channel("legacy", "*", "C0INCIDENT")


async def start_demo(step_seconds: float = DEFAULT_STEP_SECONDS) -> Demo:
    """Start the simulators and a bot wired to them, with the demo policy."""
    simulators = SimulatorSuite(step_seconds=step_seconds)
    await simulators.start()
    tmp = tempfile.TemporaryDirectory(prefix="graphops-demo-")
    config = Config(
        bot=BotSettings(admins=("U0ADMIN",), database=str(Path(tmp.name) / "demo.sqlite3")),
        imports=ImportSettings(allow_http_loopback=True),  # a local `python -m http.server`
        providers=(
            ConsoleProvider(
                name="console",
                kind="graphenedb",
                base_url=simulators.console.base_url,
                client_id_env="GRAPHOPS_DEMO_CLIENT_ID",
                client_secret_env="GRAPHOPS_DEMO_CLIENT_SECRET",
            ),
            V1Provider(
                name="legacy",
                kind="graphenedb-v1",
                base_url=simulators.v1.base_url + "/v1",
                api_key_env="GRAPHOPS_DEMO_API_KEY",
            ),
            TypeDBProvider(
                name="graph",
                kind="typedb",
                base_url=simulators.typedb.base_url,
                username_env="GRAPHOPS_DEMO_TYPEDB_USER",
                password_env="GRAPHOPS_DEMO_TYPEDB_PASSWORD",
            ),
        ),
    )
    environ = {
        **os.environ,
        "GRAPHOPS_DEMO_CLIENT_ID": simulators.console.client_id,
        "GRAPHOPS_DEMO_CLIENT_SECRET": simulators.console.client_secret,
        "GRAPHOPS_DEMO_API_KEY": simulators.v1.api_key,
        "GRAPHOPS_DEMO_TYPEDB_USER": simulators.typedb_username,
        "GRAPHOPS_DEMO_TYPEDB_PASSWORD": simulators.typedb_password,
    }
    bot = build_bot(config, environ=environ)
    apply_demo_policy(bot)
    return Demo(simulators, bot, tmp)


async def run_demo(
    lines: list[str], user: str, channel: str, step_seconds: float = DEFAULT_STEP_SECONDS
) -> int:
    """Run the given lines (or an interactive prompt when there are none)."""
    demo = await start_demo(step_seconds)
    try:
        try:
            session = ShellSession(
                demo.bot, user=user, channel=channel, names=NAMES, colour=colour_wanted()
            )
        except UserError as exc:
            print(f"graphops demo: {exc}", file=sys.stderr)
            return 2
        return await run_lines(session, lines, banner=BANNER)
    finally:
        await demo.aclose()
