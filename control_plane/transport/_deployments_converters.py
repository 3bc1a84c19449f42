"""Deployment requests as the core's values (``contract.wire`` converts the entities)."""

from __future__ import annotations

from contract import wire
from contract.entities import DeploymentSpec, unseen_categories_of
from control_plane.protocol import control_plane_pb2 as cp

__all__ = ["deployment_spec"]


def deployment_spec(message: cp.DeployRequest) -> DeploymentSpec:
    ref = wire.version_ref_of(message.target)
    return DeploymentSpec(
        pool=message.pool,
        model=ref.model,
        alias=ref.alias,
        version=ref.version,
        canary_version=message.canary_version or None,
        canary_percent=message.canary_percent,
        undeploy=message.undeploy,
        unseen_categories=unseen_categories_of(message.unseen_categories),
    )
