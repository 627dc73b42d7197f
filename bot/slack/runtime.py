"""What the Slack listeners share: the bot, the Web API client, the notifier and the
delivery (bot/slack/delivery.py decides where a Reply goes), and how a command runs.

Listeners acknowledge at once and hand their work to `accept` (kept in the inbox,
operations/inbox.py, before the ack, so a kill before it is answered never loses it
silently) or `work` (tracked in `tasks`, awaited by `idle` and at shutdown), which
starts it once the SQLite store can be written, waiting for that in a thread
(bot/store.py `StoreGate`). Feedback before the answer: a slash command whose answer
needs an API says what is happening in its ack (`ack_notice`: "Restarting
sandbox-db…", private to the requester, computed without any I/O; Slack shows an
ack's body as an ephemeral message, and the answer follows through the Web API or
the response_url, up to 5 times in 30 minutes: api.slack.com/interactivity/slash-commands).
Any other command whose answer takes longer than `working_after` seconds gets a
short private "Working on …" through its response_url first. `/gdb approve <id>` and
`/gdb deny <id>` typed as text are decided exactly like the buttons: the card is
updated and the result answered in its thread. While `draining` (SIGTERM), new
requests are answered "restarting" and not run.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import dataclasses
import heapq
import inspect
import itertools
import logging
import sqlite3
import time
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from bot.slack import decisions
from bot.slack.blocks import escape
from bot.slack.delivery import Delivery
from bot.slack.directory import Directory
from bot.slack.edge import Origin
from bot.slack.groups import UserGroups
from bot.slack.intake import Intake
from bot.slack.membership import ChannelMembers
from bot.slack.menus import MenuStore
from bot.slack.metrics import Metrics
from bot.slack.notifier import SlackNotifier
from bot.slack.pages import PageStore
from bot.wiring import STORE_BUSY, Bot
from commands.grammar import GrammarError, approval_command, parse
from commands.pipeline import Reading
from core.invocation import Invocation
from core.mutations import watching_mutations
from core.redaction import redact
from core.reply import Reply
from core.turns import taking_turns
from operations.inbox import Inbox, sent_line, spool_path
from operations.notify import TrackerPort
from permissions.model import binding_key
from permissions.policy import Decision, Foresight, Need, Place, admit, foresee

log = logging.getLogger("graphops.slack")

OOPS = "Something went wrong inside graphops; the error is in the bot's log."
RESTARTING = "graphops is restarting; nothing was run. Try again in a minute."
WORKING_AFTER_SECONDS = 1.0

# The inbox row of the request the current task works on (None: not kept).
_accepted: ContextVar[int | None] = ContextVar("accepted_request", default=None)
# The order in which the current task's Slack request was accepted (AckGate.turn:
# older work goes first); work of no request (tracker deliveries) comes after all.
_seniority: ContextVar[float] = ContextVar("seniority", default=float("inf"))


class OldestFirst:
    """A lock handed to the waiter whose work is oldest (lowest `seniority`, then
    first come): a step of an older command goes before a step of a newer one.

    With a plain FIFO lock, 100 commands whose API answers arrive together take
    their turns round-robin: each waits behind the other 99 at every step, so all
    of them answer at about the time the last does (bench/ttfm.py: p50 3.07 s, last
    3.18 s for a burst of 100 at 2 s latency). Oldest first, they answer one after
    the other, the first soon after its API answer.
    """

    def __init__(self) -> None:
        self._held = False
        self._waiters: list[tuple[float, int, asyncio.Future[None]]] = []
        self._arrivals = itertools.count()

    @contextlib.asynccontextmanager
    async def held(self, seniority: float) -> AsyncIterator[None]:
        """Hold the lock inside (waiting for it, oldest first)."""
        if self._held or self._waiters:
            handed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            heapq.heappush(self._waiters, (seniority, next(self._arrivals), handed))
            try:
                await handed
            except asyncio.CancelledError:
                if handed.done() and not handed.cancelled():
                    self._release()  # handed over just as this waiter was cancelled
                raise
        else:
            self._held = True
        try:
            yield
        finally:
            self._release()

    def _release(self) -> None:
        while self._waiters:
            handed = heapq.heappop(self._waiters)[2]
            if not handed.done():  # skips waiters cancelled meanwhile
                handed.set_result(None)  # handed over: stays held
                return
        self._held = False


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
    - `turn`: steps of work take turns, one at a time, the oldest work first
      (`OldestFirst`); each turn first lets the loop read the sockets (it yields to
      the loop `settle` times) and waits for the acks then in flight, so under a
      steady stream of requests an ack waits for at most one step.
    - `after_acks`: the work a listener starts is not even started (its task made, its
      first steps run) until the requests in flight are acknowledged (at most
      `max_wait` seconds): under a burst, the acks go out first.
    """

    def __init__(self, max_wait: float = 0.5, settle: int = 3) -> None:
        self.max_wait = max_wait
        self.settle = settle
        self._in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._lane = OldestFirst()
        self._accepted = itertools.count()
        self._deferred: list[Callable[[], object]] = []
        self._deadline: asyncio.TimerHandle | None = None

    def after_acks(self, start: Callable[[], object]) -> None:
        """Call `start` once no request is in flight: now when none is, else just after
        the last one in flight is answered (its response written), or after `max_wait`
        seconds, whichever comes first; in the order given."""
        if self._in_flight == 0:
            start()
            return
        self._deferred.append(start)
        if self._deadline is None:
            self._deadline = asyncio.get_running_loop().call_later(self.max_wait, self._start)

    def start_held(self) -> None:
        """Start the work `after_acks` holds back, now (a drain waits for it)."""
        self._start()

    def _start(self, unless_in_flight: bool = False) -> None:
        if unless_in_flight and self._in_flight:
            return  # another request came meanwhile: at its end, or at the deadline
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        deferred, self._deferred = self._deferred, []
        for start in deferred:
            try:
                start()
            except Exception:  # one failing start must not keep the others from theirs
                log.exception("could not start the work of a Slack request")

    def enlist(self) -> None:
        """Rank the current task's work (and the tasks it starts) after all the work
        enlisted before it: its turns go before theirs' later turns."""
        _seniority.set(next(self._accepted))

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
                if self._deferred:  # after this request's response is written
                    asyncio.get_running_loop().call_soon(self._start, True)

    async def wait(self) -> None:
        """Return once no ack is pending (or after `max_wait`)."""
        with contextlib.suppress(TimeoutError):  # not wait_for: operations/loop.py says why
            async with asyncio.timeout(self.max_wait):
                await self._idle.wait()

    async def turn(self) -> None:
        """Return when the caller may run its next step of work: the synchronous code
        that follows (up to its next await that suspends) runs before any other
        waiter's turn, and after the acks of the requests that arrived before it."""
        async with self._lane.held(_seniority.get()):
            for _ in range(self.settle):  # requests already on the sockets get read
                await asyncio.sleep(0)
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


# What a command that needs an API is doing, as its ack says it ("Restarting sandbox-db…").
# Verbs not listed say "Working on `/gdb …`"; destructive ones "Checking …" (an approval
# may be asked before anything is done).
DOING = {
    "show": "Looking up",
    "list": "Listing the databases",
    "ls": "Listing the databases",
    "envs": "Listing the environments",
    "environments": "Listing the environments",
    "restart": "Restarting",
    "pause": "Pausing",
    "resume": "Resuming",
    "snapshot": "Taking a snapshot of",
    "snapshots": "Looking up the snapshots of",
    "ops": "Looking up the operations of",
    "create": "Creating",
    "clone": "Cloning",
    "backups": "Looking up the backups of",
    "backup": "Taking a backup of",
    "watch": "Looking up",
    "health": "Asking the TypeDB servers",
    "dbs": "Listing the TypeDB databases",
    "query": "Querying",
    "versions": "Looking up the versions",
    "plans": "Looking up the plans",
    "regions": "Looking up the regions",
}
# Verbs whose arguments are not a database name (nothing after the words above).
NO_SUBJECT = frozenset(
    {"list", "ls", "envs", "environments", "health", "dbs", "versions", "plans", "regions"}
)


def _literal(word: str | None) -> str | None:
    """A typed word as it was typed: in code when it holds a mrkdwn marker (`*`, `_`,
    `~`), which Slack would turn into formatting in the ack's text."""
    if word and any(mark in word for mark in "*_~"):
        return "`" + word.replace("`", "'") + "`"
    return word


def ack_notice(bot: Bot, reading: Reading, foresight: Foresight = "likely") -> str | None:
    """What the ack of a slash command (read once, `Pipeline.read`) says, or None (an
    empty ack).

    Only for a command that reads as a known verb with valid arguments and needs an
    API (a governed verb: `prepare`/`execute`, not `help` or `access`), and not for a
    dry run; no I/O. `foresight` (`SlackRuntime.foresee`): nothing when "refused" (the
    refusal follows), "Checking `…`" when only "maybe" or when a form of the verb may
    wait for an approval or has a condition (`Verb.conditional`: a write query in a
    protected environment), what is done when "likely".
    Typed text is redacted, escaped for Slack (`&`, `<`, `>`) and cut.
    """
    slash = bot.services.slash_command
    parsed, verb = reading.parsed, reading.verb
    if parsed is None or verb is None or not reading.fits or reading.dry:
        return None
    if foresight == "refused" or verb.execute is None or approval_command(parsed) is not None:
        return None
    env = _literal(parsed.options.get("env"))
    where = f" in {env}" if env and verb.name not in NO_SUBJECT else ""
    checking = verb.conditional or foresight == "maybe"
    if checking or parsed.verb not in DOING:
        shown = f"{slash} {parsed.text}".replace("`", "'")
        notice = f"{'Checking' if checking else 'Working on'} `{shown}`…"
    elif parsed.verb in NO_SUBJECT:
        subject = _literal(parsed.args[0]) if parsed.args else env
        notice = f"{DOING[parsed.verb]}{f' in {subject}' if subject else ''}…"
    else:
        subject = _literal(parsed.args[0]) if parsed.args else ""
        notice = f"{DOING[parsed.verb]} {subject}{where}…"
    return escape(redact(notice)[:300])  # typed text may hold a token pasted by mistake


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
    draining: bool = False  # SIGTERM: new requests are answered "restarting", not run
    inbox: Inbox = field(init=False)
    intake: Intake = field(init=False)
    _unforgotten: set[int] = field(default_factory=set)  # answered; their rows to delete
    # rows written to the spool instead of the store (it was locked) -> those lines' keys
    _marks: dict[int, list[str]] = field(default_factory=dict)
    _refresher: asyncio.Task[None] | None = None

    def __post_init__(self) -> None:
        self.inbox = Inbox(self.bot.db, spool=spool_path(self.bot.config.bot.database))
        self.intake = Intake(self.inbox)
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
            ready=self.bot.store.ready,
            posted=self._posted,
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
        candidates = permissions.groups_named(binding_key(origin.channel, origin.user))
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

    async def run_command(
        self, origin: Origin, line: str | None = None, *, acked: bool = False
    ) -> None:
        """Run a command line of `origin` (default: what they typed) and deliver its answer.

        `acked`: its ack already said what is happening (`ack_notice`): no "Working on …".
        """
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
        working = self.spawn(self._working(origin, text)) if not acked else None
        try:
            await self.acks.turn()
            invocation = await self.invocation(origin, text)
            reply = await self.run_invocation(invocation)
        finally:
            if working is not None:
                working.cancel()
        self.metrics.command(self.verb_label(text), reply.status)
        row = _accepted.get()
        await self.delivery.deliver(
            reply, origin, key=None if row is None else self.inbox.answer_key(row)
        )

    async def run_invocation(self, invocation: Invocation) -> Reply:
        """Run a command for an accepted request: its inbox row says when it sends something
        that changes things, and keeps the reply until it is delivered."""
        accepted = _accepted.get()
        with watching_mutations(self._sent_hook(accepted)):
            reply = await self.bot.run(invocation)
        if accepted is not None:
            kept = reply.model_copy(update={"private_text": None, "secret_prompt": None})
            answer = self.bot.redact(kept.model_dump_json())
            try:
                self.inbox.answered(accepted, answer)
            except sqlite3.Error as exc:  # another process took the lock: answer anyway
                log.warning("an answer is kept in the spool, not the store, for now: %s", exc)
                self._mark(accepted, lambda: self.inbox.spool_answered(accepted, answer))
        return reply

    def _sent_hook(self, accepted: int | None) -> Any:
        """core.mutations hook: the accepted request sent something that changes things."""

        def hook(provider: str, method: str, path: str) -> None:
            if accepted is not None:
                self.inbox.mark_sent(accepted, sent_line(method, path, provider))

        return hook

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

    def work(
        self,
        origin: Origin | None,
        coroutine: Awaitable[Any],
        accepted: int | None = None,
        *,
        keep: str | None = None,
        spooled: str | None = None,
    ) -> None:
        """`spawn` the work of a listener, shielded for `origin`, once the requests in
        flight are acknowledged (`AckGate.after_acks`).

        The work starts once the store can be written (`Bot.store`, waited for in a
        thread: a lock held by another process never holds up the event loop, so
        acks stay prompt); if it stays locked, `origin` is told and nothing runs.
        `accepted` is its inbox row, forgotten once the work ended (not when it is
        cancelled at shutdown: the next start answers it); `keep` is the text of a
        request whose row could not be written before the ack (the store was
        locked): it is written once the store can be, before the work runs (if it
        still cannot be, `origin` is told and nothing runs: work with no row would be
        answered "nothing was done" after a kill), and `spooled` is the key of its
        entry in the inbox's spool (operations/inbox.py), dropped once the row is
        written or the work ended.
        """

        async def run() -> None:
            row = accepted
            self.acks.enlist()  # in the order the requests were accepted
            async with self.shielded(origin):
                await self.acks.turn()  # acks first: the probe below uses a thread
                if row is None and keep is not None and origin is not None:
                    if await self.bot.store.ready():
                        row = self._keep(origin, keep, spooled)
                    kept = row is not None
                else:
                    kept = await self.bot.store.ready()
                if not kept:
                    # The store stayed locked, or took the lock again before the
                    # request's row was written: run without a row, it would be
                    # answered "nothing was done" after a kill even if it sent
                    # something. Told instead; nothing runs.
                    if inspect.iscoroutine(coroutine):
                        coroutine.close()
                    log.warning("the store stayed locked; a Slack request was not run")
                    if origin is not None and origin.user:
                        await self.delivery.say(origin, STORE_BUSY, status="error")
                    self._finish(row, spooled)  # told; nothing ran
                    return
                token = _accepted.set(row)
                try:
                    with taking_turns(self.acks.turn):
                        await coroutine
                finally:
                    with contextlib.suppress(ValueError):
                        _accepted.reset(token)
            self._finish(row, spooled)

        context = contextvars.copy_context()  # the listener's: as if started now
        self.acks.after_acks(lambda: context.run(self.spawn, run()))

    def foresee(self, origin: Origin, reading: Reading) -> Foresight:
        """What the ack of `reading` from `origin` may promise, without I/O
        (`permissions.policy.foresee` over the place's bindings: the channel's, in a DM
        the person's own): "refused" also while draining and for a person whose
        workspace is not admitted (`admit`). Where the command acts comes from what was
        typed (`provider=`, `env=`, `source_env=`) and the resolver's cache (the
        environments it names, `Resolver.environments_named`; where the database named
        was last seen, `Resolver.homes`)."""
        services = self.bot.services
        permissions = services.permissions
        if self.draining or (
            admit(origin.workspace, origin.home, permissions.allowed_teams).outcome != "allowed"
        ):
            return "refused"
        verb, parsed = reading.verb, reading.parsed
        if verb is None or verb.role is None or verb.most_role is None or parsed is None:
            return "likely"  # not a governed verb: nothing is promised (`ack_notice`)
        options, resolver = parsed.options, services.resolver
        chosen = [p for p in services.providers.values() if p.kind in verb.kinds]
        if "provider" in options:  # `plans provider=console2`: that one only
            chosen = [p for p in chosen if p.name == options["provider"]]

        def where(typed: str) -> list[Place]:
            places: list[Place] = []
            for provider in chosen:
                named = resolver.environments_named(provider, typed)
                if named is None:  # not cached: the name as typed
                    places.append((provider.name, None, typed))
                else:
                    places.extend((provider.name, i, n) for i, n in named)
            return places

        providers = {p.name for p in chosen}
        homes = None
        if verb.name not in NO_SUBJECT and parsed.args:
            homes = resolver.homes(providers, parsed.args[0])
        env = options.get("env")
        if env is None and verb.name in NO_SUBJECT and parsed.args:
            env = parsed.args[0]  # `list staging`
        source_env = options.get("source_env")
        targets = where(env) if env is not None else homes
        sources = where(source_env) if source_env is not None else homes
        need = Need(verb.role, verb.most_role, verb.source_role)
        bindings = permissions.bindings_at(binding_key(origin.channel, origin.user))
        return foresee(bindings, origin.user, providers, need, targets, sources)

    async def accept(
        self, origin: Origin, reading: Reading, coroutine: Coroutine[Any, Any, Any]
    ) -> None:
        """Take a request from a listener before it acks: keep it in the inbox (its line
        as the audit would keep it, `reading.loggable` from `Pipeline.read`;
        bot/slack/intake.py writes the rows of one moment together) and run `coroutine`
        after the ack; while draining, do not run it and tell the requester."""
        if self.draining:
            coroutine.close()
            self.spawn(self.delivery.say(origin, RESTARTING))
            return
        line = reading.loggable
        kept = await self.intake.keep(
            origin.user, origin.channel, line, origin.response_url or None, origin.thread_ts
        )
        if isinstance(kept, int):
            self.work(origin, coroutine, accepted=kept)
        else:  # the store was locked: spooled (a key) or in memory; its row written later
            self.work(origin, coroutine, keep=line, spooled=kept)

    def _keep(self, origin: Origin, line: str, spooled: str | None = None) -> int | None:
        """Write the inbox row of a request after its ack (None if that fails too: the
        request still runs; its spool entry, if any, is its crash safety meanwhile)."""
        try:
            return self.inbox.accept(
                origin.user,
                origin.channel,
                line,
                origin.response_url or None,
                spool_key=spooled,
                thread_ts=origin.thread_ts,
            )
        except sqlite3.Error as exc:  # (a spool entry left behind is dropped when it ends)
            log.warning("could not keep an accepted request: %s", exc)
            return None

    def _finish(self, row: int | None, spooled: str | None) -> None:
        """A request is answered: drop its spool entry, if any, then its row; when the
        entry cannot be dropped, the row stays marked done, so that a restart never
        takes the entry up as unanswered."""
        if spooled is not None:
            try:
                self.inbox.unspool([spooled])
            except OSError as exc:
                log.warning("an answered request stays in the inbox's spool: %s", exc)
                if row is not None:
                    with contextlib.suppress(sqlite3.Error):
                        self.inbox.done_but_spooled(row)
                        return
        self.forget(row)

    def forget(self, row: int | None) -> None:
        """Delete an answered request's inbox row. One that cannot be deleted now (the
        store is locked) is marked answered in the spool (so that a restart does not
        answer it again, even after a kill) and tried again with each later one and by
        the approval sweep (`forget_later`)."""
        if row is not None and row not in self._unforgotten:
            try:
                self.inbox.done(row)
            except sqlite3.Error:
                self._unforgotten.add(row)
                self._mark(row, lambda: self.inbox.spool_done([row]))
            else:
                self._unmark(row)
        self.forget_later()

    def _posted(self, ts: str) -> None:
        """Delivery posted the answer of the current task's request as message `ts`: kept
        in its inbox row (or the spool, the store locked), so that a kill before the row is
        deleted has the next start follow its operations under it, not post it again."""
        row = _accepted.get()
        if row is None:
            return
        try:
            self.inbox.posted(row, ts)
        except sqlite3.Error as exc:
            log.warning("where an answer was posted is kept in the spool for now: %s", exc)
            self._mark(row, lambda: self.inbox.spool_posted(row, ts))

    def _mark(self, row: int, spool: Callable[[], list[str] | None]) -> None:
        """Write what the store could not take about `row` to the spool (`spool`), and
        remember the lines' keys to drop once the row is deleted."""
        try:
            keys = spool() or []
        except (OSError, sqlite3.Error) as exc:  # the file, or the read of its row
            log.warning("an answered request could not be marked in the spool: %s", exc)
            return
        self._marks.setdefault(row, []).extend(keys)

    def _unmark(self, row: int) -> None:
        """The row is deleted: its lines in the spool say nothing any more."""
        keys = self._marks.pop(row, [])
        if keys:
            with contextlib.suppress(OSError):  # a stale mark changes nothing
                self.inbox.unspool(keys)

    def forget_later(self) -> None:
        """Delete the rows of answered requests that could not be deleted before, then
        their marks in the spool."""
        for row in sorted(self._unforgotten):
            try:
                self.inbox.done(row)
            except sqlite3.Error as exc:
                log.warning("an answered request stays in the inbox for now: %s", exc)
                return
            self._unforgotten.discard(row)
            self._unmark(row)

    async def idle(self, timeout: float = 30.0) -> bool:
        """Wait until no listener work is running (work may start more work), starting
        the work still held back for the acks in flight (`AckGate.after_acks`): a
        drain waits for it too (found by an attack: SIGTERM closed the store under a
        restart that started during the drain); False after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            self.acks.start_held()
            if not self.tasks:
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            await asyncio.wait(list(self.tasks), timeout=left)
