"""The follow-up pages of long tables, kept in memory until "More" asks for them.

Pages live in this process only (bounded count, one hour each): after a restart
the "More" button answers that the listing expired and should be run again.
That is the right trade for a listing, which is stale after an hour anyway.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Blocks = list[dict[str, Any]]


@dataclass(frozen=True)
class StoredPages:
    """The pages after the first one of one reply."""

    created_at: float
    pages: list[Blocks]
    title: str


class PageStore:
    """A bounded, expiring in-memory map: short key -> the remaining pages."""

    def __init__(
        self,
        *,
        max_entries: int = 256,
        ttl_seconds: float = 3600.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Keep at most `max_entries` listings, each for `ttl_seconds`."""
        self.max_entries = max_entries
        self.ttl_seconds = ttl_seconds
        self._clock = clock
        self._entries: OrderedDict[str, StoredPages] = OrderedDict()

    def put(self, pages: list[Blocks], title: str = "") -> str:
        """Store `pages` (numbered from 1: page 0 is the message itself); return the key.

        The key is made from the content, so rendering the same reply again (a retried
        post) gives the same "More" button, and the same message.
        """
        self._prune()
        digest = hashlib.sha256(json.dumps([title, pages], sort_keys=True).encode()).digest()
        key = base64.urlsafe_b64encode(digest[:8]).decode().rstrip("=")
        self._entries[key] = StoredPages(self._clock(), pages, title)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)
        return key

    def get(self, key: str) -> StoredPages | None:
        """The stored listing, or None when unknown or expired."""
        self._prune()
        return self._entries.get(key)

    def _prune(self) -> None:
        limit = self._clock() - self.ttl_seconds
        for key in [k for k, v in self._entries.items() if v.created_at < limit]:
            del self._entries[key]

    def __len__(self) -> int:
        return len(self._entries)
