"""The requests a run sends: shaped from the server's ModelMetadata, filled with random data or rows from a file.

Requests are serialized once, before the clock starts; the load loops send the same bytes over and over, so the
client's per-request cost is gRPC's, not protobuf's.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import grpc
import numpy as np
from numpy.typing import NDArray

from clients._codec import encode_infer_request
from contract.datatypes import DATATYPES, numpy_dtype
from contract.entities import TensorSignature
from contract.errors import ConduitError
from inference_server.protocol import grpc_service_pb2 as pb
from inference_server.protocol import grpc_service_pb2_grpc as pb_grpc

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
    """Rows per input from a file: perf_analyzer's ``--input-data`` JSON, or a table/array for a one-input model."""
    import polars as pl

    suffix = path.suffix.lower()
    try:
        if suffix == ".json":
            return _read_json(path, specs)
        if len(specs) != 1:
            raise InputError(f"{path.name}: CSV, Parquet and .npy files feed one-input models; use JSON for several")
        if suffix == ".npy":
            array = np.load(path, allow_pickle=False)
        elif suffix in (".csv", ".parquet"):
            frame = pl.read_csv(path) if suffix == ".csv" else pl.read_parquet(path)
            array = frame.to_numpy()
        else:
            raise InputError(f"{path.name}: expected a .json, .csv, .parquet or .npy file")
    except (OSError, ValueError, KeyError, TypeError, pl.exceptions.PolarsError) as exc:
        if isinstance(exc, InputError):
            raise
        raise InputError(f"cannot read {path}: {exc}") from exc
    if array.ndim == 0 or len(array) == 0:
        raise InputError(f"{path.name} holds no rows")
    return {specs[0].name: list(array)}


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
