"""What the Slack listeners share: the bot, the Web API client, the notifier and the
delivery (bot/slack/delivery.py decides where a Reply goes), and how a command runs.

Listeners acknowledge at once and hand their work to `work` (tracked in `tasks`,
awaited by `idle` and at shutdown), which starts it once the SQLite store can be
written, waiting for that in a thread (bot/store.py `StoreGate`). A command whose
answer takes longer than `working_after` seconds gets a short private "Working on …"
through its response_url first. `/gdb approve <id>` and `/gdb deny <id>` typed as text
are decided exactly like the buttons: the card is updated and the result answered in its
thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import inspect
import logging
import time
import traceback
from collections.abc import AsyncIterator, Awaitable, Iterator
from dataclasses import dataclass, field
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from bot.slack import decisions
from bot.slack.delivery import Delivery
from bot.slack.directory import Directory
from bot.slack.edge import Origin
from bot.slack.groups import UserGroups
from bot.slack.membership import ChannelMembers
from bot.slack.menus import MenuStore
from bot.slack.metrics import Metrics
from bot.slack.notifier import SlackNotifier
from bot.slack.pages import PageStore
from bot.wiring import STORE_BUSY, Bot
from commands.grammar import GrammarError, ParsedCommand, parse
from core.invocation import Invocation
from core.reply import Reply
from operations.notify import TrackerPort
from permissions.model import is_direct
from permissions.policy import Decision

log = logging.getLogger("graphops.slack")

OOPS = "Something went wrong inside graphops; the error is in the bot's log."
WORKING_AFTER_SECONDS = 1.0


def tracked_count(tracker: Any) -> int:
    """How many operations `tracker` follows (its `running()`), 0 without a tracker."""
    counter = getattr(tracker, "running", None)
    return int(counter()) if callable(counter) else 0


class AckGate:
    """Acks first: command work waits while Slack requests are still being acknowledged.

    Every request Slack sends must be answered within 3 seconds, and the work a
    command starts (permission look-ups, audit writes, rendering a long table) shares
    the event loop with the acks. An event loop cannot pause a step of work that has
    started, so an ack that arrives during one waits for it; and when several steps
    are ready together (a burst of API answers) the loop runs them all before it
    reads the next request. Hence two rules:

    - `wait`: work waits until no request is in flight (at most `max_wait` seconds),
      so a burst of requests is acknowledged before its work starts.
    - `turn`: steps of work take turns, one at a time; each turn first lets the loop
      read the sockets (`settle` seconds) and waits for the acks then in flight, so
      under a steady stream of requests an ack waits for at most one step.
    """

    def __init__(self, max_wait: float = 0.5, settle: float = 0.001) -> None:
        self.max_wait = max_wait
        self.settle = settle
        self._in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._lane = asyncio.Lock()

    @contextlib.contextmanager
    def pending(self) -> Iterator[None]:
        """Mark a Slack request as being answered."""
        self._in_flight += 1
        self._idle.clear()
        try:
            yield
        finally:
            self._in_flight -= 1
            if self._in_flight == 0:
                self._idle.set()

    async def wait(self) -> None:
        """Return once no ack is pending (or after `max_wait`)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), self.max_wait)

    async def turn(self) -> None:
        """Return when the caller may run its next step of work: the synchronous code
        that follows (up to its next await that suspends) runs before any other
        waiter's turn, and after the acks of the requests that arrived before it."""
        async with self._lane:
            await asyncio.sleep(self.settle)  # requests already on the sockets get read
            await self.wait()


@dataclass
class SocketModeStatus:
    """The Socket Mode connection as /healthz reports it."""

    state: str = "connecting"  # connecting | connected | retrying | closed
    since: float = field(default_factory=time.time)
    attempts: int = 0
    last_error: str = ""
    connections: int = 0

    def set(self, state: str, error: str = "") -> None:
        """Record a change of state (and the error that caused it)."""
        if state != self.state:
            self.state, self.since = state, time.time()
        if error:
            self.last_error = error

    def as_dict(self) -> dict[str, Any]:
        """The JSON /healthz shows."""
        return {
            "state": self.state,
            "since": round(self.since, 3),
            "attempts": self.attempts,
            "connections": self.connections,
            "last_error": self.last_error,
        }


def approval_command(parsed: ParsedCommand) -> tuple[bool, str, str | None] | None:
    """(approve?, approval id, confirm) when `parsed` is `approve <id>` or `deny <id>`."""
    if parsed.verb not in ("approve", "deny") or len(parsed.args) != 1:
        return None
    extra = set(parsed.options) - ({"confirm"} if parsed.verb == "approve" else set())
    if extra:
        return None
    return parsed.verb == "approve", parsed.args[0], parsed.options.get("confirm")


@dataclass
class SlackRuntime:
    """The bot plus everything the Slack listeners need."""

    bot: Bot
    client: AsyncWebClient
    pages: PageStore = field(default_factory=PageStore)
    menus: MenuStore = field(default_factory=MenuStore)
    metrics: Metrics = field(default_factory=Metrics)
    tracker: TrackerPort | None = None
    page_rows: int = 40
    working_after: float = WORKING_AFTER_SECONDS
    signing_secret: str = ""
    groups: UserGroups = field(init=False)
    directory: Directory = field(init=False)
    membership: ChannelMembers = field(init=False)
    notifier: SlackNotifier = field(init=False)
    delivery: Delivery = field(init=False)
    socket_mode: SocketModeStatus | None = None
    tasks: set[asyncio.Task[Any]] = field(default_factory=set)
    acks: AckGate = field(default_factory=AckGate)
    _refresher: asyncio.Task[None] | None = None

    def __post_init__(self) -> None:
        self.groups = UserGroups(self.client)
        self.directory = Directory(self.client)
        # `access channel=` and `approvers` ask Slack who is in the channel they show.
        self.membership = ChannelMembers(self.client)
        self.bot.services.membership = self.membership
        self.notifier = SlackNotifier(
            self.client,
            pages=self.pages,
            directory=self.directory,
            page_rows=self.page_rows,
            turn=self.acks.turn,
        )
        self.delivery = Delivery(
            self.notifier,
            self.bot.services.approvals,
            slash_command=self.bot.services.slash_command,
            tracker=lambda: self.tracker,
            menus=self.menus,
        )

    # -- building invocations ---------------------------------------------------------------

    def admission(self, origin: Origin) -> Decision:
        """Whether `origin`'s person may act through graphops at all (their workspace):
        checked before a modal opens, without any I/O."""
        return self.bot.pipeline.admission(self._bare(origin, ""))

    def _bare(self, origin: Origin, text: str) -> Invocation:
        return Invocation(
            user=origin.user,
            channel=origin.channel,
            text=text,
            transport="slack",
            workspace=origin.workspace,
            home=origin.home,
        )

    async def invocation(self, origin: Origin, text: str) -> Invocation:
        """An Invocation for `origin`'s person where they are, with the user groups that
        matter there (those the bindings name in `users=` or as approvers; usually none,
        so no API call). Membership comes from the background-refreshed cache; a group
        not known in time is passed as unresolved (refusals say so)."""
        bare = self._bare(origin, text)
        if not self.admission(origin).allowed:
            return bare  # refused by the pipeline; nothing to look up for them
        permissions = self.bot.services.permissions
        key = origin.user if is_direct(origin.channel) else origin.channel
        candidates = permissions.groups_named(key)
        if not candidates:
            return bare
        member, unknown = await self.groups.of(origin.user, candidates)
        return dataclasses.replace(bare, user_groups=member, unresolved_groups=unknown)

    def start_background(self) -> None:
        """Keep the user groups the policy names fresh (bot/slack/groups.py)."""
        permissions = self.bot.services.permissions
        if self._refresher is None or self._refresher.done():
            self._refresher = asyncio.ensure_future(
                self.groups.refresh_forever(lambda: permissions.groups_named())
            )

    async def stop_background(self) -> None:
        """Stop the group refresher and the look-ups still running."""
        if self._refresher is not None:
            self._refresher.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._refresher
            self._refresher = None
        await self.groups.aclose()

    def verb_label(self, text: str) -> str:
        """The registry's name of the verb in `text` (a bounded metrics label)."""
        try:
            verb = self.bot.registry.get(parse(text, self.bot.services.slash_command).verb)
        except GrammarError:
            return "unknown"
        return verb.name if verb is not None else "unknown"

    # -- running commands ---------------------------------------------------------------------

    async def run_command(self, origin: Origin, line: str | None = None) -> None:
        """Run a command line of `origin` (default: what they typed) and deliver its answer."""
        text = (origin.command if line is None else line).strip() or "help"
        with contextlib.suppress(GrammarError):
            parsed = parse(text, self.bot.services.slash_command)
            decision = approval_command(parsed)
            if decision is not None:
                self.bot.services.audit.record(
                    "command",
                    user=origin.user,
                    channel=origin.channel,
                    verb=parsed.verb,
                    detail={"text": parsed.text},
                )
                approve, approval_id, confirm = decision
                await decisions.settle_approval(
                    self, approval_id, origin=origin, approve=approve, confirm=confirm
                )
                return
        working = self.spawn(self._working(origin, text))
        try:
            await self.acks.turn()
            invocation = await self.invocation(origin, text)
            reply = await self.bot.run(invocation)
        finally:
            working.cancel()
        self.metrics.command(self.verb_label(text), reply.status)
        await self.delivery.deliver(reply, origin)

    async def _working(self, origin: Origin, text: str) -> None:
        """After `working_after` seconds, tell the requester the answer is coming."""
        await asyncio.sleep(self.working_after)
        if not origin.response_url_usable():
            return
        shown = f"{self.bot.services.slash_command} {text}"[:150].replace("`", "'")
        notice = Reply(status="info", text=f"Working on `{shown}`…", visibility="ephemeral")
        await self.delivery.respond(origin, await self.notifier.render(notice))

    @contextlib.asynccontextmanager
    async def shielded(self, origin: Origin | None) -> AsyncIterator[None]:
        """Log any exception (redacted) and tell the requester plainly; never a trace in Slack."""
        try:
            yield
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.error(self.bot.redact(f"Slack listener failed: {exc!r}\n{traceback.format_exc()}"))
            if origin is not None and origin.user:
                with contextlib.suppress(Exception):
                    await self.delivery.say(origin, OOPS, status="error")

    def spawn(self, coroutine: Awaitable[Any]) -> asyncio.Task[Any]:
        """Run `coroutine` in the background, keeping a reference until it ends."""
        task = asyncio.ensure_future(coroutine)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    def work(self, origin: Origin | None, coroutine: Awaitable[Any]) -> asyncio.Task[Any]:
        """`spawn` the work of a listener, shielded for `origin`.

        The work starts once the store can be written (`Bot.store`, waited for in a
        thread: a lock held by another process never holds up the event loop, so
        acks stay prompt); if it stays locked, `origin` is told and nothing runs.
        """

        async def run() -> None:
            async with self.shielded(origin):
                await self.acks.turn()  # acks first: the probe below uses a thread
                if not await self.bot.store.ready():
                    if inspect.iscoroutine(coroutine):
                        coroutine.close()
                    log.warning("the store stayed locked; a Slack request was not run")
                    if origin is not None and origin.user:
                        await self.delivery.say(origin, STORE_BUSY, status="error")
                    return
                await coroutine

        return self.spawn(run())

    async def idle(self, timeout: float = 30.0) -> bool:
        """Wait until no listener work is running (work may start more work); False
        after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while self.tasks:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            await asyncio.wait(list(self.tasks), timeout=left)
        return True
