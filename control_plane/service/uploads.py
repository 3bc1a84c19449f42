"""RegisterVersion: spool an upload, verify it, store the artifact, then (and only then) register the version."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import re
import tempfile
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from control_plane.artifacts import ArtifactStore
from control_plane.entities import Lineage, ModelVersion, NewVersion
from control_plane.service.changes import Changes
from control_plane.signature import read_signature
from control_plane.store import AbstractStore, check_alias, check_name, check_version_metadata
from inference_server.errors import ConduitError, ErrorCode

__all__ = ["SPOOL_PREFIX", "UploadHeader", "UploadService"]

log = logging.getLogger(__name__)

SPOOL_PREFIX = "upload-"
_SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True, slots=True)
class UploadHeader:
    """What the first message of an upload announces."""

    model: str
    sha256: str
    size_bytes: int
    create_model: bool = False
    metrics: Mapping[str, float] = field(default_factory=dict)
    params: Mapping[str, str] = field(default_factory=dict)
    tags: Mapping[str, str] = field(default_factory=dict)
    lineage: Lineage = field(default_factory=Lineage)
    description: str = ""
    aliases: Sequence[str] = ()


def _invalid(message: str) -> ConduitError:
    return ConduitError(ErrorCode.INVALID_ARGUMENT, message)


def _absorb(file: IO[bytes], digest: hashlib._Hash, chunk: bytes) -> None:
    # One thread hop per chunk for both: hashlib releases the GIL on large buffers, and writes may block.
    digest.update(chunk)
    file.write(chunk)


class UploadService:
    """Receives model artifacts.

    Args:
        spool_dir: Where uploads are written while they arrive; leftovers of a previous process are removed by
            ``clear_spool``.
        max_upload_bytes: Largest artifact accepted.
    """

    def __init__(
        self,
        store: AbstractStore,
        artifacts: ArtifactStore,
        changes: Changes,
        *,
        spool_dir: Path,
        max_upload_bytes: int,
    ) -> None:
        self._store = store
        self._artifacts = artifacts
        self._changes = changes
        self._spool_dir = spool_dir
        self._max_upload_bytes = max_upload_bytes

    def clear_spool(self) -> int:
        """Create the spool directory and remove what a killed process left in it; returns how many files."""
        self._spool_dir.mkdir(parents=True, exist_ok=True)
        removed = 0
        for stale in self._spool_dir.glob(f"{SPOOL_PREFIX}*"):
            with contextlib.suppress(FileNotFoundError):
                stale.unlink()
                removed += 1
        return removed

    async def _check_header(self, header: UploadHeader) -> None:
        # The store's own name rules, applied before the transfer: a name it would refuse at commit time must not
        # cost an upload and leave an artifact that no version refers to.
        check_name("model", header.model)
        for alias in header.aliases:
            check_alias(alias)
        check_version_metadata(header.metrics, header.params, header.tags, header.description)
        if not _SHA256.fullmatch(header.sha256):
            raise _invalid("the upload header's sha256 must be 64 lowercase hex digits")
        if header.size_bytes < 1:
            raise _invalid("the upload header's size_bytes must be the artifact's size, 1 or more")
        if header.size_bytes > self._max_upload_bytes:
            raise ConduitError(
                ErrorCode.RESOURCE_EXHAUSTED,
                f"the artifact is {header.size_bytes} bytes; this control plane accepts at most "
                f"{self._max_upload_bytes}",
            )
        # Before any byte is received: an upload that cannot be registered should not cost its transfer.
        try:
            model = await asyncio.to_thread(self._store.get_model, header.model)
        except ConduitError as exc:
            if exc.code is ErrorCode.NOT_FOUND and header.create_model:
                return
            raise
        if model.archived:
            raise ConduitError(ErrorCode.FAILED_PRECONDITION, f"model {header.model!r} is archived")

    async def _receive(self, header: UploadHeader, chunks: AsyncIterator[bytes], file: IO[bytes]) -> None:
        digest = hashlib.sha256()
        received = 0
        async for chunk in chunks:
            received += len(chunk)
            if received > header.size_bytes:
                raise _invalid(f"received more than the {header.size_bytes} bytes the header announced")
            await asyncio.to_thread(_absorb, file, digest, chunk)
        await asyncio.to_thread(file.flush)
        if received != header.size_bytes:
            raise _invalid(f"received {received} bytes; the header announced {header.size_bytes}")
        if digest.hexdigest() != header.sha256:
            raise _invalid(f"the artifact's sha256 is {digest.hexdigest()}; the header announced {header.sha256}")

    async def register(self, header: UploadHeader, chunks: AsyncIterator[bytes], *, actor: str) -> ModelVersion:
        """Receive ``chunks``, verify them against ``header``, store the artifact, register the next version.

        A version exists only once its artifact is completely stored and verified; the spool file is removed on
        every path, including the caller going away mid-upload.

        Raises:
            ConduitError: INVALID_ARGUMENT for a malformed header, a size or sha256 that does not match, or bytes
                that are not an ONNX model; RESOURCE_EXHAUSTED above the upload limit; NOT_FOUND for an unknown
                model without ``create_model``; FAILED_PRECONDITION for an archived one.
        """
        await self._check_header(header)
        descriptor, name = tempfile.mkstemp(prefix=SPOOL_PREFIX, suffix=".onnx", dir=self._spool_dir)
        spool = Path(name)
        try:
            with os.fdopen(descriptor, "wb") as file:
                await self._receive(header, chunks, file)
            inputs, outputs = await asyncio.to_thread(read_signature, spool)
            await asyncio.to_thread(self._artifacts.put, header.sha256, spool)
            new = NewVersion(
                model=header.model,
                sha256=header.sha256,
                size_bytes=header.size_bytes,
                inputs=inputs,
                outputs=outputs,
                metrics=dict(header.metrics),
                params=dict(header.params),
                tags=dict(header.tags),
                lineage=header.lineage,
                description=header.description,
            )
            # The artifact is complete; the row commits whole or not at all (model creation included).
            version = await asyncio.to_thread(
                self._store.create_version,
                new,
                actor=actor,
                create_model=header.create_model,
                aliases=tuple(header.aliases),
            )
        finally:
            spool.unlink(missing_ok=True)
        if header.aliases:
            self._changes.notify()
        log.info("registered %s version %d (%s) by %s", version.model, version.version, version.sha256[:12], actor)
        return version
