"""The README's Performance table is what the saved bench results say (bench/readme.py).

No bench runs here: the table is regenerated from bench/results/*.json by cog and
compared with the README (`make bench-readme` rewrites it).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cogapp import Cog

from bench import readme

ROOT = Path(__file__).parents[1]


def test_readme_performance_table_matches_the_saved_results(capsys):
    status = Cog().main(["cog", "--check", "-I", str(ROOT), str(ROOT / "README.md")])
    assert status == 0, "README.md's Performance table is stale: run `make bench-readme`"


def test_the_table_has_a_row_for_every_bench_and_says_what_is_not_measured(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(readme, "RESULTS", tmp_path)
    (tmp_path / "startup.json").write_text(
        json.dumps(
            {
                "bench": "startup",
                "python_ms": 40.0,
                "help_ms": 90.0,
                "ratio": 2.25,
                "target_ratio": 3.0,
                "runs": 30,
                "measured_at": "2026-11-30",
                "machine": {"nproc": 2},
            }
        )
    )
    (tmp_path / "decide.json").write_text(json.dumps({"bench": "decide", "store_bytes": 1}))
    lines = readme.table().splitlines()
    assert lines[0] == "| bench | figure | measured | target |"
    rows = {stem: [line for line in lines if f"{stem}.py" in line] for stem, _, _ in readme.BENCHES}
    assert all(rows.values()), rows
    assert "not measured yet (no bench/results/ack.json)" in rows["ack"][0]
    assert "2026-11-30, 2 cores" in rows["startup"][0]
    startup = lines.index(rows["startup"][0])
    assert lines[startup + 1] == "|  | ratio | 2.2 | ≤ 3: met |"
    assert "not in the saved results: end_to_end.p50_ms" in rows["decide"][0]


def test_a_bench_judging_its_own_targets_gets_a_row_per_target(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(readme, "RESULTS", tmp_path)
    (tmp_path / "storage.json").write_text(
        json.dumps({"bench": "storage", "targets": {"size_lt_200mb": True, "flat": False}})
    )
    lines = readme.rows_of("storage", "`storage.py`", readme._targets)
    assert lines[0].endswith("| size lt 200mb |  | met |")
    assert lines[1] == "|  | flat |  | not met |"
