"""The README runs as written.

- Every ```sh block, in order, in one bash session in an empty folder (as a reader
  pasting them into one terminal), with `.venv/bin` first on the PATH. Only the
  ports change: 8480-8483 and 3000 become free ones. A block preceded by
  `<!-- readme-test: skip: <why> -->` is left out, and must say why.
- The demo walkthrough ("Things to try"), line by line on a fresh demo: a line whose
  note says "refused" must be refused, every other line must succeed, `[Approve]`
  pastes the approval card's command.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from bot.demo import NAMES, start_demo
from bot.shell import ShellSession

ROOT = Path(__file__).parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
SKIP = re.compile(r"<!-- readme-test: skip: (?P<why>[^>]+?) -->\s*$")
MARK = "::readme-block::"


@dataclass
class Block:
    language: str
    text: str
    skip: str | None
    heading: str


def blocks() -> list[Block]:
    found: list[Block] = []
    heading = ""
    lines = README.splitlines()
    index = 0
    while index < len(lines):
        line = lines[index]
        if line.startswith("#"):
            heading = line.lstrip("# ").strip()
        if line.startswith("```") and len(line) > 3:
            end = lines.index("```", index + 1)
            previous = lines[index - 1] if index else ""
            skip = SKIP.search(previous)
            found.append(
                Block(
                    line[3:].strip(),
                    "\n".join(lines[index + 1 : end]),
                    skip.group("why") if skip else None,
                    heading,
                )
            )
            index = end
        index += 1
    return found


def _free_ports(count: int) -> int:
    """A base port with `count` free ports after it (the simulators take N..N+3)."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            base = probe.getsockname()[1]
        if base + count > 65535:
            continue
        sockets = []
        try:
            for port in range(base, base + count):
                sock = socket.socket()
                sockets.append(sock)
                sock.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for sock in sockets:
                sock.close()
    raise AssertionError("no run of free ports")


def test_skipped_blocks_say_why_and_the_setup_commands_are_there():
    all_blocks = blocks()
    assert all(block.skip is None or len(block.skip) > 10 for block in all_blocks)
    quick = next(block for block in all_blocks if block.heading == "Quick start")
    assert "make demo" in quick.text and "make test" in quick.text
    assert "source .venv/bin/activate" in README and ".venv/bin/graphops" in README


def test_shell_blocks_run_in_order_in_an_empty_folder(tmp_path: Path):
    runnable = [block for block in blocks() if block.language == "sh" and block.skip is None]
    assert len(runnable) >= 4
    work = tmp_path / "work"
    work.mkdir()
    # What a fresh clone has that the blocks use.
    (work / "graphops.example.toml").write_text((ROOT / "graphops.example.toml").read_text())
    base, bot_port = _free_ports(4), _free_ports(1)
    ports = {str(8480 + i): str(base + i) for i in range(4)} | {"3000": str(bot_port)}
    script = "\n".join(f"echo {MARK}\n{block.text}" for block in runnable)
    script = re.sub(r"\b(848[0-3]|3000)\b", lambda m: ports[m.group(1)], script)
    bin_dir = Path(sys.executable).parent
    assert (bin_dir / "graphops").exists(), "run `make install` first"
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("GRAPHOPS_", "SLACK_", "GDB_", "GRAPHENEDB_", "TYPEDB_"))
    }
    env |= {"PATH": f"{bin_dir}{os.pathsep}{env.get('PATH', '')}", "HOME": str(tmp_path)}
    log = tmp_path / "out.txt"
    with log.open("w") as out:
        shell = subprocess.Popen(
            ["bash", "-e", "-o", "pipefail", "-c", script],
            cwd=work,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            code = shell.wait(timeout=150)
        finally:
            os.killpg(shell.pid, signal.SIGTERM)  # serve and simulate, left in the background
    output = log.read_text()
    parts = output.split(MARK + "\n")[1:]
    assert code == 0, f"block {len(parts)} failed:\n{runnable[len(parts) - 1].text}\n---\n{output}"
    assert len(parts) == len(runnable)
    by_heading: dict[str, str] = {}  # the output of every block under a heading
    for block, part in zip(runnable, parts, strict=True):
        by_heading[block.heading] = by_heading.get(block.heading, "") + part
    assert "granted admin on console/production to C0123PROD" in by_heading["Managing access"]
    slack = by_heading["Trying the Slack transport without Slack"]
    assert "valid for serve" in slack and '"status": "ok"' in slack
    assert "finished in" in slack  # what the last curl printed: the final message
    assert '"latency": 2' in slack and '"error_status": 503' in slack  # faults, then reset
    assert "Pausing sandbox-db" in by_heading["The shell and the simulators"]
    assert "copied" in by_heading["Operating graphops"]


def _walkthrough() -> list[tuple[str, str]]:
    section = README.split("Things to try", 1)[1]
    text = section.split("```text\n", 1)[1].split("```", 1)[0]
    steps: list[tuple[str, str]] = []
    for line in text.splitlines():
        if line.startswith(" "):  # a note on the line above
            command, note = steps[-1]
            steps[-1] = (command, f"{note} {line.strip()}")
            continue
        match = re.fullmatch(r"(\S.*?)(?:\s{2,}(.*))?", line.rstrip())
        assert match, f"cannot read walkthrough line {line!r}"
        steps.append((match.group(1), match.group(2) or ""))
    return steps


async def test_the_walkthrough_works_in_order_on_a_fresh_demo():
    steps = _walkthrough()
    assert len(steps) >= 15
    demo = await start_demo(step_seconds=0.05)
    out: list[str] = []
    session = ShellSession(demo.bot, user="U0ALICE", channel="C0DEV", names=NAMES)
    session.write = out.append
    try:
        for command, note in steps:
            seen = len(out)
            if command == "[Approve]":
                cards = re.findall(r"\[Approve\] (.+)", "\n".join(out))
                assert cards, "no approval card to approve"
                command = cards[-1]
            if command.startswith(":"):
                assert session.meta(command)
                assert not out[-1].startswith("✖"), out[-1]
                continue
            ok = await session.run(command)
            printed = "\n".join(out[seen:])
            if "refused" in note:
                assert not ok and "⛔" in printed, f"{command!r} was not refused:\n{printed}"
            else:
                assert ok, f"{command!r} failed:\n{printed}"
    finally:
        await session.close()
        await demo.aclose()
