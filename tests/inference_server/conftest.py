"""Fixtures of the inference-server tests: in-process servers on free ports, with an in-memory metric reader.

Each server is an ``InferenceServer`` started and stopped through its public ``start``/``stop``; its OpenTelemetry
``MeterProvider`` reads into an ``InMemoryReader`` instead of any global state. ``slow_identity`` builds models
that take a set time per run, for tests that need a request or a load to outlast a deadline; ``credit`` and
``diabetes`` are models trained by the trainers library with their data sets' profiles.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import grpc
import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.trace import TracerProvider

from inference_server.app import InferenceServer
from inference_server.protocol import grpc_service_pb2_grpc as pb_grpc
from inference_server.settings import ServerSettings
from inference_server.telemetry import InMemoryReader, histogram_set, sum_set
from trainers import TrainingResult, bundled, parse_spec, train
from trainers.datasets import profile
from trainers.onnx_export import write_model_version

# Seconds a stopping test server waits for in-flight calls; tests never leave calls running, so it is only a bound.
STOP_GRACE = 5.0


class Running(NamedTuple):
    """A started in-process server: unpack as ``server, port, reader``."""

    server: InferenceServer
    port: int
    reader: InMemoryReader


StartServer = Callable[..., Awaitable[Running]]
Connect = Callable[..., pb_grpc.GRPCInferenceServiceStub]


@pytest.fixture
async def start_server() -> AsyncIterator[StartServer]:
    """Start in-process servers: ``await start_server(repo, tracer_provider=None, **settings)``; every one is stopped
    at teardown.

    ``repo`` ``None`` starts a server without a repository (one that follows a control plane, given in settings).
    """
    started: list[tuple[InferenceServer, MeterProvider]] = []

    async def start(repo: Path | None, *, tracer_provider: TracerProvider | None = None, **settings: Any) -> Running:
        histograms, sums = histogram_set(), sum_set()
        reader = InMemoryReader(histograms, sums)
        provider = MeterProvider(metric_readers=[reader])
        if repo is not None:
            settings["model_repository"] = repo
            # The lifecycle tests load and unload through the repository protocol; those of model control off say so.
            settings.setdefault("model_control", "explicit")
        server = InferenceServer(
            ServerSettings(grpc_port=0, metrics_port=0, **settings),
            provider,
            histograms,
            sums=sums,
            tracer_provider=tracer_provider,
        )
        started.append((server, provider))
        port = await server.start()
        return Running(server, port, reader)

    yield start
    for server, provider in reversed(started):
        # stop() is safe to call again for a server a test already stopped.
        await server.stop(STOP_GRACE)
        provider.shutdown()


@pytest.fixture
async def server(start_server: StartServer, repository: Path) -> Running:
    """A server on the shared test repository (classifier, forest, identity_<type> for every datatype)."""
    return await start_server(repository)


class Bearer(grpc.aio.UnaryUnaryClientInterceptor, grpc.aio.StreamStreamClientInterceptor):  # type: ignore[misc]
    """Sends ``authorization: Bearer TOKEN`` with every unary and bidirectional call of a channel."""

    def __init__(self, token: str) -> None:
        self._metadata = ("authorization", f"Bearer {token}")

    def _details(self, details: Any) -> Any:
        metadata = grpc.aio.Metadata(*(details.metadata or ()), self._metadata)
        return details._replace(metadata=metadata)

    async def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        return await continuation(self._details(details), request)

    async def intercept_stream_stream(self, continuation: Any, details: Any, request_iterator: Any) -> Any:
        return await continuation(self._details(details), request_iterator)


@pytest.fixture
async def connect() -> AsyncIterator[Connect]:
    """``connect(port, token=None)`` opens a ``grpc.aio`` channel to a server (sending ``token`` as a bearer token
    with every call) and returns an inference stub; closed at teardown."""
    channels: list[grpc.aio.Channel] = []

    def open_stub(port: int, token: str | None = None) -> pb_grpc.GRPCInferenceServiceStub:
        interceptors = [Bearer(token)] if token is not None else None
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}", interceptors=interceptors)
        channels.append(channel)
        return pb_grpc.GRPCInferenceServiceStub(channel)  # type: ignore[no-untyped-call]

    yield open_stub
    for channel in channels:
        await channel.close()


@pytest.fixture
def stub(server: Running, connect: Connect) -> pb_grpc.GRPCInferenceServiceStub:
    """An inference stub connected to ``server``."""
    return connect(server.port)


SlowModel = Callable[..., bytes]
# Side of the square matrices a slow model multiplies: big enough that one product takes a measurable time.
SLOW_SIDE = 512


def _slow_graph(products: int, width: int = 3) -> bytes:
    """``y = x`` over FP32 ``[batch, width]``, after ``products`` products of a 512x512 matrix made from ``x``.

    The matrix is derived from the input (all zeros), so onnxruntime cannot fold the work away at load time.
    """
    nodes = [
        helper.make_node("ReduceSum", ["x"], ["sum"], keepdims=0),
        helper.make_node("Mul", ["sum", "zero"], ["nothing"]),
        helper.make_node("Expand", ["nothing", "square"], ["m0"]),
    ]
    nodes += [helper.make_node("MatMul", [f"m{i}", f"m{i}"], [f"m{i + 1}"]) for i in range(products)]
    nodes += [
        helper.make_node("ReduceSum", [f"m{products}"], ["zeros"], keepdims=0),
        helper.make_node("Add", ["x", "zeros"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "slow_identity",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", width])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", width])],
        initializer=[
            helper.make_tensor("zero", TensorProto.FLOAT, [], [0.0]),
            helper.make_tensor("square", TensorProto.INT64, [2], [SLOW_SIDE, SLOW_SIDE]),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


@pytest.fixture(scope="session")
def slow_identity() -> SlowModel:
    """``slow_identity(seconds, width=3)``: an identity model over FP32 ``[batch, width]`` whose every run takes about
    ``seconds``.

    Calibrated on this machine (one onnxruntime thread, as the server runs models by default), so tests that need a
    model slower than their client deadline hold on fast and slow machines alike.
    """
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    probe_products = 8
    session = ort.InferenceSession(_slow_graph(probe_products), options, providers=["CPUExecutionProvider"])
    feeds = {"x": np.zeros((1, 3), dtype=np.float32)}
    session.run(None, feeds)
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        session.run(None, feeds)
        best = min(best, time.perf_counter() - start)
    per_product = best / probe_products

    def build(seconds: float, width: int = 3) -> bytes:
        return _slow_graph(max(1, round(seconds / per_product)), width)

    return build


@dataclass(frozen=True)
class ProfiledModel:
    """A model trained by the trainers library on a bundled data set, with the data set's profile as a server reads
    it (``profile.json``: the profile's JSON plus the target column)."""

    result: TrainingResult
    profile: dict[str, Any]

    def write(self, repository: Path, name: str, *, beside: str = "model") -> None:
        """Write version 1 of ``name`` and its ``profile.json`` beside ``config.json`` ("model") or in the version's
        directory ("version")."""
        write_model_version(repository, name, 1, self.result.onnx)
        where = repository / name if beside == "model" else repository / name / "1"
        (where / "profile.json").write_text(json.dumps(self.profile))


def _trained(dataset: str, spec: str) -> ProfiledModel:
    frame = bundled.load(dataset)
    result = train(parse_spec(spec), frame, dataset_version="c" * 16)
    return ProfiledModel(result, {**profile(frame).to_json(), "target": bundled.BUNDLED[dataset].target})


@pytest.fixture(scope="session")
def credit() -> ProfiledModel:
    """Logistic regression on the bundled credit data: FP32 numbers, a boolean as FP32, string categories."""
    return _trained(
        "credit",
        """
[dataset]
name = "credit"
target = "default"
[features]
numeric = ["age", "income", "debt", "months_at_address", "has_mortgage"]
categorical = ["city", "employment"]
[split]
method = "stratified"
test_size = 0.25
seed = 3
[model]
task = "binary"
estimator = "logistic_regression"
params = { max_iter = 500 }
[register]
name = "credit"
""",
    )


@pytest.fixture(scope="session")
def diabetes() -> ProfiledModel:
    """Ridge regression on the bundled diabetes data: its prediction is binned over the target's edges."""
    return _trained(
        "diabetes",
        """
[dataset]
name = "diabetes"
target = "progression"
[features]
numeric = ["age", "bmi", "bp", "s5"]
[split]
method = "random"
test_size = 0.25
seed = 3
[model]
task = "regression"
estimator = "ridge"
[register]
name = "diabetes"
""",
    )
