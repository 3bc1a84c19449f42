"""Inference servers: registrations (audited) and heartbeats (not audited: they are reports, every few seconds)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from contract.entities import LoadedModel, ServerRecord
from contract.errors import ConduitError, ErrorCode
from control_plane.store import _convert
from control_plane.store._audit import record
from control_plane.store._rows import insert_missing, pool_for_update
from control_plane.store._schema import PoolRow, ServerRow, utcnow
from control_plane.store._validate import check_name

__all__ = ["heartbeat", "list_servers", "register_server"]

_MAX = 255


def _state(row: ServerRow) -> dict[str, Any]:
    return {"id": row.id, "name": row.name, "pool": row.pool.name, "address": row.address}


def register_server(session: Session, pool: str, address: str, name: str, *, actor: str) -> ServerRecord:
    check_name("pool", pool)
    for field, value in (("name", name), ("address", address)):
        if not value or len(value) > _MAX:
            raise ConduitError(ErrorCode.INVALID_ARGUMENT, f"server {field} must be 1-{_MAX} characters")
    pool_row = pool_for_update(session, pool)
    now = utcnow()
    fresh = {"id": uuid.uuid4().hex, "name": name, "pool_id": pool_row.id, "address": address}
    # Two restarts of one server racing must end with one row and one id, not a unique-constraint failure.
    created = insert_missing(
        session,
        ServerRow,
        {**fresh, "registered_at": now, "last_heartbeat": None, "models": [], "generation": 0},
        ["name"],
    )
    row = session.scalars(select(ServerRow).where(ServerRow.name == name).with_for_update()).one()
    before = None if created else _state(row)
    row.pool = pool_row
    row.address = address
    row.registered_at = now
    session.flush()
    record(session, actor, "RegisterServer", f"server/{name}", before=before, after=_state(row))
    return _convert.server(row)


def heartbeat(session: Session, server_id: str, models: Sequence[LoadedModel], generation: int, *, at: datetime) -> int:
    row = session.get(ServerRow, server_id)
    if row is None:
        raise ConduitError(ErrorCode.NOT_FOUND, f"server {server_id!r} is not registered")
    if at.tzinfo is None:
        raise ConduitError(ErrorCode.INVALID_ARGUMENT, "heartbeat time must be timezone-aware")
    row.last_heartbeat = at.astimezone(UTC)
    row.models = [{"model": m.model, "version": m.version, "state": m.state, "reason": m.reason} for m in models]
    row.generation = generation
    return row.pool.generation


def list_servers(session: Session, pool: str | None) -> list[ServerRecord]:
    query = select(ServerRow).join(ServerRow.pool).order_by(PoolRow.name, ServerRow.name)
    if pool:
        query = query.where(PoolRow.name == pool)
    return [_convert.server(row) for row in session.scalars(query)]
