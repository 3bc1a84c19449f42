"""Read the inputs and outputs of an ONNX graph, in Open Inference Protocol terms, without running it: the one reader
the control plane (uploads), the trainers (what they export) and the clients share.

Imports onnx: import this module only where an ONNX file is read.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import helper

from contract.datatypes import datatype_of
from contract.entities import TensorSignature
from contract.errors import ConduitError, ErrorCode

__all__ = ["Signature", "read_signature", "signature_of"]

Signature = tuple[tuple[TensorSignature, ...], tuple[TensorSignature, ...]]


def _invalid(message: str) -> ConduitError:
    return ConduitError(ErrorCode.INVALID_ARGUMENT, f"not a usable ONNX model: {message}")


def _tensor(value: onnx.ValueInfoProto) -> TensorSignature:
    kind = value.type.WhichOneof("value")
    if kind != "tensor_type":
        raise _invalid(f"{value.name!r} is a {kind or 'untyped value'}, not a tensor")
    tensor = value.type.tensor_type
    try:
        # Through numpy, so the one numpy <-> protocol datatype table decides (STRING is an object array: BYTES).
        datatype = datatype_of(np.empty(0, dtype=helper.tensor_dtype_to_np_dtype(tensor.elem_type)))
    except (KeyError, ValueError, TypeError, ConduitError):
        name = onnx.TensorProto.DataType.Name(tensor.elem_type) if tensor.elem_type else "UNDEFINED"
        raise _invalid(f"{value.name!r} has element type {name}, which has no protocol datatype") from None
    # A symbolic (dim_param) or absent dimension varies from call to call: -1, as the protocol spells it.
    shape = tuple(d.dim_value if d.HasField("dim_value") else -1 for d in tensor.shape.dim)
    return TensorSignature(value.name, datatype, shape)


def read_signature(path: Path) -> Signature:
    """The graph's inputs (initializers excluded: they have defaults and nobody feeds them) and outputs.

    Raises:
        ConduitError: INVALID_ARGUMENT when the file is not a valid ONNX model or a tensor has a type the protocol
            cannot carry.
    """
    try:
        # The path, not the bytes: the checker handles models above protobuf's 2 GiB limit only that way.
        onnx.checker.check_model(str(path))
        model = onnx.load_model(str(path), load_external_data=False)
    except Exception as exc:  # onnx raises protobuf, checker and OS errors alike for a bad file
        first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        # The caller knows its file by its own name; where this process spooled it is none of its business.
        raise _invalid(first_line.replace(str(path), "the file")) from None
    return _signature(model)


def signature_of(payload: bytes) -> Signature:
    """``read_signature`` of a serialized model held in memory (below protobuf's 2 GiB limit).

    Raises:
        ConduitError: INVALID_ARGUMENT, as ``read_signature``.
    """
    try:
        model = onnx.load_model_from_string(payload)
        onnx.checker.check_model(model)
    except Exception as exc:  # protobuf and checker errors alike
        raise _invalid((str(exc).strip().splitlines() or [type(exc).__name__])[0]) from None
    return _signature(model)


def _signature(model: onnx.ModelProto) -> Signature:
    graph = model.graph
    initializers = {init.name for init in graph.initializer}
    inputs = tuple(_tensor(value) for value in graph.input if value.name not in initializers)
    outputs = tuple(_tensor(value) for value in graph.output)
    if not outputs:
        raise _invalid("the graph has no outputs")
    return inputs, outputs
