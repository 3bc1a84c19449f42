"""The registry's storage: the abstract contract, its SQLAlchemy implementation and the schema migrations.

``record_audit`` adds an audit entry to a transaction opened on the registry's engine by a library that keeps its own
tables there (alerting), so the audit log has one writer.
"""

from control_plane.store._abstract import AbstractStore
from control_plane.store._audit import record_on as record_audit
from control_plane.store._datasets import check_new_dataset
from control_plane.store._migrate import migrate, schema_is_current
from control_plane.store._predictions import check_new_prediction_log
from control_plane.store._sql import SqlStore
from control_plane.store._validate import (
    check_alias,
    check_attachments,
    check_name,
    check_version_metadata,
    is_sha256,
    shown,
)

__all__ = [
    "AbstractStore",
    "SqlStore",
    "check_alias",
    "check_attachments",
    "check_name",
    "check_new_dataset",
    "check_new_prediction_log",
    "check_version_metadata",
    "is_sha256",
    "migrate",
    "record_audit",
    "schema_is_current",
    "shown",
]
