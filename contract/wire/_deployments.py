"""Deployments, servers and pool assignments to and from their messages."""

from __future__ import annotations

from contract.entities import (
    ArtifactRef,
    Assignment,
    Deployment,
    LoadedModel,
    PoolAssignments,
    ServerRecord,
    ServerStatus,
    unseen_categories_of,
)
from contract.wire._time import datetime_of, required_datetime_of, timestamp
from control_plane.protocol import control_plane_pb2 as cp

__all__ = [
    "artifact_ref",
    "artifact_ref_of",
    "assignments",
    "assignments_of",
    "deployment",
    "deployment_of",
    "loaded_model",
    "loaded_model_of",
    "server",
    "server_of",
]


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
        unseen_categories=value.unseen_categories,
    )


def deployment_of(message: cp.Deployment) -> Deployment:
    return Deployment(
        id=message.id,
        pool=message.pool,
        model=message.model,
        alias=message.alias or None,
        version=message.version or None,
        canary_version=message.canary_version or None,
        canary_percent=message.canary_percent,
        active=message.active,
        created_at=required_datetime_of(message, "created_at"),
        created_by=message.created_by,
        resolved_version=message.resolved_version or None,
        undeployed=message.undeployed,
        unseen_categories=unseen_categories_of(message.unseen_categories),
    )


def loaded_model(value: LoadedModel) -> cp.LoadedModel:
    return cp.LoadedModel(model=value.model, version=value.version, state=value.state, reason=value.reason)


def loaded_model_of(message: cp.LoadedModel) -> LoadedModel:
    return LoadedModel(model=message.model, version=message.version, state=message.state, reason=message.reason)


def server(value: ServerStatus) -> cp.Server:
    record = value.record
    message = cp.Server(
        id=record.id,
        pool=record.pool,
        address=record.address,
        name=record.name,
        registered_at=timestamp(record.registered_at),
        alive=value.alive,
        models=[loaded_model(m) for m in record.models],
        generation=record.generation,
    )
    if record.last_heartbeat is not None:
        message.last_heartbeat.CopyFrom(timestamp(record.last_heartbeat))
    return message


def server_of(message: cp.Server) -> ServerStatus:
    record = ServerRecord(
        id=message.id,
        pool=message.pool,
        address=message.address,
        name=message.name,
        registered_at=required_datetime_of(message, "registered_at"),
        last_heartbeat=datetime_of(message, "last_heartbeat"),
        models=tuple(loaded_model_of(m) for m in message.models),
        generation=message.generation,
    )
    return ServerStatus(record, message.alive)


def artifact_ref(value: ArtifactRef) -> cp.ArtifactRef:
    return cp.ArtifactRef(version=value.version, sha256=value.sha256, size_bytes=value.size_bytes)


def artifact_ref_of(message: cp.ArtifactRef) -> ArtifactRef:
    return ArtifactRef(message.version, message.sha256, message.size_bytes)


def assignments(value: PoolAssignments) -> cp.Assignments:
    message = cp.Assignments(pool=value.pool, generation=value.generation)
    for item in value.models:
        entry = message.models.add(
            model=item.model, canary_percent=item.canary_percent, unseen_categories=item.unseen_categories
        )
        entry.primary.CopyFrom(artifact_ref(item.primary))
        if item.canary is not None:
            entry.canary.CopyFrom(artifact_ref(item.canary))
    return message


def assignments_of(message: cp.Assignments) -> PoolAssignments:
    models = []
    for item in message.models:
        # An unset canary and one of version 0 both mean none.
        canary = artifact_ref_of(item.canary) if item.HasField("canary") and item.canary.version else None
        models.append(
            Assignment(
                item.model,
                artifact_ref_of(item.primary),
                canary,
                item.canary_percent,
                unseen_categories_of(item.unseen_categories),
            )
        )
    return PoolAssignments.of(message.pool, message.generation, models)
