"""One converter per control plane message: protobuf in, the dashboard's plain rows out."""

from __future__ import annotations

from google.protobuf.message import Message

from control_plane.protocol import control_plane_pb2 as cp
from dashboard._entities import (
    AlertEventRow,
    AlertRow,
    AlertRuleRow,
    AttachmentRow,
    AuditRow,
    DeploymentRow,
    JobRow,
    JobRunRow,
    LoadedModelRow,
    ModelRow,
    PredictionLogRow,
    ServerRow,
    TensorRow,
    VersionRow,
    Viewer,
    time_of,
)

__all__ = [
    "alert",
    "alert_event",
    "alert_rule",
    "audit_entry",
    "deployment",
    "job",
    "job_run",
    "model",
    "prediction_log",
    "server",
    "version",
    "viewer",
]


def _optional(message: Message, name: str) -> float | None:
    value: float | None = getattr(message, name) if message.HasField(name) else None
    return value


def viewer(user: cp.User) -> Viewer:
    return Viewer(user.name, cp.Role.Name(user.role).removeprefix("ROLE_").lower())


def model(message: cp.Model) -> ModelRow:
    return ModelRow(
        name=message.name,
        description=message.description,
        archived=message.archived,
        created_at=time_of(message, "created_at"),
        created_by=message.created_by,
        latest_version=message.latest_version,
        aliases=dict(sorted(message.aliases.items())),
    )


def _tensor(spec: cp.TensorSpec) -> TensorRow:
    return TensorRow(spec.name, spec.datatype, list(spec.shape))


def version(message: cp.ModelVersion) -> VersionRow:
    lineage = message.lineage
    return VersionRow(
        model=message.model,
        version=message.version,
        created_at=time_of(message, "created_at"),
        created_by=message.created_by,
        description=message.description,
        sha256=message.sha256,
        size_bytes=message.size_bytes,
        aliases=sorted(message.aliases),
        metrics=dict(sorted(message.metrics.items())),
        params=dict(sorted(message.params.items())),
        tags=dict(sorted(message.tags.items())),
        lineage={
            "dataset": lineage.dataset,
            "dataset_version": lineage.dataset_version,
            "code_version": lineage.code_version,
            "parent_version": lineage.parent_version,
            "training_spec": lineage.training_spec,
        },
        inputs=[_tensor(t) for t in message.inputs],
        outputs=[_tensor(t) for t in message.outputs],
        attachments=[AttachmentRow(a.name, a.media_type, a.size_bytes, a.sha256) for a in message.attachments],
    )


def deployment(message: cp.Deployment) -> DeploymentRow:
    target = f"@{message.alias}" if message.alias else (f":{message.version}" if message.version else "")
    return DeploymentRow(
        id=message.id,
        pool=message.pool,
        model=message.model,
        target=target,
        resolved_version=message.resolved_version,
        canary_version=message.canary_version,
        canary_percent=message.canary_percent,
        active=message.active,
        undeployed=message.undeployed,
        created_at=time_of(message, "created_at"),
        created_by=message.created_by,
    )


def server(message: cp.Server) -> ServerRow:
    return ServerRow(
        id=message.id,
        name=message.name,
        pool=message.pool,
        address=message.address,
        alive=message.alive,
        registered_at=time_of(message, "registered_at"),
        last_heartbeat=time_of(message, "last_heartbeat"),
        generation=message.generation,
        models=[LoadedModelRow(m.model, m.version, m.state, m.reason) for m in message.models],
    )


def alert_rule(message: cp.AlertRule) -> AlertRuleRow:
    return AlertRuleRow(
        name=message.name,
        model=message.model,
        alias=message.alias,
        condition=message.condition,
        channel=message.channel,
        created_at=time_of(message, "created_at"),
        created_by=message.created_by,
        silenced_until=time_of(message, "silenced_until"),
    )


def alert(message: cp.Alert) -> AlertRow:
    return AlertRow(
        rule=message.rule,
        model=message.model,
        version=message.version,
        phase=message.phase,
        since=time_of(message, "since"),
        value=_optional(message, "value"),
        acknowledged=message.acknowledged,
        detail=message.detail,
    )


def alert_event(message: cp.AlertEvent) -> AlertEventRow:
    return AlertEventRow(
        id=message.id,
        rule=message.rule,
        model=message.model,
        version=message.version,
        phase=message.phase,
        at=time_of(message, "at"),
        value=_optional(message, "value"),
        detail=message.detail,
        channel=message.channel,
        delivery=message.delivery,
        attempts=message.attempts,
        error=message.error,
    )


def job(message: cp.Job) -> JobRow:
    return JobRow(message.name, message.cron, message.kind, time_of(message, "created_at"), message.created_by)


def job_run(message: cp.JobRun) -> JobRunRow:
    return JobRunRow(
        job=message.job,
        tick=time_of(message, "tick"),
        holder=message.holder,
        started_at=time_of(message, "started_at"),
        finished_at=time_of(message, "finished_at"),
        outcome=message.outcome,
        log=message.log,
    )


def audit_entry(message: cp.AuditEntry) -> AuditRow:
    return AuditRow(
        id=message.id,
        at=time_of(message, "at"),
        actor=message.actor,
        action=message.action,
        target=message.target,
        before_json=message.before_json,
        after_json=message.after_json,
    )


def prediction_log(message: cp.PredictionLog) -> PredictionLogRow:
    return PredictionLogRow(
        model=message.model,
        version=message.version,
        first_at=time_of(message, "first_at"),
        last_at=time_of(message, "last_at"),
        rows=message.rows,
        size_bytes=message.size_bytes,
        sha256=message.sha256,
        server=message.server,
        created_at=time_of(message, "created_at"),
    )
