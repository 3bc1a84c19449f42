"""Alembic environment: runs on the connection ``control_plane.store.migrate`` hands over; there is no alembic.ini."""

from __future__ import annotations

import logging
from typing import Any

import sqlalchemy as sa
from alembic import context
from sqlalchemy import Connection, text

from control_plane.store._migrate import VERSION_TABLE
from control_plane.store._schema import Base

# Any fixed number: every control plane migrating one PostgreSQL database takes the same lock.
_MIGRATION_LOCK = 0x436F6E64
# Where earlier Conduit kept its revision: Alembic's default table, which Optuna uses as well.
_LEGACY_VERSION_TABLE = "alembic_version"

log = logging.getLogger(__name__)


def _ours(name: str | None, type_: str, parent_names: Any) -> bool:
    # Autogenerate compares Conduit's tables only: Optuna's, in the same database, are not ours to drop.
    return type_ != "table" or name in Base.metadata.tables


def _adopt_legacy_version_table(connection: Connection) -> None:
    """Move a Conduit revision found in ``alembic_version`` to ``VERSION_TABLE`` and drop the old table.

    Runs in the migration's transaction, under its lock, so a crash or a second control plane never sees the revision
    in neither table or in both. An ``alembic_version`` holding anything else (Optuna's revision) is left alone.
    """
    if not sa.inspect(connection).has_table(_LEGACY_VERSION_TABLE):
        return
    legacy = sa.table(_LEGACY_VERSION_TABLE, sa.column("version_num"))
    revisions = set(connection.scalars(sa.select(legacy.c.version_num)))
    ours = {script.revision for script in context.script.walk_revisions()}
    if len(revisions) != 1 or not revisions <= ours:
        return
    (revision,) = revisions
    migration = context.get_context()
    if not migration.get_current_heads():
        migration.stamp(context.script, revision)
    sa.Table(_LEGACY_VERSION_TABLE, sa.MetaData()).drop(connection)
    log.info("moved schema revision %s from %s to %s", revision, _LEGACY_VERSION_TABLE, VERSION_TABLE)


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        version_table=VERSION_TABLE,
        include_name=_ours,
        # SQLite cannot ALTER most things in place; batch mode rebuilds the table, so one migration serves both.
        render_as_batch=connection.dialect.name == "sqlite",
        # One transaction for the whole upgrade on SQLite too (Alembic would otherwise commit per revision, and
        # leave the version table's move below uncommitted when no revision is due): SQLite's DDL is transactional.
        transactional_ddl=True,
        compare_type=True,
    )
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            # Two control planes starting together must not both create the tables; on SQLite, the transaction's
            # BEGIN IMMEDIATE already serialises them.
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})
        _adopt_legacy_version_table(connection)
        context.run_migrations()


if context.is_offline_mode():
    raise RuntimeError("offline (--sql) migrations are not supported; run control_plane.store.migrate")
_connection = context.config.attributes.get("connection")
if not isinstance(_connection, Connection):
    raise RuntimeError("run migrations through control_plane.store.migrate, which provides the connection")
_run(_connection)
