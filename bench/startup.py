"""Start-up: `graphops --help` against `python -c pass` (issue 17: at most 3x).

Both run as fresh processes with the same interpreter (the venv's), one after the
other, `--n` times each after one warm-up run; the figure is the median wall time.
`graphops` is the installed console script, exactly what a person types.

Run from the repo root:  .venv/bin/python bench/startup.py [--n 30]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import emit, table

TARGET_RATIO = 3.0


def wall_ms(command: list[str], n: int) -> list[float]:
    subprocess.run(command, stdout=subprocess.DEVNULL, check=True)  # warm the page cache
    times = []
    for _ in range(n):
        started = time.perf_counter()
        subprocess.run(command, stdout=subprocess.DEVNULL, check=True)
        times.append((time.perf_counter() - started) * 1000)
    return times


def main(n: int) -> None:
    bin_dir = Path(sys.executable).parent
    python = wall_ms([sys.executable, "-c", "pass"], n)
    helps = wall_ms([str(bin_dir / "graphops"), "--help"], n)
    base, cli = statistics.median(python), statistics.median(helps)
    ratio = cli / base
    verdict = "met" if ratio <= TARGET_RATIO else "not met"
    print(
        table(
            ["command", "median ms", "min ms", "max ms"],
            [
                ["python -c pass", base, min(python), max(python)],
                ["graphops --help", cli, min(helps), max(helps)],
            ],
        )
    )
    print(f"ratio {ratio:.2f} (target <= {TARGET_RATIO}: {verdict}); {n} runs each")
    emit(
        "startup",
        {
            "python_ms": round(base, 1),
            "help_ms": round(cli, 1),
            "ratio": round(ratio, 2),
            "target_ratio": TARGET_RATIO,
            "runs": n,
        },
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=30)
    main(parser.parse_args().n)
