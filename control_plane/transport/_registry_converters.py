"""Models, versions, their attachments and aliases to and from their protobuf messages (one converter per
message)."""

from __future__ import annotations

from contract.entities import AliasChange, Attachment, Lineage, Model, ModelVersion, TensorSignature
from control_plane.protocol import control_plane_pb2 as cp
from control_plane.service import AttachmentContent, AttachmentUpload, UploadHeader
from control_plane.transport._converters import timestamp

__all__ = [
    "alias",
    "attachment",
    "attachment_content",
    "lineage",
    "lineage_of",
    "model",
    "model_version",
    "tensor_spec",
    "upload_header",
]


def model(value: Model) -> cp.Model:
    return cp.Model(
        name=value.name,
        description=value.description,
        archived=value.archived,
        created_at=timestamp(value.created_at),
        created_by=value.created_by,
        latest_version=value.latest_version,
        aliases=dict(value.aliases),
    )


def tensor_spec(value: TensorSignature) -> cp.TensorSpec:
    return cp.TensorSpec(name=value.name, datatype=value.datatype, shape=list(value.shape))


def lineage(value: Lineage) -> cp.Lineage:
    return cp.Lineage(
        dataset=value.dataset,
        dataset_version=value.dataset_version,
        training_spec=value.training_spec,
        code_version=value.code_version,
        parent_version=value.parent_version,
    )


def lineage_of(message: cp.Lineage) -> Lineage:
    return Lineage(
        dataset=message.dataset,
        dataset_version=message.dataset_version,
        training_spec=message.training_spec,
        code_version=message.code_version,
        parent_version=message.parent_version,
    )


def model_version(value: ModelVersion) -> cp.ModelVersion:
    return cp.ModelVersion(
        model=value.model,
        version=value.version,
        sha256=value.sha256,
        size_bytes=value.size_bytes,
        inputs=[tensor_spec(t) for t in value.inputs],
        outputs=[tensor_spec(t) for t in value.outputs],
        metrics=dict(value.metrics),
        params=dict(value.params),
        tags=dict(value.tags),
        lineage=lineage(value.lineage),
        description=value.description,
        created_at=timestamp(value.created_at),
        created_by=value.created_by,
        aliases=list(value.aliases),
        attachments=[attachment(a) for a in value.attachments],
    )


def attachment(value: Attachment) -> cp.Attachment:
    return cp.Attachment(name=value.name, media_type=value.media_type, sha256=value.sha256, size_bytes=value.size_bytes)


def attachment_content(value: AttachmentContent) -> cp.AttachmentContent:
    return cp.AttachmentContent(
        attachment=attachment(value.attachment), content=value.content, version=value.version.version
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
        lineage=lineage_of(message.lineage),
        description=message.description,
        aliases=tuple(message.aliases),
        attachments=tuple(AttachmentUpload(a.name, a.media_type, a.content) for a in message.attachments),
    )


def alias(value: AliasChange) -> cp.Alias:
    return cp.Alias(
        model=value.model, alias=value.alias, version=value.version, previous_version=value.previous_version or 0
    )
