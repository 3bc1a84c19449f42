"""Text to typed values: the conversions polars' ``cast`` does not do (dates, date-times, booleans from text)."""

from __future__ import annotations

import re

import polars as pl

__all__ = ["ISO_DATE", "text_to"]

# A date, then optionally a time with seconds, fractions and a zone: the forms CSV, JSON and SQLite give dates.
ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})?)?$")
_BOOLEANS = {"true": True, "false": False}


def text_to(text: pl.Series, dtype: pl.DataType) -> pl.Series:
    """``text`` as ``dtype``, a value that does not parse missing; polars' cast where it converts text itself.

    Dates and date-times take the format of the first ISO 8601 value (of the first value when none is), as polars
    infers it; booleans are ``true``/``false`` in any case (R writes ``TRUE``).
    """
    if isinstance(dtype, pl.Date | pl.Datetime):
        present = text.drop_nulls()
        iso = present.filter(present.str.contains(ISO_DATE.pattern))
        sample = (iso if len(iso) else present).head(1)
        # polars infers the format from the first value: put the one to infer from first, then drop it again.
        padded = pl.concat([sample, text])
        if isinstance(dtype, pl.Date):
            parsed = padded.str.to_date(strict=False)
        else:
            parsed = padded.str.to_datetime(time_unit=dtype.time_unit or "us", time_zone=dtype.time_zone, strict=False)
        return parsed.slice(len(sample)).alias(text.name)
    if dtype == pl.Boolean:
        return text.str.to_lowercase().replace_strict(_BOOLEANS, default=None, return_dtype=pl.Boolean)
    return text.cast(dtype, strict=False)
