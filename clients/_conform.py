"""Inputs as callers hold them -> arrays of the datatypes a model declares, for both clients (no I/O here).

A model's inputs come from its metadata (``ModelMetadata``), looked up once per model and version and cached.
Arrays are cast to the declared datatype when every value fits; otherwise the request is refused here, with the input
and the value that does not fit, before anything is sent:

- to an integer type: whole numbers within its range (a float such as ``3.0`` is fine; ``3.5``, NaN or an int64 beyond
  INT32 are refused);
- to a floating-point type: values within its range, rounded to the nearest representable one (a float64 or int64
  becomes the nearest float32); NaN and infinities are kept, since models (scikit-learn imputers among them) read NaN
  as a missing value; a finite float64 beyond FP32's range is refused rather than turned into infinity;
- to BOOL: 0 and 1 only;
- to BYTES: str, bytes and object arrays are sent as they are; numbers are refused.

pandas and polars DataFrames map their columns to the model's inputs by name (one column per input, as the models
the trainers export take them), or, for a model with a single two-dimensional input, become that input's columns in
the frame's order. A missing value (null, None, NaN) in a text column is sent as the empty string, the category
Conduit's trainers train missing values as (``trainers._pipeline.MISSING_CATEGORY``). polars is a dependency; pandas
is used only when installed (a pandas DataFrame means it is). Neither is imported here: a frame is recognised by the
module that defined its type.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from threading import Lock
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from contract.datatypes import numpy_dtype
from contract.entities import TensorSignature
from contract.errors import ConduitError, ErrorCode
from inference_server.protocol import grpc_service_pb2 as pb

__all__ = ["DataFrameLike", "Inputs", "SignatureCache", "conform_inputs", "signature_of"]


class DataFrameLike(Protocol):
    """A pandas or polars DataFrame: named columns of equal length."""

    @property
    def columns(self) -> Any: ...


Inputs = Mapping[str, NDArray[Any]] | DataFrameLike
"""What ``infer`` takes: arrays by input name, or a DataFrame whose columns are the inputs."""


def _invalid(message: str) -> ConduitError:
    return ConduitError(ErrorCode.INVALID_ARGUMENT, message)


def signature_of(metadata: pb.ModelMetadataResponse) -> tuple[TensorSignature, ...]:
    """The inputs a ModelMetadata answer declares (shapes with the batch dimension, -1 where variable)."""
    return tuple(TensorSignature(t.name, t.datatype, tuple(t.shape)) for t in metadata.inputs)


class SignatureCache:
    """Declared inputs by (model, version as asked); safe to share between threads.

    An empty version is the server's choice, which may change when a new version is loaded: ``forget`` an entry when
    the server refuses a request conformed to it, and the next request looks it up again.
    """

    def __init__(self) -> None:
        self._entries: dict[tuple[str, str], tuple[TensorSignature, ...]] = {}
        self._lock = Lock()

    def get(self, model: str, version: str) -> tuple[TensorSignature, ...] | None:
        return self._entries.get((model, version))

    def put(self, model: str, version: str, signature: tuple[TensorSignature, ...]) -> None:
        with self._lock:
            self._entries[(model, version)] = signature

    def forget(self, model: str, version: str) -> None:
        with self._lock:
            self._entries.pop((model, version), None)


def conform_inputs(model: str, inputs: Inputs, signature: Sequence[TensorSignature]) -> dict[str, NDArray[Any]]:
    """Arrays of the declared datatypes, by input name, from arrays or a DataFrame.

    Inputs the model does not declare are passed on as they are: the server names them in its refusal.

    Raises:
        ConduitError: INVALID_ARGUMENT for a value that does not fit its input's datatype, or DataFrame columns that
            do not match the model's inputs.
    """
    columns = _frame_columns(inputs)
    if columns is not None:
        return _from_frame(model, columns, signature)
    if not isinstance(inputs, Mapping):
        raise _invalid(f"inputs must be a mapping of arrays by input name or a DataFrame, not {type(inputs).__name__}")
    declared = {spec.name: spec.datatype for spec in signature}
    conformed: dict[str, NDArray[Any]] = {}
    for name, value in inputs.items():
        array = np.asarray(value)
        datatype = declared.get(name)
        conformed[name] = array if datatype is None else cast_to(f"input {name!r}", array, datatype)
    return conformed


def cast_to(what: str, array: NDArray[Any], datatype: str) -> NDArray[Any]:
    """``array`` as ``datatype``; unchanged (no copy) when it already is.

    Raises:
        ConduitError: INVALID_ARGUMENT, naming ``what``, for a value that does not fit (see the module's rules).
    """
    if datatype == "BYTES":
        if array.dtype.kind in "OSU":
            return array
        raise _invalid(f"{what} holds {array.dtype} numbers; the model expects BYTES (text)")
    target = numpy_dtype(datatype)
    if array.dtype == target:
        return array
    if array.dtype.kind in "OSU":
        array = _numbers(what, array, datatype)
    if array.dtype.kind not in "biuf":
        raise _invalid(f"{what} holds {array.dtype} values; the model expects {datatype}")
    if target.kind == "b":
        if array.size and not np.isin(array, (0, 1)).all():
            raise _invalid(
                f"{what}: the model expects BOOL, and {_first(array, ~np.isin(array, (0, 1)))} is not 0 or 1"
            )
    elif target.kind in "iu":
        _check_integers(what, array, target, datatype)
    elif array.dtype.kind in "iuf" and array.size:
        _check_float_range(what, array, target, datatype)
    return array.astype(target)


def _numbers(what: str, array: NDArray[Any], datatype: str) -> NDArray[Any]:
    """Object arrays of numbers and missing values (None, as pandas and polars give them) as float64, None as NaN."""
    if array.dtype.kind == "O":
        try:
            return array.astype(np.float64)
        except (TypeError, ValueError):
            pass
    raise _invalid(f"{what} holds text or other values that are not numbers; the model expects {datatype}")


def _first(array: NDArray[Any], bad: NDArray[np.bool_]) -> Any:
    value = array[bad].reshape(-1)[0]
    return value.item() if isinstance(value, np.generic) else value


def _check_integers(what: str, array: NDArray[Any], target: np.dtype[Any], datatype: str) -> None:
    if not array.size:
        return
    if array.dtype.kind == "f":
        missing = np.isnan(array)
        if missing.any():
            raise _invalid(f"{what} has missing values (NaN), which {datatype} cannot hold")
        fraction = array != np.trunc(array)
        if fraction.any():
            raise _invalid(f"{what}: {_first(array, fraction)} is not a whole number, the model expects {datatype}")
    info = np.iinfo(target)
    # Python numbers compare exactly across int64, uint64 and float64.
    low, high = array.min().item(), array.max().item()
    if low < info.min or high > info.max:
        raise _invalid(
            f"{what}: {low if low < info.min else high} is out of {datatype}'s range [{info.min}, {info.max}]"
        )


def _check_float_range(what: str, array: NDArray[Any], target: np.dtype[Any], datatype: str) -> None:
    limit = float(np.finfo(target).max)
    if array.dtype.kind == "f":
        if np.finfo(array.dtype).max <= limit:
            return  # a narrower or equal float always fits
        finite = array[np.isfinite(array)]
        if not finite.size:
            return
        low, high = finite.min().item(), finite.max().item()
    else:
        low, high = array.min().item(), array.max().item()
    if low < -limit or high > limit:
        raise _invalid(f"{what}: {low if low < -limit else high} is out of {datatype}'s range (±{limit:.6g})")


# -- DataFrames ---

Column = Callable[[], NDArray[Any]]


def _frame_columns(inputs: object) -> dict[str, Column] | None:
    """The columns of a pandas or polars DataFrame by name, each read when called; ``None`` for anything else."""
    polars = sys.modules.get("polars")
    if polars is not None and isinstance(inputs, polars.DataFrame):
        return {name: partial(_polars_values, inputs, name) for name in inputs.columns}
    pandas = sys.modules.get("pandas")
    if pandas is not None and isinstance(inputs, pandas.DataFrame):
        labels = list(inputs.columns)
        names = [str(label) for label in labels]
        if len(set(names)) != len(names):
            duplicates = sorted({name for name in names if names.count(name) > 1})
            raise _invalid(f"the DataFrame has duplicate column names: {duplicates}")
        return {name: partial(_pandas_values, inputs[label]) for name, label in zip(names, labels, strict=True)}
    return None


def _polars_values(frame: Any, name: str) -> NDArray[Any]:
    # Numbers with nulls come as float64 with NaN, strings and booleans with nulls as objects holding None.
    values: NDArray[Any] = frame.get_column(name).to_numpy()
    return values


def _pandas_values(series: Any) -> NDArray[Any]:
    values: NDArray[Any] = series.to_numpy()
    # Nullable numbers and booleans (Int64, Float64, boolean) with missing values come as objects holding pd.NA.
    if values.dtype.kind == "O" and series.dtype.kind in "biuf":
        values = series.to_numpy(dtype=np.float64, na_value=np.nan)
    return values


def _from_frame(
    model: str, columns: dict[str, Column], signature: Sequence[TensorSignature]
) -> dict[str, NDArray[Any]]:
    names = [spec.name for spec in signature]
    if set(names) <= set(columns):
        unknown = [name for name in columns if name not in set(names)]
        if unknown:
            raise _invalid(f"DataFrame column(s) {unknown} are not inputs of model {model!r}; it takes {names}")
        return {spec.name: _column_input(spec, columns[spec.name]()) for spec in signature}
    if len(signature) == 1 and len(signature[0].shape) == 2:
        return {names[0]: _stacked_input(model, signature[0], columns)}
    missing = [name for name in names if name not in columns]
    unknown = [name for name in columns if name not in set(names)]
    raise _invalid(
        f"the DataFrame's columns do not match the inputs of model {model!r}: missing {missing}, unknown {unknown}"
    )


def _column_input(spec: TensorSignature, values: NDArray[Any]) -> NDArray[Any]:
    """One column as one input: a value per row becomes ``[rows, 1, …]`` as the input's shape asks."""
    what = f"column {spec.name!r}"
    rest = spec.shape[1:]
    if values.ndim == 1 and all(dim in (1, -1) for dim in rest):
        values = values.reshape(len(values), *(1 for _ in rest))
    elif values.ndim != len(spec.shape) or any(
        want not in (-1, got) for want, got in zip(rest, values.shape[1:], strict=True)
    ):
        raise _invalid(f"{what} has shape {list(values.shape)}; input {spec.name!r} takes {list(spec.shape)}")
    return _cast_column(what, values, spec.datatype)


def _stacked_input(model: str, spec: TensorSignature, columns: dict[str, Column]) -> NDArray[Any]:
    """Every column, in the frame's order, as the columns of the model's one ``[rows, features]`` input."""
    width = spec.shape[1]
    if width not in (-1, len(columns)):
        raise _invalid(
            f"model {model!r} takes one input {spec.name!r} of {width} columns; the DataFrame has {len(columns)}"
        )
    parts = []
    for name, column in columns.items():
        values = column()
        if values.ndim != 1:
            raise _invalid(f"column {name!r} holds {list(values.shape[1:])} values a row; {spec.name!r} takes one")
        parts.append(_cast_column(f"column {name!r}", values, spec.datatype))
    if not parts:
        raise _invalid("the DataFrame has no columns")
    return np.stack(parts, axis=1)


def _cast_column(what: str, values: NDArray[Any], datatype: str) -> NDArray[Any]:
    if datatype == "BYTES" and values.dtype.kind == "O":
        values = _missing_as_empty(values)
    return cast_to(what, values, datatype)


def _missing_as_empty(values: NDArray[Any]) -> NDArray[Any]:
    """Text with its missing values (None, pandas' NA, NaN) as "", the missing category of Conduit's trainers."""
    flat = values.reshape(-1).tolist()
    if not any(_missing(item) for item in flat):
        return values
    return np.array(["" if _missing(item) else item for item in flat], dtype=object).reshape(values.shape)


def _missing(item: object) -> bool:
    return item is None or type(item).__name__ == "NAType" or (isinstance(item, float) and math.isnan(item))
