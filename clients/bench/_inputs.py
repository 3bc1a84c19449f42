"""The requests a run sends: shaped from the server's ModelMetadata, filled with random data or rows from a file.

Requests are serialized once, before the clock starts; the load loops send the same bytes over and over, so the
client's per-request cost is gRPC's, not protobuf's.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc
import numpy as np
from numpy.typing import NDArray

from clients._codec import encode_infer_request
from contract.datatypes import DATATYPES, numpy_dtype
from contract.entities import TensorSignature
from contract.errors import ConduitError
from inference_server.protocol import grpc_service_pb2 as pb
from inference_server.protocol import grpc_service_pb2_grpc as pb_grpc

if TYPE_CHECKING:
    import polars as pl

__all__ = ["InputError", "build_requests", "fetch_inputs", "with_id"]

# Distinct requests prepared per run; the load cycles through them.
DISTINCT_REQUESTS = 256


class InputError(ValueError):
    """The model's inputs cannot be filled as asked: a dynamic dimension without a size, a file that does not fit."""


async def fetch_inputs(
    channel: grpc.aio.Channel, model: str, version: str, metadata: tuple[tuple[str, str], ...], timeout_s: float
) -> list[TensorSignature]:
    """Ask the server for the model's inputs.

    Raises:
        grpc.aio.AioRpcError: the server refused (unknown model, not ready, …).
        InputError: a datatype this client cannot generate.
    """
    answer = await pb_grpc.GRPCInferenceServiceStub(channel).ModelMetadata(
        pb.ModelMetadataRequest(name=model, version=version), timeout=timeout_s, metadata=metadata or None
    )
    specs = [TensorSignature(t.name, t.datatype, tuple(int(d) for d in t.shape)) for t in answer.inputs]
    for spec in specs:
        if spec.datatype not in DATATYPES:
            raise InputError(f"input {spec.name!r} has datatype {spec.datatype}, which this client cannot generate")
    if not specs:
        raise InputError(f"model {model!r} declares no inputs")
    return specs


def _row_shape(spec: TensorSignature, shapes: dict[str, tuple[int, ...]], batch: int) -> tuple[int, ...]:
    """The shape of one request's tensor without its batch dimension (or all of it, for a model that does not batch)."""
    dims = spec.shape[1:] if spec.batched else spec.shape
    if spec.name in shapes:
        given = shapes[spec.name]
        if len(given) != len(dims) or any(d not in (-1, g) for d, g in zip(dims, given, strict=True)):
            raise InputError(f"--shape {spec.name}:{','.join(map(str, given))} does not fit the model's {list(dims)}")
        dims = given
    if any(d < 0 for d in dims):
        raise InputError(
            f"input {spec.name!r} has dynamic dimensions {list(spec.shape)}: give their sizes with "
            f"--shape {spec.name}:D1,D2 (without the batch dimension)"
        )
    if not spec.batched and batch != 1:
        raise InputError(f"input {spec.name!r} has a fixed first dimension {list(spec.shape)}: --batch must be 1")
    return dims


def _random(spec: TensorSignature, shape: tuple[int, ...], rng: np.random.Generator) -> NDArray[Any]:
    dtype = numpy_dtype(spec.datatype)
    if spec.datatype == "BYTES":
        letters = rng.integers(ord("a"), ord("z") + 1, size=(*shape, 8), dtype=np.uint8)
        return np.array([bytes(word) for word in letters.reshape(-1, 8)], dtype=object).reshape(shape)
    if spec.datatype == "BOOL":
        return rng.integers(0, 2, size=shape).astype(np.bool_)
    if dtype.kind == "f":
        return rng.standard_normal(size=shape).astype(dtype)
    return rng.integers(0, 100, size=shape).astype(dtype)


def _read_rows(path: Path, specs: list[TensorSignature]) -> dict[str, list[NDArray[Any]]]:
    """Rows per input from a file: perf_analyzer's ``--input-data`` JSON, a CSV or Parquet table (see
    ``_table_rows``), or a .npy array for a one-input model."""
    import polars as pl

    suffix = path.suffix.lower()
    try:
        if suffix == ".json":
            return _read_json(path, specs)
        if suffix in (".csv", ".parquet"):
            frame = pl.read_csv(path) if suffix == ".csv" else pl.read_parquet(path)
            return _table_rows(path.name, frame, specs)
        if len(specs) != 1:
            raise InputError(f"{path.name}: a .npy file feeds a one-input model; use CSV, Parquet or JSON for several")
        if suffix != ".npy":
            raise InputError(f"{path.name}: expected a .json, .csv, .parquet or .npy file")
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError, KeyError, TypeError, pl.exceptions.PolarsError) as exc:
        if isinstance(exc, InputError):
            raise
        raise InputError(f"cannot read {path}: {exc}") from exc
    return {specs[0].name: _rows_of(path.name, array)}


def _rows_of(name: str, array: NDArray[Any]) -> list[NDArray[Any]]:
    if array.ndim == 0 or len(array) == 0:
        raise InputError(f"{name} holds no rows")
    return list(array)


def _table_rows(name: str, frame: pl.DataFrame, specs: list[TensorSignature]) -> dict[str, list[NDArray[Any]]]:
    """Rows per input from a table.

    Each column feeds the input of the same name (a model trained by Conduit takes one input per feature column),
    cast to that input's datatype. A one-input model fed a table with no column of its input's name takes each row
    of the table as one row of its input (a single column, or the features of a ``[batch, n]`` input).
    """
    names = [spec.name for spec in specs]
    if len(specs) == 1 and names[0] not in frame.columns:
        return {names[0]: _rows_of(name, frame.to_numpy())}
    for column in frame.columns:
        if column not in names:
            raise InputError(
                f"{name}: column {column!r} matches no input of the model (its inputs: {', '.join(names)})"
            )
    for spec in specs:
        if spec.name not in frame.columns:
            raise InputError(
                f"{name}: no column for the model's input {spec.name!r} (the file has {', '.join(frame.columns)})"
            )
    if frame.height == 0:
        raise InputError(f"{name} holds no rows")
    return {spec.name: list(_column(name, frame[spec.name], spec)) for spec in specs}


def _column(name: str, column: pl.Series, spec: TensorSignature) -> NDArray[Any]:
    """``column`` as the values of input ``spec``, or an ``InputError`` saying why it cannot be."""
    import polars as pl

    dtype = numpy_dtype(spec.datatype)
    missing = column.null_count()
    if missing and dtype.kind == "f" and column.dtype.is_numeric():
        # A missing number travels as NaN, as a model trained by Conduit receives it (its imputer is in the graph).
        column = column.cast(pl.Float64).fill_null(float("nan"))
    elif missing and spec.datatype == "BYTES":
        # A CSV cannot tell an empty text from a missing one: both are the empty string (Conduit's trainers send a
        # missing category so, too).
        column = column.cast(pl.String).fill_null("")
    elif missing:
        raise InputError(
            f"{name}: column {column.name!r} has {missing} missing values, which input {spec.name!r} "
            f"({spec.datatype}) cannot hold"
        )
    if spec.datatype == "BYTES":
        return np.array([str(value) for value in column.to_list()], dtype=object)
    if not (column.dtype.is_numeric() or column.dtype == pl.Boolean):
        raise InputError(
            f"{name}: column {column.name!r} holds {column.dtype}; input {spec.name!r} takes {spec.datatype}"
        )
    return column.to_numpy().astype(dtype)


def _read_json(path: Path, specs: list[TensorSignature]) -> dict[str, list[NDArray[Any]]]:
    document = json.loads(path.read_text())
    entries = document.get("data") if isinstance(document, dict) else None
    if not isinstance(entries, list) or not entries:
        raise InputError(f'{path.name}: expected {{"data": [{{"<input>": [...]}}, ...]}} (perf_analyzer format)')
    rows: dict[str, list[NDArray[Any]]] = {spec.name: [] for spec in specs}
    for number, entry in enumerate(entries):
        for spec in specs:
            if not isinstance(entry, dict) or spec.name not in entry:
                raise InputError(f"{path.name}: entry {number} has no input {spec.name!r}")
            value = entry[spec.name]
            if isinstance(value, dict):  # {"content": [...], "shape": [...]}
                value = np.asarray(value["content"]).reshape(value["shape"])
            rows[spec.name].append(np.asarray(value))
    return rows


def build_requests(
    model: str,
    version: str,
    specs: list[TensorSignature],
    *,
    batch: int,
    shapes: dict[str, tuple[int, ...]],
    input_data: Path | None,
    seed: int,
) -> list[bytes]:
    """Serialized ModelInferRequests with raw contents, cycling through the file's rows or fresh random data.

    Raises:
        InputError: the inputs cannot be filled (see the message).
    """
    row_shapes = {spec.name: _row_shape(spec, shapes, batch) for spec in specs}
    rng = np.random.default_rng(seed)
    file_rows = _read_rows(input_data, specs) if input_data is not None else None
    count = (
        DISTINCT_REQUESTS if file_rows is None else max(1, min(DISTINCT_REQUESTS, len(next(iter(file_rows.values())))))
    )
    requests: list[bytes] = []
    for number in range(count):
        arrays: dict[str, NDArray[Any]] = {}
        for spec in specs:
            shape = row_shapes[spec.name]
            full = (batch, *shape) if spec.batched else shape
            if file_rows is None:
                array = _random(spec, full, rng)
            else:
                source = file_rows[spec.name]
                picked = [source[(number * batch + k) % len(source)] for k in range(batch)]
                try:
                    array = np.stack(picked).reshape(full) if spec.batched else picked[0].reshape(full)
                except ValueError as exc:
                    raise InputError(f"rows for {spec.name!r} do not fit shape {list(full)}: {exc}") from exc
            arrays[spec.name] = array.astype(numpy_dtype(spec.datatype), copy=False)
        try:
            request = encode_infer_request(model, arrays, version=version)
        except ConduitError as exc:  # e.g. a file's values that are no BYTES element
            raise InputError(exc.message) from exc
        requests.append(request.SerializeToString())
    return requests


def with_id(request: bytes, request_id: int) -> bytes:
    """``request`` with its ``id`` field set, by appending the field: protobuf merges, the last value wins."""
    text = str(request_id).encode()
    return request + b"\x1a" + bytes([len(text)]) + text
