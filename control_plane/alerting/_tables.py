"""The tables of leases, alert states and alert events, in SQLAlchemy Core.

The registry's migration 0004 creates them with exactly these columns and constraint names (the registry's naming
convention and timestamp type are reused for that reason); the migration test compares the two.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
)

from control_plane.store._schema import NAMING, UtcDateTime

__all__ = ["alert_events", "alert_states", "metadata", "scheduler_runs"]

NAME = 128
VERSION = 64
CHANNEL = 2048

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

alert_states = Table(
    "alert_states",
    metadata,
    Column("rule", String(NAME), nullable=False),
    Column("model", String(NAME), nullable=False),
    Column("version", String(VERSION), nullable=False),
    Column("phase", String(16), nullable=False),
    Column("state", JSON(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    PrimaryKeyConstraint("rule", "model", "version"),
    Index(None, "phase"),
)
"""The current state of every alert (``AlertState.to_dict()``), its phase apart for listing firing alerts."""

alert_events = Table(
    "alert_events",
    metadata,
    Column("id", Integer(), primary_key=True, autoincrement=True),
    Column("rule", String(NAME), nullable=False),
    Column("model", String(NAME), nullable=False),
    Column("version", String(VERSION), nullable=False),
    Column("phase", String(16), nullable=False),
    Column("at", UtcDateTime(), nullable=False),
    Column("started_at", UtcDateTime(), nullable=False),
    Column("value", Float(), nullable=True),
    Column("detail", Text(), nullable=False),
    Column("notify", Boolean(), nullable=False),
    Column("repeat", Boolean(), nullable=False),
    Column("channel", String(CHANNEL), nullable=False),
    Column("delivery", String(16), nullable=True),
    Column("attempts", Integer(), nullable=False),
    Column("error", Text(), nullable=False),
    Column("delivered_at", UtcDateTime(), nullable=True),
    Index(None, "rule", "model", "version", "at"),
    Index(None, "delivery"),
)
"""Every firing and resolve, with how its notification went; ``delivery`` NULL is a notification not yet sent
(an outbox: a crash between the state change and the send leaves it to be sent by the next evaluation)."""
