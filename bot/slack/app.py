"""`build_app`: the Bolt AsyncApp of graphops, with its listener modules registered."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot.slack import actions, commands, home, secret_prompt, views
from bot.slack.metrics import Metrics
from bot.slack.notifier import add_rate_limit_retries
from bot.slack.runtime import OOPS, SlackRuntime, tracked_count
from bot.wiring import Bot
from operations.notify import TrackerPort

log = logging.getLogger("graphops.slack")

RUNTIME_KEY = "graphops_runtime"


def build_app(
    bot: Bot,
    *,
    signing_secret: str,
    token: str,
    client: AsyncWebClient | None = None,
    tracker: TrackerPort | None = None,
    page_rows: int = 40,
) -> AsyncApp:
    """The Bolt app over `bot`: slash command, buttons, modal, App Home.

    `client` (default: Slack's Web API with `token`) gets 429 retries. The
    listeners' shared state is `runtime(app)`. Metrics of API calls are fed by
    `bot.call_listeners`.
    """
    web = client if client is not None else AsyncWebClient(token=token)
    if web.token is None:
        web.token = token
    add_rate_limit_retries(web)
    metrics = Metrics(tracked=lambda: tracked_count(tracker))
    bot.call_listeners.append(metrics.api_call)
    rt = SlackRuntime(bot, web, metrics=metrics, tracker=tracker, page_rows=page_rows)
    app = AsyncApp(
        signing_secret=signing_secret,
        client=web,
        logger=logging.getLogger("graphops.slack.bolt"),
        name="graphops",
    )
    for module in (commands, actions, views, home, secret_prompt):
        module.register(app, rt)

    async def on_error(error: Exception, body: dict[str, Any]) -> None:
        log.error(bot.redact(f"unhandled error in a Slack listener: {error!r}"))
        user = (body.get("user") or {}).get("id") or body.get("user_id")
        channel = (body.get("channel") or {}).get("id") or body.get("channel_id")
        if user and channel:
            await rt.say(str(channel), str(user), OOPS, status="error")

    app.error(on_error)
    setattr(app, RUNTIME_KEY, rt)
    return app


def runtime(app: AsyncApp) -> SlackRuntime:
    """The shared state of an app made by `build_app` (metrics, pages, notifier...)."""
    rt = getattr(app, RUNTIME_KEY, None)
    if not isinstance(rt, SlackRuntime):
        raise TypeError("this app was not made by build_app")
    return rt
