"""`graphops access ...` and `graphops audit ...`: the admins' command line.

`bot.cli` wires these in with ``add_parsers(subparsers)`` and calls
``run(args, db, admins)``. Errors print one line to stderr and return 2.
Building the parsers imports nothing heavy (``graphops --help`` stays fast);
the store and policy modules are imported when a command runs.
"""

from __future__ import annotations

import argparse
import getpass
import io
import json
import re
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    import sqlite_utils

    from permissions.audit import AuditLog
    from permissions.model import Binding
    from permissions.store import PermissionStore

EXIT_ERROR = 2
# The kinds of audit rows (permissions.audit.KINDS; a test keeps the two equal).
AUDIT_KINDS = ("command", "decision", "approval", "api_call", "operation")


class CliError(Exception):
    """A user-facing error: printed as one line, exit code 2."""


def add_parsers(subparsers: Any) -> None:
    """Add the ``access`` and ``audit`` subcommands to an argparse subparsers object."""
    access = subparsers.add_parser(
        "access",
        help="channel bindings, approvers, protected environments, incident channels",
        description="Manage who may do what in which channel.",
    )
    sub = access.add_subparsers(dest="access_command", metavar="ACTION")
    sub.required = True

    sub.add_parser(
        "list",
        help="show bindings, approvers, protection overrides and incident channels",
        description="Example: graphops access list",
    )

    grant = sub.add_parser(
        "grant",
        help="bind a channel (or a person's DMs) to an environment with a role",
        description="Examples: graphops access grant C0DEV console staging operator; "
        "graphops access grant C0PROD console production admin --users S0ONCALL,U0LEAD "
        "--fallback viewer; graphops access grant U0ALICE console staging operator "
        "(Alice's direct messages with the bot)",
    )
    grant.add_argument("channel", help="channel id (C…), or user id (U…) for their DMs")
    grant.add_argument("provider")
    grant.add_argument("environment", help="environment name, id, or * for all")
    grant.add_argument("role", help="viewer, operator or admin")
    grant.add_argument(
        "--users",
        help="who hold the role: user (U…) and user-group (S…) ids, comma-separated; "
        "none: the whole channel (default: unchanged)",
    )
    grant.add_argument(
        "--fallback",
        help="what everyone else in the channel holds: viewer (default), operator, admin or none",
    )

    revoke = sub.add_parser(
        "revoke",
        help="remove a channel binding",
        description="Example: graphops access revoke C0DEV console staging",
    )
    revoke.add_argument("channel")
    revoke.add_argument("provider")
    revoke.add_argument("environment")

    protect = sub.add_parser(
        "protect",
        help="override protection of an environment (default: production is protected)",
        description="Example: graphops access protect console staging on",
    )
    protect.add_argument("provider")
    protect.add_argument("environment")
    protect.add_argument("state", choices=["on", "off", "default"])

    approvers = sub.add_parser(
        "approvers",
        help="show the approvers of a binding, or set them (user ids U..., user-group ids "
        "S...); none clears",
        description="Examples: graphops access approvers C0DEV console staging (shows them); "
        "graphops access approvers C0DEV console staging U0ALICE S0DBTEAM (sets them); "
        "graphops access approvers C0DEV console staging none (clears them)",
    )
    approvers.add_argument("channel")
    approvers.add_argument("provider")
    approvers.add_argument("environment")
    approvers.add_argument("approvers", nargs="*")

    incident = sub.add_parser(
        "incident-channel",
        help="set the incident channel of an environment (or *); none removes it",
        description="Example: graphops access incident-channel console '*' C0INCIDENT",
    )
    incident.add_argument("provider")
    incident.add_argument("environment")
    incident.add_argument("channel", help="channel id or none")

    export = sub.add_parser(
        "export",
        help="write the whole policy as TOML (stdout without FILE)",
        description="Example: graphops access export policy.toml",
    )
    export.add_argument("file", nargs="?")

    imp = sub.add_parser(
        "import",
        help="make the policy equal to a TOML file; prints the diff",
        description="Example: graphops access import policy.toml --dry-run",
    )
    imp.add_argument("file")
    imp.add_argument("--dry-run", action="store_true", help="show the diff, change nothing")
    imp.add_argument(
        "--allow-empty",
        action="store_true",
        help="accept a file with no [[binding]] (it removes every binding: all denied)",
    )

    audit = subparsers.add_parser(
        "audit",
        help="show the audit log",
        description="Example: graphops audit --since 2h --user U0ALICE --json. Rows are "
        "kept for [retention] audit_days of graphops.toml (180 by default); API requests "
        "made for a person have a row each, background polls (tracker, watches) one row of "
        "counts (verb 'background polls') per poll_summary_minutes (15).",
    )
    audit.add_argument("--since", help="2h, 30m, 1d, 1w or an ISO time")
    audit.add_argument("--user")
    audit.add_argument("--db", dest="database", help="database name or id")
    audit.add_argument("--kind", choices=AUDIT_KINDS)
    audit.add_argument("--json", action="store_true", help="print JSON lines")
    audit.add_argument("--limit", type=int, default=100)


def run(
    args: argparse.Namespace,
    db: sqlite_utils.Database,
    admins: frozenset[str],
    out: TextIO | None = None,
    err: TextIO | None = None,
    retention: str | None = None,
    providers: frozenset[str] | None = None,
) -> int:
    """Run ``access``/``audit`` per ``args.command``; print results; return the exit code.

    ``retention``: what the store keeps and for how long, printed under `audit`'s table.
    ``providers``: the config's provider names; `grant` and `import` refuse any other.
    """
    from core.redaction import redact
    from permissions.audit import AuditLog
    from permissions.policy_file import PolicyFileError
    from permissions.store import PermissionStore

    out = out or sys.stdout
    err = err or sys.stderr
    try:
        if args.command == "access":
            printed = io.StringIO()
            code = _run_access(args, PermissionStore(db, admins), printed, providers)
            out.write(printed.getvalue())
            if code == 0 and _changes_policy(args):
                AuditLog(db).record(
                    "command",
                    user=f"cli:{getpass.getuser()}",
                    verb=f"access {args.access_command}",
                    outcome="changed",
                    detail={"change": printed.getvalue().strip()[:4000]},
                )
            return code
        if args.command == "audit":
            return _run_audit(args, AuditLog(db), out, retention)
        raise CliError(f"unknown command {args.command!r}")
    except (CliError, PolicyFileError, ValueError, KeyError) as exc:
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(redact(f"error: {message}"), file=err)
        return EXIT_ERROR
    except Exception as exc:  # never a traceback
        print(redact(f"error: {type(exc).__name__}: {exc}"), file=err)
        return EXIT_ERROR


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=True)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    for row in rows:
        lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    return "\n".join(lines)


def _list(store: PermissionStore, out: TextIO) -> None:
    bindings = store.bindings()
    print("Bindings:", file=out)
    if bindings:
        from permissions.store import fallback_label

        rows = [
            [
                b.channel,
                b.provider,
                b.environment,
                b.role.label,
                " ".join(b.users) or "everyone",
                fallback_label(b.fallback) if b.users else "-",
                " ".join(b.approvers) or "-",
            ]
            for b in bindings
        ]
        headers = ["CHANNEL", "PROVIDER", "ENVIRONMENT", "ROLE", "USERS", "FALLBACK", "APPROVERS"]
        print(_table(headers, rows), file=out)
    else:
        print("  (none: every channel is denied)", file=out)
    overrides = store.protection_overrides()
    print("\nProtection overrides (default: production environments are protected):", file=out)
    if overrides:
        rows = [[p.provider, p.environment, "on" if p.protected else "off"] for p in overrides]
        print(_table(["PROVIDER", "ENVIRONMENT", "PROTECTED"], rows), file=out)
    else:
        print("  (none)", file=out)
    incidents = store.incident_channels()
    print("\nIncident channels:", file=out)
    if incidents:
        rows = [[i.provider, i.environment, i.channel] for i in incidents]
        print(_table(["PROVIDER", "ENVIRONMENT", "CHANNEL"], rows), file=out)
    else:
        print("  (none)", file=out)


def reads_only(args: argparse.Namespace) -> bool:
    """True for the commands that only read the store (`access list|export`, `access
    approvers` without approvers, `audit`)."""
    return args.command == "audit" or _shows_only(args)


def _shows_only(args: argparse.Namespace) -> bool:
    if args.access_command == "approvers":
        return not args.approvers
    return args.access_command in ("list", "export")


def _changes_policy(args: argparse.Namespace) -> bool:
    """True for the access actions that change the policy (audited like chat changes)."""
    if _shows_only(args):
        return False
    return not getattr(args, "dry_run", False)


def _approvers(store: PermissionStore, args: argparse.Namespace) -> Binding:
    """`access approvers CH P ENV [IDS...]`: without ids the binding as it is (shown);
    `none` clears; ids set them. KeyError when there is no such binding."""
    if not args.approvers:
        for binding in store.bindings(args.channel):
            if binding.provider == args.provider and binding.environment == args.environment:
                return binding
        raise KeyError(
            f"{args.channel} has no binding for {args.provider}/{args.environment}; grant one first"
        )
    words = [a for a in args.approvers if a]
    if any(a.lower() == "none" for a in words) and len(words) > 1:
        raise CliError("none clears the approvers; it cannot be given with ids")
    approvers = [a for a in words if a.lower() != "none"]
    return store.set_approvers(args.channel, args.provider, args.environment, approvers)


def _configured(provider: str, providers: frozenset[str] | None, where: str) -> None:
    """CliError when `provider` is not a `[[providers]]` name of the config (a typo would
    bind nothing, or an import would drop every real binding); None: not checked."""
    if providers is None or provider in providers:
        return
    known = ", ".join(sorted(providers)) or "none"
    lead = f"{where} " if where else ""
    raise CliError(
        f"{lead}no provider called {provider!r} in the config (providers: {known}); "
        "nothing was changed"
    )


def _run_access(
    args: argparse.Namespace,
    store: PermissionStore,
    out: TextIO,
    providers: frozenset[str] | None = None,
) -> int:
    from permissions.policy_file import (
        apply_diff,
        diff_policy,
        dump_policy,
        load_policy_file,
        policy_from_store,
    )
    from permissions.roles import Role

    action = args.access_command
    if action == "list":
        _list(store, out)
    elif action == "grant":
        from permissions.store import KEEP, FallbackWithoutUsers, fallback_label, parse_fallback

        _configured(args.provider, providers, "")
        try:
            binding = store.grant_held(
                args.channel,
                args.provider,
                args.environment,
                Role.parse(args.role),
                by="cli",
                users=(
                    [u for u in args.users.replace(" ", ",").split(",") if u and u != "none"]
                    if args.users is not None
                    else None
                ),
                fallback=parse_fallback(args.fallback) if args.fallback is not None else KEEP,
            )
        except FallbackWithoutUsers:
            raise CliError(
                "--fallback is what everyone not named in --users holds: without --users the "
                "whole channel holds the role, so it would change nothing; add --users"
            ) from None
        held = (
            f" held by {' '.join(binding.users)}, others {fallback_label(binding.fallback)}"
            if binding.users
            else ""
        )
        print(
            f"granted {binding.role.label} on {binding.provider}/{binding.environment} "
            f"to {binding.channel}{held}",
            file=out,
        )
    elif action == "revoke":
        if not store.revoke(args.channel, args.provider, args.environment):
            raise CliError(f"{args.channel} has no binding for {args.provider}/{args.environment}")
        print(f"revoked {args.provider}/{args.environment} from {args.channel}", file=out)
    elif action == "protect":
        _configured(args.provider, providers, "")
        state = {"on": True, "off": False, "default": None}[args.state]
        store.set_protected(args.provider, args.environment, state)
        print(f"protection of {args.provider}/{args.environment}: {args.state}", file=out)
    elif action == "approvers":
        binding = _approvers(store, args)
        shown = " ".join(binding.approvers) or "none (admin-bound members and bot admins)"
        print(
            f"approvers of {binding.channel} {binding.provider}/{binding.environment}: {shown}",
            file=out,
        )
    elif action == "incident-channel":
        _configured(args.provider, providers, "")
        channel = None if args.channel.lower() == "none" else args.channel
        store.set_incident_channel(args.provider, args.environment, channel)
        print(
            f"incident channel of {args.provider}/{args.environment}: {channel or 'none'}",
            file=out,
        )
    elif action == "export":
        text = dump_policy(policy_from_store(store))
        if args.file and args.file != "-":  # `-`: standard output, as without a file
            try:
                with open(args.file, "x", encoding="utf-8") as handle:  # as backup: no overwrite
                    handle.write(text)
            except FileExistsError:
                raise CliError(f"{args.file} already exists; give a new file name") from None
            except OSError as exc:
                raise CliError(f"cannot write {args.file}: {exc.strerror or exc}") from None
            print(f"wrote {args.file}", file=out)
        else:
            out.write(text)
    elif action == "import":
        desired = load_policy_file(args.file)
        named = [
            *(e.provider for e in desired.binding),
            *(e.provider for e in desired.protected),
            *(e.provider for e in desired.incident_channel),
        ]
        for provider in named:
            _configured(provider, providers, f"{args.file} names")
        now = policy_from_store(store)
        if not desired.binding and now.binding and not args.allow_empty:
            raise CliError(
                f"{args.file} has no [[binding]]: importing it would remove all "
                f"{len(now.binding)} binding(s) and deny every channel; nothing was "
                "changed (--allow-empty if that is what you mean)"
            )
        diff = diff_policy(now, desired)
        for line in diff.lines:
            print(line, file=out)
        if diff.empty:
            print("no changes", file=out)
        elif args.dry_run:
            print(f"dry run: {len(diff.lines)} change(s) not applied", file=out)
        else:
            apply_diff(store, diff, by="cli-import")
            print(f"applied {len(diff.lines)} change(s)", file=out)
    else:
        raise CliError(f"unknown access action {action!r}")
    return 0


_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhdw])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_since(text: str, now: float | None = None) -> float:
    """``2h``/``30m``/``1d``/``1w``/``45s`` ago, or an ISO time (UTC if naive), as epoch."""
    now = time.time() if now is None else now
    match = _DURATION.match(text.strip().lower())
    if match:
        return now - float(match.group(1)) * _UNITS[match.group(2)]
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise CliError(
            f"--since {text!r} is neither a duration (2h, 30m, 1d) nor an ISO time"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def _run_audit(
    args: argparse.Namespace, audit: AuditLog, out: TextIO, retention: str | None = None
) -> int:
    if args.limit < 1:
        raise CliError("--limit must be at least 1")
    since = parse_since(args.since) if args.since else None
    rows = audit.query(
        since=since, user=args.user, database=args.database, kind=args.kind, limit=args.limit
    )
    if args.json:
        out.write(audit.export_jsonl(rows))
        return 0
    if not rows:
        print("no audit rows match", file=out)
        if retention:
            print(retention, file=out)
        return 0
    table_rows = [
        [
            row["iso"],
            row["kind"],
            row["user"] or "-",
            row["channel"] or "-",
            "/".join(x for x in (row["provider"], row["environment"]) if x) or "-",
            row["database"] or "-",
            row["verb"] or "-",
            row["outcome"] or "-",
            json.dumps(row["detail"], sort_keys=True) if row["detail"] else "",
        ]
        for row in rows
    ]
    headers = ["TIME", "KIND", "USER", "CHANNEL", "ENV", "DB", "VERB", "OUTCOME", "DETAIL"]
    print(_table(headers, table_rows), file=out)
    if retention:
        print(retention, file=out)
    return 0
