"""Putting the rooms together: config -> clients, store, permissions, commands."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import sqlite_utils
from pydantic import SecretStr

from bot.config import Config, OperationsSettings, ProviderConfig, resolve_credentials
from bot.files import ArchiveSource
from bot.logs import install_redaction, log_command
from bot.store import (
    BUSY_TIMEOUT_MS,
    LOOP_BUSY_TIMEOUT_MS,
    StoreGate,
    open_database,
    set_busy_timeout,
)
from clients.dryrun import RecordingTransport
from clients.http import CallRecord
from commands.adapters import adapter
from commands.adapters.base import ClientOptions
from commands.archives import ArchiveStore
from commands.context import DryRunProviders, FileSource, Services
from commands.pipeline import Pipeline
from commands.registry import Registry
from commands.resolve import Resolver, note_call
from commands.scheduled import PipelineRunner
from commands.verbs import build_registry
from core.audit_context import current_background, current_database, current_invocation
from core.invocation import Invocation
from core.provider import Provider
from core.redaction import redact, remember
from core.reply import Reply
from operations.follow import DEFAULT_DEADLINES, Backoff, FollowLimits
from operations.incidents import Incidents
from operations.notify import Notifier
from operations.retention import Retention, RetentionPolicy, enable_incremental_vacuum
from operations.schedules import Scheduler, ScheduleStore
from operations.store import OperationHistory, SwitchBacks
from operations.tracker import Tracker, TrackerSettings
from operations.watch import Watcher, WatchStore
from permissions.approvals import ApprovalStore
from permissions.audit import AuditLog
from permissions.store import PermissionStore

STORE_BUSY = (
    "The bot's store is busy: another process holds its SQLite write lock. Nothing was "
    "done; try again in a moment."
)


@dataclass
class Bot:
    """A ready command layer over one config and one SQLite file."""

    config: Config
    db: sqlite_utils.Database
    services: Services
    registry: Registry
    pipeline: Pipeline
    redact: Callable[[str], str]
    closers: list[Any] = field(default_factory=list)
    # Extra observers of every API call (e.g. metrics); the audit log always gets them.
    call_listeners: list[Callable[[CallRecord], None]] = field(default_factory=list)
    # Waits off the event loop until the store can be written (see bot/store.py).
    store: StoreGate = field(default_factory=lambda: StoreGate(":memory:"))

    async def run(self, invocation: Invocation, *, preapproved: bool = False) -> Reply:
        """Run one command (see Pipeline.run); log one line for it (bot.logs.log_command)."""
        started = time.perf_counter()
        reply = await self.pipeline.run(invocation, preapproved=preapproved)
        self.log(invocation, reply, started)
        return reply

    def log(self, invocation: Invocation, reply: Reply, started: float) -> None:
        """The one log line of a command or a decision (a click on Approve/Deny) begun at
        `started` (time.perf_counter): bot.logs.log_command."""
        log_command(invocation, reply, self.registry, self.config.bot.slash_command, started)

    async def aclose(self) -> None:
        """Close provider connection pools and the store (audit rows kept while it was
        locked are written first, waiting as long as a command-line tool would)."""
        for closer in self.closers:
            await closer()
        set_busy_timeout(self.db, BUSY_TIMEOUT_MS)
        with contextlib.suppress(sqlite3.Error):
            self.services.audit.flush()
        self.db.close()


def build_tracker(bot: Bot, notifier: Notifier) -> Tracker:
    """The operation tracker of `bot`, reporting through a transport's notifier."""
    settings = bot.config.operations
    return Tracker(
        bot.db,
        bot.services.providers,
        notifier,
        permissions=bot.services.permissions,
        settings=TrackerSettings(
            backoff=Backoff(
                settings.poll_first_seconds, settings.poll_factor, settings.poll_cap_seconds
            ),
            concurrency=settings.concurrency,
            limits=bot.services.follow_limits,
        ),
        ready=bot.store.ready,
    )


def follow_limits(settings: OperationsSettings) -> FollowLimits:
    """When a followed operation is given up (the tracker's and the commands' waits)."""
    return FollowLimits(
        max_failures=settings.max_poll_failures,
        deadlines={
            **DEFAULT_DEADLINES,
            **{kind: m * 60 for kind, m in settings.deadline_minutes.items()},
        },
    )


def retention_policy(config: Config) -> RetentionPolicy:
    """The `[retention]` table as the prune uses it."""
    settings = config.retention
    return RetentionPolicy(
        audit_days=settings.audit_days,
        sent_messages_days=settings.sent_messages_days,
        finished_operations_days=settings.finished_operations_days,
        decided_approvals_days=settings.decided_approvals_days,
        prune_every_seconds=settings.prune_every_minutes * 60,
    )


def build_retention(bot: Bot) -> Retention:
    """The background prune of `bot`'s store (and the audit rows of poll intervals)."""
    return Retention(
        bot.db,
        bot.services.audit,
        retention_policy(bot.config),
        approvals=bot.services.approvals,
    )


def build_watcher(bot: Bot) -> Watcher:
    """The watcher of `bot`: its messages go through the outbox the tracker delivers."""
    return Watcher(
        bot.db,
        bot.services.providers,
        permissions=bot.services.permissions,
        interval_seconds=bot.config.operations.watch_interval_seconds,
    )


def build_scheduler(bot: Bot, notifier: Notifier, tracker: Tracker) -> Scheduler:
    """The schedule runner of `bot`, reporting like interactive commands."""
    settings = bot.config.operations
    return Scheduler(
        PipelineRunner(bot.pipeline),
        notifier,
        bot.db,
        bot.services.audit,
        slash_command=bot.services.slash_command,
        tracker=tracker,
        grace_seconds=settings.schedule_grace_seconds,
        heads_up_minutes=settings.heads_up_minutes,
    )


def connect(
    provider: ProviderConfig,
    credentials: Mapping[str, SecretStr],
    http: httpx.AsyncClient | None,
    on_call: Callable[[CallRecord], None],
) -> Provider:
    """The Provider of one `[[providers]]` entry: its kind's adapter builds the client."""
    kind = adapter(provider.kind)
    options = ClientOptions(http, provider.timeout_seconds, on_call, provider.max_connections)
    client = kind.connect(provider.name, provider.base_url, credentials, options)
    return Provider(provider.name, kind.kind, client, kind.operation_source(client))


def dry_run_provider_factory(config: Config) -> DryRunProviders:
    """Providers like the real ones, whose clients record requests instead of sending."""

    def build(recorder: RecordingTransport) -> dict[str, Provider]:
        http = httpx.AsyncClient(transport=recorder)
        fake = {
            name: SecretStr("dry-run")
            for name in ("client_id", "client_secret", "api_key", "username", "password")
        }
        return {
            provider.name: connect(provider, fake, http, lambda call: None)
            for provider in config.providers
        }

    return build


def archive_store(config: Config) -> ArchiveStore:
    """The spool of downloaded archives: `<database>.imports` beside the SQLite file
    (a temporary folder for an in-memory database), kept an hour past an approval's life."""
    database = config.bot.database
    if database == ":memory:":
        folder = Path(tempfile.gettempdir()) / "graphops-imports"
    else:
        folder = Path(database).with_name(Path(database).name + ".imports")
    return ArchiveStore(
        folder,
        max_bytes=config.imports.max_archive_mb * 1_000_000,
        keep_seconds=config.bot.approval_ttl_minutes * 60 + 3600,
    )


#: Credentials that name who signs in rather than prove it: shown, never redacted.
IDENTIFIERS = frozenset({"client_id", "username"})


def secret_values(config: Config, environ: Mapping[str, str]) -> list[str]:
    """Every secret value the config points at: Slack's tokens and signing secret, and
    each provider's client secret, API key or password (not its client id or username)."""
    names = [
        config.slack.bot_token_env,
        config.slack.signing_secret_env,
        config.slack.app_token_env,
    ]
    for provider in config.providers:
        names.extend(
            env for field, env in provider.secret_envs().items() if field not in IDENTIFIERS
        )
    return [environ[name] for name in names if environ.get(name)]


def remember_config_secrets(config: Config, environ: Mapping[str, str]) -> None:
    """Make the process's redactor (core.redaction) know the config's secrets."""
    for value in secret_values(config, environ):
        remember(value, "credential")


def build_bot(
    config: Config,
    *,
    environ: Mapping[str, str] = os.environ,
    db: sqlite_utils.Database | None = None,
    http: httpx.AsyncClient | None = None,
    open_file: FileSource | None = None,
) -> Bot:
    """Build the command layer from a validated config (ConfigError on missing secrets).

    `open_file` is where `import` reads archives (default: bot/files.py's
    `ArchiveSource` with the config's `[imports]`).
    """
    install_redaction()
    remember_config_secrets(config, environ)
    database = db if db is not None else open_database(config.bot.database)
    if db is None and str(config.bot.database) != ":memory:":
        enable_incremental_vacuum(database)  # once per store (operations/retention.py)
    audit = AuditLog(database, poll_interval_seconds=config.retention.poll_summary_minutes * 60)

    listeners: list[Callable[[CallRecord], None]] = []

    def record_call(call: CallRecord) -> None:
        invocation = current_invocation.get()
        background = current_background.get()
        if invocation is None and background is not None:
            # A poll nobody typed: counted per interval, not a row each.
            audit.background_call(background, call.provider, call.method, call.status, call.ms)
            for listener in listeners:
                listener(call)
            return
        audit.api_call(
            call.provider,
            call.method,
            call.path,
            call.status,
            call.ms,
            user=invocation.user if invocation else None,
            channel=invocation.channel if invocation else None,
            database=current_database.get() if invocation else None,
        )
        for listener in listeners:
            listener(call)

    resolver = Resolver(ttl_seconds=config.bot.name_cache_seconds)
    listeners.append(lambda call: note_call(call.method, call.status))  # 404 retries
    providers: dict[str, Provider] = {}
    closers = [resolver.aclose]
    for provider_config in config.providers:
        credentials = resolve_credentials(provider_config, environ)
        provider = connect(provider_config, credentials, http, record_call)
        providers[provider_config.name] = provider
        closers.append(provider.client.aclose)
    permissions = PermissionStore(
        database,
        admins=frozenset(config.bot.admins),
        allowed_teams=frozenset(config.slack.allowed_teams),
    )
    store = StoreGate(str(config.bot.database))
    services = Services(
        providers=providers,
        permissions=permissions,
        approvals=ApprovalStore(
            database, audit=audit, default_ttl_seconds=config.bot.approval_ttl_minutes * 60
        ),
        audit=audit,
        resolver=resolver,
        slash_command=config.bot.slash_command,
        approval_ttl_seconds=config.bot.approval_ttl_minutes * 60,
        open_file=open_file or ArchiveSource(config.imports.allow_http_loopback),
        archives=archive_store(config),
        history=OperationHistory(database),
        dry_run_providers=dry_run_provider_factory(config),
        snapshot_before_destroy=config.operations.snapshot_before_destroy,
        switch_back_minutes=config.operations.switch_back_minutes,
        switch_backs=SwitchBacks(database),
        watches=WatchStore(database),
        schedules=ScheduleStore(database),
        follow_limits=follow_limits(config.operations),
        incidents=Incidents(database, permissions),
        resume_within_seconds=config.operations.resume_within_minutes * 60,
        store_ready=store.ready,
    )
    registry = build_registry()
    pipeline = Pipeline(registry, services)
    # Tables are migrated: from now on a write waits only briefly for another process's
    # lock, so the event loop is never held (bot/store.py).
    set_busy_timeout(database, LOOP_BUSY_TIMEOUT_MS)
    return Bot(
        config,
        database,
        services,
        registry,
        pipeline,
        redact,
        closers,
        listeners,
        store=store,
    )
