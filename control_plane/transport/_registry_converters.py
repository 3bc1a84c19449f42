"""Registry requests as the core's values, and attachments with their content as a message (``contract.wire``
converts the entities)."""

from __future__ import annotations

from contract import wire
from control_plane.protocol import control_plane_pb2 as cp
from control_plane.service import AttachmentContent, AttachmentUpload, UploadHeader

__all__ = ["attachment_content", "upload_header"]


def attachment_content(value: AttachmentContent) -> cp.AttachmentContent:
    return cp.AttachmentContent(
        attachment=wire.attachment(value.attachment), content=value.content, version=value.version.version
    )


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
