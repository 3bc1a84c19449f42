"""Data sets: versions named by the client's content hash, each a Parquet artifact with its profile."""

from __future__ import annotations

import re

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session, aliased

from contract.entities import DatasetProfile, DatasetVersion, NewDatasetVersion, Page
from contract.errors import ConduitError, ErrorCode
from control_plane.store import _convert
from control_plane.store._audit import record
from control_plane.store._paging import decode_int, decode_str, make_page, page_limit
from control_plane.store._profile import check_profile
from control_plane.store._rows import insert_missing
from control_plane.store._schema import DatasetRow, DatasetVersionRow, utcnow
from control_plane.store._validate import check_dataset_metadata, check_dataset_version, check_name

__all__ = [
    "check_new_dataset",
    "create_dataset_version",
    "get_dataset",
    "list_dataset_versions",
    "list_datasets",
    "rebuild_dataset_profile",
]

_SHA256 = re.compile(r"[0-9a-f]{64}")


def check_new_dataset(new: NewDatasetVersion) -> None:
    """Everything the store would refuse about ``new``, checked by the service before the upload's bytes arrive."""
    check_name("data set", new.name)
    check_dataset_version(new.version)
    if not _SHA256.fullmatch(new.sha256):
        raise ConduitError(ErrorCode.INVALID_ARGUMENT, "sha256 must be 64 lowercase hex digits")
    if new.size_bytes < 0:
        raise ConduitError(ErrorCode.INVALID_ARGUMENT, "size_bytes must not be negative")
    check_dataset_metadata(new.source, new.target, new.description)
    check_profile(new.profile)


def _find_dataset(session: Session, name: str) -> DatasetRow:
    row = session.scalar(select(DatasetRow).where(DatasetRow.name == check_name("data set", name)))
    if row is None:
        raise ConduitError(ErrorCode.NOT_FOUND, f"data set {name!r} not found")
    return row


def _version(dataset: DatasetRow, version: str) -> Select[DatasetVersionRow]:
    return select(DatasetVersionRow).where(
        DatasetVersionRow.dataset_id == dataset.id, DatasetVersionRow.version == version
    )


def create_dataset_version(session: Session, new: NewDatasetVersion, *, actor: str) -> tuple[DatasetVersion, bool]:
    check_new_dataset(new)
    now = utcnow()
    # ON CONFLICT DO NOTHING for the name and for the version: two imports of one version at once both succeed,
    # and the later one finds the row the earlier one wrote.
    insert_missing(session, DatasetRow, {"name": new.name, "created_at": now, "created_by": actor}, ["name"])
    dataset = _find_dataset(session, new.name)
    values = {
        "dataset_id": dataset.id,
        "version": new.version,
        "sha256": new.sha256,
        "size_bytes": new.size_bytes,
        "profile": new.profile.to_json(),
        "source": new.source,
        "target": new.target,
        "description": new.description,
        "created_at": now,
        "created_by": actor,
    }
    created = insert_missing(session, DatasetVersionRow, values, ["dataset_id", "version"])
    row = session.scalars(_version(dataset, new.version)).one()
    if created:
        target = f"dataset/{new.name}:{new.version}"
        record(session, actor, "ImportDataset", target, before=None, after=_convert.dataset_state(row))
    return _convert.dataset_version(row), created


def rebuild_dataset_profile(session: Session, new: NewDatasetVersion, *, actor: str) -> tuple[DatasetVersion, bool]:
    check_new_dataset(new)
    dataset = _find_dataset(session, new.name)
    # Locked (on PostgreSQL) so that two rebuilds at once audit one replacement.
    row = session.scalar(_version(dataset, new.version).with_for_update())
    if row is None:
        raise ConduitError(ErrorCode.NOT_FOUND, f"data set {new.name!r} has no version {new.version}")
    stored = DatasetProfile.from_json(row.profile)
    if not stored.outdated or new.profile.outdated:
        return _convert.dataset_version(row), False
    # The version names the rows, so a profile of them has their row count and columns; anything else is not theirs.
    if new.profile.rows != stored.rows or [c.name for c in new.profile.columns] != [c.name for c in stored.columns]:
        raise ConduitError(
            ErrorCode.INVALID_ARGUMENT,
            f"the profile does not describe data set {new.name}:{new.version} "
            f"({stored.rows} rows, {len(stored.columns)} columns stored)",
        )
    before = {**_convert.dataset_state(row), "profile": "outdated"}
    row.profile = new.profile.to_json()
    session.flush()
    target = f"dataset/{new.name}:{new.version}"
    after = {**_convert.dataset_state(row), "profile": "current"}
    record(session, actor, "RebuildDatasetProfile", target, before=before, after=after)
    return _convert.dataset_version(row), True


def get_dataset(session: Session, name: str, version: str | None) -> DatasetVersion:
    dataset = _find_dataset(session, name)
    if version is None:
        row = session.scalar(
            select(DatasetVersionRow)
            .where(DatasetVersionRow.dataset_id == dataset.id)
            .order_by(DatasetVersionRow.id.desc())
            .limit(1)
        )
    else:
        row = session.scalar(_version(dataset, check_dataset_version(version)))
    if row is None:
        raise ConduitError(ErrorCode.NOT_FOUND, f"data set {name!r} has no version {version}")
    return _convert.dataset_version(row)


def list_datasets(session: Session, *, page_size: int, page_token: str) -> Page[DatasetVersion]:
    limit = page_limit(page_size)
    after = decode_str(page_token)
    other = aliased(DatasetVersionRow)
    newest = select(func.max(other.id)).where(other.dataset_id == DatasetRow.id)
    query = (
        select(DatasetVersionRow)
        .join(DatasetVersionRow.dataset)
        .where(DatasetVersionRow.id == newest.scalar_subquery())
        .order_by(DatasetRow.name)
        .limit(limit + 1)
    )
    if after is not None:
        query = query.where(DatasetRow.name > after)
    return make_page(session.scalars(query).all(), limit, lambda row: row.dataset.name, _convert.dataset_version)


def list_dataset_versions(session: Session, name: str, *, page_size: int, page_token: str) -> Page[DatasetVersion]:
    limit = page_limit(page_size)
    after = decode_int(page_token)
    dataset = _find_dataset(session, name)
    query = (
        select(DatasetVersionRow)
        .where(DatasetVersionRow.dataset_id == dataset.id)
        .order_by(DatasetVersionRow.id.desc())
        .limit(limit + 1)
    )
    if after is not None:
        query = query.where(DatasetVersionRow.id < after)
    return make_page(session.scalars(query).all(), limit, lambda row: row.id, _convert.dataset_version)
