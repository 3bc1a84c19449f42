"""Data set profiles in the registry: what a valid one is (``dataset_versions.profile`` holds
``DatasetProfile.to_json()``).

A profile is the drift baseline of every feature trained on the data set, so its shape is checked where it arrives:
bins that do not line up with their edges would make every later drift computation wrong.
"""

from __future__ import annotations

import math
from itertools import pairwise

from contract.entities import ColumnProfile, DatasetProfile
from contract.errors import ConduitError, ErrorCode
from control_plane.store._validate import MAX_VALUE

__all__ = ["KINDS", "check_profile"]

KINDS = frozenset({"numeric", "categorical", "boolean", "datetime", "other"})
MAX_COLUMNS = 10_000
MAX_BINS = 1000
MAX_CATEGORIES = 1000


def _invalid(message: str) -> ConduitError:
    return ConduitError(ErrorCode.INVALID_ARGUMENT, message)


def _check_column(column: ColumnProfile) -> None:
    where = f"profile column {column.name[:64]!r}"
    if len(column.name) > MAX_VALUE or len(column.dtype) > MAX_VALUE:
        raise _invalid(f"{where}: names and dtypes are at most {MAX_VALUE} characters")
    if column.kind not in KINDS:
        raise _invalid(f"{where}: kind {column.kind!r} is not one of {', '.join(sorted(KINDS))}")
    counts = (column.missing, column.distinct, column.other_count, *column.bin_counts)
    if min(counts) < 0 or any(category.count < 0 for category in column.top_categories):
        raise _invalid(f"{where}: counts must not be negative")
    if not 0.0 <= column.missing_rate <= 1.0:
        raise _invalid(f"{where}: missing_rate must be between 0 and 1, not {column.missing_rate}")
    if len(column.bin_counts) > MAX_BINS or len(column.top_categories) > MAX_CATEGORIES:
        raise _invalid(f"{where}: at most {MAX_BINS} bins and {MAX_CATEGORIES} categories")
    edges, bins = len(column.bin_edges), len(column.bin_counts)
    if (edges or bins) and (bins == 0 or edges != bins + 1):
        raise _invalid(
            f"{where}: {edges} bin edges for {bins} bins; bins need one edge more than there are bins, and one bin"
        )
    if any(math.isnan(edge) for edge in column.bin_edges) or any(b < a for a, b in pairwise(column.bin_edges)):
        raise _invalid(f"{where}: bin edges must be numbers in non-decreasing order")
    if len(column.other_categories) > MAX_CATEGORIES:
        raise _invalid(f"{where}: at most {MAX_CATEGORIES} other categories are listed")
    values = (*column.categories, *column.other_categories)
    if any(len(value) > MAX_VALUE for value in values):
        raise _invalid(f"{where}: category values are at most {MAX_VALUE} characters")


def check_profile(profile: DatasetProfile) -> None:
    """Raises INVALID_ARGUMENT for a profile no drift computation could use."""
    if profile.rows < 0:
        raise _invalid("the profile's row count must not be negative")
    if len(profile.columns) > MAX_COLUMNS:
        raise _invalid(f"a profile has at most {MAX_COLUMNS} columns")
    names: set[str] = set()
    for column in profile.columns:
        _check_column(column)
        if column.name in names:
            raise _invalid(f"profile column {column.name[:64]!r} is given twice")
        names.add(column.name)
