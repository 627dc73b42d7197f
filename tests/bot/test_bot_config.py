"""graphops.toml: a wrong file fails at start with the key and the reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import ConfigError, config_path, load_config, parse_config, resolve_credentials

GOOD = """
[bot]
admins = ["U0ADMIN"]

[[providers]]
name = "console"
kind = "graphenedb"
base_url = "https://api.db.graphenedb.com/"
client_id_env = "GDB_ID"
client_secret_env = "GDB_SECRET"
"""


def test_example_file_is_valid():
    config = load_config(Path(__file__).parents[2] / "graphops.example.toml")
    assert config.providers[0].kind == "graphenedb"


def test_good_config():
    config = parse_config(GOOD)
    assert config.bot.slash_command == "/gdb"
    assert config.provider("console").base_url == "https://api.db.graphenedb.com"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            GOOD.replace('kind = "graphenedb"', 'kind = "neo"'),
            "providers[0].kind takes graphenedb, graphenedb-v1 or typedb, not 'neo'",
        ),
        (
            GOOD.replace("https://api.db.graphenedb.com/", "ftp://x"),
            "providers[0].base_url: must start with http:// or https://",
        ),
        (GOOD + "\n[bot.extra]\n", "bot.extra is not a setting of [bot] (settings: slash_command"),
        (GOOD + "\n[colours]\n", "[colours] is not a table of graphops.toml (tables: bot, slack"),
        (GOOD.replace('client_secret_env = "GDB_SECRET"', ""), "client_secret_env is required"),
        (
            GOOD + "\n[slack]\nport = 70000\n",
            "slack.port takes a whole number from 1 to 65535, not 70000",
        ),
        (
            GOOD.replace("[bot]", "[bot]\napproval_ttl_minutes = 'soon'"),
            'bot.approval_ttl_minutes takes a whole number from 1 to 1440, not "soon"',
        ),
        (
            GOOD + "\n[operations]\nsnapshot_before_destroy = 'sometimes'\n",
            "snapshot_before_destroy takes protected, always or never, not 'sometimes'",
        ),
        (
            GOOD.replace("[bot]", "[bot]\nslash_command = 'gdb'"),
            "bot.slash_command takes a slash and 1-31 lower-case letters, digits, - or _",
        ),
        (GOOD.replace('admins = ["U0ADMIN"]', 'admins = ["not an id"]'), "bot.admins"),
        ("[bot\n", "not valid TOML"),
        # TOML's booleans and quoted numbers are not numbers (pydantic alone reads true
        # as 1 and "100" as 100); each is named at its key, with what works
        (
            GOOD + "\n[operations]\nconcurrency = true\n",
            "operations.concurrency takes a whole number from 1 to 1024, not true",
        ),
        (
            GOOD + "\n[slack]\nport = false\n",
            "slack.port takes a whole number from 1 to 65535, not false",
        ),
        (
            GOOD.replace('kind = "graphenedb"', 'kind = "graphenedb"\nmax_connections = true'),
            "providers[0].max_connections takes a whole number from 1 to 1000, not true",
        ),
        (
            GOOD + '\n[operations]\nconcurrency = "100"\n',
            'operations.concurrency takes a whole number from 1 to 1024, not "100" '
            "(text: write the number without quotes)",
        ),
        (
            GOOD.replace("[bot]", '[bot]\ndrain_seconds = "5"'),
            'bot.drain_seconds takes a number from 0 to 3600, not "5" (text: write the number',
        ),
        (
            GOOD + "\n[operations]\ndeadline_minutes = { imprt = 10 }\n",
            "'imprt' is not a kind of operation; kinds: backup, clone",
        ),
        (
            GOOD + "\n[operations]\ndeadline_minutes = { import = 0 }\n",
            "import: more than 0 and at most 10080 minutes (a week), not 0",
        ),
        (
            GOOD + "\n[operations]\npoll_first_seconds = 60\npoll_cap_seconds = 1\n",
            "poll_first_seconds (60) is above poll_cap_seconds (1)",
        ),
        (GOOD + GOOD.split("[bot]")[1].split("\n", 2)[2], "two providers are named"),
    ],
)
def test_bad_config_names_the_key(text, expected):
    with pytest.raises(ConfigError) as info:
        parse_config(text, "graphops.toml")
    assert expected in str(info.value)
    assert str(info.value).startswith("graphops.toml")
    for pydantic_words in ("(top level)", "Input should", "Field required", "Value error", "Extra"):
        assert pydantic_words not in str(info.value)


def test_missing_env_var_is_named_and_values_never_printed():
    config = parse_config(GOOD)
    with pytest.raises(ConfigError) as info:
        resolve_credentials(config.providers[0], {"GDB_ID": "the-id-value"})
    assert "GDB_SECRET" in str(info.value)
    assert "the-id-value" not in str(info.value)
    found = resolve_credentials(config.providers[0], {"GDB_ID": "a", "GDB_SECRET": "s3cr3t"})
    assert "s3cr3t" not in repr(found)


def test_config_path_precedence(tmp_path):
    assert config_path("x.toml", {"GRAPHOPS_CONFIG": "y.toml"}) == Path("x.toml")
    assert config_path(None, {"GRAPHOPS_CONFIG": "y.toml"}) == Path("y.toml")
    assert config_path(None, {}) == Path("graphops.toml")
    with pytest.raises(ConfigError, match="no such file"):
        load_config(tmp_path / "missing.toml")


def test_allowed_teams_are_workspace_or_organization_ids():
    config = parse_config(GOOD + '\n[slack]\nallowed_teams = ["T0PARTNER", "E0ORG"]\n')
    assert config.slack.allowed_teams == ("T0PARTNER", "E0ORG")
    with pytest.raises(ConfigError, match=r"slack.allowed_teams: 'partner' is not a Slack"):
        parse_config(GOOD + '\n[slack]\nallowed_teams = ["partner"]\n')


def test_every_numeric_setting_takes_toml_numbers_only():
    """A numeric setting added without `number(...)` would read `true` as 1 again, and
    a flag without `strict=True` would read "yes" as true."""
    import typing

    from bot.config import _KINDS, _TABLES, Config, RetentionSettings

    models = [Config, RetentionSettings, *_TABLES.values(), *_KINDS.values()]
    for model in models:
        for name, field in model.model_fields.items():
            kinds = {field.annotation} | set(typing.get_args(field.annotation))
            if kinds & {int, float, bool} and not kinds - {int, float, bool, type(None)}:
                strict = any(getattr(item, "strict", False) for item in field.metadata)
                assert strict, f"{model.__name__}.{name} is not `number(...)`"
