"""The table of job leases, in SQLAlchemy Core.

It lives here until the registry's Alembic migrations take it over: a migration creates it with exactly these
columns and constraint names (the registry's naming convention and timestamp type are reused for that reason).
``create_tables`` exists for tests and for embedding the library elsewhere; the control plane never calls it.
"""

from __future__ import annotations

from sqlalchemy import (
    Column,
    Engine,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
)

from control_plane.store._schema import NAMING, UtcDateTime

__all__ = ["create_tables", "metadata", "scheduler_runs"]

NAME = 128

metadata = MetaData(naming_convention=NAMING)

scheduler_runs = Table(
    "scheduler_runs",
    metadata,
    Column("job", String(NAME), nullable=False),
    Column("tick", UtcDateTime(), nullable=False),
    Column("holder", String(255), nullable=False),
    Column("acquired_at", UtcDateTime(), nullable=False),
    Column("expires_at", UtcDateTime(), nullable=False),
    Column("finished_at", UtcDateTime(), nullable=True),
    Column("outcome", String(16), nullable=True),
    Column("log", Text(), nullable=False),
    # The exactly-once guarantee: one row per (job, tick), whoever inserts it first holds the tick.
    PrimaryKeyConstraint("job", "tick"),
)
"""One row per job tick that some replica took: who, until when, and how the run ended, with its log."""


def create_tables(engine: Engine) -> None:
    """Create the tables where they are missing (tests only; the registry uses its migrations)."""
    metadata.create_all(engine)
