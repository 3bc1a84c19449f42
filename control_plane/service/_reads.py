"""Artifacts on their way out, read in worker threads so that a slow disk or bucket never stalls the event loop."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator

from control_plane.artifacts import CHUNK_BYTES, ArtifactStore

__all__ = ["read_whole", "stream"]


async def _chunks(first: bytes, rest: Iterator[bytes]) -> AsyncIterator[bytes]:
    try:
        yield first
        while (chunk := await asyncio.to_thread(next, rest, b"")) != b"":
            yield chunk
    finally:
        # A download the caller abandons must not keep its file or object stream open until garbage collection.
        # (ValueError: the reader is still busy in its thread after a cancellation; it closes when collected.)
        close = getattr(rest, "close", None)
        if close is not None:
            with contextlib.suppress(ValueError):
                close()


async def stream(artifacts: ArtifactStore, sha256: str, chunk_bytes: int = CHUNK_BYTES) -> AsyncIterator[bytes]:
    """The artifact's bytes in chunks. The first chunk is read here, so a missing artifact raises NOT_FOUND before
    the caller sends anything."""
    reader = await asyncio.to_thread(artifacts.read, sha256, chunk_bytes)
    first = await asyncio.to_thread(next, reader, b"")
    return _chunks(first, reader)


async def read_whole(artifacts: ArtifactStore, sha256: str) -> bytes:
    """A small artifact's bytes in one piece (an attachment)."""
    return b"".join([chunk async for chunk in await stream(artifacts, sha256)])
