"""Files only their owner may read: the store, its backup copies, downloaded archives
(the audit log and database dumps). One place decides the mode: 0600."""

from __future__ import annotations

import os
from pathlib import Path
from typing import BinaryIO


def create_private(path: Path) -> BinaryIO:
    """A new file at `path` that its owner alone may read or write (0600), open for
    writing in binary; FileExistsError when `path` exists (it is never truncated)."""
    return os.fdopen(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600), "wb")


def append_private(path: Path) -> BinaryIO:
    """`path` open for appending in binary, created owner-only (0600) if it does not
    exist (an existing file keeps the mode its owner set)."""
    return os.fdopen(os.open(path, os.O_CREAT | os.O_APPEND | os.O_WRONLY, 0o600), "ab")
