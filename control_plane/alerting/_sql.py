"""What the SQL stores share: inserts that do nothing on a conflict, on both supported databases."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, Table
from sqlalchemy.dialects import postgresql, sqlite

__all__ = ["dialect_insert"]


def dialect_insert(engine: Engine, table: Table) -> Any:
    """``INSERT`` with ``ON CONFLICT`` clauses (``on_conflict_do_nothing``/``_do_update``) for ``engine``'s database.

    Raises:
        ValueError: the database is neither SQLite nor PostgreSQL.
    """
    name = engine.dialect.name
    if name == "postgresql":
        return postgresql.insert(table)
    if name == "sqlite":
        return sqlite.insert(table)
    raise ValueError(f"unsupported database {name!r}: use SQLite or PostgreSQL")
