"""Prediction logs: recorded once per file (by sha256), listed by model version and time, pruned by age."""

from __future__ import annotations

import re
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from contract.entities import NewPredictionLog, Page, PredictionLog
from contract.errors import ConduitError, ErrorCode
from control_plane.store._paging import decode_int, make_page, page_limit
from control_plane.store._rows import insert_missing
from control_plane.store._schema import PredictionLogRow, utcnow
from control_plane.store._validate import check_name, check_version_number, is_sha256

__all__ = [
    "check_new_prediction_log",
    "create_prediction_log",
    "get_prediction_log",
    "list_prediction_logs",
    "prune_prediction_logs",
]

_DELETE_BATCH = 500
_SERVER = re.compile(r"[\x21-\x7e]{1,255}")


def _invalid(message: str) -> ConduitError:
    return ConduitError(ErrorCode.INVALID_ARGUMENT, message)


def check_sha256(sha256: str) -> str:
    if not is_sha256(sha256):
        raise _invalid("sha256 must be 64 lowercase hex digits")
    return sha256


def check_new_prediction_log(new: NewPredictionLog) -> None:
    """Everything the store would refuse about ``new``, checked by the service before the upload's bytes arrive."""
    check_name("model", new.model)
    check_version_number(new.version)
    check_sha256(new.sha256)
    if new.first_at.tzinfo is None or new.last_at.tzinfo is None:
        raise _invalid("first_at and last_at must be set")
    if new.last_at < new.first_at:
        raise _invalid("last_at is before first_at")
    if new.rows < 1:
        raise _invalid(f"a prediction log holds 1 row or more, not {new.rows}")
    if new.size_bytes < 1:
        raise _invalid("size_bytes must be the file's size, 1 or more")
    if not _SERVER.fullmatch(new.server):
        raise _invalid("server must be the instance name: 1-255 printable characters without spaces")


def _convert(row: PredictionLogRow) -> PredictionLog:
    return PredictionLog(
        id=row.id,
        model=row.model,
        version=row.version,
        first_at=row.first_at,
        last_at=row.last_at,
        rows=row.rows,
        sha256=row.sha256,
        size_bytes=row.size_bytes,
        server=row.server,
        created_at=row.created_at,
        created_by=row.created_by,
    )


def create_prediction_log(session: Session, new: NewPredictionLog, *, actor: str) -> tuple[PredictionLog, bool]:
    check_new_prediction_log(new)
    values = {
        "model": new.model,
        "version": new.version,
        "first_at": new.first_at,
        "last_at": new.last_at,
        "rows": new.rows,
        "sha256": new.sha256,
        "size_bytes": new.size_bytes,
        "server": new.server,
        "created_at": utcnow(),
        "created_by": actor,
    }
    # ON CONFLICT DO NOTHING on the sha256: a retried upload (or two at once) records the file once.
    created = insert_missing(session, PredictionLogRow, values, ["sha256"])
    row = session.scalars(select(PredictionLogRow).where(PredictionLogRow.sha256 == new.sha256)).one()
    return _convert(row), created


def get_prediction_log(session: Session, sha256: str) -> PredictionLog:
    row = session.scalar(select(PredictionLogRow).where(PredictionLogRow.sha256 == check_sha256(sha256)))
    if row is None:
        raise ConduitError(ErrorCode.NOT_FOUND, f"no prediction log with sha256 {sha256}")
    return _convert(row)


def list_prediction_logs(
    session: Session,
    model: str,
    *,
    version: int | None,
    since: datetime | None,
    until: datetime | None,
    page_size: int,
    page_token: str,
) -> Page[PredictionLog]:
    limit = page_limit(page_size)
    after = decode_int(page_token)
    query = select(PredictionLogRow).where(PredictionLogRow.model == check_name("model", model))
    if version is not None:
        query = query.where(PredictionLogRow.version == check_version_number(version))
    # A log overlaps [since, until) when its rows do.
    if since is not None:
        query = query.where(PredictionLogRow.last_at >= since)
    if until is not None:
        query = query.where(PredictionLogRow.first_at < until)
    if after is not None:
        query = query.where(PredictionLogRow.id < after)
    rows = session.scalars(query.order_by(PredictionLogRow.id.desc()).limit(limit + 1)).all()
    return make_page(rows, limit, lambda row: row.id, _convert)


def prune_prediction_logs(session: Session, before: datetime) -> list[str]:
    digests = list(session.scalars(select(PredictionLogRow.sha256).where(PredictionLogRow.last_at < before)))
    # By digest, not by age again: exactly the rows read, whatever commits in between, in statements of bounded size.
    for start in range(0, len(digests), _DELETE_BATCH):
        batch = digests[start : start + _DELETE_BATCH]
        session.execute(delete(PredictionLogRow).where(PredictionLogRow.sha256.in_(batch)))
    return digests
