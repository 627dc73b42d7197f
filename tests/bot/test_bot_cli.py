"""The command line where people type it: options anywhere, paths, check-config, serve's
refusals (taken port, second serve on one database), logs, backup."""

from __future__ import annotations

import argparse
import json
import logging
import os
import socket
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot import access_cli, cli
from bot.config import load_config
from bot.logs import COMMAND_LOGGER, JsonFormatter
from bot.store import StoreError, backup_database, open_database, serve_lock
from core.invocation import Invocation
from permissions.audit import KINDS
from tests.reliability.rel_procs import Serve, Simulate, bot_env, write_config
from tests.reliability.rel_support import free_port

GRAPHOPS = [sys.executable, "-m", "bot.cli"]
PROVIDER = """
[[providers]]
name = "console"
kind = "graphenedb"
base_url = "http://127.0.0.1:9"
client_id_env = "GDB_ID"
client_secret_env = "GDB_SECRET"
"""
ENV = {
    "GDB_ID": "id-sentinel-41",
    "GDB_SECRET": "secret-sentinel-42",
    "SLACK_BOT_TOKEN": "xoxb-sentinel-43",
    "SLACK_SIGNING_SECRET": "signing-sentinel-44",
}


def _run(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None):
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "GRAPHOPS_"))}
    return subprocess.run(
        [*GRAPHOPS, *args],
        capture_output=True,
        text=True,
        env={**clean, "PYTHONPATH": str(Path(__file__).parents[2]), **(env or {})},
        cwd=cwd,
        timeout=60,
    )


def _commands(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()) -> Iterator[tuple]:
    """Every (sub)command path of the parser, with its required positionals filled in."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _commands(sub, (*prefix, name))
            return
    filler: list[str] = []
    for action in parser._actions:
        if not action.option_strings and action.dest != "help":
            if action.nargs in ("*", "?"):
                continue
            filler.append(action.choices[0] if action.choices else "x")  # type: ignore[index]
        elif action.required:
            filler.extend([action.option_strings[0], "U0X"])
    yield prefix, tuple(filler)


ALL_COMMANDS = list(_commands(cli._parser()))


def test_every_subcommand_is_covered():
    names = {path[0] for path, _ in ALL_COMMANDS}
    assert {"serve", "shell", "demo", "access", "audit", "check-config", "simulate"} <= names
    assert ("access", "grant") in [path for path, _ in ALL_COMMANDS]


@pytest.mark.parametrize(("path", "filler"), ALL_COMMANDS, ids=lambda v: " ".join(v) or "-")
def test_global_options_before_or_after_the_subcommand(path, filler):
    parser = cli._parser()
    options = ["--config", "my.toml", "--log-level", "debug", "--log-format", "json"]
    after = parser.parse_args([*path, *filler, *options])
    before = parser.parse_args([*options, *path, *filler])
    for args in (after, before):
        assert (args.config, args.log_level, args.log_format) == ("my.toml", "DEBUG", "json")
    neither = parser.parse_args([*path, *filler])
    assert (neither.config, neither.log_level, neither.log_format) == (None, None, "text")


def test_audit_kinds_match_the_audit_log():
    assert access_cli.AUDIT_KINDS == KINDS


def test_relative_database_resolves_against_the_config_folder(tmp_path: Path):
    elsewhere = tmp_path / "etc"
    elsewhere.mkdir()
    (elsewhere / "graphops.toml").write_text('[bot]\nadmins = ["U0ADMIN"]\n' + PROVIDER)
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    config = str(elsewhere / "graphops.toml")
    granted = _run(
        "access", "grant", "C0DEV", "console", "staging", "operator", "--config", config, cwd=cwd
    )
    assert granted.returncode == 0, granted.stderr
    assert (elsewhere / "graphops.sqlite3").exists() and list(cwd.iterdir()) == []
    listed = _run("access", "list", "--config", config, cwd=cwd)
    assert "C0DEV" in listed.stdout


def test_database_env_var_overrides_the_file(tmp_path: Path):
    path = tmp_path / "graphops.toml"
    path.write_text('[bot]\ndatabase = "here.sqlite3"\n')
    assert load_config(path, {}).bot.database == str(tmp_path / "here.sqlite3")
    config = load_config(path, {"GRAPHOPS_DATABASE": "/data/g.sqlite3"})
    assert config.bot.database == "/data/g.sqlite3"
    assert config.database_source == "$GRAPHOPS_DATABASE"


def test_reading_a_database_that_is_not_there_says_so(tmp_path: Path):
    (tmp_path / "graphops.toml").write_text('[bot]\nadmins = ["U0ADMIN"]\n')
    result = _run("access", "list", "--config", str(tmp_path / "graphops.toml"))
    assert result.returncode == 2
    assert f"no database at {tmp_path / 'graphops.sqlite3'} yet" in result.stderr
    assert not (tmp_path / "graphops.sqlite3").exists()


def _check(tmp_path: Path, text: str, env: dict[str, str], *extra: str):
    path = tmp_path / "graphops.toml"
    path.write_text(text)
    return _run("check-config", "--config", str(path), *extra, env=env)


def test_check_config_names_the_database_when_valid(tmp_path: Path):
    result = _check(tmp_path, '[bot]\nadmins = ["U0ADMIN"]\n' + PROVIDER, ENV)
    assert result.returncode == 0, result.stderr
    assert "valid for serve" in result.stdout
    assert f"database: {tmp_path / 'graphops.sqlite3'}" in result.stdout
    # no `database` key: the source is the default, not a key the file does not have
    assert "(from the default, graphops.sqlite3 beside" in result.stdout


@pytest.mark.parametrize(
    ("text", "env", "expected"),
    [
        ("", ENV, "the file is empty"),
        ("\n# only a comment\n", ENV, "the file is empty"),
        ('[bot]\nadmins = ["alice"]\n' + PROVIDER, ENV, "'alice' is not a Slack user id"),
        ('[bot]\nadmins = ["U0ADMIN"]\n', ENV, "no [[providers]] entry"),
        (
            '[bot]\nadmins = ["U0ADMIN"]\n' + PROVIDER,
            {**ENV, "SLACK_BOT_TOKEN": ""},
            "SLACK_BOT_TOKEN",
        ),
        (
            '[bot]\nadmins = ["U0ADMIN"]\n' + PROVIDER,
            {k: v for k, v in ENV.items() if k != "GDB_SECRET"},
            "GDB_SECRET",
        ),
        (
            '[bot]\nadmins = ["U0ADMIN"]\ndatabase = "afile/g.sqlite3"\n' + PROVIDER,
            ENV,
            "cannot create",
        ),
    ],
    ids=["empty", "comment-only", "admin-name", "no-provider", "slack", "provider-var", "path"],
)
def test_check_config_refuses(tmp_path: Path, text, env, expected):
    (tmp_path / "afile").write_text("a file where a folder should be")
    result = _check(tmp_path, text, env)
    assert result.returncode == 2
    assert expected in result.stderr
    assert "Traceback" not in result.stderr
    assert "sentinel" not in result.stdout + result.stderr


def test_check_config_for_the_shell_skips_slack(tmp_path: Path):
    env = {k: v for k, v in ENV.items() if not k.startswith("SLACK")}
    text = '[bot]\nadmins = ["U0ADMIN"]\n' + PROVIDER
    assert _check(tmp_path, text, env).returncode == 2
    assert _check(tmp_path, text, env, "--for", "shell").returncode == 0


@pytest.fixture(scope="module")
def simulate() -> Iterator[Simulate]:
    sim = Simulate(step_seconds=0.1)
    try:
        yield sim
    finally:
        sim.stop()


def test_serve_on_a_taken_port_prints_one_line_and_exits_2(simulate, tmp_path: Path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = bot_env(write_config(tmp_path, simulate, port))
        result = subprocess.run(
            [*GRAPHOPS, "serve", "--host", "127.0.0.1", "--log-level", "warning"],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"cannot serve: port {port} on 127.0.0.1 is already in use (another graphops serve, "
        "or another program); stop it or set [slack] port"
    ]


def test_second_serve_on_one_database_is_refused(simulate, tmp_path: Path):
    port = free_port()
    config = write_config(tmp_path, simulate, port)
    env = bot_env(config)
    first = Serve(env, port, tmp_path / "serve.log")
    try:
        second = subprocess.run(
            [*GRAPHOPS, "--config", str(config), "serve", "--host", "127.0.0.1"],
            capture_output=True,
            text=True,
            env={**env, "GRAPHOPS_CONFIG": ""},
            timeout=60,
        )
        assert second.returncode == 2
        assert f"another graphops serve (pid {first.proc.pid}) is using" in second.stderr
        assert str(tmp_path / "g.sqlite3") in second.stderr
        assert first.proc.poll() is None  # the first one is untouched
    finally:
        first.stop()
    log = (tmp_path / "serve.log").read_text()
    lines = [line for line in log.splitlines() if line.strip()]
    assert f"database {tmp_path / 'g.sqlite3'} (from [bot] database in {config})" in lines[0]
    assert "will be unused" not in log  # Bolt no longer sees a second token


def test_lock_is_released_when_its_holder_goes(tmp_path: Path):
    db = tmp_path / "g.sqlite3"
    lock = serve_lock(db)
    assert lock is not None
    with pytest.raises(StoreError, match=f"pid {os.getpid()}"):
        serve_lock(db)
    lock.release()
    again = serve_lock(db)
    assert again is not None
    again.release()


def test_backup_copies_a_database_being_written(tmp_path: Path):
    source = tmp_path / "g.sqlite3"
    db = open_database(source)
    db.execute("CREATE TABLE t (n INTEGER)")
    stop = threading.Event()

    def writer() -> None:
        conn = sqlite3.connect(source, timeout=30, isolation_level=None)
        n = 0
        while not stop.is_set():
            conn.execute("INSERT INTO t VALUES (?)", (n,))
            n += 1
        conn.close()

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        while db.execute("SELECT count(*) FROM t").fetchone()[0] < 200:
            pass
        size = backup_database(source, tmp_path / "copy.sqlite3")
    finally:
        stop.set()
        thread.join()
    copy = sqlite3.connect(tmp_path / "copy.sqlite3")
    count, top = copy.execute("SELECT count(*), max(n) FROM t").fetchone()
    assert count >= 200 and top == count - 1  # a consistent prefix of the writes
    assert size == (tmp_path / "copy.sqlite3").stat().st_size
    with pytest.raises(StoreError, match="already exists"):
        backup_database(source, tmp_path / "copy.sqlite3")


def test_backup_command(tmp_path: Path):
    (tmp_path / "graphops.toml").write_text('[bot]\nadmins = ["U0ADMIN"]\n' + PROVIDER)
    config = str(tmp_path / "graphops.toml")
    assert (
        _run(
            "access", "grant", "C0DEV", "console", "staging", "operator", "--config", config
        ).returncode
        == 0
    )
    result = _run("backup", str(tmp_path / "b.sqlite3"), "--config", config)
    assert result.returncode == 0, result.stderr
    copy = sqlite3.connect(tmp_path / "b.sqlite3")
    rows = copy.execute("SELECT channel FROM channel_bindings").fetchall()
    assert rows == [("C0DEV",)]
    missing = _run("backup", str(tmp_path / "c.sqlite3"), "--config", str(tmp_path / "nope.toml"))
    assert missing.returncode == 2 and "no such file" in missing.stderr


async def test_one_log_line_per_command_without_free_text(bot, caplog):
    caplog.set_level(logging.INFO, logger=COMMAND_LOGGER)
    await bot.run(Invocation(user="U0ALICE", channel="C0DEV", text="/gdb envs"))
    await bot.run(Invocation(user="U0ALICE", channel="C0DEV", text="user add erin hunter2"))
    await bot.run(Invocation(user="U0ALICE", channel="C0DEV", text="hunter2 is my password"))
    records = [r for r in caplog.records if r.name == COMMAND_LOGGER]
    assert [(r.verb, r.outcome) for r in records] == [  # type: ignore[attr-defined]
        ("envs", "ok"),
        ("user", "error"),
        ("unknown", "error"),
    ]
    assert all(isinstance(r.ms, int) and r.user == "U0ALICE" for r in records)  # type: ignore[attr-defined]
    assert "hunter2" not in caplog.text
    entry = json.loads(JsonFormatter().format(records[0]))
    assert {k: entry[k] for k in ("verb", "outcome", "user", "channel")} == {
        "verb": "envs",
        "outcome": "ok",
        "user": "U0ALICE",
        "channel": "C0DEV",
    }


@pytest.mark.parametrize("command", ["demo", "simulate"])
@pytest.mark.parametrize("value", ["nan", "inf", "-1", "3601", "soon"])
def test_step_seconds_out_of_range_is_refused_with_the_range(command, value, capsys):
    with pytest.raises(SystemExit) as exited:
        cli._parser().parse_args([command, "--step-seconds", value])
    assert exited.value.code == 2
    assert f"{value!r} is not a number of seconds from 0 to 3600" in capsys.readouterr().err


def test_step_seconds_in_range_is_taken():
    assert cli._parser().parse_args(["demo", "--step-seconds", "0"]).step_seconds == 0
    assert cli._parser().parse_args(["simulate", "--step-seconds", "2.5"]).step_seconds == 2.5


def test_demo_refuses_a_config_it_would_not_read(tmp_path: Path):
    """The demo runs on its own simulators: a --config given to it is refused, not
    silently ignored, and the refusal says what would use it."""
    done = _run("demo", "--config", str(tmp_path / "mine.toml"), "-c", "list")
    assert done.returncode == 2
    assert "reads no config" in done.stderr
    assert f"graphops shell --config {tmp_path / 'mine.toml'}" in done.stderr
    assert done.stdout == ""


def test_demo_stops_at_a_user_it_cannot_switch_to():
    """`-c ":user mallory" -c "approve 3"` must not approve as the previous user: the
    lines after a refused :user are not run, and the exit status says so."""
    done = _run("demo", "--step-seconds", "0", "-c", ":user mallory", "-c", "list")
    assert done.returncode == 1
    assert "`:user mallory`: not a Slack user id" in done.stdout
    assert "sandbox-db" not in done.stdout  # `list` was not run
    switched = _run("demo", "--step-seconds", "0", "-c", ":user bob", "-c", ":where")
    assert switched.returncode == 0
    assert "you are @bob" in switched.stdout


def test_demo_takes_names_for_user_and_channel_and_refuses_unknown_ones():
    """`--channel prod-db` is the demo's #prod-db (it was taken as a raw id: a channel
    bound to nothing), `--user admin` its bot admin; unknown names are refused at once."""
    named = _run(
        "demo", "--step-seconds", "0", "--user", "bob", "--channel", "prod-db", "-c", "envs"
    )
    assert named.returncode == 0, named.stderr
    assert "is not bound" not in named.stdout and "production" in named.stdout
    for option, value in (("--user", "mallory"), ("--channel", "nowhere")):
        refused = _run("demo", option, value, "-c", "envs")
        assert refused.returncode == 2
        assert f"{option} {value}: not a Slack" in refused.stderr
        assert refused.stdout == ""


def test_shell_refuses_a_user_that_is_not_a_slack_id(tmp_path: Path):
    config = tmp_path / "graphops.toml"
    config.write_text(
        f'[bot]\nadmins = ["U0ADMIN"]\ndatabase = "{tmp_path}/g.sqlite3"\n' + PROVIDER
    )
    done = _run("shell", "--config", str(config), "--user", "alice", "--channel", "C0DEV",
                "-c", "envs", env=ENV)  # fmt: skip
    assert done.returncode == 2
    assert "--user alice: not a Slack user id (U… or W…" in done.stderr


def test_shell_c_switches_user_and_stops_at_a_refused_switch(tmp_path: Path):
    """`graphops shell -c ":user U0ADMIN" -c access` ran `access` as the first user
    (`:user` was "no command"); now it switches, and a refused switch stops the lines."""
    config = tmp_path / "graphops.toml"
    config.write_text(
        f'[bot]\nadmins = ["U0ADMIN"]\ndatabase = "{tmp_path}/g.sqlite3"\n' + PROVIDER
    )
    base = ["shell", "--config", str(config), "--user", "U0ALICE", "--channel", "C0DEV"]
    switched = _run(*base, "-c", ":user U0ADMIN", "-c", ":where", env=ENV)
    assert switched.returncode == 0, switched.stdout + switched.stderr
    assert "you are @U0ADMIN" in switched.stdout
    refused = _run(*base, "-c", ":user alice", "-c", "access", env=ENV)
    assert refused.returncode == 1
    assert "`:user alice`: not a Slack user id" in refused.stdout
    assert "Access" not in refused.stdout  # `access` did not run


def test_a_store_locked_by_another_process_is_said_plainly_not_a_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """SQLite's "database is locked" (another process kept the write lock past the busy
    timeout, e.g. `graphops serve` starting during a backup) is one line and the error exit code."""
    import bot.cli

    def locked(args: object) -> int:
        raise sqlite3.OperationalError("database is locked")

    monkeypatch.setattr(bot.cli, "_access", locked)
    assert bot.cli.main(["audit"]) == bot.cli.EXIT_ERROR
    err = capsys.readouterr().err
    assert "another process holds the store's write lock" in err and "Traceback" not in err

    def other(args: object) -> int:
        raise sqlite3.OperationalError("no such table: x")  # a bug: not hidden

    monkeypatch.setattr(bot.cli, "_access", other)
    with pytest.raises(sqlite3.OperationalError):
        bot.cli.main(["audit"])


def test_exit_or_quit_typed_alone_leaves_the_demo():
    """A new user types `exit` to leave (it was "no command `exit`; did you mean
    `export`?"); piped, as from a terminal, and in -c lines."""
    piped = subprocess.run(
        [*GRAPHOPS, "demo", "--step-seconds", "0"],
        input="envs\nexit\nlist\n",
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])},
        timeout=60,
    )
    assert piped.returncode == 0, piped.stdout + piped.stderr
    assert "development" in piped.stdout  # envs ran
    listed = "staging/console"  # a row of `list`
    assert listed not in piped.stdout and "no command" not in piped.stdout  # list did not run
    done = _run("demo", "--step-seconds", "0", "-c", "QUIT", "-c", "list")
    assert done.returncode == 0 and listed not in done.stdout
