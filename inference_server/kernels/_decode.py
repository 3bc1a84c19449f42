"""Decode an Open Inference Protocol BYTES raw tensor: ``count`` elements, each a 4-byte little-endian length + data."""

from __future__ import annotations

import struct
from typing import Any

import numpy as np
from numba import types

from contract.errors import ConduitError, ErrorCode
from inference_server.kernels._jit import kernel

__all__ = ["decode_bytes"]

_PREFIX = struct.Struct("<I")
# Below this many elements a plain struct loop beats the kernel's fixed cost (dispatch, two allocations, building a
# Struct); benchmarks/kernels.py puts the crossover between 8 and 16 elements.
_KERNEL_MIN_COUNT = 12
# Longest struct code the scan writes per element: "4x" + up to 10 digits of a uint32 length + "s".
_FORMAT_BYTES_PER_ELEMENT = 13

# Scan outcomes; anything but _OK becomes an INVALID_ARGUMENT message in _framing_error.
_OK = 0
_MISSING = 1  # the buffer ended exactly where another element should start
_SHORT_PREFIX = 2  # fewer than 4 bytes left for a length prefix
_OVERRUN = 3  # a length runs past the end of the buffer
_TRAILING = 4  # bytes left over after the last element

_BUFFER = types.Array(types.uint8, 1, "C", readonly=True)
_FORMAT = types.Array(types.uint8, 1, "C")


@kernel((_BUFFER, types.int64, _FORMAT))
def _scan(buffer: Any, count: int, fmt: Any) -> tuple[int, int, int, int]:
    """Validate the framing in one pass and write the struct format ``<4x{n}s4x{n}s...`` that slices it.

    Returns ``(status, index, position, detail)``: on success ``detail`` is the format's length; on failure ``index``
    is the element, ``position`` the byte offset of its length prefix, and ``detail`` the declared length (overrun) or
    the number of left-over bytes (trailing).
    """
    size = buffer.shape[0]
    position = 0
    fmt[0] = 60  # "<": standard sizes, no alignment padding
    end = 1
    for index in range(count):
        remaining = size - position
        if remaining < 4:
            return (_MISSING if remaining == 0 else _SHORT_PREFIX), index, position, 0
        # Signed 64-bit throughout: numba would compare a uint64 with the int64 positions in float64.
        length = int(
            np.int64(buffer[position])
            | (np.int64(buffer[position + 1]) << 8)
            | (np.int64(buffer[position + 2]) << 16)
            | (np.int64(buffer[position + 3]) << 24)
        )
        if length > remaining - 4:
            return _OVERRUN, index, position, length
        position += 4 + length
        fmt[end] = 52  # "4x": skip the length prefix
        fmt[end + 1] = 120
        end += 2
        digits = 1
        rest = length
        while rest >= 10:
            rest //= 10
            digits += 1
        rest = length
        for at in range(end + digits - 1, end - 1, -1):
            fmt[at] = 48 + rest % 10
            rest //= 10
        end += digits
        fmt[end] = 115  # "s": the element, as one bytes object
        end += 1
    if position != size:
        return _TRAILING, count, position, size - position
    return _OK, count, position, end


def _framing_error(count: int, size: int, scan: tuple[int, int, int, int]) -> ConduitError:
    """The INVALID_ARGUMENT for a failed ``(status, index, position, detail)`` as ``_scan`` returns it."""
    status, index, position, detail = scan
    if status == _MISSING:
        message = f"BYTES tensor should hold {count} elements but its {size}-byte buffer ends after {index}"
    elif status == _SHORT_PREFIX:
        message = (
            f"BYTES element {index}: its length prefix at byte {position} is truncated "
            f"({size - position} of 4 bytes left in the {size}-byte buffer)"
        )
    elif status == _OVERRUN:
        message = (
            f"BYTES element {index}: length {detail} declared at byte {position} runs past the end of the "
            f"{size}-byte buffer"
        )
    else:
        message = (
            f"BYTES tensor of {count} elements ends at byte {position} but the buffer has {detail} more "
            f"bytes ({size} in all)"
        )
    return ConduitError(ErrorCode.INVALID_ARGUMENT, message)


def _decode_small(data: bytes | memoryview, count: int) -> np.ndarray:
    # Same checks and messages as _scan, for the sizes where the interpreter is faster than a kernel call.
    size = len(data)
    out = np.empty(count, dtype=object)
    position = 0
    for index in range(count):
        remaining = size - position
        if remaining < 4:
            raise _framing_error(count, size, (_MISSING if remaining == 0 else _SHORT_PREFIX, index, position, 0))
        (length,) = _PREFIX.unpack_from(data, position)
        if length > remaining - 4:
            raise _framing_error(count, size, (_OVERRUN, index, position, length))
        start = position + 4
        position = start + length
        chunk = data[start:position]
        out[index] = chunk.tobytes() if isinstance(chunk, memoryview) else chunk
    if position != size:
        raise _framing_error(count, size, (_TRAILING, count, position, size - position))
    return out


def decode_bytes(buffer: bytes | bytearray | memoryview, count: int) -> np.ndarray:
    """Decode ``count`` length-prefixed elements into a 1-D object array of ``bytes``.

    Raises:
        ConduitError: INVALID_ARGUMENT when the buffer does not hold exactly ``count`` well-formed elements (a
            truncated length prefix, a length running past the end, missing elements, or trailing bytes).
    """
    data = buffer if isinstance(buffer, bytes) else memoryview(buffer).cast("B")
    size = len(data)
    if count < 0:
        raise ConduitError(
            ErrorCode.INVALID_ARGUMENT, f"BYTES tensor cannot hold a negative number ({count}) of elements"
        )
    # Every element needs its 4-byte prefix: checked before anything count-sized is allocated, so a forged shape
    # cannot make the server reserve memory the buffer could never fill.
    if count > size // 4:
        raise ConduitError(
            ErrorCode.INVALID_ARGUMENT,
            f"BYTES tensor should hold {count} elements but its {size}-byte buffer cannot (4 bytes of length "
            "prefix per element)",
        )
    if count < _KERNEL_MIN_COUNT:
        return _decode_small(data, count)
    return _decode_kernel(data, count)


def _decode_kernel(data: bytes | memoryview, count: int) -> np.ndarray:
    size = len(data)
    array = np.frombuffer(data, dtype=np.uint8)
    array.setflags(write=False)  # one compiled signature: a writable buffer (bytearray) would otherwise compile another
    fmt = np.empty(1 + _FORMAT_BYTES_PER_ELEMENT * count, dtype=np.uint8)
    scan = _scan(array, count, fmt)
    if scan[0] != _OK:
        raise _framing_error(count, size, scan)
    # struct builds every bytes object in C. A fresh Struct rather than struct.unpack_from: the module-level cache
    # would keep up to 100 of these per-request formats (and their compiled codes) alive.
    values = struct.Struct(fmt[: scan[3]].tobytes()).unpack_from(data)
    return np.fromiter(values, dtype=object, count=count)
