"""Data set versions and their profiles to and from their protobuf messages (one converter per message)."""

from __future__ import annotations

from contract.entities import CategoryCount, ColumnProfile, DatasetProfile, DatasetVersion, NewDatasetVersion
from control_plane.protocol import control_plane_pb2 as cp
from control_plane.transport._converters import timestamp

__all__ = ["dataset_profile", "dataset_profile_of", "dataset_version", "new_dataset_version"]


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
