"""Files through the control plane's streamed calls: the request stream of an upload, and a verified download."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import IO, Generic, TypeVar

from contract.entities import ArtifactRef
from contract.errors import ConduitError, ErrorCode
from control_plane.protocol import control_plane_pb2 as cp

__all__ = ["CHUNK_BYTES", "FileRequests", "artifact_chunks", "file_digest", "write_verified"]

CHUNK_BYTES = 1024 * 1024
"""Bytes per message of an upload: well below every message limit."""

Request = TypeVar("Request")


def file_digest(path: Path) -> tuple[str, int]:
    """The sha256 (hex) and size of the file at ``path``.

    Raises:
        ConduitError: INVALID_ARGUMENT when it cannot be read.
    """
    digest = hashlib.sha256()
    size = 0
    try:
        with path.open("rb") as file:
            while chunk := file.read(CHUNK_BYTES):
                digest.update(chunk)
                size += len(chunk)
    except OSError as exc:
        raise ConduitError(ErrorCode.INVALID_ARGUMENT, f"cannot read {path}: {exc.strerror}") from None
    return digest.hexdigest(), size


class FileRequests(Generic[Request]):
    """The requests of an upload: ``first``, then the file at ``path`` in chunks (each made a message by ``wrap``).

    An async iterator that ``aclose`` ends from outside at any time: gRPC reads it from a task of its own and stops
    reading when the control plane answers early (a file it holds already, a refusal, a failure), leaving it
    suspended; ``aclose`` then waits for a read under way and closes the file, and a later read finds it ended.
    """

    def __init__(self, first: Request, path: Path, wrap: Callable[[bytes], Request]) -> None:
        self._first: Request | None = first
        self._path = path
        self._wrap = wrap
        self._file: IO[bytes] | None = None
        self._closed = False
        self._lock = asyncio.Lock()

    def __aiter__(self) -> FileRequests[Request]:
        return self

    async def __anext__(self) -> Request:
        async with self._lock:
            if self._closed:
                raise StopAsyncIteration
            if self._first is not None:
                first, self._first = self._first, None
                return first
            if self._file is None:
                self._file = await asyncio.to_thread(self._path.open, "rb")
            chunk = await asyncio.to_thread(self._file.read, CHUNK_BYTES)
            if not chunk:
                self._close()
                raise StopAsyncIteration
            return self._wrap(chunk)

    def _close(self) -> None:
        self._closed = True
        if self._file is not None:
            self._file.close()

    async def aclose(self) -> None:
        async with self._lock:
            self._close()


async def write_verified(chunks: AsyncIterator[ArtifactRef | bytes], destination: Path) -> ArtifactRef:
    """Write a download (its header, then its bytes) to ``destination``: atomically, and only when the bytes match
    the header's sha256 and size.

    Raises:
        ConduitError: INTERNAL when they do not (nothing is written).
    """
    partial = destination.with_name(destination.name + ".partial")
    digest = hashlib.sha256()
    head: ArtifactRef | None = None
    size = 0
    try:
        with partial.open("wb") as file:
            async for item in chunks:
                if isinstance(item, ArtifactRef):
                    head = item
                    continue
                digest.update(item)
                size += len(item)
                await asyncio.to_thread(file.write, item)
        if head is None or digest.hexdigest() != head.sha256 or size != head.size_bytes:
            raise ConduitError(ErrorCode.INTERNAL, f"downloaded file does not match its sha256 ({destination.name})")
        partial.replace(destination)
    finally:
        partial.unlink(missing_ok=True)
    return head


async def artifact_chunks(call: AsyncIterator[cp.ArtifactChunk]) -> AsyncIterator[ArtifactRef | bytes]:
    """A download's messages as its header (an ``ArtifactRef`` of the first message's fields), then its bytes."""
    first = True
    async for chunk in call:
        if first:
            first = False
            yield ArtifactRef(chunk.version, chunk.sha256, chunk.size_bytes)
        if chunk.data:
            yield bytes(chunk.data)
