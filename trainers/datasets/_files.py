"""Reading data sets from files (CSV, Parquet, NDJSON, JSON) and storing them as Parquet."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import polars as pl

from trainers._errors import DatasetError, first_line
from trainers.datasets._cleaning import DEFAULT_NULL_VALUES, replace_null_values
from trainers.datasets._version import canonical

__all__ = ["check_frame", "conflicting_column", "read_file", "read_parquet", "write_parquet"]

_READERS = {
    ".csv": "CSV",
    ".parquet": "Parquet",
    ".ndjson": "NDJSON",
    ".jsonl": "NDJSON",
    ".json": "JSON",
}


def read_file(path: str | Path, *, null_values: Sequence[str] = DEFAULT_NULL_VALUES) -> pl.DataFrame:
    """Read a CSV, Parquet, NDJSON (``.ndjson``/``.jsonl``) or JSON (an array of records) file by its suffix.

    Every value of a column is read before its type is chosen, so a text value on row 10,000 makes the column text
    rather than an error. A text value equal to one of ``null_values`` is missing, in every format; in a CSV file
    that happens before types are chosen, so a column of numbers with ``NA`` gaps is numeric (an empty CSV field is
    always missing). The frame comes back with canonical dtypes (see ``canonical``): ISO dates and date-times are
    Date and Datetime whatever the format.

    Raises:
        DatasetError: no such file, unsupported suffix, unreadable or corrupt content, no rows or no columns, or a
            column whose values no single type can hold.
    """
    path = Path(path)
    kind = _READERS.get(path.suffix.lower())
    if kind is None:
        supported = ", ".join(sorted(_READERS))
        raise DatasetError(f"{path}: unsupported file type {path.suffix or '(none)'!r}; use one of {supported}")
    if not path.is_file():
        raise DatasetError(f"{path}: no such file")
    try:
        if kind == "CSV":
            frame = pl.read_csv(path, infer_schema_length=None, null_values=[v for v in null_values if v] or None)
        elif kind == "Parquet":
            frame = pl.read_parquet(path)
        elif kind == "NDJSON":
            frame = pl.read_ndjson(path, infer_schema_length=None)
        else:
            frame = pl.read_json(path, infer_schema_length=None)
    except (pl.exceptions.PolarsError, OSError, ValueError) as error:
        conflict = conflicting_column(*_json_records(path, kind)) if kind in ("NDJSON", "JSON") else None
        if conflict is not None:
            raise DatasetError(f"{path}: cannot infer a type: {conflict}") from None
        raise DatasetError(f"{path}: cannot read as {kind}: {first_line(error)}") from None
    return check_frame(frame, str(path), null_values=null_values)


def read_parquet(path: str | Path) -> pl.DataFrame:
    """Read a Parquet file written by ``write_parquet``."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path}: no such file")
    try:
        return pl.read_parquet(path)
    except (pl.exceptions.PolarsError, OSError) as error:
        raise DatasetError(f"{path}: cannot read as Parquet: {first_line(error)}") from None


def write_parquet(frame: pl.DataFrame, path: str | Path) -> Path:
    """Write ``frame`` to ``path`` as zstd-compressed Parquet; a reader never sees a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    frame.write_parquet(partial, compression="zstd", statistics=True)
    os.replace(partial, path)
    return path


def check_frame(frame: pl.DataFrame, source: str, *, null_values: Sequence[str] = ()) -> pl.DataFrame:
    """Refuse a frame without columns or rows; otherwise return it with ``null_values`` missing and canonical
    dtypes."""
    if frame.width == 0:
        raise DatasetError(f"{source}: no columns")
    if frame.height == 0:
        raise DatasetError(f"{source}: no rows (columns {', '.join(frame.columns)})")
    return canonical(replace_null_values(frame, null_values))


def conflicting_column(names: Sequence[str], rows: Iterable[Sequence[Any]]) -> str | None:
    """Describe the first column whose values mix kinds no single type holds (e.g. numbers and booleans).

    Numbers mixed with text are not a conflict: such a column is read as text, as a CSV reader would.
    """
    seen: dict[int, str] = {}
    for number, row in enumerate(rows, start=1):
        for index, value in enumerate(row):
            kind = _kind(value)
            if kind is None:
                continue
            first = seen.setdefault(index, kind)
            if first != kind and {first, kind} != {"number", "text"}:
                return f"column {names[index]!r} mixes {first} and {kind} values (first {kind} on row {number})"
    return None


def _kind(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, bytes | bytearray | memoryview):
        return "binary"
    if isinstance(value, list | tuple):
        return "list"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _json_records(path: Path, kind: str) -> tuple[list[str], list[list[Any]]]:
    try:
        if kind == "NDJSON":
            with path.open(encoding="utf-8") as lines:
                records = [json.loads(line) for line in lines if line.strip()]
        else:
            records = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, OSError):
        return [], []
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        return [], []
    names = list(dict.fromkeys(key for record in records for key in record))
    return names, [[record.get(name) for name in names] for record in records]
