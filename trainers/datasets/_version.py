"""Content versions: a hash of a data set's schema and values, the same whichever file or database it came from."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import polars as pl

from trainers.datasets._text import ISO_DATE

__all__ = ["canonical", "content_version"]

_VERSION_DIGITS = 16
# Changing how values are hashed changes every version: bump the tag with it.
_FORMAT = b"conduit-dataset-v1\0"


def canonical(frame: pl.DataFrame) -> pl.DataFrame:
    """``frame`` with the dtypes that depend on the source widened to one choice per kind of value.

    Integers become Int64 (UInt64 stays), floats Float64, categoricals String, datetimes microseconds (in UTC when
    they carry a time zone), and a text column whose every value is an ISO 8601 date (``2024-05-01``) or date-time
    (``2024-05-01 10:00:00``, ``2024-05-01T10:00:00.25+02:00``) becomes Date or Datetime: a Parquet file written
    with Int32 and timestamps and a CSV of the same rows then hold the same data set.
    """
    casts: dict[str, pl.DataType] = {}
    for name, dtype in frame.schema.items():
        if dtype.is_integer() and dtype != pl.UInt64:
            casts[name] = pl.Int64()
        elif dtype.is_float():
            casts[name] = pl.Float64()
        elif dtype == pl.Categorical or isinstance(dtype, pl.Enum):
            casts[name] = pl.String()
        elif isinstance(dtype, pl.Datetime):
            casts[name] = pl.Datetime("us", "UTC" if dtype.time_zone else None)
    changed = {name: dtype for name, dtype in casts.items() if frame.schema[name] != dtype}
    frame = frame.cast(changed) if changed else frame  # type: ignore[arg-type]
    texts = [frame[name] for name, dtype in frame.schema.items() if dtype == pl.String]
    dates = [parsed for parsed in map(_temporal, texts) if parsed is not None]
    return frame.with_columns(dates) if dates else frame


def _temporal(text: pl.Series) -> pl.Series | None:
    """``text`` as Date or Datetime(us) when every present value is one ISO 8601 form of it, else None."""
    present = text.drop_nulls()
    if not len(present) or not ISO_DATE.match(present[0]):
        return None  # the first value settles it cheaply for the many text columns that hold no dates
    if not bool(present.str.contains(ISO_DATE.pattern).all()):
        return None
    timed = bool(present.str.len_bytes().gt(10).any())
    try:
        # polars infers the format from the first value; strict refuses a column where any other value differs.
        if not timed:
            return text.str.to_date(format="%Y-%m-%d", strict=True)
        return text.str.to_datetime(time_unit="us", strict=True)
    except pl.exceptions.PolarsError:
        return None


def content_version(frame: pl.DataFrame) -> str:
    """A hex digest of the canonical schema and values, row order included.

    Deterministic across processes; it hashes values, not polars' row hashes (which may change between polars
    releases). Independent of the source format: the same rows and columns read from CSV, Parquet, NDJSON or SQL
    give the same version.
    """
    data = canonical(frame)
    digest = hashlib.sha256(_FORMAT)
    schema = [[name, str(dtype)] for name, dtype in data.schema.items()]
    digest.update(json.dumps({"rows": data.height, "schema": schema}).encode())
    for series in data.get_columns():
        digest.update(np.packbits(series.is_null().to_numpy()).tobytes())
        digest.update(_value_bytes(series))
    return digest.hexdigest()[:_VERSION_DIGITS]


def _value_bytes(series: pl.Series) -> bytes:
    dtype = series.dtype
    if dtype == pl.Boolean:
        return series.fill_null(False).to_numpy().astype(np.uint8).tobytes()
    if dtype.is_float():
        # Every NaN payload hashes as numpy's one NaN; nulls are in the mask, their slot holds zero.
        return series.fill_nan(np.nan).fill_null(0.0).to_numpy().astype("<f8").tobytes()
    if dtype.is_integer():
        return series.fill_null(0).to_numpy().astype("<u8" if dtype == pl.UInt64 else "<i8").tobytes()
    if dtype.is_temporal():
        return series.to_physical().fill_null(0).to_numpy().astype("<i8").tobytes()
    if dtype == pl.String:
        text = series.fill_null("")
        # Lengths first, so ["ab", "c"] and ["a", "bc"] differ.
        lengths = text.str.len_bytes().to_numpy().astype("<u8").tobytes()
        return lengths + str(text.str.join("").item()).encode()
    if dtype == pl.Binary:
        return _value_bytes(series.bin.encode("hex"))
    return pl.DataFrame([series]).write_ndjson().encode()
