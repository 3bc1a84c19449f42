"""Registry requests as the core's values (``contract.wire`` converts the entities)."""

from __future__ import annotations

from contract import wire
from control_plane.protocol import control_plane_pb2 as cp
from control_plane.service import AttachmentUpload, UploadHeader

__all__ = ["upload_header"]


def upload_header(message: cp.RegisterVersionHeader) -> UploadHeader:
    return UploadHeader(
        model=message.model,
        sha256=message.sha256.lower(),
        size_bytes=message.size_bytes,
        create_model=message.create_model,
        metrics=dict(message.metrics),
        params=dict(message.params),
        tags=dict(message.tags),
        lineage=wire.lineage_of(message.lineage),
        description=message.description,
        aliases=tuple(message.aliases),
        attachments=tuple(AttachmentUpload(a.name, a.media_type, a.content) for a in message.attachments),
    )
