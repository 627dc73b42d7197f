"""The local shell transport: the command layer without Slack.

`graphops shell -c "/gdb pause orders-db" --user U --channel C` runs one line,
prints the reply, follows any operation it started to its end, and exits
non-zero on error (141 when its output cannot be written: its reader went away, as
`| head` does, or it is closed or full; an operation started goes on and is followed
at the next start). Without `-c` it is an interactive prompt, where `:user U` and
`:channel C` change who is typing where, so a second person can approve from the
same session (or from another `graphops shell -c`).

On a terminal the prompt is prompt_toolkit's (https://python-prompt-toolkit.readthedocs.io):
- history in ~/.graphops_history, holding only lines that fit a verb's syntax
  (the audit log's rule: a line that does not, like `user add erin hunter2`,
  may hold a password typed by mistake); secrets asked for privately are never
  written there;
- Ctrl-C clears the line, Ctrl-D leaves (exit 0, after running operations end);
- progress of background operations is printed above the prompt, which is
  redrawn below it (`patch_stdout`);
- Tab completes verbs, `:` commands, user and channel names, and the names of
  databases and environments the channel may see (looked up at start and after
  each command, through the resolver's cache).
With input from a pipe it reads plain lines and keeps no history.
`:user` and `:channel` take a name the shell knows (the demo's) or a Slack id
(U…/W… for users, C…/G…/D… for channels); anything else is refused.

Names go both ways, as in Slack: replies show the people, groups and channels the
shell knows by name, and `@alice`, `@dba-team` or `#prod-db` typed in a command
become their ids (what Slack's `should_escape` does for the slash command). A
question for a missing argument is printed as numbered command lines; typing the
number runs that line.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import getpass
import logging
import os
import re
import sqlite3
import sys
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from prompt_toolkit.completion import CompleteEvent, Completer, Completion
from prompt_toolkit.document import Document
from prompt_toolkit.history import FileHistory
from pydantic import SecretStr

from bot.text import humanize, render
from bot.wiring import Bot, build_retention, build_scheduler, build_tracker, build_watcher
from commands.context import reporting_progress
from commands.execution import paused_here
from commands.grammar import GrammarError, approval_command, parse
from commands.resolve import eligible_bindings
from core.audit_context import acting_as
from core.errors import UserError
from core.invocation import Invocation
from core.redaction import redact_reply
from core.refs import ChannelRef, GroupRef, UserRef
from core.reply import Choice, Reply
from operations.tracker import Tracker
from permissions.roles import Role

log = logging.getLogger("graphops.shell")

HISTORY = Path.home() / ".graphops_history"
_NAMED = re.compile(r"(?<![\w&])([@#])([\w.-]+)")
META_COMMANDS = (":user", ":channel", ":where", ":help", ":quit")

SHELL_HELP = """Shell commands (everything else goes to the bot):
  :user bob | U0BOB     type as another user (a name shown here, or a Slack user id)
  :channel prod-db      type in another channel (a name shown here, or a channel id C…)
  :where                who and where you are
  :quit                 leave (`exit`, `quit` and Ctrl-D work too; Ctrl-C clears the line)
  Tab                   complete verbs, names of databases and environments"""


async def _getpass(label: str) -> str:
    return await asyncio.get_running_loop().run_in_executor(None, getpass.getpass, label)


#: The exit status when the output could not be written: closed by its reader (128 +
#: SIGPIPE, as a Unix tool killed by SIGPIPE reports it), closed, or full.
EXIT_OUTPUT_CLOSED = 141


class OutputClosed(Exception):
    """The shell's output cannot be written any more: whoever read it went away (a
    closed pipe: `| head` had enough), or it was closed or is full."""


class _Stdout:
    """Lines printed on stdout at once. A closed pipe raises OutputClosed, then and on
    every later line (nothing is taken as shown that nobody could read: the tracker
    keeps it for the next session); stdout is pointed at /dev/null so that the
    interpreter's own flush at exit stays quiet (the Python docs' advice for SIGPIPE,
    library/signal.html#note-on-sigpipe)."""

    closed = False

    def write(self, text: str) -> None:
        if self.closed or sys.stdout is None:  # closed (`>&-`): nothing can be shown
            raise OutputClosed
        try:
            print(text, flush=True)
        except OSError:  # a closed pipe (EPIPE), a full disk (`> /dev/full`: ENOSPC)
            self.closed = True
            with contextlib.suppress(OSError, ValueError):
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise OutputClosed from None


print_line = _Stdout().write


class ShellNotifier:
    """Prints what the tracker reports: thread replies indented under their command."""

    def __init__(
        self,
        write: Callable[[str], None],
        names: Mapping[str, str],
        colour: bool,
        label_of: Callable[[str, str], str | None] = lambda channel, thread: None,
    ):
        """`label_of(channel, thread)`: the label of an operation a past session started
        in that thread (OperationHistory.label_of_thread), for what is left of it."""
        self.write = write
        self.names = names
        self.colour = colour
        self.label_of = label_of
        self._threads: dict[str, str] = {}
        self._count = 0

    def remember(self, reply: Reply) -> str:
        """Give a printed command reply a thread id, as Slack would give it a ts: unique
        across sessions (the tracker follows an operation into the next session on the
        same store, which prints what is left of it without the command's label)."""
        self._count += 1
        ts = f"{time.time():.0f}{self._count:06d}.{os.getpid() % 1_000_000:06d}"
        self._threads[ts] = reply.title or ""
        return ts

    async def post(self, channel: str, reply: Reply, thread_ts: str | None = None) -> str | None:
        reply = redact_reply(reply)
        if thread_ts is not None and thread_ts not in self._threads:
            earlier = self.label_of(channel, thread_ts)  # started by an earlier session
            if earlier is not None:
                self._threads[thread_ts] = earlier
        if thread_ts in self._threads:
            label = self._threads[thread_ts]
            if reply.title:  # the final result
                self.write(render(reply, self.names, self.colour))
            else:
                for line in reply.text.splitlines():
                    self.write(f"  ↳ [{label}] {line}")
        else:
            where = humanize(str(ChannelRef(channel)), self.names)
            self.write(f"[{where}] " + render(reply, self.names, self.colour))
        return None

    async def update(self, channel: str, ts: str, reply: Reply) -> None:
        """The shell already printed the result; a status line change adds nothing."""


@dataclass
class ShellSession:
    """One person typing in one channel, with output going to `write`."""

    bot: Bot
    user: str
    channel: str
    names: Mapping[str, str] = field(default_factory=dict)
    colour: bool = False
    write: Callable[[str], None] = print_line  # raises OutputClosed once nobody reads
    tracker: Tracker | None = None
    notifier: ShellNotifier | None = None
    # Asks for a secret without echo; the interactive prompt replaces it with its own.
    ask_secret: Callable[[str], Awaitable[str]] = _getpass
    # Names of databases and environments this channel may see (for completion).
    databases: set[str] = field(default_factory=set)
    environments: set[str] = field(default_factory=set)
    # The last question asked (a missing argument): typing its number runs that option.
    last_choice: Choice | None = None

    def __post_init__(self) -> None:
        """UserError when `user` or `channel` is neither a Slack id nor a name this shell
        knows (`--user alice` in the demo is U0ALICE; elsewhere an id is needed)."""
        for word, ref in (("user", UserRef), ("channel", ChannelRef)):
            typed = getattr(self, word)
            ident = self._resolve(typed, ref)
            if ident is None:
                raise UserError(f"--{word} {typed}: {self._not_known(word, ref)}")
            setattr(self, word, ident)
        self.output_closed = asyncio.Event()
        history = self.bot.services.history
        self.notifier = ShellNotifier(
            self._write,
            self.names,
            self.colour,
            label_of=history.label_of_thread if history is not None else lambda c, t: None,
        )
        self.tracker = build_tracker(self.bot, self.notifier)
        self.tracker.start()
        self.scheduler = build_scheduler(self.bot, self.notifier, self.tracker)
        self.watcher = build_watcher(self.bot)
        self.retention = build_retention(self.bot)

    def _write(self, text: str) -> None:
        """`write`, noting when the output was closed (the waits below then end)."""
        try:
            self.write(text)
        except OutputClosed:
            self.output_closed.set()
            raise

    def _who_ran(self, line: str) -> tuple[str, str | None]:
        """(requester, approver) of what `line` started: for `approve <id>`, who asked and
        who approved (the incident channel names both, as in Slack); else who typed it."""
        try:
            decision = approval_command(parse(line, self.bot.services.slash_command))
        except GrammarError:
            return self.user, None
        if decision is None or not decision[0]:
            return self.user, None
        approval = self.bot.services.approvals.get(decision[1])
        if approval is None or not approval.decided_by:
            return self.user, None
        return approval.requester, approval.decided_by

    async def _progress(self, text: str) -> None:
        """A line of progress of a long wait inside a command (commands.context)."""
        self._write(f"  ↳ {text}")

    async def wait_for_operations(self) -> None:
        """Until every operation ended and was reported; OutputClosed when the output
        is closed meanwhile (nobody would read the rest)."""
        assert self.tracker is not None
        idle = asyncio.ensure_future(self.tracker.wait_idle())
        closed = asyncio.ensure_future(self.output_closed.wait())
        try:
            await asyncio.wait({idle, closed}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            idle.cancel()
            closed.cancel()
        if self.output_closed.is_set():
            raise OutputClosed

    def start_scheduler(self) -> None:
        """Run schedules, watches and the retention prune while this (interactive)
        session lasts."""
        self.scheduler.start()
        self.watcher.start()
        services = self.bot.services
        services.resolver.start_refresh(
            self.bot.config.bot.name_refresh_seconds, list(services.providers.values())
        )
        self.retention.start()

    async def close(self) -> None:
        """Stop following operations, schedules and watches (all stay in the store)."""
        await self.watcher.stop()
        await self.retention.stop()
        await self.scheduler.stop()
        if self.tracker is not None:
            await self.tracker.stop()

    def _resolve(self, text: str, ref: type[UserRef] | type[ChannelRef]) -> str | None:
        """The id for a known name, or `text` when it is shaped like a Slack id; else None."""
        wanted = text.lstrip("#@")
        for ident, name in self.names.items():
            if name == wanted and ref(ident).valid:
                return ident
        return wanted if ref(wanted).valid else None

    def _not_known(self, word: str, ref: type[UserRef] | type[ChannelRef]) -> str:
        """Why a `user`/`channel` was refused, naming what works."""
        shape = "U… or W…" if word == "user" else "C…, G… or D…"
        names = ", ".join(self.known(ref))
        return f"not a Slack {word} id ({shape}, capitals and digits)" + (
            f" nor a {word} this shell knows ({names})" if names else ""
        )

    def known(self, ref: type[UserRef] | type[ChannelRef]) -> list[str]:
        """The names this shell knows for users or channels."""
        return sorted(name for ident, name in self.names.items() if ref(ident).valid)

    def with_ids(self, line: str) -> str:
        """`line` with `@name` and `#name` of people, groups and channels this shell knows
        replaced by their ids (as Slack sends the slash command's text)."""

        def replace(match: re.Match[str]) -> str:
            sigil, name = match.groups()
            kinds = (ChannelRef,) if sigil == "#" else (UserRef, GroupRef)
            for ident, known in self.names.items():
                if known == name and any(kind(ident).valid for kind in kinds):
                    return ident
            return match.group(0)

        return _NAMED.sub(replace, line)

    def picked(self, line: str) -> str | None:
        """The command line of option N when `line` is `N` and a question is open."""
        choice = self.last_choice
        if choice is None or not line.strip().isdigit():
            return None
        index = int(line.strip()) - 1
        return choice.options[index].command if 0 <= index < len(choice.options) else None

    def where(self) -> str:
        return humanize(f"{UserRef(self.user)} in {ChannelRef(self.channel)}", self.names)

    def prompt_text(self) -> str:
        """`@alice #dev-db › `."""
        return humanize(f"{UserRef(self.user)} {ChannelRef(self.channel)} ", self.names) + "› "

    def meta(self, line: str) -> bool:
        """Handle a `:command`; False when the shell should stop."""
        word, _, rest = line[1:].partition(" ")
        rest = rest.strip()
        if word in ("quit", "q", "exit"):
            return False
        if word in ("user", "channel") and rest:
            ref: type[UserRef] | type[ChannelRef] = UserRef if word == "user" else ChannelRef
            ident = self._resolve(rest, ref)
            if ident is None:
                self.write(
                    f"✖ `:{word} {rest}`: {self._not_known(word, ref)}; still {self.where()}"
                )
                return True
            if word == "user":
                self.user = ident
            else:
                self.channel = ident
        elif word != "where":
            self.write(SHELL_HELP)
            return True
        self.write(f"you are {self.where()}")
        return True

    def meta_is_valid(self, line: str) -> bool:
        """Whether a `:command` line is one the shell accepts (kept in history then)."""
        word, _, rest = line[1:].partition(" ")
        if word == "user":
            return self._resolve(rest.strip(), UserRef) is not None
        if word == "channel":
            return self._resolve(rest.strip(), ChannelRef) is not None
        return word in ("where", "help", "quit", "q", "exit")

    def kept_in_history(self, line: str) -> bool:
        """Whether `line` reads as a known verb with valid arguments and is kept whole
        (`Pipeline.read`: not `help <a word that looks like a password>`): only such
        lines are kept in history (the audit keeps a command's text by the same rule)."""
        return self.bot.pipeline.read(line).whole

    async def refresh_names(self, *, look_up: bool = True) -> None:
        """Look up the databases and environments this channel may see (for completion).

        From the resolver's cache (commands/resolve.py); with `look_up` False no
        request is sent at all (after each command: the command itself refreshed
        what it changed). Best effort: a failing provider leaves the names as they were.
        """
        services = self.bot.services
        providers = list(services.providers.values())
        bindings = eligible_bindings(
            services.permissions.policy_for(self.channel), Role.VIEWER, providers
        )
        invocation = Invocation(user=self.user, channel=self.channel, text="(completion)")
        quiet = services.resolver.cache_only() if not look_up else contextlib.nullcontext()
        with acting_as(invocation), quiet:
            for provider in providers:
                try:
                    scopes = await services.resolver.scopes(bindings, [provider])
                    for scope in scopes:
                        self.environments.add(scope.environment.name)
                        found = await services.resolver.databases(
                            scope.provider, scope.environment.id
                        )
                        self.databases.update(database.name for database in found)
                except Exception as exc:  # completion must never break the shell
                    log.debug("names of %s not looked up: %s", provider.name, type(exc).__name__)

    async def run(self, line: str, *, wait: bool = True) -> bool:
        """Run one command line; True when it (and, if waiting, what it started) succeeded."""
        assert self.tracker is not None and self.notifier is not None
        await self.go_on_with_paused_work()
        line = self.picked(line) or self.with_ids(line)
        invocation = Invocation(user=self.user, channel=self.channel, text=line)
        with reporting_progress(self._progress):
            reply = await self.bot.run(invocation)
        self.last_choice = reply.choice
        if reply.secret_prompt is not None:
            reply = await self._with_secret(invocation, reply)
        # Followed first, then shown: an operation started is tracked even if nobody
        # reads the reply (the output closed); `track` does not yield to the tracker.
        requester, approver = self._who_ran(line)
        tracked = await self._follow(reply, self.channel, requester, approver)
        self.write(render(reply, self.names, self.colour))
        if reply.attachment is not None:
            self.write(f"--- {reply.attachment.filename} ---\n{reply.attachment.content}\n---")
        if not wait or not tracked:
            return not reply.failed
        await self.wait_for_operations()
        states = [self.tracker.state(tracked_id) for tracked_id in tracked]
        return not reply.failed and all(state == "finished" for state in states)

    async def go_on_with_paused_work(self) -> None:
        """Approved work this shell ran that a locked store paused (commands/execution.py):
        gone on with, and its outcome shown, before the next command."""
        try:
            paused = [a for a in self.bot.services.approvals.unfinished() if paused_here(a)]
        except sqlite3.Error:
            return
        for approval in paused:
            self.write(f"Going on with approval {approval.id} ({approval.summary})…")
            reply = await self.bot.pipeline.resume_approved(approval, "shell", paused=True)
            await self._follow(reply, approval.channel, approval.requester, approval.decided_by)
            self.write(render(reply, self.names, self.colour))

    async def _follow(
        self, reply: Reply, channel: str, requester: str, approver: str | None
    ) -> list[int]:
        """Track `reply`'s operations (reported to `requester`, naming `approver`); their
        tracking ids."""
        assert self.tracker is not None and self.notifier is not None
        thread = self.notifier.remember(reply)
        return [
            await self.tracker.track(
                ref,
                channel=channel,
                thread_ts=thread,
                user=requester,
                origin=reply,
                approver=approver,
            )
            for ref in reply.operations
        ]

    async def _with_secret(self, invocation: Invocation, prompt_reply: Reply) -> Reply:
        """Collect the secret a command asked for (no echo) and run the command again."""
        assert prompt_reply.secret_prompt is not None
        try:
            value = await self.ask_secret(f"{prompt_reply.secret_prompt.label} (not echoed): ")
        except (EOFError, KeyboardInterrupt, OSError):
            return Reply(
                status="error",
                title="No secret given",
                visibility="ephemeral",
                text="Nothing was changed.",
            )
        if not value:
            return Reply(
                status="error",
                title="Empty secret",
                visibility="ephemeral",
                text="Nothing was changed.",
            )
        again = dataclasses.replace(
            invocation, text=prompt_reply.secret_prompt.command, secret=SecretStr(value)
        )
        return await self.bot.run(again)


class SafeHistory(FileHistory):
    """A history file that keeps a line only when told to (`keep`), after the line ran.

    prompt_toolkit appends every accepted line; this history ignores that and
    waits for the shell's verdict, so a refused line never reaches the file.
    """

    def append_string(self, string: str) -> None:
        """Called by prompt_toolkit on Enter: nothing is kept yet."""

    def keep(self, line: str) -> None:
        """Keep `line` in memory (Up arrow) and in the file."""
        super().append_string(line)


class ShellCompleter(Completer):
    """Completion of verbs, `:` commands and their names, databases and environments."""

    def __init__(self, session: ShellSession) -> None:
        self.session = session

    def get_completions(
        self, document: Document, complete_event: CompleteEvent
    ) -> Iterator[Completion]:
        before = document.text_before_cursor
        words = before.split()
        current = "" if before.endswith(" ") or not words else words[-1]
        done = words if not current else words[:-1]
        slash = self.session.bot.services.slash_command
        if done and done[0] == slash:
            done = done[1:]
        yield from self._complete(done, current)

    def _candidates(self, done: list[str], current: str) -> Iterable[str]:
        session = self.session
        if not done:
            verbs = [verb.name for verb in session.bot.registry.all()]
            return [*verbs, *META_COMMANDS] if current.startswith(":") or not current else verbs
        if done[0] == ":user" and len(done) == 1:
            return session.known(UserRef)
        if done[0] == ":channel" and len(done) == 1:
            return session.known(ChannelRef)
        if done[0].startswith(":"):
            return []
        if current.startswith("env="):
            return [f"env={name}" for name in sorted(session.environments)]
        if done[0] in ("help",):
            return [verb.name for verb in session.bot.registry.all()]
        return sorted(session.databases | session.environments)

    def _complete(self, done: list[str], current: str) -> Iterator[Completion]:
        for candidate in self._candidates(done, current):
            if candidate.startswith(current) and candidate != current:
                yield Completion(candidate, start_position=-len(current))


async def _interactive_terminal(session: ShellSession, banner: str) -> None:
    """The prompt_toolkit loop (stdin and stdout are a terminal)."""
    from prompt_toolkit import PromptSession
    from prompt_toolkit.patch_stdout import patch_stdout

    history = SafeHistory(str(HISTORY))
    prompt: PromptSession[str] = PromptSession(
        history=history, completer=ShellCompleter(session), complete_while_typing=False
    )
    secrets: PromptSession[str] = PromptSession()  # no history: never written anywhere

    async def ask_secret(label: str) -> str:
        return await secrets.prompt_async(label, is_password=True)

    session.ask_secret = ask_secret
    refreshing: set[asyncio.Task[None]] = set()

    def refresh(look_up: bool = False) -> None:
        task = asyncio.create_task(session.refresh_names(look_up=look_up))
        refreshing.add(task)
        task.add_done_callback(refreshing.discard)

    with patch_stdout(raw=True):
        if banner:
            session.write(banner)
        refresh(look_up=True)
        while True:
            try:
                line = (await prompt.prompt_async(session.prompt_text())).strip()
            except KeyboardInterrupt:  # Ctrl-C: the line is dropped, ask again
                continue
            except EOFError:  # Ctrl-D
                break
            if not line:
                continue
            line = as_meta(line)
            if line.startswith(":"):
                if session.meta_is_valid(line):
                    history.keep(line)
                if not session.meta(line):
                    break
                continue
            if session.kept_in_history(line):
                history.keep(line)
            await session.run(line, wait=False)
            refresh()
        await _wait_for_operations(session)
        for task in list(refreshing):
            task.cancel()


def as_meta(line: str) -> str:
    """`exit` or `quit` alone, as people type to leave a shell, is `:quit` (neither is a
    command); any other line as it is."""
    return ":quit" if line.strip().lower() in ("exit", "quit") else line


async def _interactive_pipe(session: ShellSession, banner: str) -> None:
    """Plain lines from a pipe: no prompt_toolkit, no history."""
    if banner:
        session.write(banner)
    loop = asyncio.get_running_loop()
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line:
            session.write("")
            break
        line = as_meta(line.strip())
        if not line:
            continue
        if line.startswith(":"):
            if not session.meta(line):
                break
            continue
        await session.run(line, wait=False)
    await _wait_for_operations(session)


async def _wait_for_operations(session: ShellSession) -> None:
    running = session.tracker.running() if session.tracker else 0
    if running and session.tracker is not None:
        session.write(f"waiting for {running} operation(s) to finish (Ctrl-C leaves now)")
        await session.wait_for_operations()


async def run_lines(session: ShellSession, lines: list[str], *, banner: str = "") -> int:
    """Run `lines` one by one (`-c`), each waiting for what it started, or the prompt
    (`interactive`) when there are none; the exit status: 0, 1 when a line failed,
    EXIT_OUTPUT_CLOSED when the output could not be written. A line starting with `:`
    is a shell command (`:user bob`), as at the prompt; after a refused one no line
    runs (it would run as someone not meant). The session is closed at the end."""
    if not lines:
        return await interactive(session, banner)  # closes the session itself
    try:
        ok = True
        for line in map(as_meta, lines):
            if line.startswith(":"):
                valid = session.meta_is_valid(line)
                if not session.meta(line):  # :quit
                    break
                if not valid:  # the lines after it would run as someone not meant
                    return 1
                continue
            ok = await session.run(line) and ok
        return 0 if ok else 1
    except OutputClosed:  # `| head` had enough: what was started goes on in the store
        return EXIT_OUTPUT_CLOSED
    finally:
        await session.close()


async def interactive(session: ShellSession, banner: str = "") -> int:
    """Prompt until Ctrl-D or :quit (exit 0); operations report in the background."""
    session.start_scheduler()
    try:
        if sys.stdin.isatty() and sys.stdout is not None and sys.stdout.isatty():
            await _interactive_terminal(session, banner)
        else:
            await _interactive_pipe(session, banner)
    except KeyboardInterrupt:
        session.write("")
    except OutputClosed:
        return EXIT_OUTPUT_CLOSED
    finally:
        await session.close()
    return 0


def colour_wanted() -> bool:
    """Colour only on a terminal."""
    return sys.stdout is not None and sys.stdout.isatty()
