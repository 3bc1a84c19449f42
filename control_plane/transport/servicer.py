"""The ControlPlane servicer: one gRPC service, its calls served by the domain servicers it combines."""

from __future__ import annotations

from control_plane.protocol import control_plane_pb2_grpc as cp_grpc
from control_plane.transport._alerting import AlertingServicer
from control_plane.transport._datasets import DatasetsServicer
from control_plane.transport._deployments import DeploymentsServicer
from control_plane.transport._monitoring import MonitoringServicer
from control_plane.transport._registry import RegistryServicer
from control_plane.transport._users import UsersServicer

__all__ = ["ControlPlaneServicer"]


class ControlPlaneServicer(
    RegistryServicer,
    DatasetsServicer,
    DeploymentsServicer,
    MonitoringServicer,
    AlertingServicer,
    UsersServicer,
    # Last, so that every call a domain serves overrides its generated UNIMPLEMENTED answer.
    cp_grpc.ControlPlaneServicer,
):
    """``conduit.control.v1.ControlPlane`` over gRPC: gRPC registers one servicer object per service, so the domains'
    calls meet here, each domain in its own module with its converters beside it."""
