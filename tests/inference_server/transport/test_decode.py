"""decode_infer_request at the edges of what a tensor can be: the shapes and parameters it accepts, and where it stops.

Each refusal here once escaped as a numpy ``ValueError`` (answered INTERNAL, with a traceback in the log) or was
silently misread; the gRPC tests in ``test_errors.py`` check the status callers see.
"""

from __future__ import annotations

import numpy as np
import pytest

from contract.datatypes import DATATYPES, numpy_dtype
from contract.errors import ConduitError, ErrorCode
from inference_server.protocol import grpc_service_pb2 as pb
from inference_server.transport.converters import MAX_RANK, decode_infer_request

# The largest product of non-zero dimensions an empty tensor of any datatype can have: numpy sizes an array in a
# signed 64-bit count of bytes, at up to 8 bytes per element.
LARGEST = 2**60 - 1


def request(datatype: str, shape: list[int], raw: bytes | None = b"") -> pb.ModelInferRequest:
    message = pb.ModelInferRequest(model_name="m")
    message.inputs.add(name="x", datatype=datatype, shape=shape)
    if raw is not None:
        message.raw_input_contents.append(raw)
    return message


def refused(message: pb.ModelInferRequest) -> ConduitError:
    with pytest.raises(ConduitError) as caught:
        decode_infer_request(message)
    assert caught.value.code == ErrorCode.INVALID_ARGUMENT
    return caught.value


@pytest.mark.parametrize("datatype", DATATYPES)
def test_an_empty_tensor_keeps_any_shape_an_array_can_index(datatype: str) -> None:
    for shape in ([0, LARGEST], [LARGEST, 0], [2**30, 0, 2**30 - 1], [0]):
        (tensor,) = decode_infer_request(request(datatype, shape)).inputs
        assert tensor.data.shape == tuple(shape)
        assert tensor.data.size == 0


@pytest.mark.parametrize("raw", [True, False], ids=["raw", "typed"])
@pytest.mark.parametrize("datatype", ["BOOL", "INT8", "FP64", "BYTES"])
def test_an_empty_tensor_whose_other_dimensions_no_array_can_index_is_refused(datatype: str, raw: bool) -> None:
    for shape in ([0, LARGEST + 1], [2**62, 2**62, 0], [0, 2**31, 2**31], [0] + [2**63 - 1] * 63):
        refused(request(datatype, shape, b"" if raw else None))


def test_as_many_dimensions_as_numpy_allows() -> None:
    value = np.array([1.5], dtype=np.float32)
    (tensor,) = decode_infer_request(request("FP32", [1] * MAX_RANK, value.tobytes())).inputs
    assert tensor.data.shape == (1,) * MAX_RANK
    assert tensor.data.reshape(-1).tolist() == [1.5]

    refused(request("FP32", [1] * (MAX_RANK + 1), value.tobytes()))
    refused(request("BYTES", [1] * (MAX_RANK + 1), b"\x00\x00\x00\x00"))
    typed = request("INT8", [1] * (MAX_RANK + 1), None)
    typed.inputs[0].contents.int_contents.append(1)
    refused(typed)


def test_a_negative_dimension_is_refused_whatever_else_the_shape_holds() -> None:
    for shape in ([-1], [0, -1], [-1, -1], [2, -(2**63)]):
        refused(request("FP32", shape))


@pytest.mark.parametrize("datatype", ["FP32", "UINT8", "BYTES"])
def test_a_shape_that_outgrows_the_contents_is_refused(datatype: str) -> None:
    # Non-empty: the size checks refuse it before anything the size of the shape is allocated.
    size = numpy_dtype(datatype).itemsize if datatype != "BYTES" else 4
    refused(request(datatype, [2**62, 2**62], b"\x00" * size))
    refused(request(datatype, [2**40], b"\x00" * size))


def test_binary_data_output_reads_a_bool() -> None:
    message = request("FP32", [1], np.zeros(1, dtype=np.float32).tobytes())
    assert decode_infer_request(message).raw_output is True
    message.parameters["binary_data_output"].bool_param = False
    assert decode_infer_request(message).raw_output is False
    message.parameters["binary_data_output"].bool_param = True
    assert decode_infer_request(message).raw_output is True


@pytest.mark.parametrize("kind", ["int64_param", "string_param", "double_param", "uint64_param", None])
def test_binary_data_output_of_another_kind_is_refused(kind: str | None) -> None:
    message = request("FP32", [1], np.zeros(1, dtype=np.float32).tobytes())
    parameter = message.parameters["binary_data_output"]
    if kind is not None:
        setattr(parameter, kind, "true" if kind == "string_param" else 1)
    refused(message)
