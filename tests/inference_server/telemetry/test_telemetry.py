"""OpenTelemetry metrics of a real in-process server, read through an in-memory reader.

Request measurements reach the instruments when the server flushes them; stopping the server flushes, so the
tests stop it before reading counters and histograms. The in-flight gauge is read while the server runs.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from inference_server.protocol import grpc_service_pb2 as pb
from inference_server.protocol import grpc_service_pb2_grpc as pb_grpc
from trainers.onnx_export import write_model_version

Stub = pb_grpc.GRPCInferenceServiceStub
REQUESTS = "conduit.inference.requests"
DURATION = "conduit.inference.duration"
QUEUE = "conduit.inference.queue.duration"
COMPUTE = "conduit.inference.compute.duration"
BATCH = "conduit.inference.batch.size"
IN_FLIGHT = "conduit.inference.in_flight"
HELD_BATCH = 4
# "queued" holds a request up to QUEUED_DELAY_S for a fuller batch; its caller gives up after CALLER_TIMEOUT_S.
QUEUED_DELAY_S = 2.0
CALLER_TIMEOUT_S = 0.2
# Bound on polls of the server's statistics.
BOUND = 10.0


def points(reader: InMemoryMetricReader, name: str) -> list[Any]:
    """Every data point of metric ``name`` collected now."""
    data = reader.get_metrics_data()
    found = []
    for resource in data.resource_metrics if data else []:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                if metric.name == name:
                    found.extend(metric.data.data_points)
    return found


def by_attributes(reader: InMemoryMetricReader, name: str) -> dict[tuple[tuple[str, str], ...], Any]:
    return {tuple(sorted(p.attributes.items())): p for p in points(reader, name)}


def key(model: str, status: str | None = None) -> tuple[tuple[str, str], ...]:
    attributes = {"model": model, "version": "1", **({"status": status} if status else {})}
    return tuple(sorted(attributes.items()))


def request(model: str, x: np.ndarray) -> pb.ModelInferRequest:
    message = pb.ModelInferRequest(model_name=model)
    message.inputs.add(name="x", datatype="FP32", shape=x.shape)
    message.raw_input_contents.append(x.tobytes())
    return message


@pytest.fixture
def repository(repository: Path) -> Path:
    """Adds ``held``: identity_fp32 that holds requests for up to a minute until 4 rows make a full batch, and
    ``queued``: one that holds them QUEUED_DELAY_S hoping for 8 rows."""
    identity = (repository / "identity_fp32" / "1" / "model.onnx").read_bytes()
    write_model_version(
        repository, "held", 1, identity, {"max_batch_size": HELD_BATCH, "max_queue_delay_us": 60_000_000}
    )
    write_model_version(
        repository, "queued", 1, identity, {"max_batch_size": 8, "max_queue_delay_us": int(QUEUED_DELAY_S * 1e6)}
    )
    return repository


async def test_requests_durations_and_batch_sizes_by_model_version_and_status(server, stub: Stub) -> None:
    running, _, reader = server
    for rows in (1, 2, 3):
        await stub.ModelInfer(request("identity_fp32", np.ones((rows, 3), dtype=np.float32)))
    with pytest.raises(grpc.aio.AioRpcError) as failed:
        await stub.ModelInfer(request("identity_fp32", np.ones((1, 4), dtype=np.float32)))
    assert failed.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    await running.stop()  # flushes the buffered measurements into the instruments

    requests = by_attributes(reader, REQUESTS)
    assert requests[key("identity_fp32", "OK")].value == 3
    assert requests[key("identity_fp32", "INVALID_ARGUMENT")].value == 1
    assert all(dict(k)["model"] == "identity_fp32" for k in requests)  # nothing recorded for idle models
    durations = by_attributes(reader, DURATION)
    assert durations[key("identity_fp32", "OK")].count == 3
    assert durations[key("identity_fp32", "INVALID_ARGUMENT")].count == 1
    assert durations[key("identity_fp32", "OK")].sum > 0
    assert by_attributes(reader, QUEUE)[key("identity_fp32")].count == 3
    batches = by_attributes(reader, BATCH)[key("identity_fp32")]
    assert batches.sum == 6  # rows executed; one request at a time, so one execution per request
    assert batches.count == 3
    assert by_attributes(reader, COMPUTE)[key("identity_fp32")].count == 3


async def test_in_flight_gauge_counts_requests_until_they_are_answered(server, stub: Stub) -> None:
    running, _, reader = server
    assert by_attributes(reader, IN_FLIGHT)[key("held")].value == 0
    assert by_attributes(reader, IN_FLIGHT)[key("identity_fp32")].value == 0

    held = asyncio.ensure_future(stub.ModelInfer(request("held", np.ones((1, 3), dtype=np.float32))))
    # The request's arrival on the server is only visible through the gauge: poll it, with a bound.
    deadline = time.monotonic() + 10
    while by_attributes(reader, IN_FLIGHT)[key("held")].value != 1:
        assert time.monotonic() < deadline, "the held request never showed up in flight"
        assert not held.done()
        await asyncio.sleep(0.01)
    # Three more rows fill the batch and release both requests at once.
    await stub.ModelInfer(request("held", np.ones((HELD_BATCH - 1, 3), dtype=np.float32)))
    await asyncio.wait_for(held, 10)
    assert by_attributes(reader, IN_FLIGHT)[key("held")].value == 0

    await running.stop()
    batches = by_attributes(reader, BATCH)[key("held")]
    assert (batches.count, batches.sum) == (1, HELD_BATCH)
    assert by_attributes(reader, REQUESTS)[key("held", "OK")].value == 2


async def test_rejected_and_unknown_requests(server, stub: Stub) -> None:
    running, _, reader = server
    with pytest.raises(grpc.aio.AioRpcError):
        await stub.ModelInfer(request("identity_fp32", np.ones((2, 4), dtype=np.float32)))  # wrong width
    with pytest.raises(grpc.aio.AioRpcError):
        await stub.ModelInfer(request("no_such_model", np.ones((1, 3), dtype=np.float32)))
    await running.stop()

    requests = by_attributes(reader, REQUESTS)
    assert requests[key("identity_fp32", "INVALID_ARGUMENT")].value == 1
    assert key("identity_fp32", "OK") not in requests
    # A model that does not exist gets no series of its own: callers cannot grow the metric cardinality.
    assert all(dict(k)["model"] != "no_such_model" for k in requests)


async def test_a_request_whose_deadline_passes_in_the_queue_is_counted_as_failed(server, stub: Stub) -> None:
    running, _, reader = server
    with pytest.raises(grpc.aio.AioRpcError) as late:
        await stub.ModelInfer(request("queued", np.ones((1, 3), dtype=np.float32)), timeout=CALLER_TIMEOUT_S)
    assert late.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED

    # The server learns of the deadline on its own schedule: poll its statistics, with a bound.
    deadline = time.monotonic() + BOUND
    while (stats := await queued_stats(stub)).inference_stats.fail.count == 0:
        assert time.monotonic() < deadline, "the expired request was never counted"
        await asyncio.sleep(0.01)
    assert stats.inference_stats.fail.count == 1
    assert stats.inference_stats.success.count == 0

    await running.stop()
    requests = by_attributes(reader, REQUESTS)
    counted = {dict(k)["status"]: p.value for k, p in requests.items() if dict(k)["model"] == "queued"}
    assert counted in ({"DEADLINE_EXCEEDED": 1}, {"CANCELLED": 1})


async def queued_stats(stub: Stub) -> pb.ModelStatistics:
    (stats,) = (await stub.ModelStatistics(pb.ModelStatisticsRequest(name="queued", version="1"))).model_stats
    return stats
