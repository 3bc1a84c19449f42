"""Encode a tensor of bytes or strings as an Open Inference Protocol BYTES raw tensor (4-byte LE length + data each)."""

from __future__ import annotations

import struct
from typing import Any

import numba
import numpy as np
from numba import types

from contract.errors import ConduitError, ErrorCode
from inference_server.kernels._jit import kernel

__all__ = ["encode_bytes"]

_PREFIX = struct.Struct("<I")
_MAX_ELEMENT = 0xFFFFFFFF
# Below these sizes the interpreter loop beats a kernel call's fixed cost (dispatch, allocations, gathering the
# payload). benchmarks/kernels.py puts the crossovers between 32 and 64 elements for Python objects, and between 8
# and 16 (S) or 4 and 8 (U) for numpy fixed-width arrays.
_KERNEL_MIN_OBJECTS = 48
_KERNEL_MIN_FIXED = 10

_PAYLOAD = types.Array(types.uint8, 1, "C", readonly=True)
_LENGTHS = types.Array(types.int64, 1, "C")
_FIXED_ROWS = types.Array(types.uint8, 2, "C", readonly=True)
_UCS4_ROWS = types.Array(types.uint32, 2, "C", readonly=True)


@numba.njit(inline="always")  # inlined into the cached kernels that call it
def _write_length(out: Any, end: int, length: int) -> None:
    """The protocol's 4-byte little-endian length prefix of one BYTES element, at ``out[end:end + 4]``."""
    out[end] = length & 0xFF
    out[end + 1] = (length >> 8) & 0xFF
    out[end + 2] = (length >> 16) & 0xFF
    out[end + 3] = (length >> 24) & 0xFF


@kernel((_PAYLOAD, _LENGTHS))
def _frame(payload: Any, lengths: Any) -> tuple[Any, int]:
    """Interleave length prefixes with the concatenated elements; ``(framed, -1)`` or ``(empty, index)`` of the first
    element too long for a 4-byte prefix."""
    count = lengths.shape[0]
    for index in range(count):
        if lengths[index] > _MAX_ELEMENT:
            return np.empty(0, dtype=np.uint8), index
    out = np.empty(4 * count + payload.shape[0], dtype=np.uint8)
    start = 0
    end = 0
    for index in range(count):
        length = lengths[index]
        _write_length(out, end, length)
        end += 4
        # Copy through sub-views indexed from 0: LLVM vectorises this loop, not a slice assignment (which copies
        # the source first in case the two overlap) nor a loop over offset indices.
        target = out[end : end + length]
        source = payload[start : start + length]
        for at in range(length):
            target[at] = source[at]
        end += length
        start += length
    return out, -1


@kernel((_FIXED_ROWS,))
def _encode_fixed(rows: Any) -> Any:
    """Frame each row of a numpy ``S`` array (viewed as uint8 rows) without its trailing NUL padding."""
    count, width = rows.shape
    lengths = np.empty(count, dtype=np.int64)
    total = 0
    for row in range(count):
        length = width
        while length > 0 and rows[row, length - 1] == 0:
            length -= 1
        lengths[row] = length
        total += 4 + length
    out = np.empty(total, dtype=np.uint8)
    end = 0
    for row in range(count):
        length = lengths[row]
        _write_length(out, end, length)
        end += 4
        target = out[end : end + length]  # sub-views, as in _frame
        source = rows[row, :length]
        for at in range(length):
            target[at] = source[at]
        end += length
    return out


@kernel((_UCS4_ROWS,))
def _encode_ucs4(rows: Any) -> tuple[Any, int]:
    """UTF-8 encode and frame each row of a numpy ``U`` array (viewed as code-point rows) without trailing NULs.

    Returns ``(framed, -1)``, or ``(empty, row)`` for the first row holding a surrogate or a value past U+10FFFF,
    which UTF-8 cannot encode.
    """
    count, width = rows.shape
    chars = np.empty(count, dtype=np.int64)
    lengths = np.empty(count, dtype=np.int64)
    total = 0
    for row in range(count):
        used = width
        while used > 0 and rows[row, used - 1] == 0:
            used -= 1
        length = 0
        for at in range(used):
            point = rows[row, at]
            if point < 0x80:
                length += 1
            elif point < 0x800:
                length += 2
            elif point < 0x10000:
                if 0xD800 <= point <= 0xDFFF:
                    return np.empty(0, dtype=np.uint8), row
                length += 3
            elif point <= 0x10FFFF:
                length += 4
            else:
                return np.empty(0, dtype=np.uint8), row
        chars[row] = used
        lengths[row] = length
        total += 4 + length
    out = np.empty(total, dtype=np.uint8)
    end = 0
    for row in range(count):
        length = lengths[row]
        _write_length(out, end, length)
        end += 4
        for at in range(chars[row]):
            point = rows[row, at]
            if point < 0x80:
                out[end] = point
                end += 1
            elif point < 0x800:
                out[end] = 0xC0 | (point >> 6)
                out[end + 1] = 0x80 | (point & 0x3F)
                end += 2
            elif point < 0x10000:
                out[end] = 0xE0 | (point >> 12)
                out[end + 1] = 0x80 | ((point >> 6) & 0x3F)
                out[end + 2] = 0x80 | (point & 0x3F)
                end += 3
            else:
                out[end] = 0xF0 | (point >> 18)
                out[end + 1] = 0x80 | ((point >> 12) & 0x3F)
                out[end + 2] = 0x80 | ((point >> 6) & 0x3F)
                out[end + 3] = 0x80 | (point & 0x3F)
                end += 4
    return out, -1


def _not_utf8(index: int) -> ConduitError:
    return ConduitError(
        ErrorCode.INVALID_ARGUMENT, f"BYTES element {index} is a string UTF-8 cannot encode (it holds a surrogate)"
    )


def _too_long(index: int, length: int) -> ConduitError:
    return ConduitError(
        ErrorCode.INVALID_ARGUMENT,
        f"BYTES element {index} has {length} bytes; a 4-byte length prefix allows at most {_MAX_ELEMENT}",
    )


def _as_bytes(item: object, index: int) -> bytes:
    if isinstance(item, str):
        try:
            return item.encode()
        except UnicodeEncodeError:
            raise _not_utf8(index) from None
    try:
        # Any bytes-like object stands for its raw bytes, as b"".join (the kernel path) takes it.
        return memoryview(item).tobytes()  # type: ignore[arg-type]
    except TypeError:
        raise ConduitError(
            ErrorCode.INVALID_ARGUMENT, f"BYTES element {index} is a {type(item).__name__}, not bytes or str"
        ) from None


def _encode_small(items: list[Any]) -> bytes:
    pack = _PREFIX.pack
    parts: list[bytes] = []
    append = parts.append
    try:
        for index, item in enumerate(items):
            data = item if type(item) is bytes else _as_bytes(item, index)
            append(pack(len(data)))
            append(data)
    except struct.error:
        raise _too_long(len(parts) // 2, len(data)) from None
    return b"".join(parts)


def _gather(items: list[Any]) -> tuple[list[Any], bytes]:
    """The elements, as objects whose ``len()`` is their encoded size, and their concatenated bytes."""
    # One join gathers the payload in C; only what it refuses (str, non-buffers) takes a per-element pass.
    try:
        return items, b"".join(items)
    except TypeError:
        pass
    try:
        text = "".join(items)
    except TypeError:  # a mix of str and bytes, or something that is neither
        items = [item if type(item) is bytes else _as_bytes(item, index) for index, item in enumerate(items)]
        return items, b"".join(items)
    if text.isascii():
        # All-ASCII text (labels, ids: the usual model output) encodes in one call, one byte per character.
        return items, text.encode("ascii")
    try:
        encoded = [item.encode() for item in items]
    except UnicodeEncodeError:
        encoded = [_as_bytes(item, index) for index, item in enumerate(items)]  # raises, naming the element
    return encoded, b"".join(encoded)


def _encode_objects(items: list[Any]) -> bytes:
    items, payload = _gather(items)
    lengths = np.fromiter(map(len, items), dtype=np.int64, count=len(items))
    if int(lengths.sum()) != len(payload):
        # A bytes-like element whose len() is not its byte size (a 2-D array, a memoryview of ints): measure bytes.
        items = [_as_bytes(item, index) for index, item in enumerate(items)]
        lengths = np.fromiter(map(len, items), dtype=np.int64, count=len(items))
    framed, index = _frame(np.frombuffer(payload, dtype=np.uint8), lengths)
    if index >= 0:
        raise _too_long(index, int(lengths[index]))
    encoded: bytes = framed.tobytes()
    return encoded


def _encode_fixed_width(values: np.ndarray) -> bytes:
    if values.dtype.kind == "S":
        rows = np.ascontiguousarray(values).view(np.uint8).reshape(values.size, values.dtype.itemsize)
        rows.setflags(write=False)  # our own view: the caller's array keeps its flags
        framed = _encode_fixed(rows)
    else:
        native = values if values.dtype.isnative else values.astype(values.dtype.newbyteorder("="))
        points = np.ascontiguousarray(native).view(np.uint32).reshape(values.size, values.dtype.itemsize // 4)
        points.setflags(write=False)
        framed, bad = _encode_ucs4(points)
        if bad >= 0:
            raise _not_utf8(bad)
    encoded: bytes = framed.tobytes()
    return encoded


def encode_bytes(values: np.ndarray) -> bytes:
    """Encode every element, flattened in C order, as a 4-byte little-endian length followed by its bytes.

    Elements are ``bytes`` (or any bytes-like object, taken as its raw bytes) or ``str`` (UTF-8 encoded); a numpy
    ``S`` or ``U`` array works too, its elements losing their trailing NULs as numpy's own element access does.

    Raises:
        ConduitError: INVALID_ARGUMENT for an element that is neither bytes-like nor str, a string UTF-8 cannot
            encode, or an element longer than a 4-byte length prefix allows.
    """
    kind = values.dtype.kind
    if kind == "O":
        items = values.tolist() if values.ndim == 1 else values.reshape(-1).tolist()
        return _encode_small(items) if len(items) < _KERNEL_MIN_OBJECTS else _encode_objects(items)
    if kind not in "SU":
        raise ConduitError(ErrorCode.INVALID_ARGUMENT, f"a BYTES tensor holds bytes or str, not {values.dtype}")
    if values.size < _KERNEL_MIN_FIXED or values.dtype.itemsize == 0:
        return _encode_small(values.tolist() if values.ndim == 1 else values.reshape(-1).tolist())
    return _encode_fixed_width(values)
