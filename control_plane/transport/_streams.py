"""The streamed calls' framing, shared by every domain: an upload is one header message then chunks; a download is
chunks, the first of which announces the file."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TypeVar

from contract.entities import DatasetVersion, ModelVersion, PredictionLog
from contract.errors import ConduitError, ErrorCode
from control_plane.protocol import control_plane_pb2 as cp

__all__ = ["artifact_chunk", "download_chunks", "upload_chunks", "upload_header"]

UploadRequest = TypeVar(
    "UploadRequest", cp.RegisterVersionRequest, cp.ImportDatasetRequest, cp.UploadPredictionLogRequest
)


async def upload_chunks(messages: AsyncIterator[UploadRequest]) -> AsyncIterator[bytes]:
    """The data of an upload's messages after its header."""
    async for message in messages:
        part = message.WhichOneof("part")
        if part == "header":
            raise ConduitError(ErrorCode.INVALID_ARGUMENT, "only the first message of an upload may carry a header")
        if part == "chunk":
            yield message.chunk


async def upload_header(messages: AsyncIterator[UploadRequest]) -> UploadRequest:
    """The first message of an upload, which must carry its header."""
    first = await anext(aiter(messages), None)
    if first is None or first.WhichOneof("part") != "header":
        raise ConduitError(ErrorCode.INVALID_ARGUMENT, "the first message of an upload must carry its header")
    return first


def artifact_chunk(data: bytes, head: ModelVersion | DatasetVersion | PredictionLog | None = None) -> cp.ArtifactChunk:
    """A download chunk; the first one (``head`` given) also announces the file's sha256, size and model version
    (0 for a data set, whose version is not a number)."""
    if head is None:
        return cp.ArtifactChunk(data=data)
    version = head.version if isinstance(head, ModelVersion | PredictionLog) else 0
    return cp.ArtifactChunk(data=data, sha256=head.sha256, size_bytes=head.size_bytes, version=version)


async def download_chunks(
    chunks: AsyncIterator[bytes], head: ModelVersion | DatasetVersion | PredictionLog
) -> AsyncIterator[cp.ArtifactChunk]:
    """``chunks`` as download messages, the first announcing ``head``."""
    first = True
    async for data in chunks:
        yield artifact_chunk(data, head if first else None)
        first = False
