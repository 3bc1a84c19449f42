"""The client's numpy <-> protobuf conversion, without a server.

Requests are checked with a decoder written here from the protocol's wire format (not with the codec itself), and
responses are built the way a server answers, so a mistake shared by encoder and decoder cannot cancel out.
"""

from __future__ import annotations

import struct
import subprocess
import sys
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray

from clients import ConduitError, ErrorCode, InferResult
from clients._codec import decode_infer_response, decode_stream_response, encode_infer_request
from inference_server.protocol import grpc_service_pb2 as pb

# Little-endian dtypes spelled out from the protocol, independent of contract.datatypes.
WIRE_DTYPE = {
    "BOOL": "|b1",
    "INT8": "|i1",
    "INT16": "<i2",
    "INT32": "<i4",
    "INT64": "<i8",
    "UINT8": "|u1",
    "UINT16": "<u2",
    "UINT32": "<u4",
    "UINT64": "<u8",
    "FP16": "<f2",
    "FP32": "<f4",
    "FP64": "<f8",
}
TYPED_FIELD = {
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


def _objects(items: list[Any]) -> NDArray[Any]:
    array = np.empty(len(items), dtype=object)
    array[:] = items
    return array


def _limits(dtype: type[np.integer[Any]]) -> NDArray[Any]:
    info = np.iinfo(dtype)
    return np.array([info.min, 0, 1, info.max], dtype=dtype)


SAMPLES: dict[str, NDArray[Any]] = {
    "BOOL": np.array([True, False, False, True]),
    "INT8": _limits(np.int8),
    "INT16": _limits(np.int16),
    "INT32": _limits(np.int32),
    "INT64": _limits(np.int64),
    "UINT8": _limits(np.uint8),
    "UINT16": _limits(np.uint16),
    "UINT32": _limits(np.uint32),
    "UINT64": _limits(np.uint64),
    "FP16": np.array([-1.5, 6e-8, 65504.0, np.inf, np.nan], dtype=np.float16),
    "FP32": np.array([-1.5, 1e-45, 3.4e38, -np.inf, np.nan], dtype=np.float32),
    "FP64": np.array([-1.5, 5e-324, 1.7e308, np.inf, np.nan], dtype=np.float64),
    "BYTES": _objects(["", "héllo wörld 🚀", b"", b"\x00\xff\x00", "日本語"]),
}
TYPED = [datatype for datatype in SAMPLES if datatype != "FP16"]


def wire_bytes(array: NDArray[Any]) -> NDArray[Any]:
    """What a BYTES tensor reads back as: an object array of bytes, str encoded as UTF-8."""
    items = [item.encode() if isinstance(item, str) else bytes(item) for item in array.reshape(-1).tolist()]
    return _objects(items).reshape(array.shape)


def server_decode(request: pb.ModelInferRequest) -> dict[str, NDArray[Any]]:
    """Read a request's tensors as a server does, straight from the wire format."""
    tensors = {}
    for position, tensor in enumerate(request.inputs):
        if request.raw_input_contents:
            buffer = request.raw_input_contents[position]
            if tensor.datatype == "BYTES":
                items, offset = [], 0
                while offset < len(buffer):
                    (length,) = struct.unpack_from("<I", buffer, offset)
                    items.append(buffer[offset + 4 : offset + 4 + length])
                    offset += 4 + length
                array = _objects(items)
            else:
                array = np.frombuffer(buffer, dtype=WIRE_DTYPE[tensor.datatype])
        else:
            values = list(getattr(tensor.contents, TYPED_FIELD[tensor.datatype]))
            array = _objects(values) if tensor.datatype == "BYTES" else np.array(values, WIRE_DTYPE[tensor.datatype])
        tensors[tensor.name] = array.reshape(tuple(tensor.shape))
    return tensors


def echo_response(request: pb.ModelInferRequest) -> pb.ModelInferResponse:
    """The response a server gives when each output is its input, in the same encoding."""
    outputs = []
    for tensor in request.inputs:
        output = pb.ModelInferResponse.InferOutputTensor(name=tensor.name, datatype=tensor.datatype, shape=tensor.shape)
        if tensor.HasField("contents"):
            output.contents.CopyFrom(tensor.contents)
        outputs.append(output)
    return pb.ModelInferResponse(
        model_name=request.model_name,
        model_version="7",
        id=request.id,
        outputs=outputs,
        raw_output_contents=list(request.raw_input_contents),
    )


def assert_same(actual: NDArray[Any], expected: NDArray[Any]) -> None:
    if expected.dtype.kind in "OSU":
        expected = wire_bytes(expected)
    assert actual.shape == expected.shape
    assert actual.dtype == expected.dtype
    np.testing.assert_array_equal(actual, expected)


def raw_response(datatype: str, shape: list[int], buffer: bytes) -> pb.ModelInferResponse:
    output = pb.ModelInferResponse.InferOutputTensor(name="y", datatype=datatype, shape=shape)
    return pb.ModelInferResponse(outputs=[output], raw_output_contents=[buffer])


def typed_response(datatype: str, shape: list[int], **contents: Any) -> pb.ModelInferResponse:
    output = pb.ModelInferResponse.InferOutputTensor(
        name="y", datatype=datatype, shape=shape, contents=pb.InferTensorContents(**contents)
    )
    return pb.ModelInferResponse(outputs=[output])


@pytest.mark.parametrize("datatype", list(SAMPLES))
def test_datatype_and_shape_come_from_the_array(datatype: str) -> None:
    array = SAMPLES[datatype]
    request = encode_infer_request("m", {"x": array})
    assert request.inputs[0].datatype == datatype
    assert list(request.inputs[0].shape) == list(array.shape)


@pytest.mark.parametrize("datatype", list(SAMPLES))
def test_raw_request_decodes_to_the_same_array(datatype: str) -> None:
    array = SAMPLES[datatype]
    request = encode_infer_request("m", {"x": array})
    assert len(request.raw_input_contents) == 1
    assert not request.inputs[0].HasField("contents")
    assert_same(server_decode(request)["x"], array)


@pytest.mark.parametrize("datatype", TYPED)
def test_typed_request_decodes_to_the_same_array(datatype: str) -> None:
    array = SAMPLES[datatype]
    request = encode_infer_request("m", {"x": array}, raw=False)
    assert list(request.raw_input_contents) == []
    assert request.inputs[0].contents.ListFields()[0][0].name == TYPED_FIELD[datatype]
    assert_same(server_decode(request)["x"], array)


@pytest.mark.parametrize("raw", [True, False])
@pytest.mark.parametrize("datatype", TYPED)
def test_response_decodes_to_the_same_array(datatype: str, raw: bool) -> None:
    array = SAMPLES[datatype]
    result = decode_infer_response(echo_response(encode_infer_request("m", {"x": array}, raw=raw)))
    assert_same(result.as_numpy("x"), array)


def test_fp16_sends_a_typed_request_raw_as_a_whole() -> None:
    # FP16 has no typed field, and raw and typed inputs cannot be mixed in one request.
    inputs = {"h": SAMPLES["FP16"], "f": SAMPLES["FP32"]}
    request = encode_infer_request("m", inputs, raw=False)
    assert len(request.raw_input_contents) == 2
    assert not any(tensor.HasField("contents") for tensor in request.inputs)
    decoded = server_decode(request)
    assert_same(decoded["h"], inputs["h"])
    assert_same(decoded["f"], inputs["f"])
    result = decode_infer_response(echo_response(request))
    assert_same(result.as_numpy("h"), inputs["h"])


@pytest.mark.parametrize("raw", [True, False])
@pytest.mark.parametrize("shape", [(), (0,), (3, 0, 2), (2, 3), (1, 1, 1, 4)])
@pytest.mark.parametrize("datatype", ["BOOL", "INT8", "UINT64", "FP64", "BYTES"])
def test_shapes_survive_request_and_response(datatype: str, shape: tuple[int, ...], raw: bool) -> None:
    count = int(np.prod(shape))
    if datatype == "BYTES":
        array = _objects([f"é{i}" * (i % 3) for i in range(count)]).reshape(shape)
    else:
        array = np.arange(count).astype(WIRE_DTYPE[datatype]).reshape(shape)
    request = encode_infer_request("m", {"x": array}, raw=raw)
    assert list(request.inputs[0].shape) == list(shape)
    assert_same(server_decode(request)["x"], array)
    assert_same(decode_infer_response(echo_response(request)).as_numpy("x"), array)


def test_several_inputs_keep_their_order_and_outputs_match_by_index() -> None:
    inputs = {name: SAMPLES[name] for name in ["BYTES", "FP16", "INT8", "BOOL", "UINT32"]}
    request = encode_infer_request("m", inputs)
    assert [tensor.name for tensor in request.inputs] == list(inputs)
    result = decode_infer_response(echo_response(request))
    assert list(result.outputs) == list(inputs)
    for name, array in inputs.items():
        assert_same(result.as_numpy(name), array)


def test_raw_contents_are_little_endian_and_c_order() -> None:
    request = encode_infer_request("m", {"x": np.array([1, 256], dtype=np.int32)})
    assert request.raw_input_contents[0] == b"\x01\x00\x00\x00\x00\x01\x00\x00"

    big_endian = np.array([1, 256], dtype=">i4")
    request = encode_infer_request("m", {"x": big_endian})
    assert request.inputs[0].datatype == "INT32"
    assert request.raw_input_contents[0] == b"\x01\x00\x00\x00\x00\x01\x00\x00"

    fortran = np.asfortranarray(np.arange(6, dtype=np.uint8).reshape(2, 3))
    request = encode_infer_request("m", {"x": fortran[:, ::-1]})
    assert request.raw_input_contents[0] == bytes([2, 1, 0, 5, 4, 3])


def test_bytes_elements_are_length_prefixed() -> None:
    request = encode_infer_request("m", {"x": _objects(["", "é", b"ab"])})
    assert request.raw_input_contents[0] == b"\x00\x00\x00\x00" + b"\x02\x00\x00\x00\xc3\xa9" + b"\x02\x00\x00\x00ab"


def test_str_and_fixed_width_arrays_are_bytes() -> None:
    unicode = np.array([["", "ü"], ["ab", "日本"]])
    bytes_ = np.array([b"a", b"", b"xyz"])
    request = encode_infer_request("m", {"u": unicode, "s": bytes_})
    assert [tensor.datatype for tensor in request.inputs] == ["BYTES", "BYTES"]
    decoded = server_decode(request)
    assert_same(decoded["u"], unicode)
    assert_same(decoded["s"], bytes_)


def test_bool_raw_contents_are_one_byte_per_element() -> None:
    request = encode_infer_request("m", {"x": np.array([True, False, True])})
    assert request.raw_input_contents[0] == b"\x01\x00\x01"
    result = decode_infer_response(raw_response("BOOL", [3], b"\x01\x00\x02"))
    assert_same(result.as_numpy("y"), np.array([True, False, True]))


def test_request_carries_model_version_id_outputs_and_parameters() -> None:
    request = encode_infer_request(
        "iris",
        {"x": SAMPLES["FP32"]},
        version="3",
        outputs=["label", "probabilities"],
        request_id="req-1",
        parameters={"flag": True, "small": -2, "huge": 2**64 - 1, "ratio": 0.5, "name": "a", "np": np.int32(4)},
    )
    assert (request.model_name, request.model_version, request.id) == ("iris", "3", "req-1")
    assert [output.name for output in request.outputs] == ["label", "probabilities"]
    kinds = {key: (value.WhichOneof("parameter_choice"), value) for key, value in request.parameters.items()}
    assert kinds["flag"][0] == "bool_param" and kinds["flag"][1].bool_param is True
    assert kinds["small"][0] == "int64_param" and kinds["small"][1].int64_param == -2
    assert kinds["huge"][0] == "uint64_param" and kinds["huge"][1].uint64_param == 2**64 - 1
    assert kinds["ratio"][0] == "double_param" and kinds["ratio"][1].double_param == 0.5
    assert kinds["name"][0] == "string_param" and kinds["name"][1].string_param == "a"
    assert kinds["np"][0] == "int64_param" and kinds["np"][1].int64_param == 4


def test_response_identity_and_parameters_are_decoded() -> None:
    response = echo_response(encode_infer_request("iris", {"x": SAMPLES["INT64"]}, request_id="r9"))
    response.parameters["sequence_end"].bool_param = True
    response.parameters["count"].int64_param = 5
    result = decode_infer_response(response)
    assert isinstance(result, InferResult)
    assert (result.model_name, result.model_version, result.id) == ("iris", "7", "r9")
    assert result.parameters == {"sequence_end": True, "count": 5}


@pytest.mark.parametrize(
    "value",
    [
        np.array([1 + 2j]),
        np.array(["2024-01-01"], dtype="datetime64[D]"),
        _objects(["ok", None]),
        _objects([1.5]),
        _objects(["\ud800"]),
    ],
)
def test_unencodable_inputs_are_invalid_arguments(value: NDArray[Any]) -> None:
    with pytest.raises(ConduitError) as raised:
        encode_infer_request("m", {"x": value})
    assert raised.value.code is ErrorCode.INVALID_ARGUMENT


@pytest.mark.parametrize("value", [2**64, -(2**63) - 1, [1], None])
def test_unencodable_parameters_are_invalid_arguments(value: Any) -> None:
    with pytest.raises(ConduitError) as raised:
        encode_infer_request("m", {}, parameters={"p": value})
    assert raised.value.code is ErrorCode.INVALID_ARGUMENT


@pytest.mark.parametrize(
    "response",
    [
        raw_response("FP32", [2], b"\x00" * 7),
        raw_response("INT64", [-1], b""),
        raw_response("COMPLEX", [1], b"\x00" * 8),
        raw_response("BYTES", [1], b"\x05\x00\x00\x00abc"),
        raw_response("BYTES", [2], b"\x01\x00\x00\x00a"),
        raw_response("BYTES", [1], b"\x01\x00\x00\x00ab"),
        pb.ModelInferResponse(
            outputs=[pb.ModelInferResponse.InferOutputTensor(name=n, datatype="INT8", shape=[0]) for n in "ab"],
            raw_output_contents=[b""],
        ),
        typed_response("FP32", [3], fp32_contents=[1.0, 2.0]),
        typed_response("FP16", [1]),
        typed_response("INT8", [1], int_contents=[300]),
    ],
)
def test_malformed_responses_are_internal_errors(response: pb.ModelInferResponse) -> None:
    with pytest.raises(ConduitError) as raised:
        decode_infer_response(response)
    assert raised.value.code is ErrorCode.INTERNAL


def test_missing_output_is_not_found() -> None:
    result = decode_infer_response(raw_response("UINT8", [1], b"\x07"))
    with pytest.raises(ConduitError) as raised:
        result.as_numpy("nope")
    assert raised.value.code is ErrorCode.NOT_FOUND


def test_stream_answers_become_results_or_errors() -> None:
    ok = pb.ModelStreamInferResponse(infer_response=raw_response("INT16", [2], b"\x01\x00\xff\xff"))
    result = decode_stream_response(ok)
    assert isinstance(result, InferResult)
    assert_same(result.as_numpy("y"), np.array([1, -1], dtype=np.int16))

    failed = pb.ModelStreamInferResponse(error_message="unknown model", infer_response=pb.ModelInferResponse(id="3"))
    error = decode_stream_response(failed)
    assert isinstance(error, ConduitError)
    assert error.code is ErrorCode.INVALID_ARGUMENT

    garbled = pb.ModelStreamInferResponse(infer_response=raw_response("FP64", [1], b"\x00"))
    error = decode_stream_response(garbled)
    assert isinstance(error, ConduitError)
    assert error.code is ErrorCode.INTERNAL


def test_importing_clients_stays_light() -> None:
    # A fresh interpreter: this test process may already hold the heavy modules for other tests.
    code = (
        "import sys, clients\n"
        "heavy = {'onnxruntime', 'numba', 'tritonclient', 'sklearn', 'onnx', 'polars', 'sqlalchemy'}\n"
        "print(sorted(heavy & {name.split('.')[0] for name in sys.modules}))\n"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert loaded == "[]"
