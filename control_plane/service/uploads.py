"""RegisterVersion: spool an upload, verify it, store the artifact and the attachments, then (and only then) register
the version."""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field

from contract.entities import Attachment, Lineage, ModelVersion, NewVersion
from contract.errors import ConduitError, ErrorCode
from contract.signature import read_signature
from control_plane.artifacts import ArtifactStore
from control_plane.service.changes import Changes
from control_plane.service.spool import Spool
from control_plane.store import AbstractStore, check_alias, check_attachments, check_name, check_version_metadata

__all__ = ["AttachmentUpload", "UploadHeader", "UploadService"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class AttachmentUpload:
    """A document sent with a version, whole, in its header."""

    name: str
    media_type: str
    content: bytes


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
    attachments: Sequence[AttachmentUpload] = ()


class UploadService:
    """Receives model artifacts.

    Args:
        spool: Where uploads are verified, and their size limit.
        max_attachment_bytes: Largest total size of one version's attachments.
    """

    def __init__(
        self,
        store: AbstractStore,
        artifacts: ArtifactStore,
        changes: Changes,
        *,
        spool: Spool,
        max_attachment_bytes: int,
    ) -> None:
        self._store = store
        self._artifacts = artifacts
        self._changes = changes
        self._spool = spool
        self._max_attachment_bytes = max_attachment_bytes

    async def _check_header(self, header: UploadHeader) -> None:
        # The store's own name rules, applied before the transfer: a name it would refuse at commit time must not
        # cost an upload and leave an artifact that no version refers to.
        check_name("model", header.model)
        for alias in header.aliases:
            check_alias(alias)
        check_version_metadata(header.metrics, header.params, header.tags, header.description)
        check_attachments((a.name, a.media_type) for a in header.attachments)
        attached = sum(len(a.content) for a in header.attachments)
        if attached > self._max_attachment_bytes:
            raise ConduitError(
                ErrorCode.RESOURCE_EXHAUSTED,
                f"the attachments are {attached} bytes together; this control plane accepts at most "
                f"{self._max_attachment_bytes} per version",
            )
        self._spool.check_announced("artifact", header.sha256, header.size_bytes)
        # Before any byte is received: an upload that cannot be registered should not cost its transfer.
        try:
            model = await asyncio.to_thread(self._store.get_model, header.model)
        except ConduitError as exc:
            if exc.code is ErrorCode.NOT_FOUND and header.create_model:
                return
            raise
        if model.archived:
            raise ConduitError(ErrorCode.FAILED_PRECONDITION, f"model {header.model!r} is archived")

    async def _store_attachment(self, upload: AttachmentUpload) -> Attachment:
        sha256 = hashlib.sha256(upload.content).hexdigest()
        async with self._spool.hold(upload.content) as path:
            await asyncio.to_thread(self._artifacts.put, sha256, path)
        return Attachment(upload.name, upload.media_type, sha256, len(upload.content))

    async def register(self, header: UploadHeader, chunks: AsyncIterator[bytes], *, actor: str) -> ModelVersion:
        """Receive ``chunks``, verify them against ``header``, store the artifact and the attachments, register the
        next version.

        A version exists only once its artifact and attachments are completely stored and verified; the spool file
        is removed on every path, including the caller going away mid-upload.

        Raises:
            ConduitError: INVALID_ARGUMENT for a malformed header, a size or sha256 that does not match, or bytes
                that are not an ONNX model; RESOURCE_EXHAUSTED above the upload or attachment limit; NOT_FOUND for
                an unknown model without ``create_model``; FAILED_PRECONDITION for an archived one.
        """
        await self._check_header(header)
        async with self._spool.receive("artifact", header.sha256, header.size_bytes, chunks, suffix=".onnx") as spool:
            inputs, outputs = await asyncio.to_thread(read_signature, spool)
            await asyncio.to_thread(self._artifacts.put, header.sha256, spool)
        attachments = [await self._store_attachment(upload) for upload in header.attachments]
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
            attachments=tuple(attachments),
        )
        # The artifacts are complete; the row commits whole or not at all (model creation and attachments included).
        version = await asyncio.to_thread(
            self._store.create_version,
            new,
            actor=actor,
            create_model=header.create_model,
            aliases=tuple(header.aliases),
        )
        if header.aliases:
            self._changes.notify()
        log.info("registered %s version %d (%s) by %s", version.model, version.version, version.sha256[:12], actor)
        return version
