"""Archives for `import` (Console): where they come from, what the card shows, what is sent.

A transport's `FileSource` (commands/context.py) opens what a command names and
hands back an `OpenedFile`: a local file in the shell (its size known, the bot
reads it itself), or a download (https; its size unknown until read).

What the approval card shows is what is uploaded. So the archive is read once
when the command is asked, and what it is (name, where from, size in bytes,
sha256) goes into the plan:

- a local file is hashed where it is (nothing is copied);
- a download is written to the spool (`ArchiveStore`, a folder beside the SQLite
  file) while it is hashed, and stops past the size limit. It is downloaded now,
  at request time, rather than at approval because the card must show the
  digest (so the bytes must be read now anyway), the approved upload must be the
  bytes the approver saw (a URL can change or a signed one expire in the
  meantime), and downloading twice would cost twice.

When the approved plan runs, `ArchiveStore.open` reads the file again and
checks its size and sha256 against the plan before a byte is sent (a local file
edited since, or a spool file truncated, is refused), then streams it with a
`Content-Length`. A spooled archive is removed once uploaded; spool files left
by approvals that were denied or expired are removed after `keep_seconds`.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
import uuid
from collections.abc import AsyncIterable, AsyncIterator, Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from clients.graphenedb import Archive
from core.errors import UserError
from core.files import create_private

CHUNK = 1024 * 1024


@dataclass(frozen=True)
class OpenedFile:
    """A file a command names, ready to be read once.

    `name`: the file name sent with the upload; `origin`: where it comes from, for
    people (a local path, or a URL's host and path, never its query string);
    `chunks`: its bytes; `size`: its size in bytes when known without reading (a
    local file), else None; `path`: set for a local file the bot may read again
    itself (the shell), None for a download (it is spooled).
    """

    name: str
    origin: str
    chunks: AsyncIterable[bytes]
    size: int | None = None
    path: Path | None = None


@dataclass(frozen=True)
class KeptArchive:
    """An archive as the plan (and so the approval card) records it.

    `path` is the local file, or the spool file of a download (`spooled`);
    `size` in bytes and `sha256` (hex) are what was read when it was asked for.
    """

    name: str
    origin: str
    size: int
    sha256: str
    path: str
    spooled: bool

    def to_params(self) -> dict[str, Any]:
        """The JSON-able form kept in `plan.params["archive"]`."""
        return asdict(self)

    @classmethod
    def from_params(cls, params: dict[str, Any] | None) -> KeptArchive:
        """Read back `to_params`; UserError when the plan holds no usable archive."""
        unusable = UserError("this import's archive was not recorded; ask for it again")
        if not isinstance(params, dict):
            raise unusable
        try:
            return cls(
                name=str(params["name"]),
                origin=str(params["origin"]),
                size=int(params["size"]),
                sha256=str(params["sha256"]),
                path=str(params["path"]),
                spooled=bool(params["spooled"]),
            )
        except (KeyError, TypeError, ValueError):
            raise unusable from None

    def details(self) -> list[tuple[str, str]]:
        """The card's lines: where from, size, sha256."""
        return [
            ("Archive", f"{self.name} from {self.origin}"),
            ("Size", f"{size_text(self.size)} ({self.size:,} bytes)"),
            ("SHA-256", self.sha256),
        ]


def url_origin(url: str) -> str:
    """A URL as shown to people: its host and path, never its query string or fragment
    (a signed URL's query holds its signature) nor any user:password."""
    parsed = urlsplit(url)
    host = parsed.hostname or ""
    if parsed.port is not None:
        host += f":{parsed.port}"
    return f"{host}{parsed.path}" or url.split("?", 1)[0]


def size_text(size: int) -> str:
    """`12.3 MB` (decimal units, like the APIs' sizes)."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size} B"


class ArchiveStore:
    """The spool of downloaded archives and the size limit of a download.

    `folder` is created when first needed; `max_bytes` stops a download past it;
    `keep_seconds` is how long an unused spool file is kept (the approval's
    lifetime and a margin).
    """

    def __init__(
        self,
        folder: Path,
        max_bytes: int,
        keep_seconds: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.folder = folder
        self.max_bytes = max_bytes
        self.keep_seconds = keep_seconds
        self._clock = clock

    async def keep(self, opened: OpenedFile) -> KeptArchive:
        """Read `opened` once: hash a local file where it is, or spool a download while
        hashing it. UserError for a download past `max_bytes` or one that fails."""
        if opened.path is not None:
            size, digest = await _digest(opened.chunks)
            return KeptArchive(opened.name, opened.origin, size, digest, str(opened.path), False)
        self.sweep()
        await asyncio.to_thread(_private_folder, self.folder)
        target = self.folder / f"{uuid.uuid4().hex}.archive"
        try:
            size, digest = await _digest(opened.chunks, target, self.max_bytes)
        except BaseException:
            target.unlink(missing_ok=True)
            raise
        return KeptArchive(opened.name, opened.origin, size, digest, str(target), True)

    async def open(self, kept: KeptArchive) -> Archive:
        """The archive to upload, after checking that its bytes are still the ones the
        plan recorded (size and sha256); UserError when it is gone or changed."""
        path = Path(kept.path)
        try:
            size, digest = await _digest(_read(path))
        except OSError as exc:
            raise UserError(
                f"the archive {kept.name} can no longer be read ({exc.strerror or exc}); "
                "nothing was sent: ask for the import again"
            ) from None
        if (size, digest) != (kept.size, kept.sha256):
            raise UserError(
                f"the archive {kept.name} changed since it was shown ({size:,} bytes, sha256 "
                f"{digest[:12]}… instead of {kept.size:,} bytes, {kept.sha256[:12]}…); "
                "nothing was sent: ask for the import again"
            )
        return Archive(kept.name, kept.size, Archive.from_path(path).chunks)

    def release(self, kept: KeptArchive) -> None:
        """Remove a spooled archive (a local file is never removed)."""
        if kept.spooled and Path(kept.path).parent == self.folder:
            Path(kept.path).unlink(missing_ok=True)

    def sweep(self) -> int:
        """Remove spool files older than `keep_seconds`; how many were removed."""
        if not self.folder.is_dir():
            return 0
        oldest = self._clock() - self.keep_seconds
        removed = 0
        for file in self.folder.glob("*.archive"):
            try:
                if file.stat().st_mtime < oldest:
                    file.unlink()
                    removed += 1
            except FileNotFoundError:
                continue
        return removed


def _private_folder(folder: Path) -> None:
    """The spool folder, its owner's only (0700): downloaded archives are database dumps."""
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    folder.chmod(0o700)  # made by an older version with the default mode


async def _digest(
    chunks: AsyncIterable[bytes], copy_to: Path | None = None, limit: int | None = None
) -> tuple[int, str]:
    """(size, sha256 hex) of a stream, copied to `copy_to` if given; UserError past `limit`."""
    sha = hashlib.sha256()
    size = 0
    handle = create_private(copy_to) if copy_to is not None else None
    try:
        async for chunk in chunks:
            size += len(chunk)
            if limit is not None and size > limit:
                raise UserError(
                    f"the archive is larger than the limit of {size_text(limit)} "
                    "([imports] max_archive_mb); nothing was kept"
                )
            sha.update(chunk)
            if handle is not None:
                await asyncio.to_thread(handle.write, chunk)
    finally:
        if handle is not None:
            handle.close()
    return size, sha.hexdigest()


async def _read(path: Path) -> AsyncIterator[bytes]:
    with path.open("rb") as handle:
        while chunk := await asyncio.to_thread(handle.read, CHUNK):
            yield chunk
