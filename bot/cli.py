"""The `graphops` command line.

Global options (`--config`, `--log-level`, `--log-format`) are accepted before
or after the subcommand (`graphops --config F serve` = `graphops serve --config
F`). Only argparse is imported at start: each subcommand imports what it
needs, so `graphops --help` stays fast (bench/startup.py measures it).
Errors print one line to stderr and exit 2.
"""

from __future__ import annotations

import argparse
import errno
import math
import os
import sys
from collections.abc import Coroutine, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from bot import access_cli

if TYPE_CHECKING:
    from bot.config import Config

EXIT_ERROR = 2
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
LOG_FORMATS = ("text", "json")
# Bolt reads this variable by itself even when handed a client, then warns that the
# token "will be unused"; graphops builds the client from the config's variable.
BOLT_TOKEN_ENV = "SLACK_BOT_TOKEN"


def _add_global_options(parser: argparse.ArgumentParser, *, top: bool) -> None:
    """The options every subcommand takes. Below the top level they default to
    SUPPRESS, so a value given before the subcommand is not reset after it."""

    def default(value: Any) -> Any:
        return value if top else argparse.SUPPRESS

    group = parser.add_argument_group("global options (before or after the subcommand)")
    group.add_argument(
        "--config",
        default=default(None),
        help="path to graphops.toml (default: $GRAPHOPS_CONFIG or ./graphops.toml)",
    )
    group.add_argument(
        "--log-level",
        type=str.upper,
        choices=LOG_LEVELS,
        default=default(None),
        help="least severe log level written to stderr (default: INFO for serve, "
        "WARNING for the others)",
    )
    group.add_argument(
        "--log-format",
        choices=LOG_FORMATS,
        default=default("text"),
        help="text, or json: one object per line (default: text)",
    )


def _add_global_options_everywhere(parser: argparse.ArgumentParser) -> None:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for subparser in dict.fromkeys(action.choices.values()):
                _add_global_options(subparser, top=False)
                _add_global_options_everywhere(subparser)


def _step_seconds(text: str) -> float:
    """An argparse type: seconds per simulated step, a finite number from 0 to 3600."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 <= value <= 3600:  # NaN compares false: refused too
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a number of seconds from 0 to 3600 (e.g. 1.5; 0: at once)"
        )
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="graphops",
        description="Slack chat-ops for graph databases (GrapheneDB, TypeDB).",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = sub.add_parser("demo", help="try graphops on built-in simulators (no Slack)")
    demo.add_argument(
        "-c",
        dest="lines",
        action="append",
        default=[],
        help="run this line and exit (repeatable; `:user U` switches user)",
    )
    demo.add_argument("--user", default="U0ALICE")
    demo.add_argument("--channel", default="C0DEV")
    demo.add_argument(
        "--step-seconds",
        type=_step_seconds,
        default=1.5,
        help="how long each step of a simulated operation takes (default: 1.5)",
    )

    shell = sub.add_parser("shell", help="the command layer in a terminal, against a config")
    shell.add_argument(
        "-c",
        dest="lines",
        action="append",
        default=[],
        help="run this line and exit non-zero on error (repeatable; `:user U…` switches user)",
    )
    shell.add_argument("--user", required=True, help="Slack user id typing, e.g. U012AB")
    shell.add_argument("--channel", required=True, help="Slack channel id, e.g. C012AB")

    simulate = sub.add_parser(
        "simulate",
        help="serve the API simulators and a Slack Web API stand-in on loopback (ports N to N+3)",
    )
    simulate.add_argument("--host", default="127.0.0.1")
    simulate.add_argument(
        "--port",
        type=int,
        default=8480,
        help="Console on N, v1 on N+1, TypeDB on N+2, Slack stand-in on N+3; "
        "0 lets the system pick four free ports",
    )
    simulate.add_argument(
        "--urls-file",
        help="write the four base URLs to this JSON file once they listen (for scripts)",
    )
    simulate.add_argument(
        "--step-seconds",
        type=_step_seconds,
        default=1.0,
        help="how long each step of a simulated operation takes",
    )
    simulate.add_argument(
        "--shapes",
        default="",
        metavar="NAME[,NAME]",
        help="serve these response-shape variants instead of the documented ones "
        "(e.g. steps-named,lists-wrapped; README: API shapes)",
    )

    serve = sub.add_parser(
        "serve", help="run the Slack bot (HTTP mode, or Socket Mode when the app token is set)"
    )
    serve.add_argument("--host", default="0.0.0.0", help="HTTP mode: address to listen on")

    check = sub.add_parser(
        "check-config",
        help="check the config, its environment variables and the database path",
        description="Example: graphops check-config --config /etc/graphops/graphops.toml",
    )
    check.add_argument(
        "--for",
        dest="purpose",
        choices=("serve", "shell"),
        default="serve",
        help="serve (default) also checks the Slack variables; shell does not",
    )

    backup = sub.add_parser(
        "backup",
        help="copy the SQLite database to FILE while the bot runs (SQLite online backup)",
        description="Example: graphops backup /backups/graphops-$(date +%%F).sqlite3",
    )
    backup.add_argument("file", help="a new file to write (never overwritten)")

    health = sub.add_parser(
        "healthcheck",
        help="exit 0 when the local `serve` answers GET /healthz with 200 (for Docker)",
    )
    health.add_argument("--url", help="default: http://127.0.0.1:<[slack] port>/healthz")

    access_cli.add_parsers(sub)
    _add_global_options(parser, top=True)
    _add_global_options_everywhere(parser)
    return parser


def _run(coroutine: Coroutine[Any, Any, Any]) -> Any:
    import asyncio

    return asyncio.run(coroutine)


def _load(args: argparse.Namespace) -> Config:
    from bot.config import config_path, load_config

    return load_config(config_path(args.config))


async def _shell(args: argparse.Namespace) -> int:
    from bot.shell import ShellSession, colour_wanted, run_lines
    from bot.wiring import build_bot
    from core.errors import UserError

    bot = build_bot(_load(args))
    try:
        try:
            session = ShellSession(
                bot, user=args.user, channel=args.channel, colour=colour_wanted()
            )
        except UserError as exc:
            print(f"graphops shell: {exc}", file=sys.stderr)
            return EXIT_ERROR
        # `:user U…` in -c lines as at the prompt: a line after a refused one never runs
        return await run_lines(session, args.lines)
    finally:
        await bot.aclose()


async def _simulate(args: argparse.Namespace) -> int:
    from simulators.base import wait_for_stop_signal
    from simulators.suite import SimulatorSuite

    try:
        suite = SimulatorSuite(step_seconds=args.step_seconds, shapes=tuple(args.shapes.split(",")))
    except ValueError as exc:
        print(f"graphops simulate: {exc}", file=sys.stderr)
        return EXIT_ERROR
    ports = (0, 0, 0, 0) if args.port == 0 else tuple(args.port + i for i in range(4))
    await suite.start(args.host, ports)
    try:
        print("\n".join(suite.describe()), flush=True)
        if args.urls_file:
            suite.write_urls(args.urls_file)
        print("Ctrl-C stops them.", flush=True)
        await wait_for_stop_signal()
    finally:
        await suite.stop()
    return 0


def _check_config(args: argparse.Namespace) -> int:
    from bot.config import check_config, config_path

    path = config_path(args.config)
    config = _load(args)
    problems = check_config(config, os.environ, purpose=args.purpose)
    if problems:
        print(f"{path}: {len(problems)} problem(s) for {args.purpose}:", file=sys.stderr)
        for problem in problems:
            print(f"  - {problem}", file=sys.stderr)
        return EXIT_ERROR
    names = ", ".join(f"{p.name} ({p.kind})" for p in config.providers)
    print(f"{path}: valid for {args.purpose}")
    print(f"  database: {config.bot.database} (from {config.database_source})")
    print(f"  providers: {names}")
    if args.purpose == "serve":
        mode = (
            "Socket Mode"
            if os.environ.get(config.slack.app_token_env)
            else f"HTTP on port {config.slack.port}"
        )
        print(f"  slack: {mode}")
    return 0


def _serve(args: argparse.Namespace) -> int:
    import logging

    from bot.config import check_config
    from bot.store import serve_lock

    config = _load(args)
    problems = check_config(config, os.environ, purpose="serve")
    if problems:
        print("cannot serve: " + "; ".join(problems), file=sys.stderr)
        return EXIT_ERROR
    lock = serve_lock(config.bot.database)
    try:
        logging.getLogger("graphops").info(
            "graphops serve: database %s (from %s); providers %s",
            config.bot.database,
            config.database_source,
            ", ".join(p.name for p in config.providers),
        )
        environ: Mapping[str, str] = dict(os.environ)
        os.environ.pop(BOLT_TOKEN_ENV, None)
        from bot.slack.serve import serve

        try:
            _run(serve(config, environ, host=args.host))
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise
            print(
                f"cannot serve: port {config.slack.port} on {args.host} is already in use "
                "(another graphops serve, or another program); stop it or set [slack] port",
                file=sys.stderr,
            )
            return EXIT_ERROR
        return 0
    finally:
        if lock is not None:
            lock.release()


def _backup(args: argparse.Namespace) -> int:
    from bot.store import backup_database

    config = _load(args)
    size = backup_database(config.bot.database, args.file)
    print(f"copied {config.bot.database} to {args.file} ({size} bytes)")
    return 0


def _healthcheck(args: argparse.Namespace) -> int:
    import urllib.error
    import urllib.request

    url = args.url or f"http://127.0.0.1:{_load(args).slack.port}/healthz"
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            status = response.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    except (urllib.error.URLError, OSError) as exc:
        print(f"unhealthy: {url}: {getattr(exc, 'reason', exc)}", file=sys.stderr)
        return 1
    if status != 200:
        print(f"unhealthy: {url} answered {status}", file=sys.stderr)
        return 1
    print(f"healthy: {url}")
    return 0


def _access(args: argparse.Namespace) -> int:
    import os
    from pathlib import Path

    from bot.store import open_database
    from bot.wiring import remember_config_secrets

    config = _load(args)
    remember_config_secrets(config, os.environ)  # `audit` output is redacted with them too
    database = config.bot.database
    if access_cli.reads_only(args) and database != ":memory:" and not Path(database).exists():
        print(
            f"no database at {database} yet (from {config.database_source}): nothing is "
            "granted and nothing was audited. Is this the config `serve` uses?",
            file=sys.stderr,
        )
        return EXIT_ERROR
    from bot.wiring import retention_policy

    return access_cli.run(
        args,
        open_database(database),
        frozenset(config.bot.admins),
        retention=retention_policy(config).describe(),
        providers=frozenset(p.name for p in config.providers),
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `graphops` console script."""
    args = _parser().parse_args(argv)
    from bot.config import ConfigError
    from bot.logs import configure
    from bot.store import StoreError

    configure(args.log_level or ("INFO" if args.command == "serve" else "WARNING"), args.log_format)
    try:
        if args.command == "demo":
            from bot.demo import run_demo

            if args.config is not None:
                print(
                    "graphops demo runs on its built-in simulators and reads no config; "
                    f"to use {args.config}: graphops shell --config {args.config} "
                    "--user U… --channel C… (or graphops serve)",
                    file=sys.stderr,
                )
                return 2

            return _run(run_demo(args.lines, args.user, args.channel, args.step_seconds))
        if args.command == "shell":
            return _run(_shell(args))
        if args.command == "serve":
            return _serve(args)
        if args.command == "simulate":
            return _run(_simulate(args))
        if args.command == "check-config":
            return _check_config(args)
        if args.command == "backup":
            return _backup(args)
        if args.command == "healthcheck":
            return _healthcheck(args)
        if args.command in ("access", "audit"):
            return _access(args)
    except ConfigError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except StoreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except Exception as exc:
        from core.errors import is_store_busy

        if not is_store_busy(exc):
            raise
        print(
            "error: another process holds the store's write lock (a backup, another "
            "graphops?) and kept it; nothing was changed. Try again once it is free.",
            file=sys.stderr,
        )
        return EXIT_ERROR
    except KeyboardInterrupt:
        return 130
    print(f"unknown command {args.command!r}", file=sys.stderr)
    return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
