"""numpy <-> Open Inference Protocol messages, for both clients (no I/O here, so it is tested without a server).

Wire format: raw contents are little-endian, C-order bytes, one buffer per tensor in tensor order; BOOL takes one byte
per element; a BYTES element is a 4-byte little-endian length followed by its bytes. Plain Python and numpy only: the
client must stay importable without the server's numba kernels.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from clients._result import InferResult, ParameterValue
from contract.datatypes import CONTENTS_FIELD, datatype_of, numpy_dtype
from contract.errors import ConduitError, ErrorCode
from inference_server.protocol import grpc_service_pb2 as pb

__all__ = [
    "ParameterInput",
    "decode_infer_response",
    "decode_stream_response",
    "encode_infer_request",
]

_LENGTH = struct.Struct("<I")
_INT64 = range(-(2**63), 2**63)
_UINT64 = range(2**64)

ParameterInput = ParameterValue | np.bool_ | np.integer[Any] | np.floating[Any]
"""A request parameter: a Python scalar, or a numpy one (sent as its Python equivalent)."""


def _invalid(message: str) -> ConduitError:
    return ConduitError(ErrorCode.INVALID_ARGUMENT, message)


def _element_bytes(name: str, item: object) -> bytes:
    if isinstance(item, bytes):
        return item
    if isinstance(item, str):
        try:
            return item.encode("utf-8")
        except UnicodeEncodeError as error:
            raise _invalid(f"input {name!r}: BYTES element is not encodable as UTF-8 ({error.reason})") from None
    if isinstance(item, bytearray | memoryview):
        return bytes(item)
    # Refuse rather than str() it: a None or a float silently sent as "None"/"1.0" is a bug hiding in the data.
    raise _invalid(f"input {name!r}: BYTES elements must be str or bytes, got {type(item).__name__}")


def _bytes_elements(name: str, array: NDArray[Any]) -> list[bytes]:
    # tolist() gives str for U arrays and bytes for S arrays (numpy drops trailing NULs of S elements).
    return [_element_bytes(name, item) for item in array.reshape(-1).tolist()]


def _serialize_bytes(elements: Iterable[bytes]) -> bytes:
    parts: list[bytes] = []
    for element in elements:
        parts.append(_LENGTH.pack(len(element)))
        parts.append(element)
    return b"".join(parts)


def _prepare(name: str, value: NDArray[Any]) -> tuple[str, NDArray[Any]]:
    array = np.asarray(value)
    # The datatype table holds native dtypes; a big-endian array is the same datatype in another byte order.
    if not array.dtype.isnative:
        array = array.astype(array.dtype.newbyteorder("="))
    try:
        return datatype_of(array), array
    except ConduitError as error:
        raise ConduitError(error.code, f"input {name!r}: {error.message}") from None


def _raw_contents(name: str, datatype: str, array: NDArray[Any]) -> bytes:
    if datatype == "BYTES":
        return _serialize_bytes(_bytes_elements(name, array))
    # tobytes() writes C order whatever the array's strides; astype is a no-op on little-endian machines.
    return array.astype(array.dtype.newbyteorder("<"), copy=False).tobytes(order="C")


def _typed_contents(name: str, datatype: str, array: NDArray[Any]) -> pb.InferTensorContents:
    values: list[Any] = _bytes_elements(name, array) if datatype == "BYTES" else array.reshape(-1).tolist()
    contents = pb.InferTensorContents()
    getattr(contents, CONTENTS_FIELD[datatype]).extend(values)
    return contents


def _parameter(key: str, value: ParameterInput) -> pb.InferParameter:
    if isinstance(value, np.generic):
        value = value.item()
    # bool before int: bool is an int subclass.
    if isinstance(value, bool):
        return pb.InferParameter(bool_param=value)
    if isinstance(value, int):
        if value in _INT64:
            return pb.InferParameter(int64_param=value)
        if value in _UINT64:
            return pb.InferParameter(uint64_param=value)
        raise _invalid(f"parameter {key!r}: {value} does not fit in 64 bits")
    if isinstance(value, float):
        return pb.InferParameter(double_param=value)
    if isinstance(value, str):
        return pb.InferParameter(string_param=value)
    raise _invalid(f"parameter {key!r}: expected bool, int, float or str, got {type(value).__name__}")


def encode_infer_request(
    model: str,
    inputs: Mapping[str, NDArray[Any]],
    *,
    version: str = "",
    outputs: Sequence[str] | None = None,
    request_id: str = "",
    raw: bool = True,
    parameters: Mapping[str, ParameterInput] | None = None,
) -> pb.ModelInferRequest:
    """Build a ModelInferRequest from numpy arrays (str, bytes and object arrays are BYTES).

    ``raw=False`` sends typed ``contents``; but the protocol forbids mixing raw and typed inputs in one request and
    FP16 has no typed field, so a request holding an FP16 input is sent raw as a whole.

    Raises:
        ConduitError: INVALID_ARGUMENT for a dtype with no protocol datatype, a BYTES element that is not str or
            bytes, or a parameter value that is not bool, int, float or str.
    """
    prepared = [(name, *_prepare(name, value)) for name, value in inputs.items()]
    use_raw = raw or any(datatype not in CONTENTS_FIELD for _, datatype, _ in prepared)
    tensors = []
    buffers = []
    for name, datatype, array in prepared:
        tensor = pb.ModelInferRequest.InferInputTensor(name=name, datatype=datatype, shape=array.shape)
        if use_raw:
            buffers.append(_raw_contents(name, datatype, array))
        else:
            tensor.contents.CopyFrom(_typed_contents(name, datatype, array))
        tensors.append(tensor)
    return pb.ModelInferRequest(
        model_name=model,
        model_version=version,
        id=request_id,
        parameters={key: _parameter(key, value) for key, value in (parameters or {}).items()},
        inputs=tensors,
        outputs=[pb.ModelInferRequest.InferRequestedOutputTensor(name=name) for name in outputs or ()],
        raw_input_contents=buffers,
    )


def _malformed(name: str, message: str) -> ConduitError:
    # A response the protocol cannot produce is the server's fault, not the caller's.
    return ConduitError(ErrorCode.INTERNAL, f"malformed response: output {name!r}: {message}")


def _deserialize_bytes(name: str, buffer: bytes, count: int) -> NDArray[Any]:
    elements = np.empty(count, dtype=object)
    offset = 0
    for index in range(count):
        if offset + _LENGTH.size > len(buffer):
            raise _malformed(name, f"BYTES contents end before element {index} of {count}")
        (length,) = _LENGTH.unpack_from(buffer, offset)
        offset += _LENGTH.size
        if offset + length > len(buffer):
            raise _malformed(name, f"BYTES element {index} claims {length} bytes past the end of the contents")
        elements[index] = buffer[offset : offset + length]
        offset += length
    if offset != len(buffer):
        raise _malformed(name, f"{len(buffer) - offset} bytes left after {count} BYTES elements")
    return elements


def _from_raw(name: str, datatype: str, dtype: np.dtype[Any], count: int, buffer: bytes) -> NDArray[Any]:
    if datatype == "BYTES":
        return _deserialize_bytes(name, buffer, count)
    if len(buffer) != count * dtype.itemsize:
        raise _malformed(name, f"{len(buffer)} bytes of raw contents for {count} {datatype} elements")
    if datatype == "BOOL":
        # One byte per element; cast instead of viewing so a byte other than 0/1 still reads as True.
        return np.frombuffer(buffer, dtype=np.uint8).astype(np.bool_)
    array = np.frombuffer(buffer, dtype=dtype.newbyteorder("<"))
    return array if array.dtype.isnative else array.astype(dtype)


def _from_typed(
    name: str, datatype: str, dtype: np.dtype[Any], count: int, contents: pb.InferTensorContents
) -> NDArray[Any]:
    field = CONTENTS_FIELD.get(datatype)
    if field is None:
        raise _malformed(name, f"{datatype} has no typed contents field, it must come as raw contents")
    values = getattr(contents, field)
    if len(values) != count:
        raise _malformed(name, f"{len(values)} values in {field} for {count} elements")
    if datatype == "BYTES":
        elements = np.empty(count, dtype=object)
        elements[:] = list(values)
        return elements
    try:
        return np.array(values, dtype=dtype)
    except OverflowError:
        raise _malformed(name, f"a value in {field} is out of range for {datatype}") from None


def _decode_parameters(parameters: Mapping[str, pb.InferParameter]) -> dict[str, ParameterValue]:
    decoded: dict[str, ParameterValue] = {}
    for key, parameter in parameters.items():
        choice = parameter.WhichOneof("parameter_choice")
        if choice is not None:
            decoded[key] = getattr(parameter, choice)
    return decoded


def decode_infer_response(response: pb.ModelInferResponse) -> InferResult:
    """Turn a ModelInferResponse into numpy arrays (raw contents when present, matched by output index).

    Raises:
        ConduitError: INTERNAL when the response contradicts itself (sizes, shapes or datatypes).
    """
    raw = response.raw_output_contents
    if raw and len(raw) != len(response.outputs):
        raise ConduitError(
            ErrorCode.INTERNAL,
            f"malformed response: {len(raw)} raw_output_contents buffers for {len(response.outputs)} outputs",
        )
    outputs: dict[str, NDArray[Any]] = {}
    for position, tensor in enumerate(response.outputs):
        name, datatype, shape = tensor.name, tensor.datatype, tuple(tensor.shape)
        if any(dim < 0 for dim in shape):
            raise _malformed(name, f"negative dimension in shape {list(shape)}")
        try:
            dtype = numpy_dtype(datatype)
        except ConduitError:
            raise _malformed(name, f"unknown datatype {datatype!r}") from None
        count = math.prod(shape)
        if raw:
            array = _from_raw(name, datatype, dtype, count, raw[position])
        else:
            array = _from_typed(name, datatype, dtype, count, tensor.contents)
        outputs[name] = array.reshape(shape)
    return InferResult(
        model_name=response.model_name,
        model_version=response.model_version,
        id=response.id,
        outputs=outputs,
        parameters=_decode_parameters(response.parameters),
    )


def decode_stream_response(response: pb.ModelStreamInferResponse) -> InferResult | ConduitError:
    """One ModelStreamInfer answer: the result, or the error that failed that one request.

    The stream carries a message but no status code per failed request. Conduit servers start the message with the
    code in brackets (``[NOT_FOUND] unknown model``), which is read back; other servers' failures become
    INVALID_ARGUMENT. A response that cannot be decoded becomes INTERNAL. Either way the stream goes on.
    """
    if response.error_message:
        request_id = response.infer_response.id
        prefix = f"request {request_id!r}: " if request_id else ""
        code, message = _stream_error_code(response.error_message)
        return ConduitError(code, prefix + message)
    try:
        return decode_infer_response(response.infer_response)
    except ConduitError as error:
        return error


def _stream_error_code(message: str) -> tuple[ErrorCode, str]:
    """Split ``[CODE] text`` as Conduit servers write stream errors; anything else is INVALID_ARGUMENT."""
    if message.startswith("["):
        name, _, rest = message[1:].partition("] ")
        if name in ErrorCode.__members__:
            return ErrorCode[name], rest
    return ErrorCode.INVALID_ARGUMENT, message
