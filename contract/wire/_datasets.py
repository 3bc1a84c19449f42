"""Data set profiles and versions to and from their messages."""

from __future__ import annotations

from contract.entities import CategoryCount, ColumnProfile, DatasetProfile, DatasetVersion
from contract.wire._time import required_datetime_of, timestamp
from control_plane.protocol import control_plane_pb2 as cp

__all__ = [
    "category_count",
    "column_profile",
    "column_profile_of",
    "dataset_profile",
    "dataset_profile_of",
    "dataset_version",
    "dataset_version_of",
]


def category_count(value: CategoryCount) -> cp.CategoryCount:
    return cp.CategoryCount(value=value.value, count=value.count)


def column_profile(value: ColumnProfile) -> cp.ColumnProfile:
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
        top_categories=[category_count(c) for c in value.top_categories],
        other_count=value.other_count,
        other_categories=list(value.other_categories),
    )


def column_profile_of(message: cp.ColumnProfile) -> ColumnProfile:
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
        other_categories=tuple(message.other_categories),
    )


def dataset_profile(value: DatasetProfile) -> cp.DatasetProfile:
    return cp.DatasetProfile(rows=value.rows, columns=[column_profile(c) for c in value.columns])


def dataset_profile_of(message: cp.DatasetProfile) -> DatasetProfile:
    return DatasetProfile(rows=message.rows, columns=tuple(column_profile_of(c) for c in message.columns))


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


def dataset_version_of(message: cp.DatasetVersion) -> DatasetVersion:
    return DatasetVersion(
        name=message.name,
        version=message.version,
        sha256=message.sha256,
        size_bytes=message.size_bytes,
        profile=dataset_profile_of(message.profile),
        source=message.source,
        target=message.target,
        description=message.description,
        created_at=required_datetime_of(message, "created_at"),
        created_by=message.created_by,
    )
