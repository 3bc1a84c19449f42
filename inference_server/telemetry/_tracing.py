"""Traces of sampled inference requests, made after the fact from the timestamps the batcher already takes.

The batcher asks ``sampled()`` once per answered request (a random draw when tracing is on) and, for the few sampled
ones, hands over four timestamps; the server's flusher turns them into an ``inference`` span with ``queue`` and
``compute`` children, with explicit start and end times. No span object exists on the request path.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Status, StatusCode, TracerProvider

__all__ = ["Tracing", "VersionTracer"]

OK = "OK"


@dataclass(frozen=True, slots=True)
class _Request:
    model: str
    version: str
    arrival_ns: int
    enqueued_ns: int
    start_ns: int
    end_ns: int
    rows: int
    status: str


class Tracing:
    """The sampled requests of every model version, waiting for ``flush`` to become spans.

    Args:
        tracer_provider: Where spans go (the composition root's, or a test's with an in-memory exporter).
        ratio: Share of requests traced, 0..1.
        scope: Instrumentation scope of the spans.
        clock_ns: The clock the batcher's timestamps come from; spans are placed on the wall clock by the offset
            between the two, taken once.
        draw: Uniform draws in [0, 1).
    """

    def __init__(
        self,
        tracer_provider: TracerProvider,
        ratio: float,
        *,
        scope: str,
        clock_ns: Callable[[], int] = time.perf_counter_ns,
        draw: Callable[[], float] = random.random,
    ) -> None:
        self._tracer = tracer_provider.get_tracer(scope)
        self.ratio = ratio
        self.draw = draw
        self._offset_ns = time.time_ns() - clock_ns()
        self._lock = threading.Lock()
        self._pending: list[_Request] = []

    def version(self, model: str, version: str) -> VersionTracer:
        """The tracer the batcher of one model version uses."""
        return VersionTracer(self, model, version)

    def _keep(self, request: _Request) -> None:
        with self._lock:
            self._pending.append(request)

    def flush(self) -> None:
        """Make the spans of every request sampled since the last flush."""
        with self._lock:
            pending, self._pending = self._pending, []
        offset = self._offset_ns
        for request in pending:
            attributes = {"model": request.model, "version": request.version, "status": request.status}
            parent = self._tracer.start_span(
                "inference", context=Context(), start_time=request.arrival_ns + offset, attributes=attributes
            )
            if request.status != OK:
                parent.set_status(Status(StatusCode.ERROR, request.status))
            within = trace.set_span_in_context(parent)
            queue = self._tracer.start_span("queue", context=within, start_time=request.enqueued_ns + offset)
            queue.end(end_time=request.start_ns + offset)
            compute = self._tracer.start_span(
                "compute",
                context=within,
                start_time=request.start_ns + offset,
                attributes={"conduit.batch.rows": request.rows},
            )
            compute.end(end_time=request.end_ns + offset)
            parent.end(end_time=request.end_ns + offset)


class VersionTracer:
    """What the batcher of one model version calls: ``sampled`` per request, ``record`` for the sampled ones."""

    __slots__ = ("_draw", "_model", "_owner", "_ratio", "_version")

    def __init__(self, owner: Tracing, model: str, version: str) -> None:
        self._owner = owner
        self._model = model
        self._version = version
        self._ratio = owner.ratio
        self._draw = owner.draw

    def sampled(self) -> bool:
        """Whether to trace the request being answered."""
        return self._draw() < self._ratio

    def record(self, arrival_ns: int, enqueued_ns: int, start_ns: int, end_ns: int, *, rows: int, status: str) -> None:
        """A sampled request: when it arrived and queued, when its batch started and ended, the batch's rows, and
        ``OK`` or its error code's name."""
        self._owner._keep(_Request(self._model, self._version, arrival_ns, enqueued_ns, start_ns, end_ns, rows, status))
