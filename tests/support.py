"""Constants and builders shared by tests (fixtures live in conftest.py)."""

from __future__ import annotations

from pathlib import Path

from bot.config import BotSettings, Config, ConsoleProvider, OperationsSettings
from clients.http import RetryPolicy

SECRET_ID = "sentinel-client-id-7f3a"
SECRET = "sentinel-client-secret-9c1e"
FAST_RETRY = RetryPolicy(attempts=3, base_delay=0.0, max_delay=0.0)
ENVIRON = {"T_CLIENT_ID": SECRET_ID, "T_CLIENT_SECRET": SECRET}


def make_config(
    base_url: str,
    db_path: Path,
    admins: tuple[str, ...] = ("U0ADMIN",),
    snapshot_before_destroy: str = "never",
) -> Config:
    """A config with one Console provider at `base_url` and credentials from ENVIRON.

    Safety snapshots are off unless asked for: most tests are about other things, and
    tests/commands/test_cmd_safety.py covers them with the real default.
    """
    return Config(
        bot=BotSettings(admins=admins, database=str(db_path)),
        operations=OperationsSettings(snapshot_before_destroy=snapshot_before_destroy),  # type: ignore[arg-type]
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


class RecordingNotifier:
    """A Notifier that records what it was asked to send; can be told to fail."""

    def __init__(self) -> None:
        self.posts: list[tuple[str, str | None, object]] = []
        self.updates: list[tuple[str, str, object]] = []
        self.failures = 0  # fail this many next calls
        self._ts = 100

    def _maybe_fail(self) -> None:
        if self.failures > 0:
            self.failures -= 1
            raise RuntimeError("slack is having a bad day")

    async def post(self, channel, reply, thread_ts=None):  # type: ignore[no-untyped-def]
        self._maybe_fail()
        self.posts.append((channel, thread_ts, reply))
        self._ts += 1
        return f"{self._ts}.000100"

    async def update(self, channel, ts, reply):  # type: ignore[no-untyped-def]
        self._maybe_fail()
        self.updates.append((channel, ts, reply))

    def texts(self, channel: str | None = None) -> list[str]:
        """Text of each post (title if any, else text), optionally for one channel."""
        return [(r.title or r.text) for c, _, r in self.posts if channel in (None, c)]
