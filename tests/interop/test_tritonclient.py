"""`conduit serve` driven by Triton's own Python client (`tritonclient.grpc`), unchanged.

Every answer is checked against onnxruntime run in this process on the same rows, every datatype makes a round trip
through an identity model, and the Triton extensions tritonclient calls (metadata, config, statistics, repository,
streaming) answer the way it expects. Errors are checked by their gRPC status, never by their text alone.
"""

from __future__ import annotations

import json
import queue
import shutil
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import onnxruntime as ort
import pytest
import tritonclient.grpc as triton
from onnx import TensorProto, helper
from tritonclient.grpc import model_config_pb2, service_pb2, service_pb2_grpc
from tritonclient.utils import InferenceServerException

from trainers.onnx_export import write_model_version

pytestmark = pytest.mark.timeout(120)

Connect = Callable[[str], triton.InferenceServerClient]

CALLBACK_TIMEOUT = 30.0
INPUT = "input"
OUTPUTS = ("label", "probabilities")
# Every protocol datatype; the shared `repository` fixture serves identity_<type> for each.
DATATYPES = (
    *("BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64"),
    *("FP16", "FP32", "FP64", "BYTES"),
)
# Empty, plain ASCII, multi-byte UTF-8, an embedded NUL, a long one.
BYTES_VALUES = (b"", b"plain", "héllo wörld ✓ 日本語 🚀".encode(), b"a\x00b", b"x" * 1000, "ß".encode())
NOT_UTF8 = b"\xff\xfe not utf-8 \x80"
# Typed-contents field of each datatype (FP16 has none: it travels raw only).
CONTENTS_FIELD = {
    "BOOL": "bool_contents",
    "UINT8": "uint_contents",
    "UINT16": "uint_contents",
    "UINT32": "uint_contents",
    "UINT64": "uint64_contents",
    "INT8": "int_contents",
    "INT16": "int_contents",
    "INT32": "int_contents",
    "INT64": "int64_contents",
    "FP32": "fp32_contents",
    "FP64": "fp64_contents",
    "BYTES": "bytes_contents",
}
NP_DTYPE = {
    "BOOL": np.bool_,
    "UINT8": np.uint8,
    "UINT16": np.uint16,
    "UINT32": np.uint32,
    "UINT64": np.uint64,
    "INT8": np.int8,
    "INT16": np.int16,
    "INT32": np.int32,
    "INT64": np.int64,
    "FP16": np.float16,
    "FP32": np.float32,
    "FP64": np.float64,
    "BYTES": np.object_,
}


# -- helpers ---


def _input(name: str, array: np.ndarray, datatype: str) -> triton.InferInput:
    tensor = triton.InferInput(name, list(array.shape), datatype)
    tensor.set_data_from_numpy(array)
    return tensor


def _rows_input(rows: np.ndarray) -> list[triton.InferInput]:
    return [_input(INPUT, rows, "FP32")]


def _status(call: Callable[[], object]) -> str | None:
    """Run ``call`` and return the gRPC status tritonclient reports for its failure."""
    with pytest.raises(InferenceServerException) as caught:
        call()
    status: str | None = caught.value.status()
    return status


class Reference:
    """onnxruntime in this process, on the very ONNX bytes the server loads."""

    def __init__(self, onnx: bytes) -> None:
        self.session = ort.InferenceSession(onnx, providers=["CPUExecutionProvider"])

    def __call__(self, rows: np.ndarray) -> dict[str, np.ndarray]:
        names = [o.name for o in self.session.get_outputs()]
        return dict(zip(names, self.session.run(names, {INPUT: rows}), strict=True))


def _check_against(reference: Reference, rows: np.ndarray, result: Any, what: str) -> None:
    expected = reference(rows)
    labels = result.as_numpy("label")
    probabilities = result.as_numpy("probabilities")
    assert labels is not None and probabilities is not None, f"{what}: outputs missing"
    assert labels.dtype == np.int64 and probabilities.dtype == np.float32, what
    assert labels.shape == expected["label"].shape, what
    assert probabilities.shape == expected["probabilities"].shape, what
    np.testing.assert_array_equal(labels, expected["label"], err_msg=what)
    np.testing.assert_allclose(probabilities, expected["probabilities"], rtol=0, atol=1e-6, err_msg=what)


def _copy_model(repository: Path, source: str, target: str, config: dict[str, Any]) -> None:
    shutil.copytree(repository / source, repository / target)
    (repository / target / "config.json").write_text(json.dumps(config))


Answer = tuple[str, Any, InferenceServerException | None]


class Collector:
    """Callback target for async_infer and streams: (request id, result, error) in arrival order."""

    def __init__(self) -> None:
        self.answers: queue.Queue[Answer] = queue.Queue()

    def callback_for(self, request_id: str) -> Callable[[Any, InferenceServerException | None], None]:
        def callback(result: Any, error: InferenceServerException | None) -> None:
            self.answers.put((request_id, result, error))

        return callback

    def stream_callback(self, result: Any, error: InferenceServerException | None) -> None:
        # tritonclient drops the response of a failed stream request, id included: errors are known by position.
        self.answers.put((result.get_response().id if result is not None else "", result, error))

    def take(self, count: int) -> list[Answer]:
        return [self.answers.get(timeout=CALLBACK_TIMEOUT) for _ in range(count)]


@pytest.fixture(scope="module")
def references(classifier: Any, forest: Any) -> dict[str, tuple[Reference, np.ndarray]]:
    return {
        "classifier": (Reference(classifier.onnx), classifier.rows),
        "forest": (Reference(forest.onnx), forest.rows),
    }


def _sample(datatype: str, shape: tuple[int, ...], seed: int) -> np.ndarray:
    """Values that exercise the whole range of ``datatype``, extremes and special values included."""
    rng = np.random.default_rng(seed)
    count = int(np.prod(shape))
    if datatype == "BYTES":
        flat = np.empty(count, dtype=object)
        flat[:] = [BYTES_VALUES[(seed + i) % len(BYTES_VALUES)] for i in range(count)]
        return flat.reshape(shape)
    dtype = np.dtype(NP_DTYPE[datatype])
    if datatype == "BOOL":
        flat = rng.random(count) > 0.5
        flat[:2] = [True, False]
    elif dtype.kind in "iu":
        info = np.iinfo(dtype.type)  # type: ignore[type-var]
        flat = rng.integers(info.min, info.max, size=count, dtype=dtype, endpoint=True)
        flat[:2] = [info.min, info.max]
    else:
        finfo = np.finfo(dtype)
        flat = (rng.standard_normal(count) * 1000).astype(dtype)
        specials = [-0.0, np.inf, np.nan, -np.inf, finfo.smallest_subnormal, finfo.max, finfo.min]
        flat[: min(count, len(specials))] = np.array(specials[:count], dtype=dtype)
    return np.asarray(flat, dtype=dtype).reshape(shape)


# -- inference ---


def test_outputs_match_onnxruntime_at_every_batch_size(
    repository: Path, start_serve: Any, connect: Connect, references: dict[str, tuple[Reference, np.ndarray]]
) -> None:
    client = connect(start_serve(repository).target)
    requested = [triton.InferRequestedOutput(name) for name in OUTPUTS]
    for model, (reference, rows) in references.items():
        for size in range(1, 65):
            start = (size * 37) % (len(rows) - size)
            batch = rows[start : start + size]
            result = client.infer(model, _rows_input(batch), outputs=requested, request_id=f"{model}-{size}")
            response = result.get_response()
            assert (response.model_name, response.model_version, response.id) == (model, "1", f"{model}-{size}")
            _check_against(reference, batch, result, f"{model} batch {size}")
        # No outputs named: every output comes back.
        result = client.infer(model, _rows_input(rows[:3]))
        _check_against(reference, rows[:3], result, f"{model} all outputs")


def test_only_the_requested_outputs_come_back(
    repository: Path, start_serve: Any, connect: Connect, references: dict[str, tuple[Reference, np.ndarray]]
) -> None:
    client = connect(start_serve(repository).target)
    reference, rows = references["classifier"]
    result = client.infer("classifier", _rows_input(rows[:4]), outputs=[triton.InferRequestedOutput("probabilities")])
    assert [o.name for o in result.get_response().outputs] == ["probabilities"]
    assert result.as_numpy("label") is None
    np.testing.assert_allclose(result.as_numpy("probabilities"), reference(rows[:4])["probabilities"], atol=1e-6)


def test_concurrent_requests_batched_together_each_get_their_own_rows(
    repository: Path, start_serve: Any, connect: Connect, references: dict[str, tuple[Reference, np.ndarray]]
) -> None:
    # A copy of the classifier that holds requests up to 200 ms for a full batch: there, batching is certain.
    _copy_model(repository, "classifier", "classifier_delayed", {"max_queue_delay_us": 200_000})
    client = connect(start_serve(repository).target)
    models = {"classifier": references["classifier"], "classifier_delayed": references["classifier"]}
    models["forest"] = references["forest"]
    collector = Collector()
    sent: dict[str, tuple[str, np.ndarray]] = {}
    for model, (_, rows) in models.items():
        offset = 0
        for i in range(64):
            size = 1 + i % 5  # uneven sizes, so splitting a batch back has to get every boundary right
            request_id = f"{model}/{i}"
            sent[request_id] = (model, rows[offset : offset + size])
            offset += size
    for request_id, (model, rows) in sent.items():
        client.async_infer(model, _rows_input(rows), collector.callback_for(request_id), request_id=request_id)
    answers = collector.take(len(sent))
    errors = [(request_id, error) for request_id, _, error in answers if error is not None]
    assert errors == []
    assert sorted(request_id for request_id, _, _ in answers) == sorted(sent)
    for request_id, result, _ in answers:
        model, rows = sent[request_id]
        assert result.get_response().id == request_id
        _check_against(models[model][0], rows, result, request_id)
    stats = client.get_inference_statistics("classifier_delayed").model_stats[0]
    assert stats.inference_stats.success.count == 64
    assert stats.inference_count == sum(len(rows) for model, rows in sent.values() if model == "classifier_delayed")
    assert stats.execution_count < 64, "the delayed model executed every request alone: nothing was batched"
    assert max(b.batch_size for b in stats.batch_stats) > 5


@pytest.mark.parametrize("batch", [1, 5])
def test_every_datatype_round_trips_through_identity(
    repository: Path, start_serve: Any, connect: Connect, batch: int
) -> None:
    client = connect(start_serve(repository).target)
    failures: list[tuple[Any, ...]] = []
    for seed, datatype in enumerate(DATATYPES):
        model = f"identity_{datatype.lower()}"
        sent = _sample(datatype, (batch, 3), seed)
        result = client.infer(model, [_input("x", sent, datatype)], outputs=[triton.InferRequestedOutput("y")])
        output = result.get_response().outputs[0]
        got = result.as_numpy("y")
        if (output.name, output.datatype, list(output.shape)) != ("y", datatype, [batch, 3]):
            failures.append((datatype, "metadata", output.name, output.datatype, list(output.shape)))
        elif got is None or got.shape != sent.shape:
            failures.append((datatype, "shape", None if got is None else got.shape))
        elif datatype == "BYTES":
            if [bytes(v) for v in got.reshape(-1)] != list(sent.reshape(-1)):
                failures.append((datatype, "values", got.reshape(-1).tolist()))
        elif got.dtype != sent.dtype or got.tobytes() != sent.tobytes():
            failures.append((datatype, "values", got.dtype, got.reshape(-1).tolist(), sent.reshape(-1).tolist()))
    assert failures == []


def test_bytes_that_are_not_utf8_round_trip_or_are_refused(
    repository: Path, start_serve: Any, connect: Connect
) -> None:
    """BYTES are bytes. Where the runtime cannot carry some (onnxruntime strings must be UTF-8), the request is bad
    input: INVALID_ARGUMENT, never INTERNAL."""
    client = connect(start_serve(repository).target)
    values = _sample("BYTES", (1, 3), 0)
    values[0, 1] = NOT_UTF8
    try:
        result = client.infer("identity_bytes", [_input("x", values, "BYTES")])
    except InferenceServerException as error:
        assert error.status() == "StatusCode.INVALID_ARGUMENT", (error.status(), error.message())
    else:
        assert [bytes(v) for v in result.as_numpy("y").reshape(-1)] == list(values.reshape(-1))
    assert client.infer("identity_bytes", [_input("x", _sample("BYTES", (2, 3), 1), "BYTES")]).as_numpy("y") is not None


def test_bytes_that_are_not_utf8_never_fail_their_batch_neighbours(
    repository: Path, start_serve: Any, connect: Connect
) -> None:
    """A bad request is refused before it joins a batch: the requests batched around it all succeed."""
    _copy_model(repository, "identity_bytes", "identity_bytes_delayed", {"max_queue_delay_us": 200_000})
    client = connect(start_serve(repository).target)
    collector = Collector()
    sent = {}
    for i in range(16):
        values = _sample("BYTES", (1, 3), i)
        if i == 7:
            values[0, 1] = NOT_UTF8
        sent[str(i)] = values
        client.async_infer(
            "identity_bytes_delayed", [_input("x", values, "BYTES")], collector.callback_for(str(i)), request_id=str(i)
        )
    answers = {request_id: (result, error) for request_id, result, error in collector.take(len(sent))}
    failed = {i: (e.status(), e.message()) for i, (_, e) in answers.items() if e is not None and i != "7"}
    assert failed == {}
    for request_id, (result, _) in answers.items():
        if request_id != "7":
            assert [bytes(v) for v in result.as_numpy("y").reshape(-1)] == list(sent[request_id].reshape(-1))


def _typed_request(model: str, datatype: str, values: np.ndarray, field: str | None = None) -> Any:
    request = service_pb2.ModelInferRequest(model_name=model, id="typed")
    tensor = request.inputs.add(name="x", datatype=datatype, shape=list(values.shape))
    getattr(tensor.contents, field or CONTENTS_FIELD[datatype]).extend(values.reshape(-1).tolist())
    return request


def test_typed_contents_are_accepted_and_answered_raw(
    repository: Path, start_serve: Any, references: dict[str, tuple[Reference, np.ndarray]]
) -> None:
    """perf_analyzer and tritonclient send raw_input_contents; other clients send typed contents."""
    served = start_serve(repository)
    reference, rows = references["classifier"]
    batch = rows[10:13]
    request = service_pb2.ModelInferRequest(model_name="classifier", id="typed")
    tensor = request.inputs.add(name=INPUT, datatype="FP32", shape=list(batch.shape))
    tensor.contents.fp32_contents.extend(batch.reshape(-1).tolist())
    failures: list[tuple[Any, ...]] = []
    with grpc.insecure_channel(served.target) as channel:
        stub = service_pb2_grpc.GRPCInferenceServiceStub(channel)
        response = stub.ModelInfer(request, timeout=10)
        assert response.id == "typed"
        assert len(response.raw_output_contents) == len(response.outputs) == 2
        _check_against(reference, batch, triton.InferResult(response), "typed contents")

        for seed, datatype in enumerate(CONTENTS_FIELD):
            sent = _sample(datatype, (2, 3), seed)
            result = triton.InferResult(stub.ModelInfer(_typed_request(f"identity_{datatype.lower()}", datatype, sent)))
            got = result.as_numpy("y")
            if datatype == "BYTES":
                if [bytes(v) for v in got.reshape(-1)] != list(sent.reshape(-1)):
                    failures.append((datatype, got.reshape(-1).tolist()))
            elif got.dtype != sent.dtype or got.tobytes() != sent.tobytes():
                failures.append((datatype, got.reshape(-1).tolist(), sent.reshape(-1).tolist()))
    assert failures == []


def test_typed_contents_that_do_not_fit_are_refused(repository: Path, start_serve: Any) -> None:
    served = start_serve(repository)
    cases = {
        "INT8 above 127": _typed_request("identity_int8", "INT8", np.array([[1, 128, 3]])),
        "INT8 below -128": _typed_request("identity_int8", "INT8", np.array([[1, -129, 3]])),
        "INT16 above 32767": _typed_request("identity_int16", "INT16", np.array([[40000, 0, 0]])),
        "UINT8 above 255": _typed_request("identity_uint8", "UINT8", np.array([[256, 0, 0]])),
        "UINT16 above 65535": _typed_request("identity_uint16", "UINT16", np.array([[0, 0, 65536]])),
        "FP16 has no typed field": _typed_request("identity_fp16", "FP16", np.zeros((1, 3)), "fp32_contents"),
        "values in the wrong field": _typed_request(
            "identity_int32", "INT32", np.zeros((1, 3), np.int64), "int64_contents"
        ),
        "too few values": _typed_request("identity_fp32", "FP32", np.zeros((1, 2)), "fp32_contents"),
    }
    cases["too few values"].inputs[0].shape[:] = [1, 3]
    statuses = {}
    with grpc.insecure_channel(served.target) as channel:
        stub = service_pb2_grpc.GRPCInferenceServiceStub(channel)
        for name, request in cases.items():
            with pytest.raises(grpc.RpcError) as caught:
                stub.ModelInfer(request, timeout=10)
            statuses[name] = caught.value.code()
    assert statuses == dict.fromkeys(cases, grpc.StatusCode.INVALID_ARGUMENT)


@pytest.mark.parametrize("algorithm", ["gzip", "deflate"])
def test_compressed_requests(
    repository: Path,
    start_serve: Any,
    connect: Connect,
    references: dict[str, tuple[Reference, np.ndarray]],
    algorithm: str,
) -> None:
    client = connect(start_serve(repository).target)
    reference, rows = references["classifier"]
    result = client.infer("classifier", _rows_input(rows[:64]), compression_algorithm=algorithm)
    _check_against(reference, rows[:64], result, algorithm)


def _two_input_model() -> bytes:
    """``a`` FP32 [batch, 2] and ``b`` INT32 [batch, 3], each returned as is (``a_out``, ``b_out``)."""
    graph = helper.make_graph(
        [helper.make_node("Identity", ["a"], ["a_out"]), helper.make_node("Identity", ["b"], ["b_out"])],
        "two_inputs",
        [
            helper.make_tensor_value_info("a", TensorProto.FLOAT, ["batch", 2]),
            helper.make_tensor_value_info("b", TensorProto.INT32, ["batch", 3]),
        ],
        [
            helper.make_tensor_value_info("a_out", TensorProto.FLOAT, ["batch", 2]),
            helper.make_tensor_value_info("b_out", TensorProto.INT32, ["batch", 3]),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model.SerializeToString()


def test_inputs_are_matched_by_name_in_any_order(repository: Path, start_serve: Any, connect: Connect) -> None:
    write_model_version(repository, "two_inputs", 1, _two_input_model())
    client = connect(start_serve(repository).target)
    a = np.arange(8, dtype=np.float32).reshape(4, 2)
    b = np.arange(12, dtype=np.int32).reshape(4, 3) - 6
    for order in ([_input("a", a, "FP32"), _input("b", b, "INT32")], [_input("b", b, "INT32"), _input("a", a, "FP32")]):
        result = client.infer("two_inputs", order)
        np.testing.assert_array_equal(result.as_numpy("a_out"), a)
        np.testing.assert_array_equal(result.as_numpy("b_out"), b)
    # Each input is checked against its own spec: a wrong shape or datatype on either one is refused.
    bad = {
        "b with a's datatype": [_input("b", b.astype(np.float32), "FP32"), _input("a", a, "FP32")],
        "a with a wrong shape": [_input("b", b, "INT32"), _input("a", np.zeros((4, 3), np.float32), "FP32")],
        "batch sizes disagree": [_input("a", a, "FP32"), _input("b", b[:3], "INT32")],
        "b missing": [_input("a", a, "FP32")],
    }
    statuses = {}
    for name, inputs in bad.items():
        statuses[name] = _status(partial(client.infer, "two_inputs", inputs))
    assert statuses == dict.fromkeys(bad, "StatusCode.INVALID_ARGUMENT")


# -- streaming ---


def test_stream_answers_every_request_and_survives_a_bad_one(
    repository: Path, start_serve: Any, connect: Connect, references: dict[str, tuple[Reference, np.ndarray]]
) -> None:
    client = connect(start_serve(repository).target)
    reference, rows = references["classifier"]
    collector = Collector()
    client.start_stream(callback=collector.stream_callback)
    sent = {}
    for i in range(20):
        batch = rows[i * 3 : i * 3 + 1 + i % 3]
        if i == 10:
            batch = np.ascontiguousarray(batch[:, :31])  # 31 features for a 32-feature model
        sent[str(i)] = batch
        client.async_stream_infer("classifier", _rows_input(batch), request_id=str(i))
    answers = collector.take(20)
    errors = [(position, error) for position, (_, _, error) in enumerate(answers) if error is not None]
    # Answers come in request order, so the one error sits where the bad request was sent.
    assert [position for position, _ in errors] == [10]
    assert "INVALID_ARGUMENT" in str(errors[0][1])
    results = {request_id: result for request_id, result, error in answers if error is None}
    assert sorted(results, key=int) == [str(i) for i in range(20) if i != 10]
    for request_id, result in results.items():
        _check_against(reference, sent[request_id], result, f"stream request {request_id}")
    # The same stream keeps serving after the error.
    for i in range(20, 25):
        client.async_stream_infer("classifier", _rows_input(rows[i : i + 2]), request_id=str(i))
    after = collector.take(5)
    assert [(request_id, error) for request_id, _, error in after] == [(str(i), None) for i in range(20, 25)]
    for request_id, result, _ in after:
        i = int(request_id)
        _check_against(reference, rows[i : i + 2], result, f"stream request {request_id}")
    client.stop_stream()
    assert collector.answers.empty()


def test_stream_mixing_models_answers_in_order(
    repository: Path, start_serve: Any, connect: Connect, references: dict[str, tuple[Reference, np.ndarray]]
) -> None:
    """One stream, several models and an unknown one: every request is answered, in order, by the right model."""
    client = connect(start_serve(repository).target)
    collector = Collector()
    client.start_stream(callback=collector.stream_callback)
    sent = []
    for i in range(12):
        model = ("classifier", "forest", "no_such_model")[i % 3]
        _, rows = references["forest" if model == "forest" else "classifier"]
        batch = rows[i : i + 1 + i % 4]
        sent.append((model, batch))
        client.async_stream_infer(model, _rows_input(batch), request_id=str(i))
    answers = collector.take(len(sent))
    client.stop_stream()
    for position, ((model, batch), (request_id, result, error)) in enumerate(zip(sent, answers, strict=True)):
        if model == "no_such_model":
            assert error is not None and result is None, position
            assert "NOT_FOUND" in str(error), error
            continue
        assert error is None, (position, error)
        assert request_id == str(position)
        assert result.get_response().model_name == model
        _check_against(references[model][0], batch, result, f"stream request {position} to {model}")


# -- metadata, configuration, statistics, repository ---


def test_server_health_and_metadata(repository: Path, start_serve: Any, connect: Connect) -> None:
    client = connect(start_serve(repository).target)
    assert client.is_server_live()
    assert client.is_server_ready()
    assert client.is_model_ready("classifier")
    assert client.is_model_ready("classifier", "1")
    assert not client.is_model_ready("classifier", "2")
    assert not client.is_model_ready("no_such_model")
    metadata = client.get_server_metadata()
    assert metadata.name == "conduit"
    assert metadata.version
    assert {"model_repository", "statistics", "model_configuration"} <= set(metadata.extensions)


def _graph_shape(arg: Any) -> list[int]:
    return [d if isinstance(d, int) and d >= 0 else -1 for d in arg.shape]


def test_model_metadata_and_config_describe_the_graph(
    repository: Path, start_serve: Any, connect: Connect, references: dict[str, tuple[Reference, np.ndarray]]
) -> None:
    client = connect(start_serve(repository).target)
    for model, (reference, rows) in references.items():
        graph_inputs, graph_outputs = reference.session.get_inputs(), reference.session.get_outputs()
        metadata = client.get_model_metadata(model)
        assert (metadata.name, list(metadata.versions), metadata.platform) == (model, ["1"], "onnxruntime_onnx")
        assert [(t.name, t.datatype, list(t.shape)) for t in metadata.inputs] == [(INPUT, "FP32", [-1, rows.shape[1]])]
        assert [(t.name, t.datatype) for t in metadata.outputs] == [("label", "INT64"), ("probabilities", "FP32")]
        assert [list(t.shape) for t in metadata.outputs] == [_graph_shape(arg) for arg in graph_outputs]
        assert [t.name for t in metadata.inputs] == [arg.name for arg in graph_inputs]
        assert client.get_model_metadata(model, "1") == metadata

        config = client.get_model_config(model).config
        assert (config.name, config.platform, config.max_batch_size) == (model, "onnxruntime_onnx", 64)
        assert [(t.name, t.data_type, list(t.dims)) for t in config.input] == [
            (INPUT, model_config_pb2.TYPE_FP32, [rows.shape[1]])
        ]
        assert [(t.name, t.data_type) for t in config.output] == [
            ("label", model_config_pb2.TYPE_INT64),
            ("probabilities", model_config_pb2.TYPE_FP32),
        ]
        # Config dims leave out the batch dimension the metadata shapes carry; an output of shape [N] is written as
        # Triton writes it, dims [1] reshaped to no dimensions.
        assert [(list(t.dims), list(t.reshape.shape), t.HasField("reshape")) for t in config.output] == [
            ([1], [], True),
            (list(metadata.outputs[1].shape)[1:], [], False),
        ]
        assert list(metadata.outputs[0].shape) == [-1]
        assert config.HasField("dynamic_batching")
    assert client.get_model_metadata("classifier").inputs[0].shape == [-1, 32]


def test_statistics_count_inferences(
    repository: Path, start_serve: Any, connect: Connect, references: dict[str, tuple[Reference, np.ndarray]]
) -> None:
    client = connect(start_serve(repository).target)
    _, rows = references["classifier"]
    before = client.get_inference_statistics("classifier").model_stats[0]
    assert (before.name, before.version) == ("classifier", "1")
    assert before.inference_stats.fail.count == 0
    sizes = [1, 2, 3, 8, 1, 16]
    for size in sizes:
        client.infer("classifier", _rows_input(rows[:size]))
    stats = client.get_inference_statistics("classifier", "1").model_stats
    assert [(s.name, s.version) for s in stats] == [("classifier", "1")]
    after = stats[0]
    assert after.inference_count - before.inference_count == sum(sizes)
    assert after.inference_stats.success.count - before.inference_stats.success.count == len(sizes)
    assert after.inference_stats.success.ns > before.inference_stats.success.ns
    assert 1 <= after.execution_count <= after.inference_count
    assert after.inference_stats.fail.count == 0
    assert after.last_inference > 0
    assert sum(b.compute_infer.count for b in after.batch_stats) == after.execution_count

    # A refused request counts as a failure, not as an inference.
    _status(lambda: client.infer("classifier", _rows_input(np.ascontiguousarray(rows[:2, :31]))))
    failed = client.get_inference_statistics("classifier").model_stats[0]
    assert failed.inference_stats.fail.count == 1
    assert failed.inference_count == after.inference_count

    everything = client.get_inference_statistics().model_stats
    assert {s.name for s in everything} >= {"classifier", "forest", "identity_fp32"}
    assert _status(lambda: client.get_inference_statistics("no_such_model")) == "StatusCode.NOT_FOUND"


def test_repository_index_unload_and_load(
    repository: Path, start_serve: Any, connect: Connect, references: dict[str, tuple[Reference, np.ndarray]]
) -> None:
    client = connect(start_serve(repository, "--model-control", "explicit").target)
    expected = {"classifier", "forest", *(f"identity_{d.lower()}" for d in DATATYPES)}
    index = client.get_model_repository_index().models
    assert {m.name for m in index} == expected
    assert {(m.name, m.version, m.state) for m in index} == {(name, "1", "READY") for name in expected}

    client.unload_model("forest")
    assert not client.is_model_ready("forest")
    assert client.is_model_ready("classifier")
    _, rows = references["forest"]
    assert _status(lambda: client.infer("forest", _rows_input(rows[:2]))) in (
        "StatusCode.NOT_FOUND",
        "StatusCode.UNAVAILABLE",
    )
    states = {m.name: m.state for m in client.get_model_repository_index().models}
    assert states["forest"] != "READY"
    assert states["classifier"] == "READY"

    client.load_model("forest")
    assert client.is_model_ready("forest")
    reference, rows = references["forest"]
    _check_against(reference, rows[:7], client.infer("forest", _rows_input(rows[:7])), "forest after reload")
    assert ("forest", "1", "READY") in {
        (m.name, m.version, m.state) for m in client.get_model_repository_index().models
    }
    assert _status(lambda: client.load_model("no_such_model")) == "StatusCode.NOT_FOUND"


def test_a_request_larger_than_max_batch_size_is_answered_whole(
    repository: Path, start_serve: Any, connect: Connect, references: dict[str, tuple[Reference, np.ndarray]]
) -> None:
    # classifier's max_batch_size is 64: 256 rows are split through its batcher and answered as one request.
    client = connect(start_serve(repository).target)
    reference, rows = references["classifier"]
    batch = rows[:256]
    before = client.get_inference_statistics("classifier").model_stats[0]
    requested = [triton.InferRequestedOutput(name) for name in OUTPUTS]
    whole = client.infer("classifier", _rows_input(batch), outputs=requested, request_id="whole")
    assert whole.get_response().id == "whole"
    _check_against(reference, batch, whole, "256 rows")
    chunks = [client.infer("classifier", _rows_input(batch[start : start + 64])) for start in range(0, 256, 64)]
    for name in OUTPUTS:
        np.testing.assert_array_equal(whole.as_numpy(name), np.concatenate([c.as_numpy(name) for c in chunks]))
    after = client.get_inference_statistics("classifier").model_stats[0]
    assert after.inference_stats.success.count - before.inference_stats.success.count == 5
    assert after.inference_count - before.inference_count == 512
    assert after.execution_count - before.execution_count >= 8
    assert max(b.batch_size for b in after.batch_stats) <= 64

    # Over a stream as well, and an 8 MiB request within tritonclient's and the server's default message limits.
    big = np.tile(rows, (8 * 1024 * 1024 // rows.nbytes + 1, 1))
    assert big.nbytes >= 8 * 1024 * 1024
    _check_against(reference, big, client.infer("classifier", _rows_input(big)), "8 MiB")
    collector = Collector()
    client.start_stream(callback=collector.stream_callback)
    client.async_stream_infer("classifier", _rows_input(batch), request_id="streamed")
    ((request_id, result, error),) = collector.take(1)
    client.stop_stream()
    assert (request_id, error) == ("streamed", None)
    _check_against(reference, batch, result, "256 rows streamed")


# -- errors ---


def test_errors_carry_their_grpc_status(
    repository: Path, start_serve: Any, connect: Connect, references: dict[str, tuple[Reference, np.ndarray]]
) -> None:
    client = connect(start_serve(repository).target)
    _, rows = references["classifier"]
    good = rows[:2]
    not_found = "StatusCode.NOT_FOUND"
    invalid = "StatusCode.INVALID_ARGUMENT"
    cases: dict[str, tuple[Callable[[], object], str]] = {
        "unknown model": (lambda: client.infer("no_such_model", _rows_input(good)), not_found),
        "unknown version": (lambda: client.infer("classifier", _rows_input(good), model_version="7"), not_found),
        "metadata of unknown model": (lambda: client.get_model_metadata("no_such_model"), not_found),
        "config of unknown model": (lambda: client.get_model_config("no_such_model"), not_found),
        "wrong feature count": (
            lambda: client.infer("classifier", _rows_input(np.ascontiguousarray(good[:, :31]))),
            invalid,
        ),
        "no batch dimension": (lambda: client.infer("classifier", _rows_input(good[0])), invalid),
        "wrong datatype": (
            lambda: client.infer("classifier", [_input(INPUT, good.astype(np.float64), "FP64")]),
            invalid,
        ),
        "unknown input name": (lambda: client.infer("classifier", [_input("features", good, "FP32")]), invalid),
        "unknown output name": (
            lambda: client.infer("classifier", _rows_input(good), outputs=[triton.InferRequestedOutput("nope")]),
            invalid,
        ),
    }
    statuses = {name: _status(call) for name, (call, _) in cases.items()}
    assert statuses == {name: want for name, (_, want) in cases.items()}
    # None of those hurt the server.
    assert client.is_server_ready()
    assert client.infer("classifier", _rows_input(good)).as_numpy("label").shape == (2,)
