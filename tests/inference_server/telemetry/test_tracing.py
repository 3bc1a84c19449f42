"""Traces of a real in-process server: sampled requests become an ``inference`` span with ``queue`` and ``compute``
children, exported to an in-memory span exporter; at ratio 0 nothing is traced.

Spans are made by the server's flusher, and stopping the server flushes, so the tests stop it before reading.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from clients import AsyncInferenceClient
from tests.inference_server.conftest import StartServer

REQUESTS = 12


def provider() -> tuple[TracerProvider, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    return tracer_provider, exporter


async def send(port: int, count: int) -> None:
    async with AsyncInferenceClient(f"127.0.0.1:{port}", timeout=10.0) as client:
        for _ in range(count):
            await client.infer("identity_fp32", {"x": np.ones((2, 3), dtype=np.float32)})


async def test_every_request_is_traced_at_ratio_one_with_queue_and_compute_children(
    start_server: StartServer, repository: Path
) -> None:
    tracer_provider, exporter = provider()
    server, port, _ = await start_server(repository, tracer_provider=tracer_provider, trace_sample_ratio=1.0)
    await send(port, REQUESTS)
    await server.stop()

    spans = exporter.get_finished_spans()
    requests = [s for s in spans if s.name == "inference"]
    assert len(requests) == REQUESTS
    by_parent: dict[int, dict[str, object]] = {}
    for span in spans:
        if span.parent is not None:
            by_parent.setdefault(span.parent.span_id, {})[span.name] = span
    for request in requests:
        assert request.parent is None
        assert dict(request.attributes) == {"model": "identity_fp32", "version": "1", "status": "OK"}
        assert request.status.status_code is not StatusCode.ERROR
        children = by_parent[request.context.span_id]
        assert set(children) == {"queue", "compute"}
        queue, compute = children["queue"], children["compute"]
        assert queue.context.trace_id == compute.context.trace_id == request.context.trace_id
        # Nested in time: arrival <= queued <= batch start <= batch end == answer.
        assert request.start_time <= queue.start_time <= queue.end_time == compute.start_time
        assert compute.end_time == request.end_time
        assert compute.attributes["conduit.batch.rows"] >= 2
    assert all(s.end_time > 1_600_000_000 * 10**9 for s in spans), "spans are on the wall clock"


async def test_nothing_is_traced_at_ratio_zero(start_server: StartServer, repository: Path) -> None:
    tracer_provider, exporter = provider()
    server, port, _ = await start_server(repository, tracer_provider=tracer_provider, trace_sample_ratio=0.0)
    await send(port, REQUESTS)
    await server.stop()
    assert exporter.get_finished_spans() == ()
