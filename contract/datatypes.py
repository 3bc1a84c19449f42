"""Open Inference Protocol datatypes and their numpy equivalents (numpy only: clients import this too)."""

from __future__ import annotations

import numpy as np

from contract.errors import ConduitError, ErrorCode

__all__ = [
    "CONTENTS_FIELD",
    "DATATYPES",
    "datatype_of",
    "element_size",
    "numpy_dtype",
    "onnx_type_to_datatype",
]

# BYTES has no fixed-size numpy dtype: its tensors are object arrays of ``bytes``.
_TO_NUMPY: dict[str, np.dtype] = {
    "BOOL": np.dtype(np.bool_),
    "UINT8": np.dtype(np.uint8),
    "UINT16": np.dtype(np.uint16),
    "UINT32": np.dtype(np.uint32),
    "UINT64": np.dtype(np.uint64),
    "INT8": np.dtype(np.int8),
    "INT16": np.dtype(np.int16),
    "INT32": np.dtype(np.int32),
    "INT64": np.dtype(np.int64),
    "FP16": np.dtype(np.float16),
    "FP32": np.dtype(np.float32),
    "FP64": np.dtype(np.float64),
    "BYTES": np.dtype(object),
}
_FROM_NUMPY: dict[np.dtype, str] = {dtype: name for name, dtype in _TO_NUMPY.items()}

DATATYPES: tuple[str, ...] = tuple(_TO_NUMPY)

# Which typed-contents field of InferTensorContents carries each datatype. FP16 has none: it travels raw only.
CONTENTS_FIELD: dict[str, str] = {
    "BOOL": "bool_contents",
    "INT8": "int_contents",
    "INT16": "int_contents",
    "INT32": "int_contents",
    "INT64": "int64_contents",
    "UINT8": "uint_contents",
    "UINT16": "uint_contents",
    "UINT32": "uint_contents",
    "UINT64": "uint64_contents",
    "FP32": "fp32_contents",
    "FP64": "fp64_contents",
    "BYTES": "bytes_contents",
}

_ONNX_TO_DATATYPE = {
    "tensor(bool)": "BOOL",
    "tensor(uint8)": "UINT8",
    "tensor(uint16)": "UINT16",
    "tensor(uint32)": "UINT32",
    "tensor(uint64)": "UINT64",
    "tensor(int8)": "INT8",
    "tensor(int16)": "INT16",
    "tensor(int32)": "INT32",
    "tensor(int64)": "INT64",
    "tensor(float16)": "FP16",
    "tensor(float)": "FP32",
    "tensor(double)": "FP64",
    "tensor(string)": "BYTES",
}


def numpy_dtype(datatype: str) -> np.dtype:
    """The numpy dtype that holds ``datatype`` (object for BYTES)."""
    try:
        return _TO_NUMPY[datatype]
    except KeyError:
        raise ConduitError(ErrorCode.INVALID_ARGUMENT, f"unsupported datatype {datatype!r}") from None


def datatype_of(array: np.ndarray) -> str:
    """The protocol datatype of a numpy array (strings and bytes map to BYTES)."""
    if array.dtype.kind in "OSU":
        return "BYTES"
    try:
        return _FROM_NUMPY[array.dtype]
    except KeyError:
        raise ConduitError(ErrorCode.INVALID_ARGUMENT, f"no protocol datatype for numpy {array.dtype}") from None


def element_size(datatype: str) -> int:
    """Bytes per element in raw contents; 0 for BYTES, whose elements are length-prefixed."""
    return 0 if datatype == "BYTES" else numpy_dtype(datatype).itemsize


def onnx_type_to_datatype(onnx_type: str) -> str:
    """Map an onnxruntime type string such as ``tensor(float)`` to a protocol datatype."""
    try:
        return _ONNX_TO_DATATYPE[onnx_type]
    except KeyError:
        raise ConduitError(ErrorCode.INVALID_ARGUMENT, f"unsupported ONNX tensor type {onnx_type}") from None
