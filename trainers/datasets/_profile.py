"""Profiling a data set: per-column types, missing rates, quantile bins and top categories (the drift baseline).

The profile itself, its binning rule and its JSON form are ``contract.entities.DatasetProfile``'s.

A numeric column of whole numbers with at most ``TOP_CATEGORIES`` distinct values (a class column stored as
integers, a count, a rating) also gets exact value counts in ``top_categories`` (values written as integers, ``"0"``,
``"1"``): quantile bins merge such values, and a drift check of a model's predicted classes needs them apart.

Numeric values are binned as float32, here and in the inference servers: models take FP32 inputs, and a training
value equal to a quantile edge (most are, on data with few distinct values, like measurements to one decimal) must
land in the bin it was counted in once served. Binned as float64 against a float64 edge of 17.3, a served
``float32(17.3)`` = 17.3000002 falls one bin up, and the window looks drifted on the training data itself. So the
edges are the quantiles of the float32-cast values rounded to float32 (exact in float64 and JSON), and the counts are
those of the float32-cast values; a server counts ``float32(value)`` against the same edges and gets the same bin.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from contract.entities import LISTED_CATEGORIES, CategoryCount, ColumnProfile, DatasetProfile

__all__ = ["column_kind", "profile"]

DEFAULT_BINS = 10
TOP_CATEGORIES = 20


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
    others: tuple[str, ...] = ()
    if (kind in ("categorical", "boolean") and len(present)) or _few_whole_numbers(present, kind):
        texts = present.cast(pl.Int64).cast(pl.String) if kind == "numeric" else present.cast(pl.String)
        count = "count" if texts.name != "count" else "rows"
        # Ties in count are broken by value, so the same data always gives the same list.
        counted = texts.value_counts(name=count).sort([count, texts.name], descending=[True, False])
        top = tuple(CategoryCount(str(v), int(c)) for v, c in counted.head(TOP_CATEGORIES).iter_rows())
        other = len(present) - sum(c.count for c in top)
        # The rest by name, so that monitoring can tell a value the training data never had from a rare one.
        rest = counted[texts.name].slice(TOP_CATEGORIES)
        # Past LISTED_CATEGORIES of them, none is listed (unseen values are then unknown).
        if 0 < len(rest) <= LISTED_CATEGORIES:
            others = tuple(sorted(str(value) for value in rest.to_list()))
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
        other_categories=others,
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
    """Edges and counts of ``bins`` quantile bins (fewer when edges coincide) of ``values`` as float32 (see above)."""
    # Beyond float32's range a value is +-inf once served, counted in the outer bin: clipping to the largest float32
    # keeps the edges finite and counts it there too.
    largest = float(np.finfo(np.float32).max)
    single = np.clip(values, -largest, largest).astype(np.float32).astype(np.float64)
    quantiles = np.quantile(single, np.linspace(0.0, 1.0, bins + 1)).astype(np.float32)
    edges = np.unique(quantiles).astype(np.float64)
    if len(edges) == 1:
        return (float(edges[0]), float(edges[0])), (len(values),)
    # Every edge and value is a float32, so comparing them in float64 is exact, as the servers' kernel compares them.
    index = np.clip(np.searchsorted(edges, single, side="left") - 1, 0, len(edges) - 2)
    counts = np.bincount(index, minlength=len(edges) - 1)
    return tuple(float(e) for e in edges), tuple(int(c) for c in counts)
