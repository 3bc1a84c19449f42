"""Schema migrations, run programmatically: the scripts ship inside the package, so no alembic.ini is needed."""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection
from sqlalchemy.exc import OperationalError

from contract.errors import ConduitError, ErrorCode
from control_plane.store._engine import Database, unreachable

__all__ = ["VERSION_TABLE", "alembic_config", "ensure_current", "migrate", "schema_is_current"]

SCRIPT_LOCATION = "control_plane:migrations"
# Where Alembic keeps the schema's revision. Not its default, ``alembic_version``: Optuna, whose studies the trainers
# keep in the same database, has its own Alembic revision there.
VERSION_TABLE = "conduit_alembic_version"


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic config for the packaged migrations; ``env.py`` runs them on ``connection``."""
    config = Config()
    config.set_main_option("script_location", SCRIPT_LOCATION)
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def migrate(url: str) -> None:
    """Upgrade the database at ``url`` to the newest schema; a no-op when it is already there.

    Raises:
        ConduitError: INVALID_ARGUMENT for a URL that is neither SQLite nor PostgreSQL, UNAVAILABLE when the
            database cannot be reached.
    """
    database = Database(url)
    try:
        # env.py opens the transaction itself; the connection must be handed over outside one.
        with database.write_connection() as connection:
            command.upgrade(alembic_config(connection), "head")
    except OperationalError as error:
        raise unreachable(error) from error
    finally:
        database.dispose()


def _is_current(database: Database) -> bool:
    heads = set(ScriptDirectory.from_config(alembic_config()).get_heads())
    try:
        with database.engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
            current = set(context.get_current_heads())
    except OperationalError as error:
        raise unreachable(error) from error
    return current == heads


def schema_is_current(url: str) -> bool:
    """Whether the database at ``url`` has every migration applied. Raises UNAVAILABLE when it cannot be reached."""
    database = Database(url)
    try:
        return _is_current(database)
    finally:
        database.dispose()


def ensure_current(database: Database) -> None:
    """Raises FAILED_PRECONDITION unless the schema is at the newest migration: a store never creates tables."""
    if not _is_current(database):
        raise ConduitError(
            ErrorCode.FAILED_PRECONDITION,
            "the registry database schema is missing or out of date: run `conduit control-plane migrate`",
        )
