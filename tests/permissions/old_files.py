"""A database file made by an older graphops (tests/operations/data/), copied for a test."""

from __future__ import annotations

import shutil
from pathlib import Path

BEFORE_ISSUE_19 = (
    Path(__file__).parents[1] / "operations" / "data" / "graphops-before-issue-19.sqlite"
)


def copy_before_issue_19(folder: Path) -> Path:
    """A copy of the file made before issue 19 (one admin binding of C0DEV on development)."""
    copy = folder / "old.sqlite3"
    shutil.copy(BEFORE_ISSUE_19, copy)
    return copy
