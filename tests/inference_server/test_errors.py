"""Every way a request can be wrong gets its own gRPC status, and never a stack trace."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import grpc
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from contract.datatypes import datatype_of
from contract.status import MAX_DETAILS_BYTES
from inference_server.protocol import grpc_service_pb2 as pb
from inference_server.protocol import grpc_service_pb2_grpc as pb_grpc
from trainers.onnx_export import write_model_version

Stub = pb_grpc.GRPCInferenceServiceStub
MIB = 1024 * 1024


def infer_request(model: str, x: np.ndarray, *, name: str = "x", version: str = "") -> pb.ModelInferRequest:
    """A valid-looking request with ``x`` as one raw input."""
    request = pb.ModelInferRequest(model_name=model, model_version=version)
    request.inputs.add(name=name, datatype=datatype_of(x), shape=x.shape)
    request.raw_input_contents.append(x.tobytes())
    return request


def row(values: int = 3, dtype: type = np.float32) -> np.ndarray:
    return np.arange(values, dtype=dtype).reshape(1, values)


async def status(call: grpc.aio.UnaryUnaryCall) -> grpc.StatusCode:
    """The status a call ended with; a failed call's details must read like a message, not a stack trace."""
    try:
        await call
    except grpc.aio.AioRpcError as error:
        assert "Traceback" not in (error.details() or "")
        assert "Traceback" not in (error.debug_error_string() or "")
        return error.code()
    return grpc.StatusCode.OK


def two_inputs_model() -> bytes:
    """``a`` (FP32 [batch, 3]) and ``b`` (INT64 [batch, 2]) answered unchanged as ``ya`` and ``yb``."""
    graph = helper.make_graph(
        [helper.make_node("Identity", ["a"], ["ya"]), helper.make_node("Identity", ["b"], ["yb"])],
        "two_inputs",
        [
            helper.make_tensor_value_info("a", TensorProto.FLOAT, ["batch", 3]),
            helper.make_tensor_value_info("b", TensorProto.INT64, ["batch", 2]),
        ],
        [
            helper.make_tensor_value_info("ya", TensorProto.FLOAT, ["batch", 3]),
            helper.make_tensor_value_info("yb", TensorProto.INT64, ["batch", 2]),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


def two_inputs_request(a: np.ndarray, b: np.ndarray) -> pb.ModelInferRequest:
    request = infer_request("two_inputs", a, name="a")
    request.inputs.add(name="b", datatype=datatype_of(b), shape=b.shape)
    request.raw_input_contents.append(b.tobytes())
    return request


@pytest.fixture
def repository(repository: Path) -> Path:
    """The shared repository plus a two-input model, a model that cannot load and one whose queue holds one request."""
    identity = (repository / "identity_fp32" / "1" / "model.onnx").read_bytes()
    write_model_version(repository, "two_inputs", 1, two_inputs_model())
    write_model_version(repository, "broken", 1, b"these bytes are not an ONNX model")
    # The one queued request is held for up to a second hoping for a fuller batch: the rest of a burst must be
    # refused at once rather than wait.
    write_model_version(repository, "tiny_queue", 1, identity, {"max_queue_size": 1, "max_queue_delay_us": 1_000_000})
    return repository


async def test_wrong_shape(stub: Stub) -> None:
    assert await status(stub.ModelInfer(infer_request("identity_fp32", row(4)))) == grpc.StatusCode.INVALID_ARGUMENT


async def test_wrong_rank(stub: Stub) -> None:
    flat = np.zeros(3, dtype=np.float32)
    assert await status(stub.ModelInfer(infer_request("identity_fp32", flat))) == grpc.StatusCode.INVALID_ARGUMENT


async def test_wrong_datatype(stub: Stub) -> None:
    request = infer_request("identity_fp32", row(dtype=np.float64))
    assert await status(stub.ModelInfer(request)) == grpc.StatusCode.INVALID_ARGUMENT


async def test_missing_input(stub: Stub) -> None:
    request = pb.ModelInferRequest(model_name="identity_fp32")
    assert await status(stub.ModelInfer(request)) == grpc.StatusCode.INVALID_ARGUMENT


async def test_input_under_another_name(stub: Stub) -> None:
    request = infer_request("identity_fp32", row(), name="z")
    assert await status(stub.ModelInfer(request)) == grpc.StatusCode.INVALID_ARGUMENT


async def test_unexpected_extra_input(stub: Stub) -> None:
    request = infer_request("identity_fp32", row())
    request.inputs.add(name="z", datatype="FP32", shape=[1, 3])
    request.raw_input_contents.append(row().tobytes())
    assert await status(stub.ModelInfer(request)) == grpc.StatusCode.INVALID_ARGUMENT


async def test_same_input_twice(stub: Stub) -> None:
    request = infer_request("identity_fp32", row())
    request.inputs.add(name="x", datatype="FP32", shape=[1, 3])
    request.raw_input_contents.append(row().tobytes())
    assert await status(stub.ModelInfer(request)) == grpc.StatusCode.INVALID_ARGUMENT


async def test_two_inputs_of_different_datatypes_are_each_checked_against_their_own_spec(stub: Stub) -> None:
    a = np.array([[1, 2, 3], [4, 5, 6]], dtype=np.float32)
    b = np.array([[7, 8], [9, 10]], dtype=np.int64)
    response = await stub.ModelInfer(two_inputs_request(a, b))

    answers = {o.name: i for i, o in enumerate(response.outputs)}
    np.testing.assert_array_equal(
        np.frombuffer(response.raw_output_contents[answers["ya"]], dtype=np.float32).reshape(2, 3), a
    )
    np.testing.assert_array_equal(
        np.frombuffer(response.raw_output_contents[answers["yb"]], dtype=np.int64).reshape(2, 2), b
    )


async def test_wrong_datatype_of_the_second_input(stub: Stub) -> None:
    request = two_inputs_request(np.zeros((1, 3), dtype=np.float32), np.zeros((1, 2), dtype=np.int32))
    assert await status(stub.ModelInfer(request)) == grpc.StatusCode.INVALID_ARGUMENT


async def test_inputs_disagreeing_on_the_batch_size(stub: Stub) -> None:
    request = two_inputs_request(np.zeros((2, 3), dtype=np.float32), np.zeros((1, 2), dtype=np.int64))
    assert await status(stub.ModelInfer(request)) == grpc.StatusCode.INVALID_ARGUMENT


async def test_raw_size_mismatch(stub: Stub) -> None:
    request = infer_request("identity_fp32", row())
    request.raw_input_contents[0] = request.raw_input_contents[0][:-4]
    assert await status(stub.ModelInfer(request)) == grpc.StatusCode.INVALID_ARGUMENT


async def test_raw_buffer_count_differs_from_input_count(stub: Stub) -> None:
    request = infer_request("identity_fp32", row())
    request.raw_input_contents.append(row().tobytes())
    assert await status(stub.ModelInfer(request)) == grpc.StatusCode.INVALID_ARGUMENT


async def test_typed_and_raw_contents_mixed(stub: Stub) -> None:
    request = infer_request("identity_fp32", row())
    request.inputs[0].contents.fp32_contents.extend([0.0, 1.0, 2.0])
    assert await status(stub.ModelInfer(request)) == grpc.StatusCode.INVALID_ARGUMENT


async def test_typed_contents_count_differs_from_shape(stub: Stub) -> None:
    request = pb.ModelInferRequest(model_name="identity_fp32")
    request.inputs.add(name="x", datatype="FP32", shape=[1, 3]).contents.fp32_contents.extend([1.0, 2.0])
    assert await status(stub.ModelInfer(request)) == grpc.StatusCode.INVALID_ARGUMENT


async def test_typed_contents_in_the_wrong_field(stub: Stub) -> None:
    request = pb.ModelInferRequest(model_name="identity_fp32")
    request.inputs.add(name="x", datatype="FP32", shape=[1, 3]).contents.int_contents.extend([1, 2, 3])
    assert await status(stub.ModelInfer(request)) == grpc.StatusCode.INVALID_ARGUMENT


async def test_int8_typed_value_out_of_range(stub: Stub) -> None:
    request = pb.ModelInferRequest(model_name="identity_int8")
    request.inputs.add(name="x", datatype="INT8", shape=[1, 3]).contents.int_contents.extend([1, -2, 300])
    assert await status(stub.ModelInfer(request)) == grpc.StatusCode.INVALID_ARGUMENT


async def test_int8_typed_values_in_range_are_accepted(stub: Stub) -> None:
    request = pb.ModelInferRequest(model_name="identity_int8")
    request.inputs.add(name="x", datatype="INT8", shape=[1, 3]).contents.int_contents.extend([-128, 0, 127])
    response = await stub.ModelInfer(request)
    answer = np.frombuffer(response.raw_output_contents[0], dtype=np.int8)
    np.testing.assert_array_equal(answer, [-128, 0, 127])


async def test_fp16_sent_typed(stub: Stub) -> None:
    request = pb.ModelInferRequest(model_name="identity_fp16")
    request.inputs.add(name="x", datatype="FP16", shape=[1, 3]).contents.fp32_contents.extend([0.5, 1.0, 2.0])
    assert await status(stub.ModelInfer(request)) == grpc.StatusCode.INVALID_ARGUMENT


async def test_unknown_datatype(stub: Stub) -> None:
    request = infer_request("identity_fp32", row())
    request.inputs[0].datatype = "FP8"
    assert await status(stub.ModelInfer(request)) == grpc.StatusCode.INVALID_ARGUMENT


async def test_negative_dimension(stub: Stub) -> None:
    request = infer_request("identity_fp32", row())
    request.inputs[0].shape[:] = [-1, 3]
    assert await status(stub.ModelInfer(request)) == grpc.StatusCode.INVALID_ARGUMENT


async def test_batch_above_max_batch_size_is_served(stub: Stub) -> None:
    # forest's config.json sets max_batch_size 64: a larger request is split, not refused.
    rows = np.zeros((65, 8), dtype=np.float32)
    assert await status(stub.ModelInfer(infer_request("forest", rows, name="input"))) == grpc.StatusCode.OK


async def test_unknown_requested_output(stub: Stub) -> None:
    request = infer_request("identity_fp32", row())
    request.outputs.add(name="nope")
    assert await status(stub.ModelInfer(request)) == grpc.StatusCode.INVALID_ARGUMENT


async def test_unknown_model(stub: Stub) -> None:
    assert await status(stub.ModelInfer(infer_request("no_such_model", row()))) == grpc.StatusCode.NOT_FOUND


async def test_unknown_version(stub: Stub) -> None:
    request = infer_request("identity_fp32", row(), version="7")
    assert await status(stub.ModelInfer(request)) == grpc.StatusCode.NOT_FOUND


async def test_a_huge_model_name_is_still_a_precise_status_with_bounded_details(stub: Stub) -> None:
    # Echoed whole, the name would exceed gRPC's metadata limit: the caller would see RESOURCE_EXHAUSTED instead.
    name = "m" * 10_000
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stub.ModelMetadata(pb.ModelMetadataRequest(name=name))
    assert refused.value.code() == grpc.StatusCode.NOT_FOUND
    assert len((refused.value.details() or "").encode()) <= MAX_DETAILS_BYTES
    stream = stub.ModelStreamInfer(iter([infer_request(name, row())]))
    answer = await stream.read()
    assert answer.error_message.startswith("[NOT_FOUND]") and len(answer.error_message.encode()) <= MAX_DETAILS_BYTES
    stream.cancel()


async def test_metadata_of_unknown_model(stub: Stub) -> None:
    assert await status(stub.ModelMetadata(pb.ModelMetadataRequest(name="no_such_model"))) == (
        grpc.StatusCode.NOT_FOUND
    )


async def test_load_of_a_model_not_in_the_repository(stub: Stub) -> None:
    request = pb.RepositoryModelLoadRequest(model_name="no_such_model")
    assert await status(stub.RepositoryModelLoad(request)) == grpc.StatusCode.NOT_FOUND


async def test_full_queue_answers_resource_exhausted(stub: Stub) -> None:
    calls = [stub.ModelInfer(infer_request("tiny_queue", row())) for _ in range(16)]
    codes = await asyncio.gather(*(status(call) for call in calls))

    assert grpc.StatusCode.RESOURCE_EXHAUSTED in codes
    assert grpc.StatusCode.OK in codes  # the request that held the queue is answered, not dropped
    assert set(codes) <= {grpc.StatusCode.OK, grpc.StatusCode.RESOURCE_EXHAUSTED}


async def test_model_that_failed_to_load_is_unavailable_with_a_reason(stub: Stub) -> None:
    request = infer_request("broken", row())
    assert await status(stub.ModelInfer(request)) == grpc.StatusCode.UNAVAILABLE
    assert await status(stub.ModelInfer(infer_request("broken", row(), version="1"))) == grpc.StatusCode.UNAVAILABLE

    index = await stub.RepositoryIndex(pb.RepositoryIndexRequest())
    (entry,) = [m for m in index.models if m.name == "broken"]
    assert entry.version == "1"
    assert entry.state == "UNAVAILABLE"
    assert entry.reason
    assert "Traceback" not in entry.reason
    ready = await stub.ModelReady(pb.ModelReadyRequest(name="broken"))
    assert not ready.ready
    # An explicit load retries and fails again, with a status of its own.
    load = stub.RepositoryModelLoad(pb.RepositoryModelLoadRequest(model_name="broken"))
    assert await status(load) == grpc.StatusCode.FAILED_PRECONDITION


async def test_oversized_message_answers_resource_exhausted(start_server, repository: Path, connect) -> None:
    _, port, _ = await start_server(repository, max_message_bytes=MIB)
    stub = connect(port)
    rows = np.zeros((2 * MIB // 12, 3), dtype=np.float32)  # 2 MiB of FP32 triples

    assert await status(stub.ModelInfer(infer_request("identity_fp32", rows))) == grpc.StatusCode.RESOURCE_EXHAUSTED
    # The server is still fine for the next caller.
    assert await status(stub.ModelInfer(infer_request("identity_fp32", row()))) == grpc.StatusCode.OK


# --- shapes, outputs and parameters found by fuzzing request decoding (tests/inference_server/fuzz) ---------------

HUGE = 2**62


def assert_quiet(caplog: pytest.LogCaptureFixture) -> None:
    """A refused request logs at most one line, and never a traceback."""
    assert len([r for r in caplog.records if r.levelno >= logging.WARNING]) <= 1
    assert not [r for r in caplog.records if r.exc_info]


@pytest.mark.parametrize("raw", [True, False], ids=["raw", "typed"])
@pytest.mark.parametrize("datatype", ["FP32", "BYTES"])
async def test_empty_tensor_whose_other_dimensions_no_array_can_index(
    stub: Stub, caplog: pytest.LogCaptureFixture, datatype: str, raw: bool
) -> None:
    # No element, so no size check fails; numpy still refuses to build an array of this shape.
    request = pb.ModelInferRequest(model_name=f"identity_{datatype.lower()}")
    request.inputs.add(name="x", datatype=datatype, shape=[0, HUGE, HUGE])
    if raw:
        request.raw_input_contents.append(b"")

    assert await status(stub.ModelInfer(request)) == grpc.StatusCode.INVALID_ARGUMENT
    assert_quiet(caplog)


async def test_empty_tensor_with_huge_dimensions_in_a_stream(stub: Stub, caplog: pytest.LogCaptureFixture) -> None:
    request = pb.ModelInferRequest(model_name="identity_fp32", id="huge")
    request.inputs.add(name="x", datatype="FP32", shape=[1, 3, HUGE, HUGE, 0])
    request.raw_input_contents.append(b"")

    (answer,) = [response async for response in stub.ModelStreamInfer(iter([request]))]

    assert answer.error_message.startswith("[INVALID_ARGUMENT]")
    assert answer.infer_response.id == "huge"
    assert_quiet(caplog)


async def test_more_dimensions_than_a_tensor_can_have(stub: Stub, caplog: pytest.LogCaptureFixture) -> None:
    request = pb.ModelInferRequest(model_name="identity_fp32")
    request.inputs.add(name="x", datatype="FP32", shape=[1] * 65)
    request.raw_input_contents.append(np.zeros(1, dtype=np.float32).tobytes())

    assert await status(stub.ModelInfer(request)) == grpc.StatusCode.INVALID_ARGUMENT
    assert_quiet(caplog)


async def test_an_output_requested_twice(stub: Stub, caplog: pytest.LogCaptureFixture) -> None:
    # Each repeat would add another copy of the output to the answer: a short request could ask for gigabytes.
    request = two_inputs_request(np.zeros((1, 3), dtype=np.float32), np.zeros((1, 2), dtype=np.int64))
    for name in ("yb", "ya", "yb"):
        request.outputs.add(name=name)

    assert await status(stub.ModelInfer(request)) == grpc.StatusCode.INVALID_ARGUMENT
    assert_quiet(caplog)
    del request.outputs[-1]
    response = await stub.ModelInfer(request)
    assert [output.name for output in response.outputs] == ["yb", "ya"]


async def test_binary_data_output_takes_a_bool(stub: Stub, caplog: pytest.LogCaptureFixture) -> None:
    request = infer_request("identity_fp32", row())
    request.parameters["binary_data_output"].int64_param = 1

    assert await status(stub.ModelInfer(request)) == grpc.StatusCode.INVALID_ARGUMENT
    assert_quiet(caplog)
    request.parameters["binary_data_output"].bool_param = False
    response = await stub.ModelInfer(request)
    assert not response.raw_output_contents
    assert list(response.outputs[0].contents.fp32_contents) == [0.0, 1.0, 2.0]
