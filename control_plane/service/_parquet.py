"""Parquet uploads (data sets, prediction logs) judged by their metadata before anything reads their rows.

A Parquet file's footer says how many rows it holds and how large its pages are before compression; reading that
costs a few kilobytes, where decoding the rows of a decompression bomb (a small file of zeros that compresses a
thousandfold, or run-length encoded values repeated a billion times) costs the memory of whoever reads it: a train
job, a drift report. So the footer is read, and a file that declares too many rows, or decodes to too many bytes,
or to too many times its own size, is refused with INVALID_ARGUMENT before it is stored.

The decoded size counted is the largest of what the row groups declare, what their column chunks declare before
compression, and what their values take at their types' widths (which run-length and dictionary encodings hide
from the first two).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from contract.errors import ConduitError, ErrorCode

__all__ = ["ParquetLimits", "check_parquet"]

MIB = 1024 * 1024
GIB = 1024 * MIB
_MAGIC = b"PAR1"
# Bytes one value takes at least once decoded, by physical type (a string: its 4-byte offset; its bytes are counted
# by the uncompressed sizes). FIXED_LEN_BYTE_ARRAY: its declared length.
_WIDTHS = {"BOOLEAN": 1, "INT32": 4, "INT64": 8, "INT96": 12, "FLOAT": 4, "DOUBLE": 8, "BYTE_ARRAY": 4}
_MAX_COLUMN_CHUNKS = 1_000_000
"""Most column chunks (row groups x columns) a footer may describe: each is metadata to walk through."""


@dataclass(frozen=True, slots=True)
class ParquetLimits:
    """What a Parquet upload may declare.

    Attributes:
        max_rows: Most rows.
        max_decoded_bytes: Most bytes decoded.
        max_expansion: Most times its own size a file may decode to, once it decodes to more than
            ``expansion_floor`` bytes (small files are mostly metadata and may expand freely).
        expansion_floor: See ``max_expansion``.
    """

    max_rows: int = 100_000_000
    max_decoded_bytes: int = 16 * GIB
    max_expansion: float = 100.0
    expansion_floor: int = 64 * MIB


def _invalid(message: str) -> ConduitError:
    return ConduitError(ErrorCode.INVALID_ARGUMENT, message)


def _has_magic(path: Path) -> bool:
    magic = len(_MAGIC)
    with path.open("rb") as file:
        file.seek(0, 2)
        if file.tell() < 2 * magic:
            return False
        file.seek(0)
        head = file.read(magic)
        file.seek(-magic, 2)
        return head == file.read(magic) == _MAGIC


def _metadata(path: Path, what: str) -> pq.FileMetaData:
    if not _has_magic(path):
        raise _invalid(f"the {what} is not a Parquet file")
    try:
        return pq.read_metadata(path)
    except (pa.ArrowException, OSError, ValueError):
        # pyarrow's message quotes the file's bytes and its own internals: the caller needs neither.
        raise _invalid(f"the {what} is not a readable Parquet file (its footer is damaged)") from None


def _decoded_bytes(metadata: pq.FileMetaData) -> int:
    """The largest of the row groups' declared sizes, their column chunks' uncompressed sizes, and their values at
    their types' widths."""
    schema = metadata.schema
    widths = [
        _WIDTHS.get(schema.column(i).physical_type) or max(1, schema.column(i).length or 1)
        for i in range(metadata.num_columns)
    ]
    declared = uncompressed = at_width = 0
    for index in range(metadata.num_row_groups):
        group = metadata.row_group(index)
        declared += max(0, group.total_byte_size)
        for column in range(group.num_columns):
            chunk = group.column(column)
            uncompressed += max(0, chunk.total_uncompressed_size)
            at_width += max(0, chunk.num_values) * widths[column]
    return max(declared, uncompressed, at_width)


def check_parquet(path: Path, what: str, limits: ParquetLimits) -> int:
    """Check the Parquet file at ``path`` (a ``what``: "data set", "prediction log") against ``limits`` from its
    metadata alone; returns its row count.

    Raises:
        ConduitError: INVALID_ARGUMENT for a file that is no Parquet file, whose footer cannot be read, or that
            declares more rows, decoded bytes or expansion than ``limits`` allow.
    """
    metadata = _metadata(path, what)
    if metadata.num_row_groups * metadata.num_columns > _MAX_COLUMN_CHUNKS:
        raise _invalid(
            f"the {what} has {metadata.num_row_groups} row groups of {metadata.num_columns} columns; at most "
            f"{_MAX_COLUMN_CHUNKS} column chunks"
        )
    rows: int = metadata.num_rows
    if rows < 0 or sum(metadata.row_group(i).num_rows for i in range(metadata.num_row_groups)) != rows:
        raise _invalid(f"the {what}'s Parquet metadata is inconsistent: its row groups do not add up to its rows")
    if rows > limits.max_rows:
        raise _invalid(f"the {what} holds {rows} rows; this control plane accepts at most {limits.max_rows}")
    decoded = _decoded_bytes(metadata)
    if decoded > limits.max_decoded_bytes:
        raise _invalid(
            f"the {what} decodes to {decoded} bytes; this control plane accepts at most {limits.max_decoded_bytes}"
        )
    size = path.stat().st_size
    if decoded > limits.expansion_floor and decoded > limits.max_expansion * size:
        raise _invalid(
            f"the {what} is {size} bytes but decodes to {decoded} ({decoded / size:.0f} times as many); this control "
            f"plane accepts at most {limits.max_expansion:g} times"
        )
    return rows
