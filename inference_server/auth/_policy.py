"""The one table of what each RPC served on the inference port requires of its caller."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from types import MappingProxyType

from contract.entities import Role

__all__ = ["POLICY", "Access", "granted"]


class Access(enum.Enum):
    """What a call requires of its caller."""

    OPEN = "open"
    """Anyone who reaches the port: health and liveness, what load balancers and orchestrators probe."""
    READ = "read"
    """Any active user (a viewer is enough): inference, metadata, configuration, statistics, the index, reflection."""
    ADMIN = "admin"
    """An admin: changing what a repository-mode server serves, or its server-wide settings."""


_GRANTED: Mapping[Access, frozenset[Role]] = MappingProxyType(
    {
        Access.OPEN: frozenset(Role),
        Access.READ: frozenset({Role.VIEWER, Role.MAINTAINER, Role.ADMIN}),
        # A server's token is a machine's credential for the control plane: it calls nothing here.
        Access.ADMIN: frozenset({Role.ADMIN}),
    }
)


def granted(access: Access) -> frozenset[Role]:
    """The roles that may make a call requiring ``access``."""
    return _GRANTED[access]


_INFERENCE = "/inference.GRPCInferenceService/"
_HEALTH = "/grpc.health.v1.Health/"
_REFLECTION = "/grpc.reflection.v1alpha.ServerReflection/"

POLICY: Mapping[str, Access] = MappingProxyType(
    {
        _HEALTH + "Check": Access.OPEN,
        _HEALTH + "Watch": Access.OPEN,
        _INFERENCE + "ServerLive": Access.OPEN,
        _INFERENCE + "ServerReady": Access.OPEN,
        # Model names are the caller's business: from here on a token is needed.
        _INFERENCE + "ModelReady": Access.READ,
        _INFERENCE + "ServerMetadata": Access.READ,
        _INFERENCE + "ModelMetadata": Access.READ,
        _INFERENCE + "ModelConfig": Access.READ,
        _INFERENCE + "ModelStatistics": Access.READ,
        _INFERENCE + "ModelInfer": Access.READ,
        _INFERENCE + "ModelStreamInfer": Access.READ,
        _INFERENCE + "RepositoryIndex": Access.READ,
        _INFERENCE + "RepositoryModelLoad": Access.ADMIN,
        _INFERENCE + "RepositoryModelUnload": Access.ADMIN,
        # Not implemented (UNIMPLEMENTED once through), decided all the same: reading status is a read, changing
        # shared memory or trace and log settings an admin's act.
        _INFERENCE + "SystemSharedMemoryStatus": Access.READ,
        _INFERENCE + "SystemSharedMemoryRegister": Access.ADMIN,
        _INFERENCE + "SystemSharedMemoryUnregister": Access.ADMIN,
        _INFERENCE + "CudaSharedMemoryStatus": Access.READ,
        _INFERENCE + "CudaSharedMemoryRegister": Access.ADMIN,
        _INFERENCE + "CudaSharedMemoryUnregister": Access.ADMIN,
        _INFERENCE + "TraceSetting": Access.ADMIN,
        _INFERENCE + "LogSettings": Access.ADMIN,
        _REFLECTION + "ServerReflectionInfo": Access.READ,
    }
)
"""Full method name -> what it requires. A method missing here is refused to everyone."""
