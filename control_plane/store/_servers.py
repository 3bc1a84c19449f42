"""Inference servers: registrations (audited) and heartbeats (not audited: they are reports, every few seconds).

A registration belongs to the user who made it: only that user re-registers the name or heartbeats its id, until
the registration has been silent for longer than its expiry; then another user may take the name, under a new id.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from contract.entities import LoadedModel, ServerRecord
from contract.errors import ConduitError, ErrorCode
from control_plane.store import _convert
from control_plane.store._audit import record
from control_plane.store._rows import insert_missing, pool_for_update
from control_plane.store._schema import PoolRow, ServerRow, utcnow
from control_plane.store._validate import check_name, shown

__all__ = ["find_server", "get_server", "heartbeat", "list_servers", "register_server"]

_MAX = 255


def _state(row: ServerRow) -> dict[str, Any]:
    return {"id": row.id, "name": row.name, "pool": row.pool.name, "address": row.address, "owner": row.owner}


def _aware(moment: datetime, what: str) -> datetime:
    if moment.tzinfo is None:
        raise ConduitError(ErrorCode.INVALID_ARGUMENT, f"{what} must be timezone-aware")
    return moment.astimezone(UTC)


def _locked(session: Session, *conditions: Any) -> ServerRow | None:
    # Only the server's row: the pool joined to it is read, not locked (deployments lock pools).
    query = select(ServerRow).where(*conditions).with_for_update(of=ServerRow)
    return session.scalars(query).one_or_none()


def register_server(
    session: Session,
    pool: str,
    address: str,
    name: str,
    *,
    actor: str,
    at: datetime | None = None,
    expiry: timedelta | None = None,
) -> ServerRecord:
    check_name("pool", pool)
    for field, value in (("name", name), ("address", address)):
        if not value or len(value) > _MAX:
            raise ConduitError(ErrorCode.INVALID_ARGUMENT, f"server {field} must be 1-{_MAX} characters")
    now = _aware(at or utcnow(), "the registration time")
    pool_row = pool_for_update(session, pool)
    new_id = uuid.uuid4().hex
    fresh = {"id": new_id, "name": name, "pool_id": pool_row.id, "address": address, "owner": actor}
    # Two restarts of one server racing must end with one row and one id, not a unique-constraint failure.
    created = insert_missing(
        session,
        ServerRow,
        {**fresh, "registered_at": now, "last_heartbeat": None, "models": [], "generation": 0},
        ["name"],
    )
    row = _locked(session, ServerRow.name == name)
    assert row is not None  # inserted above, or there already; never deleted
    before = None if created else _state(row)
    if row.owner != actor:
        silent = now - _convert.server(row).last_heard()
        if row.owner is not None and (expiry is None or silent <= expiry):
            after = "" if expiry is None else f" (or wait until it has been silent for {expiry.total_seconds():g}s)"
            raise ConduitError(
                ErrorCode.PERMISSION_DENIED,
                f"server name {name!r} is registered by another user: register under another name{after}",
            )
        # Taken over (expired, or from before owners were kept): a new id, so the previous holder's id names
        # nothing any more, and none of the state it reported.
        row.id = new_id
        row.owner = actor
        row.last_heartbeat = None
        row.models = []
        row.generation = 0
    row.pool = pool_row
    row.address = address
    row.registered_at = now
    session.flush()
    record(session, actor, "RegisterServer", f"server/{name}", before=before, after=_state(row))
    return _convert.server(row)


def heartbeat(
    session: Session, server_id: str, models: Sequence[LoadedModel], generation: int, *, at: datetime, owner: str
) -> int:
    at = _aware(at, "heartbeat time")
    # Locked: a takeover changing the id commits first or waits for this report, never interleaves with it.
    row = _locked(session, ServerRow.id == server_id)
    # An unowned registration (from before owners were kept) answers NOT_FOUND: its server registers again, which
    # claims it.
    if row is None or row.owner is None:
        raise ConduitError(ErrorCode.NOT_FOUND, f"server {shown(server_id)} is not registered")
    if row.owner != owner:
        raise ConduitError(ErrorCode.PERMISSION_DENIED, f"server {shown(server_id)} is registered by another user")
    row.last_heartbeat = at
    row.models = [{"model": m.model, "version": m.version, "state": m.state, "reason": m.reason} for m in models]
    row.generation = generation
    return row.pool.generation


def get_server(session: Session, server_id: str) -> ServerRecord:
    row = session.get(ServerRow, server_id)
    if row is None:
        raise ConduitError(ErrorCode.NOT_FOUND, f"server {shown(server_id)} is not registered")
    return _convert.server(row)


def find_server(session: Session, name: str) -> ServerRecord | None:
    row = session.scalar(select(ServerRow).where(ServerRow.name == name))
    return None if row is None else _convert.server(row)


def list_servers(session: Session, pool: str | None) -> list[ServerRecord]:
    query = select(ServerRow).join(ServerRow.pool).order_by(PoolRow.name, ServerRow.name)
    if pool:
        query = query.where(PoolRow.name == pool)
    return [_convert.server(row) for row in session.scalars(query)]
