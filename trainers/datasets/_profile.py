"""A data set's profile: per-column types, missing rates, quantile bins and top categories (the drift baseline).

Binning rule, shared with the monitoring code: ``bin_edges`` ``e0 < e1 < … < ek`` define ``k`` bins; the first is
closed on both sides, ``[e0, e1]``, every later one is ``(e[i], e[i+1]]``. A value ``v`` falls in bin
``max(searchsorted(edges, v, side="left") - 1, 0)`` when ``e0 <= v <= ek``; values outside the edges are outside every
bin. A column with a single distinct value has the edges ``(v, v)`` and one bin.

A numeric column of whole numbers with at most ``TOP_CATEGORIES`` distinct values (a class column stored as
integers, a count, a rating) also gets exact value counts in ``top_categories`` (values written as integers, ``"0"``,
``"1"``): quantile bins merge such values, and a drift check of a model's predicted classes needs them apart.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

__all__ = ["CategoryCount", "ColumnProfile", "DatasetProfile", "column_kind", "profile"]

DEFAULT_BINS = 10
TOP_CATEGORIES = 20


@dataclass(frozen=True)
class CategoryCount:
    """One category value (as text) and how many rows hold it."""

    value: str
    count: int


@dataclass(frozen=True)
class ColumnProfile:
    """One column's statistics; numeric fields are 0.0 and bins empty when the column is not numeric."""

    name: str
    dtype: str
    kind: str
    missing: int
    missing_rate: float
    bin_edges: tuple[float, ...]
    bin_counts: tuple[int, ...]
    min: float
    max: float
    mean: float
    std: float
    distinct: int
    top_categories: tuple[CategoryCount, ...]
    other_count: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "dtype": self.dtype,
            "kind": self.kind,
            "missing": self.missing,
            "missing_rate": self.missing_rate,
            "bin_edges": list(self.bin_edges),
            "bin_counts": list(self.bin_counts),
            "min": self.min,
            "max": self.max,
            "mean": self.mean,
            "std": self.std,
            "distinct": self.distinct,
            "top_categories": [{"value": c.value, "count": c.count} for c in self.top_categories],
            "other_count": self.other_count,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ColumnProfile:
        return cls(
            name=str(data["name"]),
            dtype=str(data["dtype"]),
            kind=str(data["kind"]),
            missing=int(data["missing"]),
            missing_rate=float(data["missing_rate"]),
            bin_edges=tuple(float(e) for e in data["bin_edges"]),
            bin_counts=tuple(int(c) for c in data["bin_counts"]),
            min=float(data["min"]),
            max=float(data["max"]),
            mean=float(data["mean"]),
            std=float(data["std"]),
            distinct=int(data["distinct"]),
            top_categories=tuple(CategoryCount(str(c["value"]), int(c["count"])) for c in data["top_categories"]),
            other_count=int(data["other_count"]),
        )


@dataclass(frozen=True)
class DatasetProfile:
    """Row count and one ``ColumnProfile`` per column, in the data set's column order."""

    rows: int
    columns: tuple[ColumnProfile, ...]

    def column(self, name: str) -> ColumnProfile:
        """The profile of column ``name``; ``KeyError`` when there is none."""
        for column in self.columns:
            if column.name == name:
                return column
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict (lists for tuples)."""
        return {"rows": self.rows, "columns": [c.to_dict() for c in self.columns]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DatasetProfile:
        return cls(rows=int(data["rows"]), columns=tuple(ColumnProfile.from_dict(c) for c in data["columns"]))


def column_kind(dtype: pl.DataType) -> str:
    """``numeric``, ``categorical``, ``boolean``, ``datetime`` or ``other`` for a polars dtype."""
    if dtype == pl.Boolean:
        return "boolean"
    if dtype.is_numeric():  # integers, floats and decimals
        return "numeric"
    if dtype in (pl.String, pl.Categorical) or isinstance(dtype, pl.Enum):
        return "categorical"
    if dtype.is_temporal():
        return "datetime"
    return "other"


def profile(frame: pl.DataFrame, *, bins: int = DEFAULT_BINS) -> DatasetProfile:
    """Profile every column of ``frame``; numeric columns get ``bins`` quantile bins (fewer when edges coincide)."""
    return DatasetProfile(rows=frame.height, columns=tuple(_column(frame[name], bins) for name in frame.columns))


def _column(series: pl.Series, bins: int) -> ColumnProfile:
    kind = column_kind(series.dtype)
    missing = series.null_count()
    if series.dtype.is_float():
        missing += int(series.is_nan().sum())
    present = series.drop_nulls()
    if series.dtype.is_float():
        present = present.filter(~present.is_nan())
    edges: tuple[float, ...] = ()
    counts: tuple[int, ...] = ()
    low = high = mean = std = 0.0
    if kind == "numeric" and len(present):
        values = present.cast(pl.Float64).to_numpy()
        edges, counts = _quantile_bins(values, bins)
        low, high, mean = float(values.min()), float(values.max()), float(values.mean())
        std = float(values.std(ddof=1)) if len(values) > 1 else 0.0
    top: tuple[CategoryCount, ...] = ()
    other = 0
    if (kind in ("categorical", "boolean") and len(present)) or _few_whole_numbers(present, kind):
        texts = present.cast(pl.Int64).cast(pl.String) if kind == "numeric" else present.cast(pl.String)
        count = "count" if texts.name != "count" else "rows"
        # Ties in count are broken by value, so the same data always gives the same list.
        counted = texts.value_counts(name=count).sort([count, texts.name], descending=[True, False])
        top = tuple(CategoryCount(str(v), int(c)) for v, c in counted.head(TOP_CATEGORIES).iter_rows())
        other = len(present) - sum(c.count for c in top)
    return ColumnProfile(
        name=series.name,
        dtype=str(series.dtype),
        kind=kind,
        missing=missing,
        missing_rate=missing / len(series) if len(series) else 0.0,
        bin_edges=edges,
        bin_counts=counts,
        min=low,
        max=high,
        mean=mean,
        std=std,
        distinct=present.n_unique(),
        top_categories=top,
        other_count=other,
    )


def _few_whole_numbers(present: pl.Series, kind: str) -> bool:
    """Whether a column's present values are whole numbers with at most ``TOP_CATEGORIES`` distinct values."""
    if kind != "numeric" or not len(present) or present.n_unique() > TOP_CATEGORIES:
        return False
    if present.dtype.is_integer():
        return True
    values = present.cast(pl.Float64)
    return bool((values == values.round()).all()) and float(values.abs().max()) < 2.0**53  # type: ignore[arg-type]


def _quantile_bins(values: np.ndarray, bins: int) -> tuple[tuple[float, ...], tuple[int, ...]]:
    edges = np.unique(np.quantile(values, np.linspace(0.0, 1.0, bins + 1)))
    if len(edges) == 1:
        return (float(edges[0]), float(edges[0])), (len(values),)
    index = np.maximum(np.searchsorted(edges, values, side="left") - 1, 0)
    counts = np.bincount(index, minlength=len(edges) - 1)
    return tuple(float(e) for e in edges), tuple(int(c) for c in counts)
