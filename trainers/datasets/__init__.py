"""Data sets: read from files, SQL, HTTP APIs or object storage with polars, versioned by content hash, profiled as
the drift baseline."""

from trainers._errors import DatasetError
from trainers.datasets._cleaning import (
    DEFAULT_NULL_VALUES,
    cast_columns,
    clean,
    column_listing,
    dtype_named,
    filter_rows,
    log_lost,
    replace_null_values,
    split_null_values,
)
from trainers.datasets._files import read_file, read_parquet, write_parquet
from trainers.datasets._http import Backoff
from trainers.datasets._profile import column_kind, profile
from trainers.datasets._remote import read_remote
from trainers.datasets._sql import read_sql, redact_url
from trainers.datasets._version import canonical, content_version

__all__ = [
    "DEFAULT_NULL_VALUES",
    "Backoff",
    "DatasetError",
    "canonical",
    "cast_columns",
    "clean",
    "column_kind",
    "column_listing",
    "content_version",
    "dtype_named",
    "filter_rows",
    "log_lost",
    "profile",
    "read_file",
    "read_parquet",
    "read_remote",
    "read_sql",
    "redact_url",
    "replace_null_values",
    "split_null_values",
    "write_parquet",
]
