"""The inference server's metrics, kept off the request path.

Requests append plain floats to per-version buffers; ``flush`` (run by the server every ``interval``) turns each
buffer into one numpy array per series and adds it to the bulk histograms in one step, and adds the request counts to
the SDK's counter once per series. In-flight requests are an observable gauge read at collection time. Executed
batches are kept for the data sketches, which the same flush counts (``_sketches``).
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
from opentelemetry.metrics import CallbackOptions, MeterProvider, Observation

from contract import metrics
from inference_server.profile import DataProfile
from inference_server.telemetry._histograms import HistogramSet
from inference_server.telemetry._sketches import SketchObserver, SketchPlan, VersionSketches
from inference_server.telemetry._sums import SumSet
from inference_server.telemetry._tracing import Tracing, VersionTracer

if TYPE_CHECKING:
    from inference_server.spec import ModelSpec

__all__ = ["SCOPE", "InFlightSource", "Telemetry", "VersionRecorder", "histogram_set", "sum_set"]

log = logging.getLogger(__name__)

SCOPE = "conduit.inference_server"
InFlightSource = Callable[[], Iterable[tuple[str, str, int]]]
"""Returns (model, version, requests in flight) for every served version."""

# Latency buckets in seconds: 50 µs to 10 s, dense where a fast model's answers fall.
LATENCY_BUCKETS = (
    0.00005, 0.0001, 0.00015, 0.0002, 0.0003, 0.0004, 0.0005, 0.00075, 0.001, 0.0015, 0.002, 0.003, 0.005, 0.0075,
    0.01, 0.015, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip
BATCH_BUCKETS = (1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0)
# Past this many buffered measurements a recorder flushes at once, so memory stays bounded without a flusher.
MAX_BUFFERED = 50_000

QUEUE = "conduit.inference.queue.duration"
COMPUTE = "conduit.inference.compute.duration"
BATCH = "conduit.inference.batch.size"


def histogram_set() -> HistogramSet:
    """The server's histograms; hand the same set to its metric readers and to ``Telemetry``."""
    histograms = HistogramSet(SCOPE)
    histograms.define(
        metrics.DURATION, unit="s", description="End-to-end request latency inside the server", bounds=LATENCY_BUCKETS
    )
    histograms.define(QUEUE, unit="s", description="Time requests waited for the batcher", bounds=LATENCY_BUCKETS)
    histograms.define(
        COMPUTE, unit="s", description="Time of one model execution (a whole batch)", bounds=LATENCY_BUCKETS
    )
    histograms.define(BATCH, unit="{row}", description="Rows per model execution", bounds=BATCH_BUCKETS)
    return histograms


def sum_set() -> SumSet:
    """The server's data sketch counters; hand the same set to its metric readers and to ``Telemetry``."""
    sums = SumSet(SCOPE)
    sums.define(metrics.SKETCH_BIN, unit="{value}", description="Served values per feature and training-profile bin")
    sums.define(
        metrics.SKETCH_CATEGORY, unit="{value}", description="Served values per feature and training-profile category"
    )
    return sums


@dataclass(slots=True)
class VersionRecorder:
    """Buffers the measurements of one model version until the next flush."""

    telemetry: Telemetry
    model: str
    version: str
    durations: list[float] = field(default_factory=list)
    queued: list[float] = field(default_factory=list)
    failures: list[tuple[str, float]] = field(default_factory=list)
    rows: list[int] = field(default_factory=list)
    computes: list[float] = field(default_factory=list)

    def succeeded(self, seconds: float, queued_seconds: float) -> None:
        """A request answered: its end-to-end and queue times."""
        self.durations.append(seconds)
        self.queued.append(queued_seconds)
        if len(self.durations) > MAX_BUFFERED:
            self.telemetry.flush()

    def failed(self, status: str, seconds: float) -> None:
        """A request refused or failed; ``status`` is its error code's name."""
        self.failures.append((status, seconds))
        if len(self.failures) > MAX_BUFFERED:
            self.telemetry.flush()

    def executed(self, rows: int, seconds: float) -> None:
        self.rows.append(rows)
        self.computes.append(seconds)
        if len(self.rows) > MAX_BUFFERED:
            self.telemetry.flush()

    def flush(self, histograms: HistogramSet) -> Counter[str]:
        """Add the buffered measurements to ``histograms``; returns the requests by status, which it forgets too."""
        durations, queued, failures = self.durations, self.queued, self.failures
        rows, computes = self.rows, self.computes
        self.durations, self.queued, self.failures, self.rows, self.computes = [], [], [], [], []
        attributes = {"model": self.model, "version": self.version}
        by_status: Counter[str] = Counter()
        if durations:
            by_status["OK"] = len(durations)
            histograms.record(metrics.DURATION, np.array(durations), {**attributes, "status": "OK"})
            histograms.record(QUEUE, np.array(queued), attributes)
        if failures:
            for status, seconds in _by_status(failures).items():
                by_status[status] = len(seconds)
                histograms.record(metrics.DURATION, np.array(seconds), {**attributes, "status": status})
        if rows:
            histograms.record(COMPUTE, np.array(computes), attributes)
            histograms.record(BATCH, np.array(rows, dtype=np.float64), attributes)
        return by_status


def _by_status(failures: list[tuple[str, float]]) -> dict[str, list[float]]:
    grouped: dict[str, list[float]] = {}
    for status, seconds in failures:
        grouped.setdefault(status, []).append(seconds)
    return grouped


class Telemetry:
    """The server's instruments: the bulk ``histograms``, the data sketch ``sums`` (``None``: no sketches), the
    request ``tracing`` (``None``: none) and, from an injected ``MeterProvider``, the request counter and the
    in-flight gauge. The provider's readers must read
    ``histograms`` and ``sums`` too (see ``_readers``)."""

    def __init__(
        self,
        meter_provider: MeterProvider,
        histograms: HistogramSet,
        in_flight: InFlightSource = lambda: (),
        *,
        sums: SumSet | None = None,
        tracing: Tracing | None = None,
    ) -> None:
        self._histograms = histograms
        self._sums = sums
        self._tracing = tracing
        self._sketches: dict[tuple[str, str], VersionSketches] = {}
        self._in_flight = in_flight
        meter = meter_provider.get_meter(SCOPE)
        self._requests = meter.create_counter(
            metrics.REQUESTS, unit="{request}", description="Inference requests by model, version, status"
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

    def tracer(self, model: str, version: str) -> VersionTracer | None:
        """The request tracer of one model version; ``None`` when the server traces nothing."""
        return self._tracing.version(model, version) if self._tracing is not None else None

    def observers(self, spec: ModelSpec, profile: DataProfile | None) -> Sequence[SketchObserver]:
        """What watches the batches of a newly loaded model version: its data sketches, when it has a profile that
        matches some of its inputs or its prediction (and the server counts sketches)."""
        if self._sums is None or profile is None:
            return ()
        plan = SketchPlan(spec, profile)
        if plan.empty:
            log.warning("model %s version %s: no input or output matches its profile", spec.name, spec.version)
            return ()
        key = (spec.name, spec.version)
        sketches = self._sketches.get(key)
        if sketches is None:
            sketches = self._sketches[key] = VersionSketches(self._sums)
        log.info("model %s version %s: data sketches of %s", spec.name, spec.version, ", ".join(plan.features))
        return (SketchObserver(plan, sketches),)

    def flush(self) -> None:
        """Record everything buffered since the last flush: a few numpy calls and counter adds per version, and the
        data sketches of the batches executed since."""
        for recorder in list(self._recorders.values()):
            for status, count in recorder.flush(self._histograms).items():
                self._requests.add(count, {"model": recorder.model, "version": recorder.version, "status": status})
        for sketches in list(self._sketches.values()):
            sketches.flush()
        if self._tracing is not None:
            self._tracing.flush()

    async def run_flusher(self, interval_s: float) -> None:
        """Flush every ``interval_s`` until cancelled (flushing once more on the way out)."""
        try:
            while True:
                await asyncio.sleep(interval_s)
                self.flush()
        finally:
            self.flush()

    def _observe_in_flight(self, _options: CallbackOptions) -> list[Observation]:
        return [Observation(count, {"model": model, "version": version}) for model, version, count in self._in_flight()]
