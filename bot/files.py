"""Where `import` reads archives from: the `FileSource` of every transport.

- An `https://` URL, from any transport: downloaded in chunks (redirects
  followed, each one checked by the same rule). Plain `http://` only to a
  loopback address (127.0.0.0/8, ::1, localhost) and only when `[imports]
  allow_http_loopback = true` (tests and the demo serve archives that way).
- A local path, from the shell only (`Invocation.transport == "shell"`): a file on
  the bot's server is never readable from Slack or a schedule. Its size comes from
  the file system, so nothing is copied.

People see a URL as its host and path only (commands/archives.py, `url_origin`):
the query of a signed URL holds its signature.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from commands.archives import CHUNK, OpenedFile, url_origin
from core.errors import UserError
from core.invocation import Invocation

DOWNLOAD_TIMEOUT_SECONDS = 60.0  # per read: a stalled download ends


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class ArchiveSource:
    """The `commands.context.FileSource` of graphops (see the module docstring)."""

    allow_http_loopback: bool = False

    def __call__(self, invocation: Invocation, reference: str) -> OpenedFile:
        """`reference` opened for reading once; UserError when it may not or cannot be."""
        scheme = urlsplit(reference).scheme.lower()
        if scheme in ("http", "https"):
            self.check_url(reference)
            name = os.path.basename(urlsplit(reference).path) or "archive"
            return OpenedFile(name, url_origin(reference), self._download(reference))
        if scheme and len(scheme) > 1:  # file:, ftp:, s3: ... (a one-letter scheme is a drive)
            raise UserError(f"{scheme}: URLs cannot be imported from; give an https:// URL")
        if invocation.transport != "shell":
            raise UserError(
                "a file on the bot's server cannot be read from here; give an https:// URL "
                "of the archive (local files can be imported from `graphops shell`)"
            )
        path = Path(reference).expanduser()
        if not path.is_file():
            raise UserError(f"no readable file at {reference!r}")
        if not os.access(path, os.R_OK):
            raise UserError(f"{reference!r} is not readable by the bot")
        return OpenedFile(
            path.name, str(path), _file_chunks(path), size=path.stat().st_size, path=path
        )

    def check_url(self, url: str) -> None:
        """UserError unless `url` may be downloaded: https, or http to loopback when allowed."""
        parts = urlsplit(url)
        if not parts.hostname:
            raise UserError(f"{url_origin(url)!r} is not a URL with a host")
        if parts.scheme.lower() == "https":
            return
        if self.allow_http_loopback and _is_loopback(parts.hostname):
            return
        raise UserError(
            "archives are downloaded over https:// only "
            f"(not {parts.scheme}://{parts.hostname}); give an https:// URL"
        )

    async def _download(self, url: str) -> AsyncIterator[bytes]:
        async def check(request: httpx.Request) -> None:  # every hop, redirects included
            self.check_url(str(request.url))

        where = url_origin(url)
        try:
            async with (
                httpx.AsyncClient(
                    timeout=DOWNLOAD_TIMEOUT_SECONDS,
                    follow_redirects=True,
                    event_hooks={"request": [check]},
                ) as client,
                client.stream("GET", url) as response,
            ):
                if response.status_code != 200:
                    raise UserError(
                        f"could not download the archive from {where}: HTTP {response.status_code}"
                    )
                async for chunk in response.aiter_bytes(CHUNK):
                    yield chunk
        except httpx.HTTPError as exc:
            raise UserError(
                f"could not download the archive from {where}: {type(exc).__name__}"
            ) from None


async def _file_chunks(path: Path) -> AsyncIterator[bytes]:
    with path.open("rb") as handle:
        while chunk := await asyncio.to_thread(handle.read, CHUNK):
            yield chunk
