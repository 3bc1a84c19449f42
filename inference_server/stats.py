"""Per-model-version inference statistics, in the shape ModelStatistics answers (Triton's counters)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

__all__ = ["BatchStats", "Duration", "ModelStats", "RequestTracer", "StatsSink"]


class StatsSink(Protocol):
    """Where measurements go besides the counters (the OpenTelemetry recorder of the version)."""

    def succeeded(self, seconds: float, queued_seconds: float) -> None: ...

    def failed(self, status: str, seconds: float) -> None: ...

    def executed(self, rows: int, seconds: float) -> None: ...


class RequestTracer(Protocol):
    """Traces a share of the requests of one version from the batcher's timestamps (``perf_counter_ns`` clock)."""

    def sampled(self) -> bool: ...

    def record(
        self, arrival_ns: int, enqueued_ns: int, start_ns: int, end_ns: int, *, rows: int, status: str
    ) -> None: ...


@dataclass(slots=True)
class Duration:
    """A count of events and their total time in nanoseconds."""

    count: int = 0
    ns: int = 0

    def add(self, ns: int, count: int = 1) -> None:
        self.count += count
        self.ns += ns


@dataclass(slots=True)
class BatchStats:
    """Executions of one batch size and where their time went."""

    compute_input: Duration = field(default_factory=Duration)
    compute_infer: Duration = field(default_factory=Duration)
    compute_output: Duration = field(default_factory=Duration)


@dataclass(slots=True)
class ModelStats:
    """Counters of one model version. Updated only on the event loop, so no locking is needed.

    Per request: success, fail, queue and the compute times of the execution it was part of. Per execution:
    ``execution_count`` and ``batch_stats`` keyed by the number of rows executed together. ``inference_count`` counts
    rows (a request of batch 8 is 8 inferences), as Triton does; a request split into chunks is one request of all its
    rows, executed several times.
    """

    sink: StatsSink | None = None
    tracer: RequestTracer | None = None
    """Traces sampled requests; ``None``: tracing is off."""
    wall_clock_ms: Callable[[], int] = field(default=lambda: time.time_ns() // 1_000_000)
    success: Duration = field(default_factory=Duration)
    fail: Duration = field(default_factory=Duration)
    queue: Duration = field(default_factory=Duration)
    compute_input: Duration = field(default_factory=Duration)
    compute_infer: Duration = field(default_factory=Duration)
    compute_output: Duration = field(default_factory=Duration)
    batch_stats: dict[int, BatchStats] = field(default_factory=dict)
    inference_count: int = 0
    in_flight: int = 0
    """Requests accepted and not yet answered."""
    execution_count: int = 0
    last_inference_ms: int = 0

    def record_execution(
        self, rows: int, requests: int, input_ns: int, infer_ns: int, output_ns: int, *, answered: int | None = None
    ) -> None:
        """One model execution of ``rows`` rows that served ``requests`` requests, ``answered`` of them completed.

        A request larger than ``max_batch_size`` is executed in several chunks: each adds its compute time to the
        request's, and the request is counted once, by the execution of its last chunk (``answered``, by default
        every request), so the per-request compute counters keep counting requests.
        """
        batch = self.batch_stats.get(rows)
        if batch is None:
            batch = self.batch_stats[rows] = BatchStats()
        batch.compute_input.add(input_ns)
        batch.compute_infer.add(infer_ns)
        batch.compute_output.add(output_ns)
        count = requests if answered is None else answered
        self.compute_input.add(input_ns * requests, count)
        self.compute_infer.add(infer_ns * requests, count)
        self.compute_output.add(output_ns * requests, count)
        self.execution_count += 1
        self.inference_count += rows
        self.last_inference_ms = self.wall_clock_ms()
        if self.sink is not None:
            self.sink.executed(rows, (input_ns + infer_ns + output_ns) / 1e9)

    def record_success(self, total_ns: int, queue_ns: int) -> None:
        self.success.add(total_ns)
        self.queue.add(queue_ns)
        if self.sink is not None:
            self.sink.succeeded(total_ns / 1e9, queue_ns / 1e9)

    def record_failure(self, total_ns: int, status: str) -> None:
        """A request that failed; ``status`` names its error code."""
        self.fail.add(total_ns)
        if self.sink is not None:
            self.sink.failed(status, total_ns / 1e9)
