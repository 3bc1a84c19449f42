"""The audit log: written in the transaction of the change it records, read newest first."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select
from sqlalchemy.orm import Session

from contract.entities import AuditEntry, Page
from control_plane.store import _convert
from control_plane.store._paging import decode_int, make_page, page_limit
from control_plane.store._schema import AuditRow, utcnow

__all__ = ["list_audit", "record", "record_on"]


def record(
    session: Session,
    actor: str,
    action: str,
    target: str,
    *,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
) -> None:
    """Add an audit entry to the session's transaction: it commits or rolls back with the change itself."""
    session.add(AuditRow(at=utcnow(), actor=actor, action=action, target=target, before=before, after=after))


def record_on(
    conn: Connection,
    actor: str,
    action: str,
    target: str,
    *,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
) -> None:
    """Add an audit entry to the transaction open on ``conn``, for a change made there outside the registry's
    sessions (the alerting library's states): it commits or rolls back with that change.

    Raises:
        ValueError: ``conn`` has no transaction open, so the entry could not share the change's.
    """
    if not conn.in_transaction():
        raise ValueError("record_on needs the transaction of the change it audits")
    # A session joined to the caller's transaction: its flush writes there, and closing it leaves the transaction
    # for the caller to commit or roll back ("rollback_only" never commits what it did not begin).
    with Session(bind=conn, join_transaction_mode="rollback_only") as session:
        record(session, actor, action, target, before=before, after=after)
        session.flush()


def list_audit(
    session: Session,
    *,
    since: datetime | None,
    actor: str | None,
    action: str | None,
    target_prefix: str | None,
    page_size: int,
    page_token: str,
) -> Page[AuditEntry]:
    limit = page_limit(page_size)
    after = decode_int(page_token)
    query = select(AuditRow).order_by(AuditRow.id.desc()).limit(limit + 1)
    if after is not None:
        query = query.where(AuditRow.id < after)
    if since is not None:
        query = query.where(AuditRow.at >= since)
    if actor:
        query = query.where(AuditRow.actor == actor)
    if action:
        query = query.where(AuditRow.action == action)
    if target_prefix:
        # autoescape: a target like "model/a_b" must not match "model/aXb" through LIKE's wildcards.
        query = query.where(AuditRow.target.startswith(target_prefix, autoescape=True))
    rows = session.scalars(query).all()
    return make_page(rows, limit, lambda row: row.id, _convert.audit_entry)
