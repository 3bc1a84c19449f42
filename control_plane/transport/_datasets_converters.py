"""Data set requests as the core's values (``contract.wire`` converts the entities)."""

from __future__ import annotations

from contract import wire
from contract.entities import NewDatasetVersion
from control_plane.protocol import control_plane_pb2 as cp

__all__ = ["new_dataset_version"]


def new_dataset_version(message: cp.ImportDatasetHeader) -> NewDatasetVersion:
    return NewDatasetVersion(
        name=message.name,
        version=message.version,
        sha256=message.sha256.lower(),
        size_bytes=message.size_bytes,
        profile=wire.dataset_profile_of(message.profile),
        source=message.source,
        target=message.target,
        description=message.description,
    )
