"""Deployments, servers and pool assignments to and from their protobuf messages (one converter per message)."""

from __future__ import annotations

from contract.entities import ArtifactRef, Deployment, DeploymentSpec, LoadedModel, PoolAssignments, ServerRecord
from control_plane.protocol import control_plane_pb2 as cp
from control_plane.transport._converters import timestamp, version_ref

__all__ = ["artifact_ref", "assignments", "deployment", "deployment_spec", "loaded_model_of", "server"]


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
