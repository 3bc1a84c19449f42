"""The registry's storage: the abstract contract, its SQLAlchemy implementation and the schema migrations."""

from control_plane.store._abstract import AbstractStore
from control_plane.store._migrate import migrate, schema_is_current
from control_plane.store._sql import SqlStore

__all__ = ["AbstractStore", "SqlStore", "migrate", "schema_is_current"]
