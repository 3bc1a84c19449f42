"""Models, versions, their signatures, lineage, attachments and aliases to and from their messages."""

from __future__ import annotations

from contract.entities import (
    AliasChange,
    Attachment,
    AttachmentContent,
    Lineage,
    Model,
    ModelVersion,
    TensorSignature,
    VersionRef,
)
from contract.wire._time import required_datetime_of, timestamp
from control_plane.protocol import control_plane_pb2 as cp

__all__ = [
    "alias",
    "alias_of",
    "attachment",
    "attachment_content",
    "attachment_content_of",
    "attachment_of",
    "lineage",
    "lineage_of",
    "model",
    "model_of",
    "model_version",
    "model_version_of",
    "tensor_spec",
    "tensor_spec_of",
    "version_ref",
    "version_ref_of",
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


def model_of(message: cp.Model) -> Model:
    return Model(
        name=message.name,
        description=message.description,
        archived=message.archived,
        created_at=required_datetime_of(message, "created_at"),
        created_by=message.created_by,
        latest_version=message.latest_version,
        aliases=dict(message.aliases),
    )


def tensor_spec(value: TensorSignature) -> cp.TensorSpec:
    return cp.TensorSpec(name=value.name, datatype=value.datatype, shape=list(value.shape))


def tensor_spec_of(message: cp.TensorSpec) -> TensorSignature:
    return TensorSignature(message.name, message.datatype, tuple(message.shape))


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


def attachment(value: Attachment) -> cp.Attachment:
    return cp.Attachment(name=value.name, media_type=value.media_type, sha256=value.sha256, size_bytes=value.size_bytes)


def attachment_of(message: cp.Attachment) -> Attachment:
    return Attachment(message.name, message.media_type, message.sha256, message.size_bytes)


def attachment_content(value: AttachmentContent) -> cp.AttachmentContent:
    return cp.AttachmentContent(attachment=attachment(value.attachment), content=value.content, version=value.version)


def attachment_content_of(message: cp.AttachmentContent) -> AttachmentContent:
    return AttachmentContent(message.version, attachment_of(message.attachment), bytes(message.content))


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


def model_version_of(message: cp.ModelVersion) -> ModelVersion:
    return ModelVersion(
        model=message.model,
        version=message.version,
        sha256=message.sha256,
        size_bytes=message.size_bytes,
        inputs=tuple(tensor_spec_of(t) for t in message.inputs),
        outputs=tuple(tensor_spec_of(t) for t in message.outputs),
        metrics=dict(message.metrics),
        params=dict(message.params),
        tags=dict(message.tags),
        lineage=lineage_of(message.lineage),
        description=message.description,
        created_at=required_datetime_of(message, "created_at"),
        created_by=message.created_by,
        aliases=tuple(message.aliases),
        attachments=tuple(attachment_of(a) for a in message.attachments),
    )


def alias(value: AliasChange) -> cp.Alias:
    return cp.Alias(
        model=value.model, alias=value.alias, version=value.version, previous_version=value.previous_version or 0
    )


def alias_of(message: cp.Alias) -> AliasChange:
    return AliasChange(message.model, message.alias, message.version, message.previous_version or None)


def version_ref(value: VersionRef) -> cp.VersionRef:
    if value.alias is not None:
        return cp.VersionRef(model=value.model, alias=value.alias)
    if value.version is not None:
        return cp.VersionRef(model=value.model, version=value.version)
    return cp.VersionRef(model=value.model)


def version_ref_of(message: cp.VersionRef) -> VersionRef:
    selector = message.WhichOneof("selector")
    if selector == "version":
        return VersionRef(message.model, version=message.version)
    if selector == "alias":
        return VersionRef(message.model, alias=message.alias)
    return VersionRef(message.model)
