"""Cleaning a frame once it is read, whatever its source: null markers, casts (strict or not) and a row filter.

One home for these steps: ``conduit datasets import`` applies them to the rows it reads, and a training spec's
``[cleaning]`` section to the data set version it trains on. A filter is a spec expression, checked against the
allow-list of ``trainers.expressions`` like a derived column.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence

import polars as pl

from trainers._errors import DatasetError, first_line
from trainers.datasets._text import text_to
from trainers.expressions import ExpressionError, sql_expression

__all__ = [
    "DEFAULT_NULL_VALUES",
    "cast_columns",
    "clean",
    "column_listing",
    "dtype_named",
    "filter_rows",
    "log_lost",
    "replace_null_values",
    "split_null_values",
]

# R writes NA, spreadsheets N/A, database dumps NULL/null; an empty CSV field is missing whatever the list. NaN is
# left out on purpose: it is a float value in every format (and counts as missing in profiles), so turning it into
# null in CSV alone would give a CSV and its Parquet twin different versions.
DEFAULT_NULL_VALUES: tuple[str, ...] = ("NA", "N/A", "NULL", "null")

# Short names for the dtypes a cleaning step usually wants; any polars dtype name (Float32, UInt8, …) works too.
_ALIASES: dict[str, pl.DataType] = {
    "int": pl.Int64(),
    "integer": pl.Int64(),
    "float": pl.Float64(),
    "str": pl.String(),
    "string": pl.String(),
    "bool": pl.Boolean(),
    "boolean": pl.Boolean(),
    "date": pl.Date(),
    "datetime": pl.Datetime("us"),
}
_EXAMPLES = 3


def split_null_values(items: Iterable[str]) -> tuple[str, ...]:
    """Null markers from repeated options and comma lists (``NA,N/A``), in order, each once."""
    return tuple(dict.fromkeys(part.strip() for item in items for part in item.split(",")))


def replace_null_values(frame: pl.DataFrame, values: Sequence[str]) -> pl.DataFrame:
    """``frame`` with every text value equal to one of ``values`` (exactly, case included) made missing."""
    markers = [value for value in values if value]
    texts = [name for name, dtype in frame.schema.items() if dtype == pl.String]
    if not markers or not texts:
        return frame
    return frame.with_columns(
        pl.when(pl.col(name).is_in(markers)).then(None).otherwise(pl.col(name)).alias(name) for name in texts
    )


def dtype_named(name: str, column: str) -> pl.DataType:
    """The dtype called ``name``: ``int``, ``float``, ``string``, ``bool``, ``date``, ``datetime`` or a polars name.

    Raises:
        ValueError: no such dtype (the message names ``column``).
    """
    alias = _ALIASES.get(name.lower())
    if alias is not None:
        return alias
    dtype = getattr(pl, name, None)
    if isinstance(dtype, type) and issubclass(dtype, pl.DataType) and name[:1].isupper():
        try:
            return dtype()
        except TypeError:  # List, Array, Struct, Enum: they need more than a name
            pass
    raise ValueError(
        f"cast of {column!r}: {name!r} is not a type (int, float, string, bool, date, datetime or a polars dtype "
        "such as Float32)"
    )


def cast_columns(frame: pl.DataFrame, casts: Mapping[str, str], *, strict: bool) -> tuple[pl.DataFrame, dict[str, int]]:
    """Cast each named column to its dtype (see ``dtype_named``).

    Strict casts refuse a value that does not parse; the others make it missing. Returns the frame and, per
    column, how many present values became missing.

    Raises:
        DatasetError: an unknown column or dtype, a cast polars cannot do, or (strict) a value that does not parse,
            with up to three examples.
    """
    lost: dict[str, int] = {}
    for name, dtype_name in casts.items():
        if name not in frame.columns:
            raise DatasetError(f"no column {name!r} in the data set ({column_listing(frame)})")
        try:
            dtype = dtype_named(dtype_name, name)
        except ValueError as error:
            raise DatasetError(str(error)) from None
        source = frame[name]
        try:
            # A non-strict cast tells which values fail without raising; a strict one then only reports them.
            cast = text_to(source, dtype) if source.dtype == pl.String else source.cast(dtype, strict=False)
        except pl.exceptions.PolarsError as error:
            raise DatasetError(f"cannot cast {name!r} to {dtype_name}: {first_line(error)}") from None
        failed = cast.is_null() & source.is_not_null()
        if source.dtype.is_float() and dtype.is_integer():
            # polars truncates 3.7 to 3 even when strict: a fraction does not parse as an integer here.
            fraction = source.is_not_nan() & (source != source.floor())
            failed |= fraction.fill_null(False)
            cast = pl.select(pl.when(fraction).then(None).otherwise(cast)).to_series().alias(name)
        count = int(failed.sum())
        if count and strict:
            examples = ", ".join(repr(v) for v in source.filter(failed).unique(maintain_order=True).head(_EXAMPLES))
            raise DatasetError(
                f"cannot cast {name!r} to {dtype_name}: {count} value(s) do not parse ({examples}); "
                "a try-cast makes them missing instead"
            )
        lost[name] = count
        frame = frame.with_columns(cast)
    return frame, lost


def filter_rows(frame: pl.DataFrame, expression: str) -> pl.DataFrame:
    """The rows of ``frame`` where the SQL condition ``expression`` is true (false and missing drop the row).

    Raises:
        DatasetError: the expression does not parse, holds a construct outside the allow-list, names a column the
            frame lacks, is not a true/false condition, or fails on the data.
    """
    try:
        condition = sql_expression(expression)
    except ExpressionError as error:
        raise DatasetError(f"filter {expression!r}: {error.message}") from None
    unknown = [name for name in condition.meta.root_names() if name not in frame.columns]
    if unknown:
        raise DatasetError(f"filter {expression!r}: no column {unknown[0]!r} in the data set ({column_listing(frame)})")
    try:
        dtype = frame.lazy().select(condition.alias("keep")).collect_schema()["keep"]
        if dtype != pl.Boolean:
            raise DatasetError(f"filter {expression!r} gives {dtype} values, not true/false")
        return frame.filter(condition)
    except pl.exceptions.PolarsError as error:
        raise DatasetError(f"filter {expression!r}: {first_line(error)}") from None


def clean(
    frame: pl.DataFrame,
    *,
    casts: Mapping[str, str] | None = None,
    try_casts: Mapping[str, str] | None = None,
    filter: str | None = None,
    log: Callable[[str], None] = lambda line: None,
) -> pl.DataFrame:
    """Strict casts, then non-strict casts, then the row filter; one ``log`` line per step that changed something.

    Raises:
        DatasetError: as ``cast_columns`` (prefixed ``cast:`` or ``try-cast:``) and ``filter_rows``.
    """
    for step, mapping, strict in (("cast", casts or {}, True), ("try-cast", try_casts or {}, False)):
        try:
            frame, lost = cast_columns(frame, mapping, strict=strict)
        except DatasetError as error:
            raise DatasetError(f"{step}: {error.message}") from None
        log_lost(lost, mapping, log)
    if filter:
        before = frame.height
        frame = filter_rows(frame, filter)
        log(f"cleaning: the filter kept {frame.height} of {before} rows")
    return frame


def log_lost(lost: Mapping[str, int], casts: Mapping[str, str], log: Callable[[str], None]) -> None:
    """One line for the values non-strict casts made missing (none when every value parsed)."""
    parts = [f"{count} in {name!r} (not {casts[name]})" for name, count in lost.items() if count]
    if parts:
        log(f"cleaning: values that did not parse became missing: {', '.join(parts)}")


def column_listing(frame: pl.DataFrame, shown: int = 12) -> str:
    """``columns: a, b, … N more`` for messages."""
    names = frame.columns[:shown]
    more = f", … {frame.width - shown} more" if frame.width > shown else ""
    return "columns: " + ", ".join(names) + more
