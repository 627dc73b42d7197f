"""The `graphops` command line."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence

from bot import access_cli
from bot.config import ConfigError, config_path, load_config

EXIT_ERROR = 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="graphops",
        description="Slack chat-ops for graph databases (GrapheneDB, TypeDB).",
    )
    parser.add_argument(
        "--config", help="path to graphops.toml (default: $GRAPHOPS_CONFIG or ./graphops.toml)"
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

    shell = sub.add_parser("shell", help="the command layer in a terminal, against a config")
    shell.add_argument(
        "-c",
        dest="lines",
        action="append",
        default=[],
        help="run this line and exit non-zero on error (repeatable)",
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
        type=float,
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

    sub.add_parser("check-config", help="validate the config and its environment variables")
    access_cli.add_parsers(sub)
    return parser


async def _shell(args: argparse.Namespace) -> int:
    from bot.files import open_local_or_url
    from bot.shell import ShellSession, colour_wanted, interactive
    from bot.wiring import build_bot

    bot = build_bot(load_config(config_path(args.config)), open_file=open_local_or_url)
    try:
        session = ShellSession(bot, user=args.user, channel=args.channel, colour=colour_wanted())
        try:
            if not args.lines:
                return await interactive(session)
            ok = True
            for line in args.lines:
                ok = await session.run(line) and ok
            return 0 if ok else 1
        finally:
            await session.close()
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
    from bot.config import resolve_credentials

    path = config_path(args.config)
    config = load_config(path)
    for provider in config.providers:
        resolve_credentials(provider)
    names = ", ".join(f"{p.name} ({p.kind})" for p in config.providers) or "none"
    print(f"{path}: valid; providers: {names}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `graphops` console script."""
    args = _parser().parse_args(argv)
    try:
        if args.command == "demo":
            from bot.demo import run_demo

            return asyncio.run(run_demo(args.lines, args.user, args.channel))
        if args.command == "shell":
            return asyncio.run(_shell(args))
        if args.command == "serve":
            from bot.slack.serve import serve

            config = load_config(config_path(args.config))
            asyncio.run(serve(config, os.environ, host=args.host))
            return 0
        if args.command == "simulate":
            return asyncio.run(_simulate(args))
        if args.command == "check-config":
            return _check_config(args)
        if args.command in ("access", "audit"):
            from bot.store import open_database

            config = load_config(config_path(args.config))
            db = open_database(config.bot.database)
            return access_cli.run(args, db, frozenset(config.bot.admins))
    except ConfigError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return 130
    print(f"unknown command {args.command!r}", file=sys.stderr)
    return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
