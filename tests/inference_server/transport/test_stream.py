"""ModelStreamInfer through the real server: a stream its client cancels stops costing the server compute."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import numpy as np
import pytest
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from inference_server.protocol import grpc_service_pb2 as pb
from inference_server.protocol import grpc_service_pb2_grpc as pb_grpc
from trainers.onnx_export import write_model_version

Stub = pb_grpc.GRPCInferenceServiceStub
# Requests sent on the stream before it is cancelled: at RUN_S each, computing them all takes seconds.
STREAMED = 300
RUN_S = 0.02
# Requests the server may still compute after the cancellation reached it (those already executing or batched).
AFTER_CANCEL = 50
# Bound on the wait for the server to settle; a server that computes the whole backlog takes about STREAMED * RUN_S.
BOUND = 30.0
# Bound on stopping the server once settled: nothing is left to drain.
STOP_BOUND = 10.0


def one_row(model: str, value: float) -> pb.ModelInferRequest:
    request = pb.ModelInferRequest(model_name=model, id=f"{value:g}")
    request.inputs.add(name="x", datatype="FP32", shape=[1, 3])
    request.raw_input_contents.append(np.full((1, 3), value, dtype=np.float32).tobytes())
    return request


def in_flight(reader: InMemoryMetricReader, model: str) -> int:
    """Requests of ``model`` the server accepted and has not answered (its in-flight gauge)."""
    data = reader.get_metrics_data()
    return sum(
        point.value
        for resource in data.resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
        if metric.name == "conduit.inference.in_flight"
        for point in metric.data.data_points
        if point.attributes.get("model") == model
    )


@pytest.fixture
def repository(repository: Path, slow_identity) -> Path:
    """Adds ``slow``: an identity model that takes about RUN_S per run and executes one request at a time."""
    write_model_version(repository, "slow", 1, slow_identity(RUN_S), {"max_batch_size": 1})
    return repository


async def test_a_cancelled_stream_stops_computing_the_requests_it_sent(server, stub: Stub) -> None:
    running, _, reader = server
    call = stub.ModelStreamInfer()
    for value in range(STREAMED):
        await call.write(one_row("slow", value))
    first = await call.read()
    assert first.error_message == ""
    assert first.infer_response.id == "0"
    call.cancel()

    # Requests the server still holds are visible only through its in-flight gauge: poll it, with a bound.
    deadline = time.monotonic() + BOUND
    while in_flight(reader, "slow") > 0:
        assert time.monotonic() < deadline, "the cancelled stream's requests were never released"
        await asyncio.sleep(0.01)
    (stats,) = (await stub.ModelStatistics(pb.ModelStatisticsRequest(name="slow", version="1"))).model_stats
    assert stats.execution_count == stats.inference_count  # one row per request, one request per execution
    assert 1 <= stats.inference_count < AFTER_CANCEL

    # The server is fine for the next caller, on the same model, and stops without waiting out a backlog.
    response = await stub.ModelInfer(one_row("slow", 7))
    np.testing.assert_array_equal(np.frombuffer(response.raw_output_contents[0], dtype=np.float32), [7, 7, 7])
    await asyncio.wait_for(running.stop(), STOP_BOUND)
