"""Row lookups and inserts shared by the store's operations."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import inspect, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from contract.errors import ConduitError, ErrorCode
from control_plane.store._schema import AliasRow, Base, DeploymentRow, ModelRow, PoolRow, VersionRow
from control_plane.store._validate import check_name

__all__ = [
    "active_deployment",
    "bump_generation",
    "find_alias",
    "find_model",
    "find_pool",
    "find_version",
    "insert_ignoring",
    "insert_missing",
    "pool_for_update",
    "pools_serving",
]


def insert_ignoring(session: Session, table: type[Base], rows: list[dict[str, Any]], unique: list[str]) -> Any:
    """``INSERT … ON CONFLICT (unique) DO NOTHING`` of ``rows``, in the session's dialect; the statement, to execute.

    Rather than select-then-insert, so that two transactions creating the same row at once both succeed instead of
    one failing on the unique constraint.
    """
    module: Any = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    return module.insert(inspect(table).local_table).values(rows).on_conflict_do_nothing(index_elements=unique)


def insert_missing(session: Session, table: type[Base], values: dict[str, Any], unique: list[str]) -> bool:
    """Insert a row unless one with the same ``unique`` columns exists; returns whether it inserted."""
    # RETURNING rather than the row count, which psycopg does not report for this statement.
    statement = insert_ignoring(session, table, [values], unique).returning(*inspect(table).primary_key)
    return session.execute(statement).first() is not None


def find_model(session: Session, name: str, *, lock: bool = False) -> ModelRow:
    """The model row, locked for the transaction with ``lock`` (PostgreSQL; SQLite writers hold the database lock)."""
    check_name("model", name)
    query = select(ModelRow).where(ModelRow.name == name)
    if lock:
        query = query.with_for_update()
    row = session.scalar(query)
    if row is None:
        raise ConduitError(ErrorCode.NOT_FOUND, f"model {name!r} not found")
    return row


def find_version(session: Session, model: ModelRow, version: int) -> VersionRow:
    row = session.scalar(select(VersionRow).where(VersionRow.model_id == model.id, VersionRow.version == version))
    if row is None:
        raise ConduitError(ErrorCode.NOT_FOUND, f"model {model.name!r} has no version {version}")
    return row


def find_alias(session: Session, model: ModelRow, alias: str) -> AliasRow:
    row = session.scalar(select(AliasRow).where(AliasRow.model_id == model.id, AliasRow.name == alias))
    if row is None:
        raise ConduitError(ErrorCode.NOT_FOUND, f"model {model.name!r} has no alias {alias!r}")
    return row


def find_pool(session: Session, name: str) -> PoolRow | None:
    check_name("pool", name)
    return session.scalar(select(PoolRow).where(PoolRow.name == name))


def pool_for_update(session: Session, name: str) -> PoolRow:
    """The pool row, created on first use and locked: deployments to one pool are serialised on it."""
    check_name("pool", name)
    insert_missing(session, PoolRow, {"name": name, "generation": 0}, ["name"])
    return session.scalars(select(PoolRow).where(PoolRow.name == name).with_for_update()).one()


def active_deployment(session: Session, pool_id: int, model_id: int) -> DeploymentRow | None:
    return session.scalar(
        select(DeploymentRow).where(
            DeploymentRow.pool_id == pool_id, DeploymentRow.model_id == model_id, DeploymentRow.active
        )
    )


def pools_serving(session: Session, model_id: int, *, alias: str | None = None) -> list[int]:
    """Pools where the model is deployed now (only those following ``alias``, when given)."""
    query = select(DeploymentRow.pool_id).where(
        DeploymentRow.model_id == model_id, DeploymentRow.active, ~DeploymentRow.undeploy
    )
    if alias is not None:
        query = query.where(DeploymentRow.alias == alias)
    return list(session.scalars(query).all())


def bump_generation(session: Session, pool_ids: Iterable[int]) -> None:
    """Tell the pools' watchers their assignments may have changed; commits with the change that caused it."""
    ids = sorted(set(pool_ids))
    if ids:
        session.execute(update(PoolRow).where(PoolRow.id.in_(ids)).values(generation=PoolRow.generation + 1))
