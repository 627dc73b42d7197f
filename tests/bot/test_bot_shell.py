"""The interactive shell in a real pseudo-terminal (pexpect), its screen drawn by a
terminal emulator (pyte): Ctrl-C clears the line, Ctrl-D exits 0, background progress
lands above the prompt, history keeps no secret, unknown :user/:channel are refused."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pexpect
import pyte
import pytest
from prompt_toolkit.completion import CompleteEvent
from prompt_toolkit.document import Document

from bot.demo import NAMES, start_demo
from bot.shell import SafeHistory, ShellCompleter, ShellSession
from core.invocation import Invocation

ROWS, COLUMNS = 50, 140
PROMPT = "@alice #dev-db › "


class Terminal:
    """`graphops demo` in a pty, with what it draws kept on a pyte screen."""

    def __init__(self, home: Path) -> None:
        env = {
            **os.environ,
            "HOME": str(home),
            "TERM": "xterm",
            "PYTHONPATH": str(Path(__file__).parents[2]),
        }
        self.screen = pyte.Screen(COLUMNS, ROWS)
        self.stream = pyte.Stream(self.screen)
        self.child = pexpect.spawn(
            sys.executable,
            ["-m", "bot.cli", "demo", "--step-seconds", "0.3"],
            env=env,
            dimensions=(ROWS, COLUMNS),
            encoding="utf-8",
            timeout=30,
        )

    def pump(self) -> None:
        while True:
            try:
                self.stream.feed(self.child.read_nonblocking(65536, timeout=0.05))
            except pexpect.TIMEOUT:
                return
            except pexpect.EOF:
                return

    def lines(self) -> list[str]:
        return [line.rstrip() for line in self.screen.display]

    def cursor_line(self) -> str:
        return self.screen.display[self.screen.cursor.y].rstrip()

    def until(self, condition: Callable[[], bool], what: str, seconds: float = 30) -> None:
        deadline = time.monotonic() + seconds
        while not condition():
            assert time.monotonic() < deadline, f"never saw {what}:\n" + "\n".join(self.lines())
            self.pump()

    def send(self, text: str) -> None:
        self.child.send(text)

    def close(self) -> None:
        if self.child.isalive():
            self.child.terminate(force=True)


@pytest.fixture
def terminal(tmp_path: Path) -> Iterator[Terminal]:
    term = Terminal(tmp_path)
    try:
        term.until(lambda: term.cursor_line() == PROMPT.rstrip(), "the first prompt")
        yield term
    finally:
        term.close()


def test_ctrl_c_clears_the_line_and_ctrl_d_exits_0(terminal: Terminal):
    terminal.send("pause orders-db")
    terminal.until(lambda: terminal.cursor_line() == PROMPT + "pause orders-db", "the typing")
    terminal.send("\x03")  # Ctrl-C
    terminal.until(lambda: terminal.cursor_line() == PROMPT.rstrip(), "an empty prompt")
    terminal.send("envs\r")
    terminal.until(lambda: any("Environments" in line for line in terminal.lines()), "envs")
    terminal.until(lambda: terminal.cursor_line() == PROMPT.rstrip(), "the next prompt")
    assert not any("pause orders-db" in line for line in terminal.lines()[1:] if "envs" in line)
    terminal.send("\x04")  # Ctrl-D
    terminal.child.expect(pexpect.EOF)
    terminal.child.close()
    assert terminal.child.exitstatus == 0


def test_progress_is_printed_above_the_prompt(terminal: Terminal, tmp_path: Path):
    terminal.send("restart sandbox-db\r")
    terminal.until(lambda: any("↳" in line for line in terminal.lines()), "a first step")
    terminal.send("show sand")  # typed while steps arrive
    terminal.until(
        lambda: any("finished in" in line for line in terminal.lines()), "the final result"
    )
    terminal.pump()
    lines = terminal.lines()
    steps = [line for line in lines if "↳" in line]
    assert len(steps) >= 2
    assert all(line.startswith("  ↳ [") and "›" not in line for line in steps), lines
    assert terminal.cursor_line() == PROMPT + "show sand", lines
    prompts = [n for n, line in enumerate(lines) if line.startswith(PROMPT.rstrip())]
    assert prompts[-1] == terminal.screen.cursor.y  # the live prompt is below everything
    assert all(not line.strip() for line in lines[terminal.screen.cursor.y + 1 :])
    terminal.send("\x15\x04")  # Ctrl-U, Ctrl-D
    terminal.child.expect(pexpect.EOF)
    terminal.child.close()
    assert terminal.child.exitstatus == 0


def test_history_keeps_no_secret(terminal: Terminal, tmp_path: Path):
    terminal.send("envs\r")
    terminal.until(lambda: terminal.cursor_line() == PROMPT.rstrip(), "the next prompt", 30)
    terminal.send("user add erin hunter2\r")
    terminal.until(lambda: any("not shown" in line for line in terminal.lines()), "the refusal")
    terminal.send("user add erin\r")
    terminal.until(lambda: "not echoed" in terminal.cursor_line(), "the password prompt")
    terminal.send("s3cret-pw-77\r")
    terminal.until(lambda: any("erin" in line and "✔" in line for line in terminal.lines()), "ok")
    terminal.send(":user nobody\r")
    terminal.until(lambda: any("`:user nobody`" in line for line in terminal.lines()), "refusal")
    terminal.send("help Xq7pLm2Zr9Kw!\r")  # a password typed after help by mistake
    terminal.until(lambda: any("not repeated" in line for line in terminal.lines()), "unknown")
    terminal.send(":quit\r")
    terminal.child.expect(pexpect.EOF)
    terminal.child.close()
    assert terminal.child.exitstatus == 0
    history = (tmp_path / ".graphops_history").read_text()
    assert "envs" in history and "user add erin" in history and ":quit" in history
    assert "hunter2" not in history and "s3cret-pw-77" not in history
    assert "Xq7pLm2Zr9Kw" not in history
    assert "nobody" not in history
    assert not any("s3cret-pw-77" in line for line in terminal.lines())


async def test_unknown_user_and_channel_are_refused(tmp_path: Path):
    demo = await start_demo(step_seconds=0.05)
    out: list[str] = []
    session = ShellSession(demo.bot, user="U0ALICE", channel="C0DEV", names=NAMES)
    session.write = out.append
    try:
        for line in (":user nobody", ":channel random", ":user alice-ish", ":channel c0dev"):
            assert session.meta(line)
            assert (session.user, session.channel) == ("U0ALICE", "C0DEV")
            assert out[-1].startswith("✖")
        session.meta(":user bob")
        session.meta(":channel #prod-oncall")
        assert (session.user, session.channel) == ("U0BOB", "C0ONCALL")
        session.meta(":user U0CAROL")
        session.meta(":channel G0PRIVATE")
        assert (session.user, session.channel) == ("U0CAROL", "G0PRIVATE")
    finally:
        await session.close()
        await demo.aclose()


async def test_completion_of_verbs_databases_and_environments(tmp_path: Path):
    demo = await start_demo(step_seconds=0.05)
    session = ShellSession(demo.bot, user="U0ALICE", channel="C0DEV", names=NAMES)
    completer = ShellCompleter(session)

    def complete(text: str) -> list[str]:
        found = completer.get_completions(Document(text), CompleteEvent(completion_requested=True))
        return [c.text for c in found]

    try:
        await session.refresh_names()
        assert "restart" in complete("rest") and "restore" in complete("rest")
        assert complete("/gdb paus") == ["pause"]
        assert "sandbox-db" in complete("restart sand")
        assert "production" not in session.environments  # not bound to #dev-db
        assert "env=staging" in complete("list env=st")
        assert complete(":user b") == ["bob"]
        assert complete(":channel prod-") == ["prod-db", "prod-oncall"]
    finally:
        await session.close()
        await demo.aclose()


def test_safe_history_writes_only_kept_lines(tmp_path: Path):
    history = SafeHistory(str(tmp_path / "h"))
    history.append_string("user add erin hunter2")  # what prompt_toolkit does on Enter
    history.keep("envs")
    assert list(history.get_strings()) == ["envs"]
    assert "hunter2" not in (tmp_path / "h").read_text()


async def test_an_approved_operation_is_announced_naming_requester_and_approver(tmp_path: Path):
    """As in Slack: the incident channel names who asked and who approved (the shell
    used to follow approved work as the approver's own: `Run by @bob`)."""
    demo = await start_demo(step_seconds=0.05)
    out: list[str] = []
    session = ShellSession(demo.bot, user="U0ALICE", channel="C0ONCALL", names=NAMES)
    session.write = out.append
    try:
        card = await demo.bot.run(
            Invocation(
                user="U0ALICE", channel="C0ONCALL", text="terminate orders-db env=production"
            )
        )
        (approve,) = [a.command for a in card.actions if a.action_id == "approval.approve"]
        session.meta(":user bob")
        ok = await session.run(approve)  # the card's line names the database to confirm
        said = "\n".join(out)
        assert ok, said
        assert "Requested by @alice, approved by @bob" in said, said
        assert "Run by @bob" not in said
    finally:
        await session.close()
        await demo.aclose()


async def test_approved_work_paused_by_a_locked_store_goes_on_before_the_next_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """The shell has no sweep: what a locked store paused goes on before the next line
    (the answer said it would go on "by itself", which only `graphops serve` does)."""
    from operations import locked
    from tests.bot.slack.test_slack_store import LockHolder, _lock_at_the_first_read

    monkeypatch.setattr(locked, "WRITE_ATTEMPTS", 1)
    demo = await start_demo(step_seconds=0.05)
    out: list[str] = []
    session = ShellSession(demo.bot, user="U0ALICE", channel="C0ONCALL", names=NAMES)
    session.write = out.append
    holder = LockHolder(str(demo.bot.config.bot.database), on_cue=True)
    try:
        card = await demo.bot.run(
            Invocation(
                user="U0ALICE", channel="C0ONCALL", text="terminate orders-db env=production"
            )
        )
        (approve,) = [a.command for a in card.actions if a.action_id == "approval.approve"]
        arm = _lock_at_the_first_read(demo.simulators.console, holder, monkeypatch)
        session.meta(":user bob")
        arm()
        try:
            await session.run(approve)
        finally:
            await holder.release()
        said = "\n".join(out)
        assert "Approved, paused" in said and "before your next command" in said, said
        assert demo.simulators.console.requests_to("DELETE") == []
        out.clear()
        await session.run("help")
        said = "\n".join(out)
        assert "Going on with approval" in said and "store was locked" in said, said
        assert len(demo.simulators.console.requests_to("DELETE")) == 1
        out.clear()
        await session.run("help")  # gone on with once
        assert "Going on" not in "\n".join(out)
    finally:
        await session.close()
        await demo.aclose()
