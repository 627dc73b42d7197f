"""`serve`: run the Slack bot until SIGTERM or SIGINT (`graphops serve`).

Secrets come from the environment variables named in `[slack]` (values are
never printed). With an app token the bot uses Socket Mode (no public URL);
otherwise Slack posts to `POST /slack/events` on `slack.port`. Either way the
same port serves `/healthz` and `/metrics`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable, Mapping

from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_sdk.web.async_client import AsyncWebClient

from bot.config import Config, ConfigError
from bot.logs import setup_logging
from bot.slack.app import build_app
from bot.slack.notifier import SlackNotifier
from bot.slack.server import SlackServer
from bot.slack.sweep import DEFAULT_SWEEP_SECONDS
from bot.wiring import Bot, build_bot, build_scheduler, build_tracker, build_watcher
from operations.notify import TrackerPort
from operations.schedules import Scheduler
from operations.tracker import Tracker

log = logging.getLogger("graphops.slack")

TrackerFactory = Callable[[Bot, SlackNotifier], TrackerPort]


def slack_secrets(config: Config, environ: Mapping[str, str]) -> tuple[str, str, str]:
    """(bot token, signing secret, app token or ""); ConfigError names what is missing.

    The signing secret is needed only without an app token (HTTP mode).
    """
    settings = config.slack
    token = environ.get(settings.bot_token_env, "")
    app_token = environ.get(settings.app_token_env, "")
    signing = environ.get(settings.signing_secret_env, "")
    missing = [settings.bot_token_env] if not token else []
    if not app_token and not signing:
        missing.append(settings.signing_secret_env)
    if missing:
        raise ConfigError(
            "slack: environment variable(s) not set or empty: "
            + ", ".join(missing)
            + (
                ""
                if app_token
                else f" (or set {settings.app_token_env} for Socket Mode, "
                "which needs no signing secret)"
            )
        )
    return token, signing, app_token


def web_client(config: Config, token: str) -> AsyncWebClient:
    """The Web API client: Slack's, or the stand-in at `slack.api_url`."""
    if config.slack.api_url:
        return AsyncWebClient(token=token, base_url=config.slack.api_url.rstrip("/") + "/")
    return AsyncWebClient(token=token)


async def serve(
    config: Config,
    environ: Mapping[str, str],
    *,
    host: str = "0.0.0.0",
    sweep_seconds: float = DEFAULT_SWEEP_SECONDS,
    make_tracker: TrackerFactory | None = None,  # default: operations' Tracker
    stop: asyncio.Event | None = None,
) -> None:
    """Run the Slack transport until SIGTERM/SIGINT (or until `stop` is set)."""
    token, signing, app_token = slack_secrets(config, environ)
    bot = build_bot(config, environ=environ)
    watcher = build_watcher(bot)
    setup_logging(bot.redact)
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    socket_mode: AsyncSocketModeHandler | None = None
    tracker: TrackerPort | None = None
    scheduler: Scheduler | None = None
    server: SlackServer | None = None
    try:
        client = web_client(config, token)
        notifier = SlackNotifier(client)
        tracker = (make_tracker or build_tracker)(bot, notifier)
        scheduler = (
            build_scheduler(bot, notifier, tracker) if isinstance(tracker, Tracker) else None
        )
        app = build_app(bot, signing_secret=signing, token=token, client=client, tracker=tracker)
        start_tracker = getattr(tracker, "start", None)
        if callable(start_tracker):
            start_tracker()  # picks up operations left unfinished by a previous run
        if scheduler is not None:
            scheduler.start()  # runs (or reports skipped) what was missed while down
        watcher.start()
        server = SlackServer(app, sweep_seconds=sweep_seconds)
        url = await server.start(host, config.slack.port)
        if app_token:
            socket_mode = AsyncSocketModeHandler(app, app_token)
            await socket_mode.connect_async()
            log.info("graphops: Socket Mode connected; health and metrics on %s", url)
        else:
            log.info("graphops: listening for Slack on %s/slack/events", url)
        await stop.wait()
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(sig)
        if socket_mode is not None:
            await socket_mode.close_async()
        if server is not None:
            await server.stop()
        if scheduler is not None:
            await scheduler.stop()
        await watcher.stop()
        stop_tracker = getattr(tracker, "stop", None)
        if callable(stop_tracker):
            await stop_tracker()
        await bot.aclose()
