"""Range-checked narrowing of typed protobuf contents to the tensor's datatype.

The Open Inference Protocol carries INT8/INT16 in ``int_contents`` (int32 on the wire, int64 once in numpy when a
caller builds the array without a dtype) and UINT8/UINT16 in ``uint_contents`` (uint32/uint64): a value that does not
fit the declared integer type is the caller's error, not a wrap-around. (FP16 has no typed field; it travels raw.)
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numba import from_dtype, types

from contract.errors import ConduitError, ErrorCode
from inference_server.kernels._jit import kernel

__all__ = ["cast_checked"]

# The pairs the protocol produces get the fused kernel; any other integer pair takes the numpy path, which checks the
# same way and raises the same error.
_SOURCES = (np.dtype(np.int32), np.dtype(np.int64), np.dtype(np.uint32), np.dtype(np.uint64))
_TARGETS = (np.dtype(np.int8), np.dtype(np.int16), np.dtype(np.uint8), np.dtype(np.uint16))


def _bounds(source: np.dtype, target: np.dtype) -> tuple[np.generic, np.generic]:
    # Bounds in the source type (clamped to what it can hold) so the kernel compares like with like: numba would
    # compare uint64 against an int64 bound in float64.
    have, want = np.iinfo(source), np.iinfo(target)
    return source.type(max(have.min, want.min)), source.type(min(have.max, want.max))


_BOUNDS = {(source, target): _bounds(source, target) for source in _SOURCES for target in _TARGETS}


def _signatures() -> list[tuple[Any, ...]]:
    signatures: list[tuple[Any, ...]] = []
    for source in _SOURCES:
        scalar = from_dtype(source)
        values = types.Array(scalar, 1, "C", readonly=True)
        signatures.extend((values, scalar, scalar, types.Array(from_dtype(target), 1, "C")) for target in _TARGETS)
    return signatures


@kernel(*_signatures())
def _narrow(values: Any, low: Any, high: Any, out: Any) -> int:
    """Write every value into ``out``; return -1 if all lie in ``[low, high]``, else the first index that did not."""
    # Branch-free accumulation keeps the common all-valid pass vectorised; the index is searched only on failure.
    fits = True
    for index in range(values.shape[0]):
        value = values[index]
        fits &= (value >= low) & (value <= high)
        out[index] = value
    if fits:
        return -1
    for index in range(values.shape[0]):
        if values[index] < low or values[index] > high:
            return index
    return -1


def _out_of_range(flat: np.ndarray, index: int, target: np.dtype) -> ConduitError:
    info = np.iinfo(target)
    return ConduitError(
        ErrorCode.INVALID_ARGUMENT,
        f"value {flat[index]} at index {index} does not fit {target.name} (range {info.min} to {info.max})",
    )


def cast_checked(values: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Cast ``values`` to ``dtype``, keeping its shape, refusing integers that do not fit an integer ``dtype``.

    Float targets are a plain cast (no range error; NaN stays NaN, too-large values become inf). An array that
    already has ``dtype`` is returned as is.

    Raises:
        ConduitError: INVALID_ARGUMENT naming the first value (in C order) outside the integer target's range.
        TypeError: for a target that is neither integer nor floating point.
    """
    target = np.dtype(dtype)
    if values.dtype == target:
        return values
    if target.kind == "f":
        with np.errstate(over="ignore"):  # overflow to inf is the documented result, not a warning
            return values.astype(target)
    if target.kind not in "iu":
        raise TypeError(f"cast_checked narrows to integer or floating types, not {target}")
    flat = values.reshape(-1)
    bounds = _BOUNDS.get((flat.dtype, target))
    if bounds is None:
        info = np.iinfo(target)
        # NaN fails both comparisons, so a float source cannot slip NaN into an integer tensor.
        fits = (flat >= info.min) & (flat <= info.max)
        if not fits.all():
            raise _out_of_range(flat, int(np.argmin(fits)), target)
        return flat.astype(target).reshape(values.shape)
    if not flat.flags.c_contiguous:
        flat = np.ascontiguousarray(flat)
    # ``flat`` is always a new array object, so marking it read-only leaves the caller's flags alone, and one
    # signature serves writable and read-only inputs.
    flat.setflags(write=False)
    out = np.empty(flat.shape[0], dtype=target)
    index = _narrow(flat, bounds[0], bounds[1], out)
    if index >= 0:
        raise _out_of_range(flat, index, target)
    return out.reshape(values.shape)
