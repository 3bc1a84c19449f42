"""The registry's storage: the abstract contract, its SQLAlchemy implementation and the schema migrations."""

from control_plane.store._abstract import AbstractStore
from control_plane.store._datasets import check_new_dataset
from control_plane.store._migrate import migrate, schema_is_current
from control_plane.store._predictions import check_new_prediction_log
from control_plane.store._sql import SqlStore
from control_plane.store._validate import check_alias, check_attachments, check_name, check_version_metadata

__all__ = [
    "AbstractStore",
    "SqlStore",
    "check_alias",
    "check_attachments",
    "check_name",
    "check_new_dataset",
    "check_new_prediction_log",
    "check_version_metadata",
    "migrate",
    "schema_is_current",
]
