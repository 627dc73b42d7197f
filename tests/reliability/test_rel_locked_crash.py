"""A kill while another process holds the store's write lock: the real `graphops serve`
acks slash commands without waiting for the lock (Slack's 3 s), so their inbox rows
cannot be written yet; they go to the inbox's spool (operations/inbox.py), synced to
disk before each ack. SIGKILL the bot while the lock is still held, let the lock go,
start the bot again while the lock is still held (it listens and acks), let the lock
go: every command the killed bot acknowledged is answered ("nothing was done"), once,
none of them ran, and the one the new bot acknowledged runs.
"""

from __future__ import annotations

import select
import subprocess
import sys
from pathlib import Path

from tests.bot.slack.test_slack_store import HOLDER
from tests.reliability.rel_procs import Serve, Simulate, bot_env, cli, rows, write_config
from tests.reliability.rel_support import free_port
from tests.reliability.test_rel_crash import _told
from tests.waiting import wait_until

LINES = ("restart sandbox-db", "pause sandbox-db", "show sandbox-db")


def test_commands_acked_while_the_store_is_locked_survive_a_kill(tmp_path: Path) -> None:
    sim = Simulate(step_seconds=0.3)
    serve: Serve | None = None
    holder: subprocess.Popen[str] | None = None
    try:
        port = free_port()
        env = bot_env(write_config(tmp_path, sim, port))
        grant = ("access", "grant", "C0DEV", "console", "development", "operator")
        assert cli(env, *grant).returncode == 0
        db = tmp_path / "g.sqlite3"
        spool = Path(f"{db}.inbox-spool")
        serve = Serve(env, port, tmp_path / "serve.log")
        holder = subprocess.Popen(
            [sys.executable, "-c", HOLDER, str(db), "60"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        for line in LINES:
            assert serve.slash(line).status_code == 200
        said, _, _ = select.select([holder.stdout], [], [], 0)
        assert not said, "the lock was let go before the acks: nothing was tested"
        kept = spool.read_text()
        assert all(line in kept for line in LINES)
        assert spool.stat().st_mode & 0o777 == 0o600
        serve.kill()  # while the lock is still held: no row was ever written

        # Started again while the lock is still held: it listens (health 503, found by an
        # attack: it waited 30 s without listening, then exited), and acks at once.
        serve = Serve(env, port, tmp_path / "serve.log", health=503)
        assert serve.slash("list").status_code == 200
        said, _, _ = select.select([holder.stdout], [], [], 0)
        assert not said, "the lock was let go before the second start: nothing was tested"
        assert holder.stdin is not None
        holder.stdin.close()  # let go
        assert holder.wait(30) == 0
        for line in LINES:
            wait_until(
                lambda line=line: _told(sim.calls(), "nothing was done", line),
                20,
                f"{line!r} answered after the restart",
            )
        wait_until(lambda: not spool.exists(), 10, "the spool emptied")
        assert rows(db, "SELECT COUNT(*) FROM accepted_requests") == [(0,)]
        told = [c for c in sim.calls() if "nothing was done" in str(c["body"])]
        assert len(told) == len(LINES)  # each once; `list`, acked by the new process, ran
        wait_until(lambda: _told(sim.calls(), "ran `/gdb list`", ""), 20, "list answered")
        assert [r for r in sim.mutating() if r["path"].endswith(("/restart", "/pause"))] == []
    finally:
        if holder is not None and holder.poll() is None:
            holder.kill()
        if serve is not None:
            serve.stop()
        sim.stop()
