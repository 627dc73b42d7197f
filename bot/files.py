"""File sources for `import`: a local path (shell) or an http(s) URL, streamed in chunks."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlparse

import httpx

from core.errors import UserError
from core.invocation import Invocation

CHUNK = 1024 * 1024


async def _file_chunks(path: Path) -> AsyncIterator[bytes]:
    with path.open("rb") as handle:
        while True:
            chunk = await asyncio.to_thread(handle.read, CHUNK)
            if not chunk:
                return
            yield chunk


async def _url_chunks(url: str, headers: dict[str, str] | None = None) -> AsyncIterator[bytes]:
    async with (
        httpx.AsyncClient(timeout=60.0, follow_redirects=True) as client,
        client.stream("GET", url, headers=headers) as response,
    ):
        if response.status_code != 200:
            raise UserError(f"could not download the file: HTTP {response.status_code}")
        async for chunk in response.aiter_bytes(CHUNK):
            yield chunk


def open_local_or_url(invocation: Invocation, reference: str) -> tuple[str, AsyncIterator[bytes]]:
    """A readable local file or an http(s) URL, as (name, chunks); UserError otherwise."""
    parsed = urlparse(reference)
    if parsed.scheme in ("http", "https"):
        name = os.path.basename(parsed.path) or "archive.dump"
        return name, _url_chunks(reference)
    path = Path(reference).expanduser()
    if not path.is_file():
        raise UserError(f"no readable file at {reference!r}")
    if not os.access(path, os.R_OK):
        raise UserError(f"{reference!r} is not readable by the bot")
    return path.name, _file_chunks(path)
