"""`build_app`: the Bolt AsyncApp of graphops, with its listener modules registered."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.authorization import AuthorizeResult
from slack_bolt.error import BoltUnhandledRequestError
from slack_sdk.web.async_client import AsyncWebClient

from bot.slack import actions, commands, home, messages, secret_prompt, views
from bot.slack.edge import Origin
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
    """The Bolt app over `bot`: slash command, buttons and menus, modals, App Home, and
    commands typed as mentions or in direct messages.

    `client` (default: Slack's Web API with `token`) gets graphops' retries. The
    listeners' shared state is `runtime(app)`. Metrics of API calls are fed by
    `bot.call_listeners`. Requests no listener handles are logged in one line
    (their type, never their body) and answered 404.
    """
    web = client if client is not None else AsyncWebClient(token=token)
    if web.token is None:
        web.token = token
    add_rate_limit_retries(web)
    metrics = Metrics(tracked=lambda: tracked_count(tracker))
    bot.call_listeners.append(metrics.api_call)
    rt = SlackRuntime(
        bot,
        web,
        metrics=metrics,
        tracker=tracker,
        page_rows=page_rows,
        signing_secret=signing_secret,
    )
    # The token reaches Bolt through `authorize` (one_auth_test), not through the client:
    # given both, Bolt ignores the client's and logs a warning at every start.
    bot_token, web.token = web.token, None
    try:
        app = AsyncApp(
            signing_secret=signing_secret,
            client=web,
            authorize=one_auth_test(web, bot_token),  # type: ignore[arg-type]  # None: refused
            user_facing_authorize_error_message=AUTHORIZE_FAILED,
            logger=logging.getLogger("graphops.slack.bolt"),
            name="graphops",
            raise_error_for_unhandled_request=True,
            # Every listener starts its work as a task and acks at once (rt.accept /
            # rt.work), so the HTTP response can go out as soon as the listener returns;
            # by default Bolt runs the listener as a task and polls for its ack every 10 ms
            # (slack_bolt/listener/asyncio_runner.py), which is the floor of every ack.
            process_before_response=True,
            # The signature is checked once, by SlackServer (bot/slack/server.py), the only
            # HTTP entry, before the body is read; Socket Mode requests carry none.
            request_verification_enabled=False,
        )
    finally:
        web.token = bot_token
    for module in (commands, actions, views, home, secret_prompt, messages):
        module.register(app, rt)
    # Scheduled runs learn their owner's user groups from the same cache.
    bot.services.memberships = lambda user, groups: rt.groups.of(user, groups)

    async def on_error(error: Exception, body: dict[str, Any]) -> None:
        kind = body.get("type") or ("slash_command" if "command" in body else "unknown")
        if isinstance(error, BoltUnhandledRequestError):
            log.warning("no listener for a %s request; answered 404", str(kind)[:40])
            return
        log.error(bot.redact(f"unhandled error in a Slack listener ({kind}): {error!r}"))
        user = (body.get("user") or {}).get("id") if isinstance(body.get("user"), dict) else None
        user = user or body.get("user_id")
        if isinstance(user, str) and user:
            channel = body.get("channel_id") or ""
            if isinstance(body.get("channel"), dict):
                channel = body["channel"].get("id") or ""
            origin = Origin(user=user, channel=str(channel))
            rt.work(None, rt.delivery.say(origin, OOPS, status="error"))

    app.error(on_error)
    setattr(app, RUNTIME_KEY, rt)
    return app


AUTH_TEST_SECONDS = 2.0  # how long a request waits for auth.test (Slack wants an ack in 3 s)
AUTHORIZE_FAILED = (
    "graphops could not confirm its Slack installation just now (Slack's auth.test failed "
    "or was slow); nothing was done. Try again in a moment."
)


def one_auth_test(
    client: AsyncWebClient, token: str | None
) -> Callable[[], Awaitable[AuthorizeResult | None]]:
    """Bolt's `authorize` for graphops' one workspace: the bot token, and who installed it
    from one `auth.test` (docs.slack.dev/reference/methods/auth.test), shared by every
    request that arrives before it answers, then kept. Bolt's own single-workspace
    authorization calls `auth.test` for each request until one call has answered, so the
    first burst after a start made one call per request and every ack waited for its own
    (found by an attack: with Slack answering 429, acks took 3.1-4.0 s, past Slack's 3 s).
    A failed call is not kept: the next request asks again. A request waits at most
    `AUTH_TEST_SECONDS`, then is refused with `AUTHORIZE_FAILED` (the call goes on for
    the next ones). (A function, not an object: Bolt passes an `authorize` the
    arguments its signature names.)"""
    answer: asyncio.Future[Any] | None = None

    async def authorize() -> AuthorizeResult | None:
        nonlocal answer
        if answer is None or (answer.done() and (answer.cancelled() or answer.exception())):
            answer = asyncio.ensure_future(client.auth_test(token=token))
        try:  # bounded: the ack must leave within Slack's 3 s (the call itself goes on)
            response = await asyncio.wait_for(asyncio.shield(answer), AUTH_TEST_SECONDS)
        except TimeoutError:
            log.warning(
                "auth.test gave no answer within %.1f s; request refused", AUTH_TEST_SECONDS
            )
            return None  # Bolt answers AUTHORIZE_FAILED
        except Exception as exc:  # SlackApiError, a connection error
            log.warning("auth.test failed; request refused: %s", type(exc).__name__)
            return None
        return AuthorizeResult.from_auth_test_response(bot_token=token, auth_test_response=response)

    return authorize


def runtime(app: AsyncApp) -> SlackRuntime:
    """The shared state of an app made by `build_app` (metrics, pages, notifier...)."""
    rt = getattr(app, RUNTIME_KEY, None)
    if not isinstance(rt, SlackRuntime):
        raise TypeError("this app was not made by build_app")
    return rt
