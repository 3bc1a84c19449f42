"""One converter per message: protobuf <-> control-plane entities. No logic beyond the wire format lives here."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from contract.entities import (
    AliasChange,
    ArtifactRef,
    Attachment,
    AuditEntry,
    CategoryCount,
    ColumnProfile,
    DatasetProfile,
    DatasetVersion,
    Deployment,
    DeploymentSpec,
    FeatureDrift,
    LatencyHistogram,
    Lineage,
    LoadedModel,
    Model,
    ModelVersion,
    MonitoringReport,
    MonitoringWindow,
    NewDatasetVersion,
    PoolAssignments,
    PredictionLog,
    Role,
    ServerRecord,
    TensorSignature,
    User,
)
from contract.errors import ConduitError, ErrorCode
from control_plane.protocol import control_plane_pb2 as cp
from control_plane.service import AttachmentContent, AttachmentUpload, UploadHeader, VersionRef

__all__ = [
    "alias",
    "artifact_chunk",
    "artifact_ref",
    "assignments",
    "attachment",
    "attachment_content",
    "audit_entry",
    "dataset_profile",
    "dataset_profile_of",
    "dataset_version",
    "datetime_of",
    "deployment",
    "deployment_spec",
    "latency_histogram",
    "lineage",
    "lineage_of",
    "loaded_model_of",
    "model",
    "model_version",
    "monitoring_response",
    "new_dataset_version",
    "role",
    "role_of",
    "server",
    "tensor_spec",
    "timestamp",
    "upload_header",
    "user",
    "version_ref",
]

_ROLES: dict[Role, cp.Role] = {
    Role.VIEWER: cp.ROLE_VIEWER,
    Role.MAINTAINER: cp.ROLE_MAINTAINER,
    Role.SERVER: cp.ROLE_SERVER,
    Role.ADMIN: cp.ROLE_ADMIN,
}
_ROLE_OF = {value: role for role, value in _ROLES.items()}


def timestamp(value: datetime) -> Timestamp:
    """A datetime as a Timestamp (naive datetimes are UTC, as the store writes them)."""
    result = Timestamp()
    result.FromDatetime(value if value.tzinfo is not None else value.replace(tzinfo=UTC))
    return result


def datetime_of(message: Any, field: str) -> datetime | None:
    """The Timestamp ``field`` of ``message`` as an aware UTC datetime; ``None`` when unset.

    Raises:
        ConduitError: INVALID_ARGUMENT when the Timestamp is outside years 1 to 9999 (or its nanos outside a second).
    """
    if not message.HasField(field):
        return None
    value: Timestamp = getattr(message, field)
    try:
        return value.ToDatetime(tzinfo=UTC)
    except (ValueError, OverflowError):
        raise ConduitError(ErrorCode.INVALID_ARGUMENT, f"{field} out of range") from None


def role(value: Role) -> cp.Role:
    return _ROLES[value]


def role_of(value: cp.Role) -> Role:
    try:
        return _ROLE_OF[value]
    except KeyError:
        raise ConduitError(ErrorCode.INVALID_ARGUMENT, "role must be viewer, maintainer, server or admin") from None


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


def version_ref(message: cp.VersionRef) -> VersionRef:
    selector = message.WhichOneof("selector")
    if selector == "version":
        return VersionRef(message.model, version=message.version)
    if selector == "alias":
        return VersionRef(message.model, alias=message.alias)
    return VersionRef(message.model)


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


def deployment_spec(message: cp.DeployRequest) -> DeploymentSpec:
    ref = version_ref(message.target)
    return DeploymentSpec(
        pool=message.pool,
        model=ref.model,
        alias=ref.alias,
        version=ref.version,
        canary_version=message.canary_version or None,
        canary_percent=message.canary_percent,
        undeploy=message.undeploy,
    )


def deployment(value: Deployment) -> cp.Deployment:
    return cp.Deployment(
        id=value.id,
        pool=value.pool,
        model=value.model,
        alias=value.alias or "",
        version=value.version or 0,
        canary_version=value.canary_version or 0,
        canary_percent=value.canary_percent,
        active=value.active,
        created_at=timestamp(value.created_at),
        created_by=value.created_by,
        resolved_version=value.resolved_version or 0,
        undeployed=value.undeployed,
    )


def loaded_model_of(message: cp.LoadedModel) -> LoadedModel:
    return LoadedModel(model=message.model, version=message.version, state=message.state, reason=message.reason)


def _loaded_model(value: LoadedModel) -> cp.LoadedModel:
    return cp.LoadedModel(model=value.model, version=value.version, state=value.state, reason=value.reason)


def server(record: ServerRecord, *, alive: bool) -> cp.Server:
    message = cp.Server(
        id=record.id,
        pool=record.pool,
        address=record.address,
        name=record.name,
        registered_at=timestamp(record.registered_at),
        alive=alive,
        models=[_loaded_model(m) for m in record.models],
        generation=record.generation,
    )
    if record.last_heartbeat is not None:
        message.last_heartbeat.CopyFrom(timestamp(record.last_heartbeat))
    return message


def artifact_chunk(data: bytes, head: ModelVersion | DatasetVersion | PredictionLog | None = None) -> cp.ArtifactChunk:
    """A download chunk; the first one (``head`` given) also announces the file's sha256, size and model version
    (0 for a data set, whose version is not a number)."""
    if head is None:
        return cp.ArtifactChunk(data=data)
    version = head.version if isinstance(head, ModelVersion | PredictionLog) else 0
    return cp.ArtifactChunk(data=data, sha256=head.sha256, size_bytes=head.size_bytes, version=version)


def artifact_ref(value: ArtifactRef) -> cp.ArtifactRef:
    return cp.ArtifactRef(version=value.version, sha256=value.sha256, size_bytes=value.size_bytes)


def assignments(value: PoolAssignments) -> cp.Assignments:
    message = cp.Assignments(pool=value.pool, generation=value.generation)
    for item in value.models:
        entry = message.models.add(model=item.model, canary_percent=item.canary_percent)
        entry.primary.CopyFrom(artifact_ref(item.primary))
        if item.canary is not None:
            entry.canary.CopyFrom(artifact_ref(item.canary))
    return message


def user(value: User) -> cp.User:
    return cp.User(
        name=value.name, role=role(value.role), disabled=value.disabled, created_at=timestamp(value.created_at)
    )


def _json(state: Mapping[str, Any] | None) -> str:
    return "" if state is None else json.dumps(state, sort_keys=True, default=str)


def audit_entry(value: AuditEntry) -> cp.AuditEntry:
    return cp.AuditEntry(
        id=value.id,
        at=timestamp(value.at),
        actor=value.actor,
        action=value.action,
        target=value.target,
        before_json=_json(value.before),
        after_json=_json(value.after),
    )


def _column_profile(value: ColumnProfile) -> cp.ColumnProfile:
    return cp.ColumnProfile(
        name=value.name,
        dtype=value.dtype,
        kind=value.kind,
        missing=value.missing,
        missing_rate=value.missing_rate,
        bin_edges=list(value.bin_edges),
        bin_counts=list(value.bin_counts),
        min=value.min,
        max=value.max,
        mean=value.mean,
        std=value.std,
        distinct=value.distinct,
        top_categories=[cp.CategoryCount(value=c.value, count=c.count) for c in value.top_categories],
        other_count=value.other_count,
    )


def _column_profile_of(message: cp.ColumnProfile) -> ColumnProfile:
    return ColumnProfile(
        name=message.name,
        dtype=message.dtype,
        kind=message.kind,
        missing=message.missing,
        missing_rate=message.missing_rate,
        bin_edges=tuple(message.bin_edges),
        bin_counts=tuple(message.bin_counts),
        min=message.min,
        max=message.max,
        mean=message.mean,
        std=message.std,
        distinct=message.distinct,
        top_categories=tuple(CategoryCount(c.value, c.count) for c in message.top_categories),
        other_count=message.other_count,
    )


def dataset_profile(value: DatasetProfile) -> cp.DatasetProfile:
    return cp.DatasetProfile(rows=value.rows, columns=[_column_profile(c) for c in value.columns])


def dataset_profile_of(message: cp.DatasetProfile) -> DatasetProfile:
    return DatasetProfile(rows=message.rows, columns=tuple(_column_profile_of(c) for c in message.columns))


def dataset_version(value: DatasetVersion) -> cp.DatasetVersion:
    return cp.DatasetVersion(
        name=value.name,
        version=value.version,
        sha256=value.sha256,
        size_bytes=value.size_bytes,
        profile=dataset_profile(value.profile),
        source=value.source,
        target=value.target,
        description=value.description,
        created_at=timestamp(value.created_at),
        created_by=value.created_by,
    )


def new_dataset_version(message: cp.ImportDatasetHeader) -> NewDatasetVersion:
    return NewDatasetVersion(
        name=message.name,
        version=message.version,
        sha256=message.sha256.lower(),
        size_bytes=message.size_bytes,
        profile=dataset_profile_of(message.profile),
        source=message.source,
        target=message.target,
        description=message.description,
    )


def latency_histogram(value: LatencyHistogram) -> cp.LatencyHistogram:
    message = cp.LatencyHistogram(
        bounds=list(value.bounds), counts=list(value.counts), count=value.count, sum=value.sum
    )
    if value.min is not None:
        message.min = value.min
    if value.max is not None:
        message.max = value.max
    return message


def _feature_drift(value: FeatureDrift) -> cp.FeatureDrift:
    message = cp.FeatureDrift(
        feature=value.feature,
        kind=value.kind,
        count=value.count,
        psi=value.psi,
        js=value.js,
        chi2=value.chi2,
        chi2_p_value=value.chi2_p_value,
        drifted=value.drifted,
        cells=value.cells,
        observed=value.observed,
        expected=value.expected,
    )
    if value.ks is not None and value.ks_p_value is not None:
        message.ks, message.ks_p_value = value.ks, value.ks_p_value
    return message


def _monitoring_window(value: MonitoringWindow) -> cp.MonitoringWindow:
    message = cp.MonitoringWindow(
        start=timestamp(value.start),
        end=timestamp(value.end),
        requests=value.requests,
        errors=dict(value.errors),
        features=[_feature_drift(f) for f in value.features],
        dataset_drift=value.dataset_drift,
        drifted_share=value.drifted_share,
    )
    if value.latency is not None:
        message.latency.CopyFrom(latency_histogram(value.latency))
    for field, estimate in zip(("latency_p50", "latency_p90", "latency_p99"), value.quantiles, strict=True):
        if estimate is not None:
            setattr(message, field, estimate)
    return message


def monitoring_response(value: MonitoringReport) -> cp.GetMonitoringResponse:
    rule = value.rule
    message = cp.GetMonitoringResponse(
        model=value.model,
        version=value.version,
        thresholds=cp.DriftThresholds(
            psi_threshold=rule.psi_threshold, chi2_p_threshold=rule.chi2_p_threshold, drift_share=rule.drift_share
        ),
        windows=[_monitoring_window(w) for w in value.windows],
    )
    if value.baseline is not None:
        message.baseline.CopyFrom(cp.DatasetRef(name=value.baseline.name, version=value.baseline.version))
    return message
