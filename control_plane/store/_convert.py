"""ORM rows to entities, called while the session is open so that nothing is loaded lazily afterwards."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

from contract.entities import (
    Attachment,
    AuditEntry,
    DatasetProfile,
    DatasetVersion,
    Deployment,
    LatencyHistogram,
    Lineage,
    LoadedModel,
    Model,
    ModelVersion,
    Role,
    Rollup,
    ServerRecord,
    TensorSignature,
    User,
    unseen_categories_of,
)
from control_plane.store._schema import (
    AttachmentRow,
    AuditRow,
    DatasetVersionRow,
    DeploymentRow,
    ModelRow,
    RollupRow,
    ServerRow,
    UserRow,
    VersionRow,
)

__all__ = [
    "attachment",
    "audit_entry",
    "dataset_state",
    "dataset_version",
    "deployment",
    "deployment_state",
    "latency",
    "model",
    "model_state",
    "rollup",
    "server",
    "signatures_json",
    "user",
    "user_state",
    "version",
    "version_state",
]


def signatures_json(signatures: tuple[TensorSignature, ...]) -> list[Any]:
    return [{"name": s.name, "datatype": s.datatype, "shape": list(s.shape)} for s in signatures]


def _signatures(data: list[Any]) -> tuple[TensorSignature, ...]:
    return tuple(TensorSignature(d["name"], d["datatype"], tuple(d["shape"])) for d in data)


def model(row: ModelRow) -> Model:
    return Model(
        name=row.name,
        description=row.description,
        archived=row.archived,
        created_at=row.created_at,
        created_by=row.created_by,
        latest_version=row.latest_version,
        aliases={alias.name: alias.version.version for alias in row.aliases},
    )


def model_state(row: ModelRow) -> dict[str, Any]:
    """What the audit log records of a model."""
    return {"name": row.name, "description": row.description, "archived": row.archived}


def version(row: VersionRow) -> ModelVersion:
    return ModelVersion(
        model=row.model.name,
        version=row.version,
        sha256=row.sha256,
        size_bytes=row.size_bytes,
        inputs=_signatures(row.inputs),
        outputs=_signatures(row.outputs),
        metrics=dict(row.metrics),
        params=dict(row.params),
        tags={tag.key: tag.value for tag in row.tags},
        lineage=Lineage(**row.lineage),
        description=row.description,
        created_at=row.created_at,
        created_by=row.created_by,
        aliases=tuple(alias.name for alias in row.aliases),
        attachments=tuple(attachment(a) for a in row.attachments),
    )


def attachment(row: AttachmentRow) -> Attachment:
    return Attachment(name=row.name, media_type=row.media_type, sha256=row.sha256, size_bytes=row.size_bytes)


def version_state(row: VersionRow, tags: Mapping[str, str]) -> dict[str, Any]:
    return {
        "model": row.model.name,
        "version": row.version,
        "sha256": row.sha256,
        "size_bytes": row.size_bytes,
        "metrics": dict(row.metrics),
        "params": dict(row.params),
        "tags": dict(tags),
        "lineage": dict(row.lineage),
        "description": row.description,
        "attachments": [asdict(attachment(a)) for a in sorted(row.attachments, key=lambda a: a.name)],
    }


def dataset_version(row: DatasetVersionRow) -> DatasetVersion:
    return DatasetVersion(
        name=row.dataset.name,
        version=row.version,
        sha256=row.sha256,
        size_bytes=row.size_bytes,
        profile=DatasetProfile.from_json(row.profile),
        source=row.source,
        target=row.target,
        description=row.description,
        created_at=row.created_at,
        created_by=row.created_by,
    )


def dataset_state(row: DatasetVersionRow) -> dict[str, Any]:
    """What the audit log records of an imported data set version (its profile is in the registry itself)."""
    return {
        "name": row.dataset.name,
        "version": row.version,
        "sha256": row.sha256,
        "size_bytes": row.size_bytes,
        "columns": len(row.profile["columns"]),
        "rows": row.profile["rows"],
        "source": row.source,
        "target": row.target,
        "description": row.description,
    }


def deployment(row: DeploymentRow, aliases: Mapping[tuple[int, str], int]) -> Deployment:
    """``aliases`` maps (model id, alias) to the version the alias points at now."""
    if row.undeploy:
        resolved = None
    elif row.version is not None:
        resolved = row.version
    else:
        resolved = aliases.get((row.model_id, row.alias or ""))
    return Deployment(
        id=row.id,
        pool=row.pool.name,
        model=row.model.name,
        alias=row.alias,
        version=row.version,
        canary_version=row.canary_version,
        canary_percent=row.canary_percent,
        active=row.active,
        created_at=row.created_at,
        created_by=row.created_by,
        resolved_version=resolved,
        undeployed=row.undeploy,
        unseen_categories=unseen_categories_of(row.unseen_categories),
    )


def deployment_state(row: DeploymentRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "pool": row.pool.name,
        "model": row.model.name,
        "alias": row.alias,
        "version": row.version,
        "canary_version": row.canary_version,
        "canary_percent": row.canary_percent,
        "undeploy": row.undeploy,
        "unseen_categories": row.unseen_categories,
    }


def server(row: ServerRow) -> ServerRecord:
    return ServerRecord(
        id=row.id,
        pool=row.pool.name,
        address=row.address,
        name=row.name,
        registered_at=row.registered_at,
        last_heartbeat=row.last_heartbeat,
        models=tuple(LoadedModel(m["model"], m["version"], m["state"], m["reason"]) for m in row.models),
        generation=row.generation,
        owner=row.owner,
    )


def user(row: UserRow) -> User:
    return User(name=row.name, role=Role(row.role), disabled=row.disabled, created_at=row.created_at)


def user_state(row: UserRow) -> dict[str, Any]:
    return {"name": row.name, "role": row.role, "disabled": row.disabled}


def audit_entry(row: AuditRow) -> AuditEntry:
    return AuditEntry(
        id=row.id,
        at=row.at,
        actor=row.actor,
        action=row.action,
        target=row.target,
        before=row.before,
        after=row.after,
    )


def latency(row: RollupRow) -> LatencyHistogram | None:
    if row.latency_count == 0:
        return None
    return LatencyHistogram(
        bounds=tuple(float(b) for b in row.latency_bounds),
        counts=tuple(int(c) for c in row.latency_counts),
        count=row.latency_count,
        sum=row.latency_sum,
        min=row.latency_min,
        max=row.latency_max,
    )


def rollup(row: RollupRow) -> Rollup:
    """A roll-up with its sketches (which the query must have loaded)."""
    return Rollup(
        model=row.model,
        version=row.version,
        minute=row.minute,
        requests=row.requests,
        errors=dict(row.errors),
        latency=latency(row),
        sketches={(sketch.feature, sketch.kind): dict(sketch.counts) for sketch in row.sketches},
    )
