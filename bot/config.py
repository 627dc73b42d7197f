"""graphops.toml: loading, validation and credentials.

The file names the environment variables that hold secrets, never the secrets
themselves. A wrong file fails at start with the key and the reason; a missing
environment variable is named, and its value (if any) is never printed.

Paths: a relative `[bot] database` is resolved against the folder of the config
file, never the current directory. `$GRAPHOPS_DATABASE`, when set, overrides
`[bot] database` (the Docker image sets it to a file under its volume);
`Config.database_source` says which one won, for `check-config` and the first
log line of `serve`.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails

from core.refs import UserRef
from core.words import explain, what_works
from operations.follow import DEFAULT_DEADLINES

CONFIG_ENV = "GRAPHOPS_CONFIG"
DATABASE_ENV = "GRAPHOPS_DATABASE"
DEFAULT_CONFIG = "graphops.toml"

_NAME_PATTERN = r"^[a-z][a-z0-9_-]{0,39}$"


class ConfigError(Exception):
    """The configuration cannot be used; the message names the key and the reason."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def number(**field: Any) -> Any:
    """A numeric setting: a TOML number only (`Field(strict=True)`): `true` and `"100"`,
    which pydantic's lax mode reads as 1 and 100, are refused like a number out of range."""
    return Field(strict=True, **field)


class BotSettings(_Strict):
    """The `[bot]` table."""

    slash_command: str = Field(
        default="/gdb",
        pattern=r"^/[a-z0-9_-]{1,31}$",
        description="a slash and 1-31 lower-case letters, digits, - or _, e.g. /gdb",
    )
    admins: tuple[str, ...] = ()
    database: str = "graphops.sqlite3"
    approval_ttl_minutes: int = number(default=15, ge=1, le=24 * 60)
    # Names -> ids (stable): trusted this long, refreshed in the background every
    # name_refresh_seconds (0: never), and dropped on a 404 or the bot's own changes.
    name_cache_seconds: float = number(default=6 * 3600.0, ge=0, le=7 * 24 * 3600)
    name_refresh_seconds: float = number(default=900.0, ge=0, le=24 * 3600)
    # SIGTERM: stop taking work, let running work finish for at most this long, then exit
    # (what did not finish is resumed, or answered, at the next start).
    drain_seconds: float = number(default=30.0, ge=0, le=3600)

    @field_validator("admins")
    @classmethod
    def _user_ids(cls, admins: tuple[str, ...]) -> tuple[str, ...]:
        for admin in admins:
            if not UserRef(admin).valid:
                raise ValueError(
                    f"{admin!r} is not a Slack user id: admins are ids like U012ABCDEF "
                    "(a member's profile → ⋮ → Copy member ID), not names"
                )
        return admins


class SlackSettings(_Strict):
    """The `[slack]` table: names of the env vars holding Slack credentials, and who may act.

    `allowed_teams`: Slack workspace (`T…`) or Enterprise organization (`E…`) ids whose
    people may use graphops besides the workspace (or organization) that installed it,
    e.g. a partner sharing a Slack Connect channel. Empty (the default): only the
    installing one (permissions.policy.admit).
    """

    bot_token_env: str = "SLACK_BOT_TOKEN"
    signing_secret_env: str = "SLACK_SIGNING_SECRET"
    app_token_env: str = "SLACK_APP_TOKEN"
    api_url: str | None = None  # a stand-in Web API for tests; None means Slack's own
    port: int = number(default=3000, ge=1, le=65535)
    allowed_teams: tuple[str, ...] = ()

    @field_validator("allowed_teams")
    @classmethod
    def _team_ids(cls, teams: tuple[str, ...]) -> tuple[str, ...]:
        for team in teams:
            if not re.fullmatch(r"[TE][A-Z0-9]{2,20}", team):
                raise ValueError(
                    f"{team!r} is not a Slack workspace id (T…) or organization id (E…); "
                    "find it in the workspace's URL (app.slack.com/client/T…) or its "
                    "admin settings"
                )
        return teams


class OperationsSettings(_Strict):
    """The `[operations]` table: how async operations are polled."""

    poll_first_seconds: float = number(default=1.0, gt=0, le=60)
    poll_factor: float = number(default=1.5, ge=1, le=10)
    poll_cap_seconds: float = number(default=15.0, gt=0, le=600)
    # Polls in flight at once, across all operations: more than a provider's
    # max_connections only queue in its pool (bench/tracker.py: 1,000 operations).
    concurrency: int = number(default=100, ge=1, le=1024)
    # Take a manual snapshot (and wait for it) before terminate, restore-into and switch:
    # "protected" environments only (default), "always", or "never".
    snapshot_before_destroy: Literal["protected", "always", "never"] = "protected"
    switch_back_minutes: int = number(default=60, ge=0, le=7 * 24 * 60)
    # Approved work a stopped bot left unfinished is resumed at the next start if it was
    # approved less than this long ago; older, it is ended with a clear failure.
    resume_within_minutes: float = number(default=60.0, ge=0, le=7 * 24 * 60)
    # Schedules: a run missed by less than this (bot down) still runs; later ones are skipped.
    schedule_grace_seconds: float = number(default=900.0, ge=0, le=24 * 3600)
    heads_up_minutes: float = number(default=15.0, ge=0, le=24 * 60)
    watch_interval_seconds: float = number(default=30.0, ge=1, le=3600)
    # Every followed operation ends: lost after this many failed polls in a row, or after
    # deadline_minutes for its kind (verb), e.g. {import = 720}; unnamed kinds keep the defaults.
    max_poll_failures: int = number(default=10, ge=1, le=1000)
    deadline_minutes: dict[str, float] = Field(default_factory=dict)

    @field_validator("deadline_minutes", mode="before")
    @classmethod
    def _known_positive_deadlines(cls, value: Any) -> Any:
        if not isinstance(value, dict):
            return value
        kinds = sorted(DEFAULT_DEADLINES)
        for kind, minutes in value.items():
            if kind not in DEFAULT_DEADLINES:
                raise ValueError(f"{kind!r} is not a kind of operation; kinds: {', '.join(kinds)}")
            if isinstance(minutes, bool) or not isinstance(minutes, int | float):
                given = str(minutes).lower() if isinstance(minutes, bool) else repr(minutes)
                raise ValueError(f"{kind}: a number of minutes, not {given}")
            if not 0 < minutes <= 7 * 24 * 60:
                raise ValueError(
                    f"{kind}: more than 0 and at most 10080 minutes (a week), not {minutes}"
                )
        return value

    @model_validator(mode="after")
    def _first_poll_within_the_cap(self) -> OperationsSettings:
        if self.poll_first_seconds > self.poll_cap_seconds:
            raise ValueError(
                f"poll_first_seconds ({self.poll_first_seconds:g}) is above poll_cap_seconds "
                f"({self.poll_cap_seconds:g}): the first wait cannot be longer than the "
                "longest one"
            )
        return self


class ImportSettings(_Strict):
    """The `[imports]` table: archives `import` downloads (Console; bot/files.py).

    A download stops past `max_archive_mb` (MB of 10^6 bytes) and is kept, until the
    approval runs, in the folder `<database>.imports` beside the SQLite file. Plain
    `http://` is refused unless `allow_http_loopback` (loopback addresses only: tests
    and the demo).
    """

    max_archive_mb: int = number(default=10_000, ge=1, le=10_000_000)
    allow_http_loopback: bool = Field(default=False, strict=True)  # true/false only


class RetentionSettings(_Strict):
    """The `[retention]` table: how long the store keeps each kind of row, in days
    (operations/retention.py). Pending approvals, approved work in progress, unsent
    messages and running operations are kept whatever these say."""

    audit_days: float = number(default=180, gt=0, le=3650)
    sent_messages_days: float = number(default=7, gt=0, le=3650)
    finished_operations_days: float = number(default=30, gt=0, le=3650)
    decided_approvals_days: float = number(default=30, gt=0, le=3650)
    # Background polls (tracker, watches) are audited as one row of counts per interval.
    poll_summary_minutes: float = number(default=15, ge=1, le=24 * 60)
    prune_every_minutes: float = number(default=60, ge=1, le=7 * 24 * 60)


class _ProviderBase(_Strict):
    name: str = Field(
        pattern=_NAME_PATTERN,
        description="1-40 lower-case letters, digits, - or _, starting with a letter",
    )
    base_url: str
    timeout_seconds: float = number(default=15.0, gt=0, le=600)
    # Connections to this provider at once, per pool: one pool answers people, one
    # serves polls and watches (clients/http.py).
    max_connections: int = number(
        default=100, ge=1, le=1000
    )  # = clients.http.DEFAULT_MAX_CONNECTIONS

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, url: str) -> str:
        if not url.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return url.rstrip("/")


class ConsoleProvider(_ProviderBase):
    """A GrapheneDB Console API account (OAuth2 client credentials)."""

    kind: Literal["graphenedb"]
    client_id_env: str
    client_secret_env: str

    def secret_envs(self) -> dict[str, str]:
        return {"client_id": self.client_id_env, "client_secret": self.client_secret_env}


class V1Provider(_ProviderBase):
    """A GrapheneDB API v1 account (`api_key` header)."""

    kind: Literal["graphenedb-v1"]
    api_key_env: str

    def secret_envs(self) -> dict[str, str]:
        return {"api_key": self.api_key_env}


class TypeDBProvider(_ProviderBase):
    """A TypeDB server (HTTP API, sign-in with username and password)."""

    kind: Literal["typedb"]
    username_env: str
    password_env: str

    def secret_envs(self) -> dict[str, str]:
        return {"username": self.username_env, "password": self.password_env}


ProviderConfig = Annotated[
    ConsoleProvider | V1Provider | TypeDBProvider, Field(discriminator="kind")
]


class Config(_Strict):
    """The whole graphops.toml."""

    bot: BotSettings = BotSettings()
    slack: SlackSettings = SlackSettings()
    operations: OperationsSettings = OperationsSettings()
    imports: ImportSettings = ImportSettings()
    retention: RetentionSettings = RetentionSettings()
    providers: tuple[ProviderConfig, ...] = ()
    # Where `bot.database` came from, in words (set by load_config).
    _database_source: str = PrivateAttr(default="[bot] database")

    @property
    def database_source(self) -> str:
        """Where `bot.database` came from: `$GRAPHOPS_DATABASE` or the file's key."""
        return self._database_source

    @field_validator("providers")
    @classmethod
    def _unique_names(cls, providers: tuple[ProviderConfig, ...]) -> tuple[ProviderConfig, ...]:
        seen: set[str] = set()
        for provider in providers:
            if provider.name in seen:
                raise ValueError(
                    f"two providers are named {provider.name!r}; each needs its own name"
                )
            seen.add(provider.name)
        return providers

    def provider(self, name: str) -> ProviderConfig:
        """The provider called `name` (KeyError if none)."""
        for provider in self.providers:
            if provider.name == name:
                return provider
        raise KeyError(name)


_TABLES: dict[str, type[BaseModel]] = {
    "bot": BotSettings,
    "slack": SlackSettings,
    "operations": OperationsSettings,
}
_KINDS: dict[str, type[BaseModel]] = {
    "graphenedb": ConsoleProvider,
    "graphenedb-v1": V1Provider,
    "typedb": TypeDBProvider,
}


def _location(loc: tuple[int | str, ...]) -> str:
    """`providers[1].base_url`: where in the file, as a person would write it."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        elif part in _KINDS:
            continue  # the discriminator's branch name adds nothing for a person
        else:
            text += f".{part}" if text else str(part)
    return text


def _model_at(loc: tuple[int | str, ...]) -> type[BaseModel] | None:
    """The settings model of the table `loc` points into (None when it cannot tell)."""
    if len(loc) == 1:
        return Config
    if len(loc) == 2 and loc[0] in _TABLES:
        return _TABLES[str(loc[0])]
    if len(loc) == 4 and loc[0] == "providers" and loc[2] in _KINDS:
        return _KINDS[str(loc[2])]
    return None


def _problem(error: ErrorDetails) -> str:
    """One validation error in words: where, what was wrong, what works."""
    loc = tuple(error["loc"])
    key = _location(loc)
    model = _model_at(loc)
    if error["type"] == "extra_forbidden":
        known = ", ".join(model.model_fields) if model is not None else ""
        if len(loc) == 1:
            return f"[{key}] is not a table of graphops.toml (tables: {known})"
        where = f"[{loc[0]}]" if len(loc) == 2 else "[[providers]]"
        return f"{key} is not a setting of {where}" + (f" (settings: {known})" if known else "")
    field = model.model_fields.get(str(loc[-1])) if model else None
    given = error.get("input")
    if error["type"] in ("int_type", "float_type") and isinstance(given, bool | str):
        # as TOML spells them: `true`, and text in quotes (`number` refuses both)
        spelled = str(given).lower() if isinstance(given, bool) else json.dumps(given)
        hint = " (text: write the number without quotes)" if _numeric(given) else ""
        return f"{key} takes {what_works(error, field)}, not {spelled}{hint}"
    problem = explain(error, key, field)
    if error["type"] == "union_tag_not_found":
        problem += " (graphenedb, graphenedb-v1 or typedb)"
    return problem


def _numeric(value: Any) -> bool:
    """Whether `value` is text that reads as a number (`"100"`)."""
    if not isinstance(value, str):
        return False
    try:
        float(value)
    except ValueError:
        return False
    return True


def parse_config(text: str, source: str = DEFAULT_CONFIG) -> Config:
    """Parse and validate TOML text; ConfigError names the key and the reason."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}") from None
    if not raw:
        raise ConfigError(
            f"{source}: the file is empty (no settings); copy graphops.example.toml and "
            "fill in [bot] admins and at least one [[providers]] entry"
        )
    try:
        return Config.model_validate(raw)
    except ValidationError as exc:
        problems = [_problem(error) for error in exc.errors(include_url=False)]
        raise ConfigError(f"{source}: " + "; ".join(problems)) from None


def config_path(explicit: str | None, environ: Mapping[str, str] = os.environ) -> Path:
    """Where the config file is: --config, else $GRAPHOPS_CONFIG, else ./graphops.toml."""
    return Path(explicit or environ.get(CONFIG_ENV) or DEFAULT_CONFIG)


def load_config(path: Path, environ: Mapping[str, str] = os.environ) -> Config:
    """Read and validate the config file at `path`; resolve the database path.

    The database is `$GRAPHOPS_DATABASE` when set, else `[bot] database`
    resolved against the config file's folder (see the module docstring).
    ConfigError: no such file, unreadable, empty (no settings), or invalid.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"{path}: no such file; copy graphops.example.toml to start, "
            f"or pass --config / set {CONFIG_ENV}"
        ) from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    config = parse_config(text, str(path))
    override = environ.get(DATABASE_ENV, "")
    if override:
        database, source = override, f"${DATABASE_ENV}"
    else:
        database = config.bot.database
        source = (
            f"[bot] database in {path}"
            if "database" in config.bot.model_fields_set
            else f"the default, {database} beside {path}"
        )
        if database != ":memory:" and not Path(database).is_absolute():
            database = str(path.absolute().parent / database)
    resolved = config.model_copy(
        update={"bot": config.bot.model_copy(update={"database": database})}
    )
    resolved._database_source = source
    return resolved


def resolve_credentials(
    provider: ConsoleProvider | V1Provider | TypeDBProvider,
    environ: Mapping[str, str] = os.environ,
) -> dict[str, SecretStr]:
    """The provider's credentials from the environment; ConfigError names every missing var."""
    found: dict[str, SecretStr] = {}
    missing: list[str] = []
    for field, env_name in provider.secret_envs().items():
        value = environ.get(env_name, "")
        if value:
            found[field] = SecretStr(value)
        else:
            missing.append(env_name)
    if missing:
        raise ConfigError(
            f"provider {provider.name!r}: environment variable(s) not set or empty: "
            + ", ".join(missing)
        )
    return found


def check_config(
    config: Config, environ: Mapping[str, str] = os.environ, *, purpose: str = "serve"
) -> list[str]:
    """What stops `config` from working for `purpose` ("serve" or "shell"); [] when nothing.

    Checked: at least one provider, every provider's credential variables, a
    database path that can be created and written, and (for serve) the Slack
    variables. Admin ids are checked when the file is parsed.
    """
    from bot.store import writable_problem

    problems: list[str] = []
    if not config.providers:
        problems.append(
            "no [[providers]] entry: add a graphenedb, graphenedb-v1 or typedb provider "
            "(see graphops.example.toml)"
        )
    for provider in config.providers:
        try:
            resolve_credentials(provider, environ)
        except ConfigError as exc:
            problems.append(str(exc))
    database_problem = writable_problem(config.bot.database)
    if database_problem:
        problems.append(f"database ({config.database_source}): {database_problem}")
    if purpose == "serve":
        try:
            slack_secrets(config, environ)
        except ConfigError as exc:
            problems.append(str(exc))
    return problems


def slack_secrets(config: Config, environ: Mapping[str, str]) -> tuple[str, str, str]:
    """(bot token, signing secret, app token or ""); ConfigError names what is missing.

    The signing secret is needed only without an app token (HTTP mode).
    """
    settings = config.slack
    token = environ.get(settings.bot_token_env, "")
    app_token = environ.get(settings.app_token_env, "")
    signing = environ.get(settings.signing_secret_env, "")
    missing = [settings.bot_token_env] if not token else []
    if not app_token and not signing:
        missing.append(settings.signing_secret_env)
    if missing:
        raise ConfigError(
            "slack: environment variable(s) not set or empty: "
            + ", ".join(missing)
            + (
                ""
                if app_token
                else f" (or set {settings.app_token_env} for Socket Mode, "
                "which needs no signing secret)"
            )
        )
    return token, signing, app_token
