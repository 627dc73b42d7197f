"""Helpers of the reliability suite (not a test module)."""

from __future__ import annotations

import asyncio
import os
import random
import re
import socket
from pathlib import Path

from aiohttp import web

from bot.config import BotSettings, Config, ConsoleProvider, OperationsSettings
from core.invocation import Invocation
from core.reply import Reply
from simulators.graphenedb import ConsoleSimulator
from tests.waiting import until

ALICE, BOB, ADMIN = "U0ALICE", "U0BOB", "U0ADMIN"
DEV, PROD, ONCALL = "C0DEV", "C0PROD", "C0ONCALL"


def rel_seed() -> int:
    """The seed of this run: GRAPHOPS_REL_SEED, else a fresh one (printed by callers)."""
    given = os.environ.get("GRAPHOPS_REL_SEED")
    return int(given) if given else random.SystemRandom().randrange(1, 2**31)


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value else default


def env_float(name: str, default: float) -> float:
    value = os.environ.get(name)
    return float(value) if value else default


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class SlowConsole(ConsoleSimulator):
    """A Console simulator that can hold the answer of chosen requests for a while
    (a timeout seen by the client) and counts every request reaching a handler."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.slow: list[tuple[str, str, float, int]] = []  # method, regex, seconds, times
        self.arrived: list[tuple[str, str]] = []

    def hold_next(self, method: str, path_regex: str, seconds: float, times: int = 1) -> None:
        self.slow.append((method, path_regex, seconds, times))

    async def before_handler(self, request: web.Request) -> None:
        self.arrived.append((request.method, request.path))
        for index, (method, regex, seconds, times) in enumerate(self.slow):
            if method == request.method and re.search(regex, request.path) and times > 0:
                self.slow[index] = (method, regex, seconds, times - 1)
                await asyncio.sleep(seconds)
                break
        await super().before_handler(request)


def console_config(
    base_url: str,
    db_path: Path,
    *,
    timeout: float = 15.0,
    snapshot_before_destroy: str = "never",
    id_env: str = "T_CLIENT_ID",
    secret_env: str = "T_CLIENT_SECRET",
) -> Config:
    return Config(
        bot=BotSettings(admins=(ADMIN,), database=str(db_path)),
        operations=OperationsSettings(snapshot_before_destroy=snapshot_before_destroy),  # type: ignore[arg-type]
        providers=(
            ConsoleProvider(
                name="console",
                kind="graphenedb",
                base_url=base_url,
                client_id_env=id_env,
                client_secret_env=secret_env,
                timeout_seconds=timeout,
            ),
        ),
    )


async def run(bot, line: str, user: str = ALICE, channel: str = DEV) -> Reply:  # type: ignore[no-untyped-def]
    return await bot.run(Invocation(user=user, channel=channel, text=line))


def approve_line(reply: Reply) -> str:
    (action,) = [a for a in reply.actions if a.action_id == "approval.approve"]
    return action.command


def text_of(reply: Reply) -> str:
    parts = [reply.title or "", reply.text, *(f"{a}: {b}" for a, b in reply.fields)]
    for table in reply.tables:
        parts.extend(" | ".join(row) for row in table.rows)
    return "\n".join(parts)


# -- the real Bolt app with a tracker, over a Console simulator on the real clock ----------


class SlackStack:
    """Console simulator + bot + tracker + Bolt app over HTTP + Slack stand-in."""

    def __init__(self, tmp_path: Path, *, step_seconds: float = 0.2, environ=None) -> None:  # type: ignore[no-untyped-def]
        self.tmp_path = tmp_path
        self.step_seconds = step_seconds
        self.environ = environ

    async def start(self) -> SlackStack:
        import httpx
        from slack_sdk.web.async_client import AsyncWebClient

        from bot.demo import apply_demo_policy
        from bot.slack.app import build_app, runtime
        from bot.slack.notifier import SlackNotifier
        from bot.slack.server import SlackServer
        from bot.wiring import build_bot, build_tracker
        from simulators.slack import SlackStandIn
        from tests.bot.slack.slack_support import BOT_TOKEN, SIGNING_SECRET, SlackClient
        from tests.support import ENVIRON, SECRET, SECRET_ID

        self.sim = ConsoleSimulator(
            client_id=SECRET_ID, client_secret=SECRET, step_seconds=self.step_seconds
        )
        await self.sim.start()
        config = console_config(self.sim.base_url, self.tmp_path / "bot.sqlite3")
        config = config.model_copy(
            update={
                "operations": OperationsSettings(
                    snapshot_before_destroy="never",
                    poll_first_seconds=0.05,
                    poll_factor=1.2,
                    poll_cap_seconds=0.2,
                )
            }
        )
        self.bot = build_bot(config, environ=self.environ or ENVIRON)
        apply_demo_policy(self.bot)
        self.standin = SlackStandIn(token=BOT_TOKEN, channels=["C0DEV", "C0ONCALL"])
        await self.standin.start()
        self.client = AsyncWebClient(token=BOT_TOKEN, base_url=self.standin.api_url)
        self.tracker = build_tracker(self.bot, SlackNotifier(self.client))
        self.app = build_app(
            self.bot,
            signing_secret=SIGNING_SECRET,
            token=BOT_TOKEN,
            client=self.client,
            tracker=self.tracker,
        )
        self.rt = runtime(self.app)
        self.tracker.start()
        self.server = SlackServer(self.app, sweep_seconds=None)
        url = await self.server.start()
        self.http = httpx.AsyncClient(timeout=30.0)
        self.slack = SlackClient(url, self.http)
        return self

    async def stop(self) -> None:
        await self.server.stop()
        await self.tracker.stop()
        await self.http.aclose()
        await self.bot.aclose()
        await self.standin.stop()
        await self.sim.stop()

    def ok_calls(self, method: str):  # type: ignore[no-untyped-def]
        return [c for c in self.standin.calls_to(method) if c.status == 200]

    def tracked_total(self) -> int:
        row = self.bot.db.execute("SELECT COUNT(*) FROM tracked_operations").fetchone()
        return int(row[0])

    def busy(self) -> bool:
        """Whether work started by a Slack request may still be running: a lazy listener
        (Bolt runs each as an asyncio task of `to_runnable_function`, see
        slack_bolt/lazy_listener/asyncio_runner.py) or a task the runtime spawned."""
        lazy = [
            task
            for task in asyncio.all_tasks()
            if not task.done()
            and getattr(task.get_coro(), "__qualname__", "") == "to_runnable_function"
        ]
        return bool(lazy or self.rt.tasks)

    async def idle(self, timeout: float = 30) -> None:
        """Wait until no work started by the requests posted so far is running.

        Bolt starts a request's lazy listeners before it answers the request, so
        once this returns, nothing those requests started can still call an API:
        what has not happened by then will not happen.
        """
        await until(lambda: not self.busy(), timeout=timeout, what="Slack listeners to finish")

    async def settle(self, tracked: int, timeout: float = 60) -> None:
        """Wait until `tracked` operations were tracked, finished and fully reported."""
        await until(lambda: self.tracked_total() >= tracked, timeout=timeout, what="tracked")
        assert await self.tracker.wait_idle(timeout=timeout), "tracker not idle"
