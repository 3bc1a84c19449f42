"""OTLP push: `conduit serve` sends its metrics to a real OTLP/gRPC metrics receiver on loopback, to
``--otlp-endpoint`` or, by default, to the control plane it follows (with its token and delta temporality)."""

from __future__ import annotations

import hashlib
import os
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from concurrent import futures
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2, metrics_service_pb2_grpc
from opentelemetry.proto.metrics.v1 import metrics_pb2

from clients import InferenceClient
from contract.entities import ArtifactRef, Assignment, Callers, CallerToken, PoolAssignments, Role
from contract.tokens import hash_token
from inference_server.follower import ArtifactCache
from tests.conftest import CONDUIT, free_port, wait_serving
from tests.inference_server.conftest import ProfiledModel

DELTA = metrics_pb2.AggregationTemporality.AGGREGATION_TEMPORALITY_DELTA
CUMULATIVE = metrics_pb2.AggregationTemporality.AGGREGATION_TEMPORALITY_CUMULATIVE
TOKEN = "cdt_server-token-for-tests"
CALLER = "cdt_viewer-token-for-tests"
VIEWER = [("authorization", f"Bearer {CALLER}")]
BOUND = 30.0


@dataclass(frozen=True)
class Received:
    """One data point as the receiver got it."""

    metric: str
    attributes: dict[str, str]
    temporality: int
    value: float
    authorization: str


class Receiver(metrics_service_pb2_grpc.MetricsServiceServicer):
    """Keeps every data point it is sent, with its metric's temporality and the call's authorization metadata."""

    def __init__(self) -> None:
        self.points: list[Received] = []
        self.received = threading.Event()

    def Export(self, request: Any, context: Any) -> Any:
        authorization = dict(context.invocation_metadata()).get("authorization", "")
        for resource in request.resource_metrics:
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    kind = metric.WhichOneof("data")
                    data = getattr(metric, kind)
                    temporality = getattr(data, "aggregation_temporality", 0)
                    for point in data.data_points:
                        labels = {a.key: a.value.string_value for a in point.attributes}
                        value = point.count if kind == "histogram" else (point.as_int or point.as_double)
                        self.points.append(Received(metric.name, labels, temporality, value, authorization))
        self.received.set()
        return metrics_service_pb2.ExportMetricsServiceResponse()

    def wait_for(self, found: Callable[[], bool]) -> None:
        deadline = time.monotonic() + BOUND
        while not found() and time.monotonic() < deadline:
            self.received.wait(1.0)
            self.received.clear()
        assert found(), f"not received within {BOUND}s; got {sorted({p.metric for p in self.points})}"


@pytest.fixture
def receiver() -> Iterator[tuple[Receiver, int]]:
    servicer = Receiver()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield servicer, port
    server.stop(None)


def test_metrics_are_pushed_with_otlp(repository: Path, start_serve: Any, receiver: tuple[Receiver, int]) -> None:
    collector, port = receiver
    served = start_serve(
        repository,
        "--otlp-endpoint",
        f"http://127.0.0.1:{port}",
        env={"CONDUIT_OTLP_INTERVAL": "0.5", "CONDUIT_METRICS_FLUSH_INTERVAL": "0.2"},
    )
    with InferenceClient(served.target, timeout=10.0) as client:
        for _ in range(5):
            client.infer("identity_fp32", {"x": np.ones((2, 3), dtype=np.float32)})
    wanted = ("conduit.inference.requests", {"model": "identity_fp32", "version": "1", "status": "OK"})
    collector.wait_for(lambda: wanted in [(p.metric, p.attributes) for p in collector.points])
    names = {p.metric for p in collector.points}
    assert {"conduit.inference.duration", "conduit.inference.queue.duration", "conduit.inference.batch.size"} <= names
    # A collector of one's own gets no token, and delta points unless told otherwise.
    assert {p.authorization for p in collector.points} == {""}
    assert {p.temporality for p in collector.points if p.metric == "conduit.inference.requests"} == {DELTA}
    assert served.terminate() == 0


def _cached_follower(cache_dir: Path, model: ProfiledModel) -> None:
    """A follower's cache that serves ``credit`` version 1 with its profile, as a previous run would have left it."""
    cache = ArtifactCache(cache_dir)
    payload = model.result.onnx
    ref = ArtifactRef(1, hashlib.sha256(payload).hexdigest(), len(payload))
    cache.artifact(ref).write_bytes(payload)
    cache.install("credit", ref)
    model.write(cache.repository, "credit", beside="version")
    cache.save_state(PoolAssignments.of("default", 1, [Assignment("credit", ref)]))
    # The callers it fetched last: the tests call it as a viewer.
    cache.save_callers(Callers.of([CallerToken(hash_token(CALLER), "caller", Role.VIEWER)]))


def test_a_following_server_pushes_delta_metrics_and_sketches_to_the_control_plane_with_its_token(
    tmp_path: Path, credit: ProfiledModel, receiver: tuple[Receiver, int]
) -> None:
    # The receiver stands in for the control plane's: the server serves its cached assignment while the
    # control plane calls fail (the receiver implements only OTLP), and pushes its metrics to that address.
    collector, port = receiver
    _cached_follower(tmp_path / "cache", credit)
    grpc_port = free_port()
    log = tmp_path / "serve.log"
    argv = [CONDUIT, "serve", "--control-plane", f"127.0.0.1:{port}", "--cache-dir", str(tmp_path / "cache")]
    argv += ["--grpc-port", str(grpc_port), "--metrics-port", "0"]
    env = {
        **os.environ,
        "CONDUIT_TOKEN": TOKEN,
        "CONDUIT_OTLP_INTERVAL": "0.5",
        "CONDUIT_METRICS_FLUSH_INTERVAL": "0.2",
        "CONDUIT_RECONNECT_BACKOFF_MAX": "1",
    }
    with log.open("wb") as out:
        process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        wait_serving(grpc_port, process=process)
        rows = credit.result.test_inputs
        with InferenceClient(f"127.0.0.1:{grpc_port}", timeout=10.0, metadata=VIEWER) as client:
            for start in range(0, 40, 8):
                client.infer("credit", {name: array[start : start + 8] for name, array in rows.items()})

        def sketched() -> bool:
            total = sum(
                p.value
                for p in collector.points
                if p.metric == "conduit.sketch.category" and p.attributes.get("feature") == "@prediction"
            )
            return total == 40

        collector.wait_for(sketched)
        assert {p.authorization for p in collector.points} == {f"Bearer {TOKEN}"}
        by_metric = {p.metric: p.temporality for p in collector.points}
        for name in ("conduit.inference.requests", "conduit.inference.duration", "conduit.sketch.bin"):
            assert by_metric[name] == DELTA, name
        assert by_metric["conduit.inference.in_flight"] == CUMULATIVE  # a level, not a count
        requests = [
            p.value
            for p in collector.points
            if p.metric == "conduit.inference.requests" and p.attributes["status"] == "OK"
        ]
        assert sum(requests) == 5  # deltas add up to the requests sent
        ages = [p for p in collector.points if p.metric == "conduit.sketch.bin" and p.attributes["feature"] == "age"]
        assert sum(p.value for p in ages) == 40
        assert {p.attributes["model"] for p in ages} == {"credit"} and {p.attributes["version"] for p in ages} == {"1"}
    finally:
        process.terminate()
        assert process.wait(60) == 0, log.read_text()


def test_push_off_sends_nothing(tmp_path: Path, credit: ProfiledModel, receiver: tuple[Receiver, int]) -> None:
    collector, port = receiver
    _cached_follower(tmp_path / "cache", credit)
    grpc_port = free_port()
    argv = [CONDUIT, "serve", "--control-plane", f"127.0.0.1:{port}", "--cache-dir", str(tmp_path / "cache")]
    argv += ["--grpc-port", str(grpc_port), "--metrics-port", "0"]
    env = {**os.environ, "CONDUIT_TOKEN": TOKEN, "CONDUIT_OTLP_INTERVAL": "0.2", "CONDUIT_OTLP_PUSH": "false"}
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        wait_serving(grpc_port, process=process)
        with InferenceClient(f"127.0.0.1:{grpc_port}", timeout=10.0, metadata=VIEWER) as client:
            client.infer("credit", {name: array[:4] for name, array in credit.result.test_inputs.items()})
        time.sleep(1.0)  # five push intervals: a push would have come
        assert collector.points == []
    finally:
        process.terminate()
        process.wait(60)
