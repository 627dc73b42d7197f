"""Reliability suite: slow tests run only when asked for.

`pytest tests/reliability` runs the short versions; `pytest -m slow tests/reliability`
(or GRAPHOPS_REL_SLOW=1) runs the long ones. Knobs: GRAPHOPS_REL_SEED,
GRAPHOPS_REL_ITERATIONS, GRAPHOPS_SOAK_MINUTES, GRAPHOPS_REL_EXAMPLES.
"""

from __future__ import annotations

import os

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    markexpr = config.getoption("markexpr", "") or ""
    if "slow" in markexpr or os.environ.get("GRAPHOPS_REL_SLOW") == "1":
        return
    skip = pytest.mark.skip(reason="slow: run with `pytest -m slow tests/reliability`")
    for item in items:
        if "reliability" in str(item.path) and item.get_closest_marker("slow"):
            item.add_marker(skip)
