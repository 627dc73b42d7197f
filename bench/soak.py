"""Soak latency: does the slash-command ack stay as fast at the end as at the start?

Runs the soak of tests/reliability/test_rel_soak.py (a real `graphops serve` in
HTTP mode, simulators in a `graphops simulate` process, 20 users sending a mix
of signed slash commands at 4 per second) for `--seconds`, prints its figures,
and then the latency claim: ack p99 of the last window < 2 x ack p99 of the
first window + 50 ms (windows: the first and last quarter, at most a minute).
The test suite checks the soak's correctness (every command answered, no 5xx,
memory and SQLite bounded); timing lives here.

Run from the repo root:  .venv/bin/python bench/soak.py [--seconds 60]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._common import emit, table
from tests.reliability.test_rel_soak import soak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="how long to send commands")
    args = parser.parse_args()
    window = min(60.0, args.seconds / 4)
    with tempfile.TemporaryDirectory() as tmp:
        figures = soak(Path(tmp), args.seconds, sample_every=min(10.0, window / 2), window=window)
    figures.pop("samples")
    first, last = figures["ack_p99_first_ms"], figures["ack_p99_last_ms"]
    limit = 2 * first + 50
    print(
        table(
            ["figure", "value"],
            [
                ["commands", figures["commands"]],
                ["ack p50 (ms)", figures["ack_p50_ms"]],
                ["ack p99, first window (ms)", first],
                ["ack p99, last window (ms)", last],
                ["ack max (ms)", figures["ack_max_ms"]],
                ["limit for the last window (ms)", limit],
                ["met", "yes" if last < limit else "NO"],
            ],
        )
    )
    emit("soak", {**figures, "ack_p99_limit_ms": limit, "met": last < limit})


if __name__ == "__main__":
    main()
