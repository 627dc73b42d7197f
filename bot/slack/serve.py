"""`serve`: run the Slack bot until SIGTERM or SIGINT (`graphops serve`).

Secrets come from the environment variables named in `[slack]` (values are
never printed). With an app token the bot uses Socket Mode (no public URL; it
connects in the background and reconnects with backoff, see bot/slack/socket.py);
otherwise Slack posts to `POST /slack/events` on `slack.port`. Either way the
same port serves `/healthz` and `/metrics`.

At start, what a stopped process left unfinished is taken up (bot/slack/recovery.py:
approved work resumed or ended, cards and threads told, accepted requests answered),
once the store can be written. Start-up itself writes nothing when the store is
up to date, so `serve` listens (and `/healthz` answers 503) while another process
holds the store's write lock; a new store or a migration waits for it (up to 30 s).
On SIGTERM the bot stops taking work (new requests are answered "restarting") and
lets running work finish for at most `[bot] drain_seconds` (30 by default); what is
still running then is left for the next start. Every other step of the shutdown is
bounded, so an idle bot stops within seconds, connected or not.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import aiohttp
from slack_sdk.web.async_client import AsyncWebClient

from bot.config import Config, slack_secrets
from bot.logs import setup_logging
from bot.slack.app import build_app, runtime
from bot.slack.notifier import SlackNotifier
from bot.slack.recovery import start_recovery
from bot.slack.runtime import SocketModeStatus
from bot.slack.server import SlackServer
from bot.slack.socket import SocketModeHandler
from bot.slack.sweep import DEFAULT_SWEEP_SECONDS
from bot.store import Checkpointer
from bot.wiring import (
    Bot,
    build_bot,
    build_retention,
    build_scheduler,
    build_tracker,
    build_watcher,
)
from operations.notify import TrackerPort
from operations.schedules import Scheduler
from operations.tracker import Tracker

log = logging.getLogger("graphops.slack")

TrackerFactory = Callable[[Bot, SlackNotifier], TrackerPort]
STEP_SECONDS = 3.0  # each shutdown step; SIGTERM to exit stays well under 10 s


def web_client(config: Config, token: str) -> AsyncWebClient:
    """The Web API client: Slack's, or the stand-in at `slack.api_url`, over one aiohttp
    session for every call (kept-alive connections; without `session=` slack_sdk opens
    a session, hence a TCP and TLS connection, per call: async_internal_utils.py
    `_request_with_session`). Call from the running loop; close it with
    `close_web_client`."""
    session = aiohttp.ClientSession()
    if config.slack.api_url:
        return AsyncWebClient(
            token=token, base_url=config.slack.api_url.rstrip("/") + "/", session=session
        )
    return AsyncWebClient(token=token, session=session)


async def close_web_client(client: AsyncWebClient) -> None:
    """Close the shared session of a client made by `web_client` (idempotent)."""
    if client.session is not None and not client.session.closed:
        await client.session.close()


async def _bounded(what: str, step: Awaitable[Any], seconds: float = STEP_SECONDS) -> None:
    try:
        await asyncio.wait_for(step, seconds)
    except TimeoutError:
        log.warning("shutdown: %s did not finish in %.0f s; going on", what, seconds)
    except Exception as exc:
        log.warning("shutdown: %s failed: %s", what, type(exc).__name__)


async def serve(
    config: Config,
    environ: Mapping[str, str],
    *,
    host: str = "0.0.0.0",
    sweep_seconds: float = DEFAULT_SWEEP_SECONDS,
    make_tracker: TrackerFactory | None = None,  # default: operations' Tracker
    stop: asyncio.Event | None = None,
    ping_interval: float = 10.0,
) -> None:
    """Run the Slack transport until SIGTERM/SIGINT (or until `stop` is set)."""
    token, signing, app_token = slack_secrets(config, environ)
    bot = build_bot(config, environ=environ)
    watcher = build_watcher(bot)
    retention = build_retention(bot)
    checkpointer = Checkpointer(bot.db, config.bot.database)  # WAL syncs off the loop
    setup_logging()
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    socket_mode: SocketModeHandler | None = None
    tracker: TrackerPort | None = None
    scheduler: Scheduler | None = None
    server: SlackServer | None = None
    client: AsyncWebClient | None = None
    try:
        client = web_client(config, token)
        notifier = SlackNotifier(client)
        tracker = (make_tracker or build_tracker)(bot, notifier)
        scheduler = (
            build_scheduler(bot, notifier, tracker) if isinstance(tracker, Tracker) else None
        )
        app = build_app(bot, signing_secret=signing, token=token, client=client, tracker=tracker)
        rt = runtime(app)
        notifier.directory = rt.directory
        start_tracker = getattr(tracker, "start", None)
        if callable(start_tracker):
            start_tracker()  # picks up operations left unfinished by a previous run
        problem = rt.inbox.spool_problem()
        if problem is not None:
            log.error(
                "%s: requests acked while another process holds the store's lock are kept "
                "in memory only (a kill loses them); remove it",
                problem,
            )
        if scheduler is not None:
            scheduler.start()  # runs (or reports skipped) what was missed while down
        watcher.start()
        retention.start()  # prunes past retention; audit rows of background polls
        checkpointer.start()
        if app_token:
            status = SocketModeStatus()
            runtime(app).socket_mode = status
            socket_mode = SocketModeHandler(app, app_token, status, ping_interval=ping_interval)
        server = SlackServer(
            app,
            sweep_seconds=sweep_seconds,
            socket_healthy=socket_mode.healthy if socket_mode else None,
        )
        url = await server.start(host, config.slack.port)
        # approved work, cards and accepted requests a previous run left (once the store
        # can be written: another process may hold it; Slack is answered meanwhile)
        start_recovery(rt)
        bot.services.resolver.start_refresh(  # names -> ids warm from the start
            bot.config.bot.name_refresh_seconds, list(bot.services.providers.values())
        )
        # What start-up built (modules, config, the app) lives as long as the process:
        # moved out of the collector's sight, full collections stay short (they scanned
        # it all, holding the event loop and the acks behind them for 100s of ms).
        gc.freeze()
        if socket_mode is not None:
            socket_mode.start_connecting()
            log.info("graphops: Socket Mode; health and metrics on %s", url)
        else:
            log.info("graphops: listening for Slack on %s/slack/events", url)
        await stop.wait()
        drain = config.bot.drain_seconds
        log.info("graphops: stopping; running work may finish for %.0f s", drain)
        rt.draining = True
        if not await rt.idle(drain):
            log.warning(
                "graphops: work still running after %.0f s is left for the next start", drain
            )
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(sig)
        if socket_mode is not None:
            await _bounded("Socket Mode", socket_mode.close())
        if server is not None:
            await _bounded("the HTTP server", server.stop(seconds=STEP_SECONDS, idle_seconds=0))
        if scheduler is not None:
            await _bounded("the scheduler", scheduler.stop())
        await _bounded("the watcher", watcher.stop())
        await _bounded("the retention loop", retention.stop())
        await _bounded("the store's checkpoints", checkpointer.stop())
        stop_tracker = getattr(tracker, "stop", None)
        if callable(stop_tracker):
            await _bounded("the tracker", stop_tracker())
        await _bounded("the bot", bot.aclose())
        if client is not None:  # last: the tracker and the listeners post through it
            await _bounded("the Slack session", close_web_client(client))
