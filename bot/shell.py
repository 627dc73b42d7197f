"""The local shell transport: the command layer without Slack.

`graphops shell -c "/gdb pause orders-db" --user U --channel C` runs one line,
prints the reply, follows any operation it started to its end, and exits
non-zero on error. Without `-c` it is an interactive prompt with history,
where `:user U` and `:channel C` change who is typing where, so a second person
can approve from the same session (or from another `graphops shell -c`).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import getpass
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import SecretStr

from bot.text import humanize, render
from bot.wiring import Bot, build_scheduler, build_tracker, build_watcher
from core.invocation import Invocation
from core.refs import ChannelRef, UserRef
from core.reply import Reply
from operations.tracker import Tracker

HISTORY = Path.home() / ".graphops_history"

SHELL_HELP = """Shell commands (everything else goes to the bot):
  :user U0BOB        type as another Slack user id
  :channel C0PROD    type in another channel (ids or names shown in `:where`)
  :where             who and where you are
  :quit              leave (Ctrl-D works too)"""


class ShellNotifier:
    """Prints what the tracker reports: thread replies indented under their command."""

    def __init__(self, write: Callable[[str], None], names: Mapping[str, str], colour: bool):
        self.write = write
        self.names = names
        self.colour = colour
        self._threads: dict[str, str] = {}
        self._count = 0

    def remember(self, reply: Reply) -> str:
        """Give a printed command reply a thread id, as Slack would give it a ts."""
        self._count += 1
        ts = f"{self._count}.000000"
        self._threads[ts] = reply.title or ""
        return ts

    async def post(self, channel: str, reply: Reply, thread_ts: str | None = None) -> str | None:
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
    write: Callable[[str], None] = field(default=lambda text: print(text, flush=True))
    tracker: Tracker | None = None
    notifier: ShellNotifier | None = None
    # Asks for a secret without echo (getpass); tests inject their own.
    ask_secret: Callable[[str], str] = getpass.getpass

    def __post_init__(self) -> None:
        self.notifier = ShellNotifier(lambda text: self.write(text), self.names, self.colour)
        self.tracker = build_tracker(self.bot, self.notifier)
        self.tracker.start()
        self.scheduler = build_scheduler(self.bot, self.notifier, self.tracker)
        self.watcher = build_watcher(self.bot)

    def start_scheduler(self) -> None:
        """Run schedules and watches while this (interactive) session lasts."""
        self.scheduler.start()
        self.watcher.start()

    async def close(self) -> None:
        """Stop following operations, schedules and watches (all stay in the store)."""
        await self.watcher.stop()
        await self.scheduler.stop()
        if self.tracker is not None:
            await self.tracker.stop()

    def _name_to_id(self, text: str) -> str:
        wanted = text.lstrip("#@")
        for ident, name in self.names.items():
            if name == wanted:
                return ident
        return wanted

    def where(self) -> str:
        return humanize(f"{UserRef(self.user)} in {ChannelRef(self.channel)}", self.names)

    def meta(self, line: str) -> bool:
        """Handle a `:command`; False when the shell should stop."""
        word, _, rest = line[1:].partition(" ")
        if word in ("quit", "q", "exit"):
            return False
        if word == "user" and rest.strip():
            self.user = self._name_to_id(rest.strip())
        elif word == "channel" and rest.strip():
            self.channel = self._name_to_id(rest.strip())
        elif word != "where":
            self.write(SHELL_HELP)
            return True
        self.write(f"you are {self.where()}")
        return True

    async def run(self, line: str, *, wait: bool = True) -> bool:
        """Run one command line; True when it (and, if waiting, what it started) succeeded."""
        assert self.tracker is not None and self.notifier is not None
        invocation = Invocation(user=self.user, channel=self.channel, text=line)
        reply = await self.bot.run(invocation)
        if reply.secret_prompt is not None:
            reply = await self._with_secret(invocation, reply)
        self.write(render(reply, self.names, self.colour))
        if reply.attachment is not None:
            self.write(f"--- {reply.attachment.filename} ---\n{reply.attachment.content}\n---")
        thread = self.notifier.remember(reply)
        tracked = [
            await self.tracker.track(
                ref, channel=self.channel, thread_ts=thread, user=self.user, origin=reply
            )
            for ref in reply.operations
        ]
        if not wait or not tracked:
            return not reply.failed
        await self.tracker.wait_idle()
        states = [self.tracker.state(tracked_id) for tracked_id in tracked]
        return not reply.failed and all(state == "finished" for state in states)

    async def _with_secret(self, invocation: Invocation, prompt_reply: Reply) -> Reply:
        """Collect the secret a command asked for (no echo) and run the command again."""
        assert prompt_reply.secret_prompt is not None
        loop = asyncio.get_running_loop()
        try:
            value = await loop.run_in_executor(
                None, self.ask_secret, f"{prompt_reply.secret_prompt.label} (not echoed): "
            )
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


def _setup_readline() -> None:
    with contextlib.suppress(ImportError, OSError):
        import readline

        if HISTORY.exists():
            readline.read_history_file(HISTORY)
        readline.set_history_length(1000)


def _save_history() -> None:
    with contextlib.suppress(ImportError, OSError):
        import readline

        readline.write_history_file(HISTORY)


async def interactive(session: ShellSession, banner: str = "") -> int:
    """Prompt until EOF or :quit; operations report in the background."""
    _setup_readline()
    session.start_scheduler()
    if banner:
        session.write(banner)
    loop = asyncio.get_running_loop()
    try:
        while True:
            prompt = (
                humanize(f"{UserRef(session.user)} {ChannelRef(session.channel)} ", session.names)
                + "› "
            )
            try:
                line = await loop.run_in_executor(None, input, prompt)
            except EOFError:
                session.write("")
                break
            line = line.strip()
            if not line:
                continue
            if line.startswith(":"):
                if not session.meta(line):
                    break
                continue
            await session.run(line, wait=False)
        running = session.tracker.running() if session.tracker else 0
        if running and session.tracker is not None:
            session.write(f"waiting for {running} operation(s) to finish (Ctrl-C leaves now)")
            await session.tracker.wait_idle()
    except KeyboardInterrupt:
        session.write("")
    finally:
        _save_history()
        await session.close()
    return 0


def colour_wanted() -> bool:
    """Colour only on a terminal."""
    return sys.stdout.isatty()
