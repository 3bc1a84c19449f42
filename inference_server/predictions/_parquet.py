"""Sampled requests to Parquet: one table per model version, one row per request row.

Columns: ``time`` (UTC, microseconds; when the request was answered), ``model``, ``version``, ``request_id``, then
each input and each output by name. A tensor whose dimensions after the batch are all 1 (``[batch, 1]``,
``[batch]``) is a scalar column; any other a list column of the row's values, flattened in row-major order. BYTES
are strings. The kind of a column follows the model's signature, not the values seen, so every file of a version
has the same schema and files concatenate. A name already taken by an earlier column gets ``_output`` (``_input``)
appended.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import polars as pl

from contract.entities import NewPredictionLog, TensorSignature
from inference_server.predictions._sampler import Sample

__all__ = ["PARTIAL_PREFIX", "LogFile", "by_version", "describe", "frame", "frames", "write_parquet"]

PARTIAL_PREFIX = ".partial-"

_FIXED = ("time", "model", "version", "request_id")
_POLARS = {
    "BOOL": pl.Boolean,
    "UINT8": pl.UInt8,
    "UINT16": pl.UInt16,
    "UINT32": pl.UInt32,
    "UINT64": pl.UInt64,
    "INT8": pl.Int8,
    "INT16": pl.Int16,
    "INT32": pl.Int32,
    "INT64": pl.Int64,
    # Parquet and polars have no half floats.
    "FP16": pl.Float32,
    "FP32": pl.Float32,
    "FP64": pl.Float64,
    "BYTES": pl.String,
}


@dataclass(frozen=True, slots=True)
class LogFile:
    """A written Parquet file and what an upload announces about it."""

    path: Path
    model: str
    version: str
    first_at: datetime
    last_at: datetime
    rows: int
    sha256: str
    size_bytes: int

    def announced(self, server: str) -> NewPredictionLog:
        """What an upload of this file by ``server`` (its instance name) announces."""
        return NewPredictionLog(
            model=self.model,
            version=int(self.version),
            first_at=self.first_at,
            last_at=self.last_at,
            rows=self.rows,
            sha256=self.sha256,
            size_bytes=self.size_bytes,
            server=server,
        )


def _text(value: object) -> str:
    return value.decode("utf-8", errors="replace") if isinstance(value, bytes) else str(value)


def _column(name: str, spec: TensorSignature, arrays: Sequence[np.ndarray], rows: Sequence[int]) -> pl.Series:
    dtype = _POLARS.get(spec.datatype, pl.String)
    per_row = [array.reshape(count, -1) for array, count in zip(arrays, rows, strict=True)]
    scalar = all(d == 1 for d in spec.shape)
    if spec.datatype == "BYTES":
        if scalar:
            return pl.Series(name, [_text(v) for a in per_row for v in a[:, 0]], dtype=pl.String)
        values = [[_text(v) for v in row] for a in per_row for row in a]
        return pl.Series(name, values, dtype=pl.List(pl.String))
    if scalar:
        return pl.Series(name, np.concatenate([a[:, 0] for a in per_row])).cast(dtype)
    if len({a.shape[1] for a in per_row}) == 1:
        return pl.Series(name, np.concatenate(per_row)).cast(pl.List(dtype))
    # Variable dimensions of different sizes: one list per row.
    return pl.Series(name, [row.tolist() for a in per_row for row in a], dtype=pl.List(dtype))


def frame(samples: Sequence[Sample]) -> pl.DataFrame:
    """The table of ``samples`` of one model version, rows in the order they were sampled."""
    spec = samples[0].spec
    rows = [s.rows for s in samples]
    micros = np.repeat(np.array([s.time_ns // 1000 for s in samples], dtype=np.int64), rows)
    columns = [
        pl.Series("time", micros).cast(pl.Datetime("us", "UTC")),
        pl.Series("model", [spec.name] * len(micros), dtype=pl.String),
        pl.Series("version", [spec.version] * len(micros), dtype=pl.String),
        pl.Series("request_id", np.repeat(np.array([s.request_id for s in samples], dtype=object), rows).tolist()),
    ]
    taken = set(_FIXED)
    for kind, specs in (("input", spec.inputs), ("output", spec.outputs)):
        for position, tensor in enumerate(specs):
            name = tensor.name if tensor.name not in taken else f"{tensor.name}_{kind}"
            taken.add(name)
            arrays = [(s.inputs if kind == "input" else s.outputs)[position] for s in samples]
            columns.append(_column(name, tensor, arrays, rows))
    return pl.DataFrame(columns)


def by_version(samples: Sequence[Sample]) -> list[list[Sample]]:
    """``samples`` grouped by model version, each group in the order sampled."""
    groups: dict[tuple[str, str], list[Sample]] = {}
    for sample in samples:
        groups.setdefault((sample.spec.name, sample.spec.version), []).append(sample)
    return list(groups.values())


def frames(samples: Sequence[Sample]) -> list[pl.DataFrame]:
    """One table per model version among ``samples``, rows in the order they were sampled."""
    return [frame(group) for group in by_version(samples)]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        while chunk := file.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def describe(path: Path) -> LogFile:
    """What a prediction log file holds, read back from the file (its time span, rows, version, digest)."""
    table = pl.read_parquet(path, columns=["time", "model", "version"])
    if table.height == 0:
        raise ValueError(f"{path}: no rows")
    times = table["time"]
    first, last = times.min(), times.max()
    assert isinstance(first, datetime) and isinstance(last, datetime)
    return LogFile(
        path=path,
        model=str(table["model"][0]),
        version=str(table["version"][0]),
        first_at=first.astimezone(UTC),
        last_at=last.astimezone(UTC),
        rows=table.height,
        sha256=_sha256(path),
        size_bytes=path.stat().st_size,
    )


def write_parquet(frame: pl.DataFrame, directory: Path, name: str, *, partial_prefix: str = PARTIAL_PREFIX) -> LogFile:
    """Write ``frame`` to ``directory/name`` (a ``{sha256}`` in ``name`` is replaced by the file's digest), whole or
    not at all: a reader never sees a partial file. ``partial_prefix`` (starting with ``PARTIAL_PREFIX``) names the
    file while it is written."""
    directory.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(prefix=partial_prefix, suffix=".parquet", dir=directory)
    os.close(descriptor)
    partial = Path(temporary)
    try:
        frame.write_parquet(partial, compression="zstd")
        digest = _sha256(partial)
        final = directory / name.replace("{sha256}", digest)
        partial.replace(final)
    finally:
        partial.unlink(missing_ok=True)
    return describe(final)
