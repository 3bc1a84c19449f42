"""Explicit-bucket histograms fed in bulk and exported beside the SDK's own instruments.

The OpenTelemetry SDK spends 10-30 µs in every ``Histogram.record``. A server answering thousands of requests a
second would give a tenth of a core to it, and hold its event loop for milliseconds at every flush. These histograms
take one flush's measurements of a series as a numpy array instead: one ``searchsorted`` and one ``bincount``, a few
microseconds for a thousand values. Readers from ``_readers`` add their points to every collection of the SDK's
metrics, so exporters see one stream of ordinary OpenTelemetry histograms.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    Histogram,
    HistogramDataPoint,
    Metric,
)
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from inference_server.telemetry._merge import Attributes, BulkView

__all__ = ["HistogramSet", "HistogramView"]

Clock = Callable[[], int]


@dataclass(frozen=True, slots=True)
class _Instrument:
    name: str
    unit: str
    description: str
    bounds: np.ndarray


@dataclass(slots=True)
class _Series:
    """Counts per bucket (one more than bounds: the last holds values above the highest bound), sum, min, max."""

    counts: np.ndarray
    total: float
    count: int
    low: float
    high: float
    start_ns: int

    def copy(self) -> _Series:
        return _Series(self.counts.copy(), self.total, self.count, self.low, self.high, self.start_ns)

    def add(self, counts: np.ndarray, total: float, count: int, low: float, high: float) -> None:
        self.counts += counts
        self.total += total
        self.count += count
        self.low = min(self.low, low)
        self.high = max(self.high, high)


class HistogramView(BulkView[_Series]):
    """A reader's view of a ``HistogramSet``."""

    def _add(self, key: tuple[str, Attributes], counts: np.ndarray, values: np.ndarray, now_ns: int) -> None:
        total, low, high = float(values.sum()), float(values.min()), float(values.max())
        series = self.series.get(key)
        if series is None:
            self.series[key] = _Series(counts.copy(), total, int(values.size), low, high, self.start_ns(now_ns))
        else:
            series.add(counts, total, int(values.size), low, high)


class HistogramSet:
    """Histograms of one instrumentation scope, shared by every reader that exports them.

    ``record`` is called from the event loop, collections come from exporter threads; one lock guards the counts.
    """

    def __init__(self, scope: str, clock: Clock = time.time_ns) -> None:
        self.scope = InstrumentationScope(scope)
        self.clock = clock
        self._instruments: dict[str, _Instrument] = {}
        self._views: list[HistogramView] = []
        self._lock = threading.Lock()

    def define(self, name: str, *, unit: str, description: str, bounds: tuple[float, ...]) -> str:
        """Declare a histogram with explicit bucket ``bounds``; returns its name, to pass to ``record``."""
        if list(bounds) != sorted(set(bounds)):
            raise ValueError(f"bucket bounds of {name} must be strictly increasing")
        self._instruments[name] = _Instrument(name, unit, description, np.asarray(bounds, dtype=np.float64))
        return name

    def view(self, temporality: AggregationTemporality = AggregationTemporality.CUMULATIVE) -> HistogramView:
        """A new reader's view; measurements recorded from now on reach it."""
        with self._lock:
            view = HistogramView(self, temporality)
            self._views.append(view)
        return view

    def record(self, name: str, values: np.ndarray, attributes: Mapping[str, str]) -> None:
        """Add every value of ``values`` (one series: one attribute set) to histogram ``name``."""
        if values.size == 0:
            return
        bounds = self._instruments[name].bounds
        # OpenTelemetry's buckets are (bounds[i-1], bounds[i]]: a value equal to a bound belongs to the lower bucket.
        counts = np.bincount(np.searchsorted(bounds, values, side="left"), minlength=bounds.size + 1)
        key = (name, tuple(sorted(attributes.items())))
        with self._lock:
            now_ns = self.clock()
            for view in self._views:
                view._add(key, counts, values, now_ns)

    def collect(self, view: HistogramView) -> list[Metric]:
        """The data points of ``view`` as OpenTelemetry metrics, one per histogram with measurements."""
        with self._lock:
            now_ns = self.clock()
            series = view.take(now_ns)
        points: dict[str, list[HistogramDataPoint]] = {}
        for (name, attributes), s in series.items():
            bounds = self._instruments[name].bounds
            points.setdefault(name, []).append(
                HistogramDataPoint(
                    attributes=dict(attributes),
                    start_time_unix_nano=s.start_ns,
                    time_unix_nano=now_ns,
                    count=s.count,
                    sum=s.total,
                    bucket_counts=[int(c) for c in s.counts],
                    explicit_bounds=[float(b) for b in bounds],
                    min=s.low,
                    max=s.high,
                    exemplars=[],
                )
            )
        return [
            Metric(
                name=name,
                description=self._instruments[name].description,
                unit=self._instruments[name].unit,
                data=Histogram(data_points=found, aggregation_temporality=view.temporality),
            )
            for name, found in points.items()
        ]
