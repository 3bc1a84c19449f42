"""Uploads on their way in: written to a local spool file as they arrive and checked against what their header
announced, before anything is stored."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import IO

from contract.errors import ConduitError, ErrorCode
from control_plane.store import is_sha256

__all__ = ["SPOOL_PREFIX", "Spool"]

SPOOL_PREFIX = "upload-"


def _invalid(message: str) -> ConduitError:
    return ConduitError(ErrorCode.INVALID_ARGUMENT, message)


def _absorb(file: IO[bytes], digest: hashlib._Hash, chunk: bytes) -> None:
    # One thread hop per chunk for both: hashlib releases the GIL on large buffers, and writes may block.
    digest.update(chunk)
    file.write(chunk)


class Spool:
    """The spool directory shared by every upload (model artifacts, data sets, attachments) and their size limits.

    Every upload reserves its announced size while it is received and stored, so the spool never holds more than
    ``max_total_bytes`` at once, however many callers upload together; one that does not fit is refused before its
    first byte is read (its caller may try again later). Used from one event loop.

    Args:
        directory: Where uploads are written while they arrive; leftovers of a previous process are removed by
            ``clear``.
        max_bytes: Largest upload accepted.
        max_total_bytes: Most bytes of uploads received at once; default: ``max_bytes``.
    """

    def __init__(self, directory: Path, *, max_bytes: int, max_total_bytes: int | None = None) -> None:
        self._directory = directory
        self._max_bytes = max_bytes
        self._max_total = max_bytes if max_total_bytes is None else max_total_bytes
        self._reserved = 0

    @property
    def reserved_bytes(self) -> int:
        """Bytes reserved now by the uploads being received."""
        return self._reserved

    @contextlib.contextmanager
    def _reserve(self, what: str, size_bytes: int) -> Iterator[None]:
        if self._reserved + size_bytes > self._max_total:
            raise ConduitError(
                ErrorCode.RESOURCE_EXHAUSTED,
                f"the {what} ({size_bytes} bytes) does not fit beside the uploads being received now (at most "
                f"{self._max_total} bytes at once); try again later",
            )
        self._reserved += size_bytes
        try:
            yield
        finally:
            self._reserved -= size_bytes

    def clear(self) -> int:
        """Create the spool directory and remove what a killed process left in it; returns how many files."""
        self._directory.mkdir(parents=True, exist_ok=True)
        removed = 0
        for stale in self._directory.glob(f"{SPOOL_PREFIX}*"):
            with contextlib.suppress(FileNotFoundError):
                stale.unlink()
                removed += 1
        return removed

    def check_announced(self, what: str, sha256: str, size_bytes: int) -> None:
        """Refuse an upload by its header alone: a malformed digest or size, or more bytes than the limit.

        Raises:
            ConduitError: INVALID_ARGUMENT, or RESOURCE_EXHAUSTED above the limit.
        """
        if not is_sha256(sha256):
            raise _invalid("the upload header's sha256 must be 64 lowercase hex digits")
        if size_bytes < 1:
            raise _invalid(f"the upload header's size_bytes must be the {what}'s size, 1 or more")
        if size_bytes > self._max_bytes:
            raise ConduitError(
                ErrorCode.RESOURCE_EXHAUSTED,
                f"the {what} is {size_bytes} bytes; this control plane accepts at most {self._max_bytes}",
            )

    async def _receive(
        self, what: str, sha256: str, size_bytes: int, chunks: AsyncIterator[bytes], file: IO[bytes]
    ) -> None:
        digest = hashlib.sha256()
        received = 0
        async for chunk in chunks:
            received += len(chunk)
            if received > size_bytes:
                raise _invalid(f"received more than the {size_bytes} bytes the header announced")
            await asyncio.to_thread(_absorb, file, digest, chunk)
        await asyncio.to_thread(file.flush)
        if received != size_bytes:
            raise _invalid(f"received {received} bytes; the header announced {size_bytes}")
        if digest.hexdigest() != sha256:
            raise _invalid(f"the {what}'s sha256 is {digest.hexdigest()}; the header announced {sha256}")

    @contextlib.asynccontextmanager
    async def receive(
        self, what: str, sha256: str, size_bytes: int, chunks: AsyncIterator[bytes], *, suffix: str
    ) -> AsyncIterator[Path]:
        """The spool file holding ``chunks``, verified to be ``size_bytes`` bytes hashing to ``sha256``.

        The file is removed when the block ends, on every path, including the caller going away mid-upload.

        Raises:
            ConduitError: RESOURCE_EXHAUSTED at once when ``size_bytes`` does not fit beside the uploads being
                received; INVALID_ARGUMENT when the size or the sha256 differ from the announced ones.
        """
        with self._reserve(what, size_bytes):
            descriptor, name = tempfile.mkstemp(prefix=SPOOL_PREFIX, suffix=suffix, dir=self._directory)
            path = Path(name)
            try:
                with os.fdopen(descriptor, "wb") as file:
                    await self._receive(what, sha256, size_bytes, chunks, file)
                yield path
            finally:
                path.unlink(missing_ok=True)

    @contextlib.asynccontextmanager
    async def hold(self, data: bytes) -> AsyncIterator[Path]:
        """``data`` in a spool file, removed when the block ends: for storing bytes that arrived in one message.

        Raises:
            ConduitError: RESOURCE_EXHAUSTED when ``data`` does not fit beside the uploads being received.
        """
        with self._reserve("attachment", len(data)):
            descriptor, name = tempfile.mkstemp(prefix=SPOOL_PREFIX, dir=self._directory)
            path = Path(name)
            try:
                with os.fdopen(descriptor, "wb") as file:
                    await asyncio.to_thread(file.write, data)
                yield path
            finally:
                path.unlink(missing_ok=True)
