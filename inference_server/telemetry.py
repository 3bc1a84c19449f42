"""OpenTelemetry metrics of the inference server, kept off the request path.

Recording a measurement with the OpenTelemetry SDK costs several microseconds; on a request that takes a few hundred
that is too much. Requests therefore append plain floats to per-version buffers, and ``flush`` (run by the server
every ``interval``) records them into the instruments. Counts are added once per flush; in-flight requests are an
observable gauge read at collection time.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from opentelemetry.metrics import CallbackOptions, MeterProvider, Observation

__all__ = ["InFlightSource", "Telemetry", "VersionRecorder"]

InFlightSource = Callable[[], Iterable[tuple[str, str, int]]]
"""Returns (model, version, requests in flight) for every served version."""

# Latency buckets in seconds: 50 µs to 10 s, dense where a fast model's answers fall.
LATENCY_BUCKETS = (
    0.00005, 0.0001, 0.00015, 0.0002, 0.0003, 0.0004, 0.0005, 0.00075, 0.001, 0.0015, 0.002, 0.003, 0.005, 0.0075,
    0.01, 0.015, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
# Past this many buffered measurements a recorder flushes at once, so memory stays bounded without a flusher.
MAX_BUFFERED = 50_000
# Measurements recorded between two turns of the event loop during a flush (~5 ms of work).
FLUSH_CHUNK = 500

Buffers = tuple[list[tuple[float, float]], list[tuple[str, float]], list[tuple[int, float]]]


@dataclass(slots=True)
class VersionRecorder:
    """Buffers the measurements of one model version until the next flush."""

    telemetry: Telemetry
    model: str
    version: str
    successes: list[tuple[float, float]] = field(default_factory=list)
    failures: list[tuple[str, float]] = field(default_factory=list)
    executions: list[tuple[int, float]] = field(default_factory=list)

    def succeeded(self, seconds: float, queued_seconds: float) -> None:
        """A request answered: its end-to-end and queue times."""
        self.successes.append((seconds, queued_seconds))
        if len(self.successes) > MAX_BUFFERED:
            self.telemetry.flush()

    def failed(self, status: str, seconds: float) -> None:
        """A request refused or failed; ``status`` is its error code's name."""
        self.failures.append((status, seconds))
        if len(self.failures) > MAX_BUFFERED:
            self.telemetry.flush()

    def executed(self, rows: int, seconds: float) -> None:
        self.executions.append((rows, seconds))


class Telemetry:
    """The instruments, created from an injected ``MeterProvider`` (tests pass one with an in-memory reader)."""

    def __init__(self, meter_provider: MeterProvider, in_flight: InFlightSource = lambda: ()) -> None:
        self._in_flight = in_flight
        meter = meter_provider.get_meter("conduit.inference_server")
        self._requests = meter.create_counter(
            "conduit.inference.requests", unit="{request}", description="Inference requests by model, version, status"
        )
        self._duration = meter.create_histogram(
            "conduit.inference.duration",
            unit="s",
            description="End-to-end request latency inside the server",
            explicit_bucket_boundaries_advisory=LATENCY_BUCKETS,
        )
        self._queue = meter.create_histogram(
            "conduit.inference.queue.duration",
            unit="s",
            description="Time requests waited for the batcher",
            explicit_bucket_boundaries_advisory=LATENCY_BUCKETS,
        )
        self._compute = meter.create_histogram(
            "conduit.inference.compute.duration",
            unit="s",
            description="Time of one model execution (a whole batch)",
            explicit_bucket_boundaries_advisory=LATENCY_BUCKETS,
        )
        self._batch = meter.create_histogram(
            "conduit.inference.batch.size",
            unit="{row}",
            description="Rows per model execution",
            explicit_bucket_boundaries_advisory=BATCH_BUCKETS,
        )
        meter.create_observable_up_down_counter(
            "conduit.inference.in_flight",
            callbacks=[self._observe_in_flight],
            unit="{request}",
            description="Requests accepted and not yet answered",
        )
        self._recorders: dict[tuple[str, str], VersionRecorder] = {}

    def recorder(self, model: str, version: str) -> VersionRecorder:
        """The recorder of one model version (the same object every time it is asked for)."""
        key = (model, version)
        recorder = self._recorders.get(key)
        if recorder is None:
            recorder = self._recorders[key] = VersionRecorder(self, model, version)
        return recorder

    def flush(self) -> None:
        """Record everything buffered since the last flush into the instruments, at once."""
        for _ in self._record(self._take()):
            pass

    async def run_flusher(self, interval_s: float) -> None:
        """Flush every ``interval_s`` until cancelled (flushing once more on the way out).

        A flush yields to the event loop every ``FLUSH_CHUNK`` measurements, so recording a second's worth of
        requests never holds up the requests of the next one.
        """
        try:
            while True:
                await asyncio.sleep(interval_s)
                for _ in self._record(self._take()):
                    await asyncio.sleep(0)
        finally:
            self.flush()

    def _take(self) -> list[tuple[VersionRecorder, Buffers]]:
        taken = []
        for recorder in list(self._recorders.values()):
            buffers = (recorder.successes, recorder.failures, recorder.executions)
            recorder.successes, recorder.failures, recorder.executions = [], [], []
            taken.append((recorder, buffers))
        return taken

    def _record(self, taken: list[tuple[VersionRecorder, Buffers]]) -> Iterator[None]:
        """Record ``taken`` into the instruments, pausing (yielding) every ``FLUSH_CHUNK`` measurements."""
        done = 0
        for recorder, (successes, failures, executions) in taken:
            attributes = {"model": recorder.model, "version": recorder.version}
            ok = {**attributes, "status": "OK"}
            if successes:
                self._requests.add(len(successes), ok)
            by_status: dict[str, dict[str, str]] = {}
            for status, count in Counter(status for status, _ in failures).items():
                by_status[status] = {**attributes, "status": status}
                self._requests.add(count, by_status[status])
            for seconds, queued_seconds in successes:
                self._duration.record(seconds, ok)
                self._queue.record(queued_seconds, attributes)
                done += 1
                if done % FLUSH_CHUNK == 0:
                    yield
            for status, seconds in failures:
                self._duration.record(seconds, by_status[status])
            for rows, seconds in executions:
                self._compute.record(seconds, attributes)
                self._batch.record(rows, attributes)
                done += 1
                if done % FLUSH_CHUNK == 0:
                    yield

    def _observe_in_flight(self, _options: CallbackOptions) -> list[Observation]:
        return [Observation(count, {"model": model, "version": version}) for model, version, count in self._in_flight()]
