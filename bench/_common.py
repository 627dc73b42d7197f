"""Shared helpers of the benchmarks: a bot over a Console simulator, stats, output."""

from __future__ import annotations

import json
import os
import resource
import statistics
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bot.config import BotSettings, Config, ConsoleProvider, OperationsSettings  # noqa: E402
from bot.store import Checkpointer  # noqa: E402
from bot.wiring import Bot, build_bot  # noqa: E402
from permissions.roles import Role  # noqa: E402
from simulators.graphenedb import ConsoleSimulator  # noqa: E402

CLIENT_ID = "bench-client-id"
CLIENT_SECRET = "bench-client-secret"
ENVIRON = {"BENCH_CLIENT_ID": CLIENT_ID, "BENCH_CLIENT_SECRET": CLIENT_SECRET}
CHANNEL = "C0BENCH"
USER = "U0BENCH"


def make_config(
    base_url: str, db_path: Path, operations: OperationsSettings | None = None
) -> Config:
    """One Console provider named `console` at `base_url`; safety snapshots off."""
    return Config(
        bot=BotSettings(admins=(), database=str(db_path)),
        operations=operations or OperationsSettings(snapshot_before_destroy="never"),
        providers=(
            ConsoleProvider(
                name="console",
                kind="graphenedb",
                base_url=base_url,
                client_id_env="BENCH_CLIENT_ID",
                client_secret_env="BENCH_CLIENT_SECRET",
            ),
        ),
    )


def make_sim(step_seconds: float = 1.0) -> ConsoleSimulator:
    """A Console simulator (seeded demo data, real monotonic clock) with bench credentials."""
    return ConsoleSimulator(
        client_id=CLIENT_ID, client_secret=CLIENT_SECRET, step_seconds=step_seconds
    )


def bot_over(
    base_url: str,
    workdir: Path,
    role: Role = Role.OPERATOR,
    envs: tuple[str, ...] = ("development", "staging"),
    operations: OperationsSettings | None = None,
) -> Bot:
    """A bot over the Console at `base_url` whose channel CHANNEL has `role` on `envs`."""
    bot = build_bot(make_config(base_url, workdir / "bot.sqlite3", operations), environ=ENVIRON)
    for env in envs:
        bot.services.permissions.grant(CHANNEL, "console", env, role, by="bench")
    return bot


def checkpoints(bot: Bot) -> Checkpointer:
    """As `graphops serve` does: the store's WAL checkpointed from a thread, not in the
    loop's commits (bot/store.py); started. Stop it before `bot.aclose()`."""
    checkpointer = Checkpointer(bot.db, bot.config.bot.database)
    checkpointer.start()
    return checkpointer


def workdir() -> tempfile.TemporaryDirectory[str]:
    return tempfile.TemporaryDirectory(prefix="graphops-bench-")


def pct(values: list[float], p: float) -> float:
    """The p-th percentile (nearest rank, p in 0..100); NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(p / 100 * len(ordered) + 0.5 - 1e-9)))
    return ordered[rank - 1]


def summary_ms(values_s: list[float]) -> dict[str, float]:
    """p50/p95/p99/max/mean in milliseconds of values given in seconds."""
    ms = [v * 1000 for v in values_s]
    return {
        "p50_ms": round(pct(ms, 50), 3),
        "p95_ms": round(pct(ms, 95), 3),
        "p99_ms": round(pct(ms, 99), 3),
        "max_ms": round(max(ms), 3) if ms else float("nan"),
        "mean_ms": round(statistics.fmean(ms), 3) if ms else float("nan"),
    }


def table(headers: list[str], rows: list[list[Any]]) -> str:
    """A plain text table."""
    cells = [[str(h) for h in headers]] + [[_fmt(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = []
    for n, row in enumerate(cells):
        lines.append(
            "  ".join(
                c.rjust(w) if n and i else c.ljust(w)
                for i, (c, w) in enumerate(zip(row, widths, strict=True))
            )
        )
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 100 else f"{value:.1f}"
    return str(value)


def rss_mb() -> float:
    """Peak resident set size of this process, MB (ru_maxrss is KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def machine() -> dict[str, Any]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"nproc": os.cpu_count(), "cpu": model, "python": sys.version.split()[0]}


RESULTS = ROOT / "bench" / "results"


def emit(name: str, payload: dict[str, Any], save_as: str | None = None) -> None:
    """The one JSON line every benchmark prints last: {"bench": name, ...payload,
    "measured_at": UTC date, "machine": {...}}.

    The same record is saved to bench/results/<save_as or name>.json (the README's
    Performance table is generated from those files: `make bench-readme`), or to the
    directory $BENCH_RESULTS names; BENCH_RESULTS= (empty) saves nothing, for trial runs.
    """
    record = {
        "bench": name,
        **payload,
        "measured_at": datetime.now(UTC).strftime("%Y-%m-%d"),
        "machine": machine(),
    }
    print(json.dumps(record, sort_keys=False))
    folder = os.environ.get("BENCH_RESULTS", str(RESULTS))
    if folder:
        path = Path(folder) / f"{save_as or name}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(record, indent=1) + "\n")
