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
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from bot.text import humanize, render
from bot.wiring import Bot
from commands.context import Invocation
from commands.reply import OperationRef, Reply
from operations.follow import Backoff, StepEvent, follow

HISTORY = Path.home() / ".graphops_history"

SHELL_HELP = """Shell commands (everything else goes to the bot):
  :user U0BOB        type as another Slack user id
  :channel C0PROD    type in another channel (ids or names shown in `:where`)
  :where             who and where you are
  :quit              leave (Ctrl-D works too)"""


@dataclass
class ShellSession:
    """One person typing in one channel, with output going to `write`."""

    bot: Bot
    user: str
    channel: str
    names: Mapping[str, str] = field(default_factory=dict)
    colour: bool = False
    write: Callable[[str], None] = print
    backoff: Backoff = field(default_factory=lambda: Backoff(first=0.5, factor=1.3, cap=3.0))
    background: set[asyncio.Task[bool]] = field(default_factory=set)

    def _name_to_id(self, text: str) -> str:
        wanted = text.lstrip("#@")
        for ident, name in self.names.items():
            if name == wanted:
                return ident
        return wanted

    def where(self) -> str:
        return humanize(f"<@{self.user}> in <#{self.channel}>", self.names)

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
        """Run one command line; True when it (and anything it started) succeeded."""
        invocation = Invocation(user=self.user, channel=self.channel, text=line)
        reply = await self.bot.run(invocation)
        self.write(render(reply, self.names, self.colour))
        ok = not reply.failed
        follows = [self._follow(ref) for ref in reply.operations]
        if not follows:
            return ok
        if wait:
            results = await asyncio.gather(*follows)
            return ok and all(results)
        for coroutine in follows:
            task = asyncio.create_task(coroutine)
            self.background.add(task)
            task.add_done_callback(self.background.discard)
        return ok

    async def _follow(self, ref: OperationRef) -> bool:
        client = self.bot.services.providers[ref.provider].client

        async def step(event: StepEvent) -> None:
            self.write(f"  ↳ [{ref.label}] {event.name} ({event.elapsed:.0f}s)")

        outcome = await follow(
            client, ref.database_id, ref.operation_id, step, backoff=self.backoff
        )
        self.bot.services.resolver.invalidate(ref.provider)
        finished = outcome.status == "finished"
        reply = Reply(
            status="ok" if finished else "error",
            title=f"{ref.label}: finished in {outcome.elapsed:.0f}s"
            if finished
            else f"{ref.label}: {outcome.status}",
            text=outcome.error or "",
        )
        self.write(render(reply, self.names, self.colour))
        return outcome.status == "finished"


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
    if banner:
        session.write(banner)
    loop = asyncio.get_running_loop()
    try:
        while True:
            prompt = humanize(f"<@{session.user}> <#{session.channel}> ", session.names) + "› "
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
    except KeyboardInterrupt:
        session.write("")
    finally:
        _save_history()
        for task in list(session.background):
            task.cancel()
    return 0


def colour_wanted() -> bool:
    """Colour only on a terminal."""
    return sys.stdout.isatty()
