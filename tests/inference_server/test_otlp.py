"""OTLP push: `conduit serve --otlp-endpoint` sends its metrics to a real OTLP/gRPC metrics receiver."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2, metrics_service_pb2_grpc

from clients import InferenceClient


class Receiver(metrics_service_pb2_grpc.MetricsServiceServicer):
    """Keeps every metric name and data point attribute set it is sent."""

    def __init__(self) -> None:
        self.points: list[tuple[str, dict[str, str]]] = []
        self.received = threading.Event()

    def Export(self, request: Any, context: Any) -> Any:
        for resource in request.resource_metrics:
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    kind = metric.WhichOneof("data")
                    for point in getattr(metric, kind).data_points:
                        labels = {a.key: a.value.string_value for a in point.attributes}
                        self.points.append((metric.name, labels))
        self.received.set()
        return metrics_service_pb2.ExportMetricsServiceResponse()


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
    deadline = time.monotonic() + 30
    wanted = ("conduit.inference.requests", {"model": "identity_fp32", "version": "1", "status": "OK"})
    while wanted not in collector.points and time.monotonic() < deadline:
        collector.received.wait(1.0)
        collector.received.clear()
    assert wanted in collector.points
    names = {name for name, _ in collector.points}
    assert {"conduit.inference.duration", "conduit.inference.queue.duration", "conduit.inference.batch.size"} <= names
    assert served.terminate() == 0
