"""Alembic environment: runs on the connection ``control_plane.store.migrate`` hands over; there is no alembic.ini."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, text

from control_plane.store._schema import Base

# Any fixed number: every control plane migrating one PostgreSQL database takes the same lock.
_MIGRATION_LOCK = 0x436F6E64


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        # SQLite cannot ALTER most things in place; batch mode rebuilds the table, so one migration serves both.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            # Two control planes starting together must not both create the tables; SQLite's BEGIN IMMEDIATE
            # already serialises them.
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})
        context.run_migrations()


if context.is_offline_mode():
    raise RuntimeError("offline (--sql) migrations are not supported; run control_plane.store.migrate")
_connection = context.config.attributes.get("connection")
if not isinstance(_connection, Connection):
    raise RuntimeError("run migrations through control_plane.store.migrate, which provides the connection")
_run(_connection)
