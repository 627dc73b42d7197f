"""The issue's scenario with real processes: simulate, access, shell -c, demo -c."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.waiting import wait_until

GRAPHOPS = [sys.executable, "-m", "bot.cli"]


@pytest.fixture
def simulator(tmp_path: Path) -> Iterator[str]:
    urls_file = tmp_path / "urls.json"
    proc = subprocess.Popen(
        [
            *GRAPHOPS,
            "simulate",
            "--port",
            "0",
            "--urls-file",
            str(urls_file),
            "--step-seconds",
            "0.2",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )

    def started() -> bool:
        assert proc.poll() is None, "simulate exited"
        return urls_file.exists()

    wait_until(started, 20, "graphops simulate to start")
    url = json.loads(urls_file.read_text())["console"]
    try:
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _requests(url: str) -> list[dict]:
    return json.loads(urllib.request.urlopen(f"{url}/_sim/requests").read())


def _run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*GRAPHOPS, *args], capture_output=True, text=True, env=env, timeout=60)


@pytest.fixture
def env(simulator: str, tmp_path: Path) -> dict[str, str]:
    """The environment of a graphops process whose config names the simulator."""
    config = tmp_path / "graphops.toml"
    config.write_text(
        f"""
[bot]
admins = ["U0ADMIN"]
database = "{tmp_path / "g.sqlite3"}"

[[providers]]
name = "console"
kind = "graphenedb"
base_url = "{simulator}"
client_id_env = "GDB_ID"
client_secret_env = "GDB_SECRET"
"""
    )
    return {
        **os.environ,
        "GRAPHOPS_CONFIG": str(config),
        "GDB_ID": "demo-client",
        "GDB_SECRET": "demo-secret",
    }


def test_shell_pauses_and_refuses_without_the_role(simulator, env):
    granted = _run("access", "grant", "C0DEV", "console", "development", "operator", env=env)
    assert granted.returncode == 0, granted.stderr
    _run("access", "grant", "C0PROD", "console", "production", "viewer", env=env)

    refused = _run(
        "shell", "--user", "U0ALICE", "--channel", "C0PROD", "-c", "/gdb pause orders-db", env=env
    )
    assert refused.returncode == 1
    assert "pause needs operator" in refused.stdout
    assert _requests(simulator) == []

    paused = _run(
        "shell", "--user", "U0ALICE", "--channel", "C0DEV", "-c", "/gdb pause sandbox-db", env=env
    )
    assert paused.returncode == 0, paused.stdout + paused.stderr
    assert "Pausing sandbox-db" in paused.stdout
    assert "freezing-volume" in paused.stdout and "finished" in paused.stdout
    pauses = [r for r in _requests(simulator) if r["path"].endswith("/pause")]
    assert len(pauses) == 1 and pauses[0]["status"] == 202
    assert "demo-secret" not in paused.stdout + paused.stderr

    audit = _run("audit", "--json", env=env)
    assert audit.returncode == 0 and '"api_call"' in audit.stdout
    assert "demo-secret" not in audit.stdout


def test_bad_config_fails_at_start_with_the_key(tmp_path: Path):
    config = tmp_path / "graphops.toml"
    config.write_text('[[providers]]\nname = "x"\nkind = "graphenedb"\nbase_url = "nope"\n')
    result = _run(
        "shell",
        "--user",
        "U1",
        "--channel",
        "C1",
        "-c",
        "list",
        env={**os.environ, "GRAPHOPS_CONFIG": str(config)},
    )
    assert result.returncode == 2
    assert "providers[0].base_url" in result.stderr and "Traceback" not in result.stderr


def test_demo_runs_lines(tmp_path: Path):
    result = _run(
        "demo",
        "-c",
        "list",
        "-c",
        ":channel prod-db",
        "-c",
        "pause orders-db",
        env={**os.environ, "HOME": str(tmp_path)},
    )
    assert "sandbox-db" in result.stdout
    assert "pause needs operator" in result.stdout
    assert result.returncode == 1  # the refused line makes the run fail


def test_interactive_demo_waits_for_running_operations_at_end_of_input(tmp_path: Path):
    result = subprocess.run(
        [*GRAPHOPS, "demo"],
        input="restart sandbox-db\n",
        capture_output=True,
        text=True,
        env={**os.environ, "HOME": str(tmp_path)},
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "waiting for 1 operation(s) to finish" in result.stdout
    assert "health-check" in result.stdout and "finished in" in result.stdout


def _closing_after_one_line(args: list[str], env: dict[str, str]) -> tuple[int, str, str]:
    """Run graphops with its output read by something that stops after one line (as
    `| head -1`); its exit status, that line and its stderr."""
    proc = subprocess.Popen(
        [*GRAPHOPS, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    assert proc.stdout is not None and proc.stderr is not None
    first = proc.stdout.readline()
    proc.stdout.close()
    try:
        status = proc.wait(timeout=60)
    finally:
        proc.kill()
    return status, first, proc.stderr.read()


def test_a_closed_output_ends_demo_c_at_once(tmp_path: Path):
    status, first, errors = _closing_after_one_line(
        ["demo", "-c", "restart sandbox-db"], {**os.environ, "HOME": str(tmp_path)}
    )
    assert first.strip()
    assert status == 141, errors  # 128 + SIGPIPE, as a Unix tool stopped by `head`
    assert "Traceback" not in errors and "BrokenPipe" not in errors, errors


def test_a_closed_output_ends_shell_c_and_the_next_run_reports_what_is_left(env):
    """The operation goes on; the next `shell -c` on the same store follows it to its end
    (no hang on messages nobody read, no step printed under the wrong command)."""
    granted = _run("access", "grant", "C0DEV", "console", "development", "operator", env=env)
    assert granted.returncode == 0, granted.stderr
    shell = ["shell", "--user", "U0ALICE", "--channel", "C0DEV", "-c"]
    status, first, errors = _closing_after_one_line([*shell, "restart sandbox-db"], env)
    assert "Restarting sandbox-db" in first
    assert status == 141, errors
    assert "Traceback" not in errors and "BrokenPipe" not in errors, errors
    shown = _run(*shell, "show sandbox-db", env=env)  # starts nothing, waits for nothing
    assert shown.returncode == 0, shown.stdout + shown.stderr
    again = _run(*shell, "restart sandbox-db", env=env)  # follows what is left to its end
    assert again.returncode == 0, again.stdout + again.stderr
    said = shown.stdout + again.stdout
    finals = [line for line in said.splitlines() if "finished in" in line]
    assert len(finals) == 2, said  # the first run's restart (once), then this one's
    assert "lost track" not in said
    leftovers = [line for line in said.splitlines() if "health-check" in line]
    assert len(leftovers) == 2, said  # once each, each under its operation's label
    assert all(
        "[Restarting sandbox-db]" in line or "restart sandbox-db" in line for line in leftovers
    ), said


@pytest.mark.parametrize("redirect", [">&-", "> /dev/full"], ids=["closed", "full"])
def test_an_output_that_cannot_be_written_ends_the_demo_without_a_traceback(
    tmp_path: Path, redirect: str
):
    command = " ".join([*GRAPHOPS, "demo", "-c", "list"])
    result = subprocess.run(
        ["sh", "-c", f"exec {command} {redirect}"],
        capture_output=False,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "HOME": str(tmp_path)},
        timeout=60,
    )
    assert result.returncode == 141, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
