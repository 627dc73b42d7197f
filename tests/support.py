"""Constants and builders shared by tests (fixtures live in conftest.py)."""

from __future__ import annotations

from pathlib import Path

from bot.config import BotSettings, Config, ConsoleProvider
from clients.http import RetryPolicy

SECRET_ID = "sentinel-client-id-7f3a"
SECRET = "sentinel-client-secret-9c1e"
FAST_RETRY = RetryPolicy(attempts=3, base_delay=0.0, max_delay=0.0)
ENVIRON = {"T_CLIENT_ID": SECRET_ID, "T_CLIENT_SECRET": SECRET}


def make_config(base_url: str, db_path: Path, admins: tuple[str, ...] = ("U0ADMIN",)) -> Config:
    """A config with one Console provider at `base_url` and credentials from ENVIRON."""
    return Config(
        bot=BotSettings(admins=admins, database=str(db_path)),
        providers=(
            ConsoleProvider(
                name="console",
                kind="graphenedb",
                base_url=base_url,
                client_id_env="T_CLIENT_ID",
                client_secret_env="T_CLIENT_SECRET",
            ),
        ),
    )
