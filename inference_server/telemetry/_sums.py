"""Monotonic counters fed a table of counts at a time and exported beside the SDK's own instruments.

The data sketches add, per feature and flush, one count per bin or category: hundreds of series per model version.
One SDK ``Counter.add`` per series would cost more than counting the values did. ``SumSet.add`` takes one feature's
counts as an array with their labels and adds them under one lock; readers from ``_readers`` turn each view into
OpenTelemetry ``Sum`` points (monotonic, cumulative or delta as the reader asks for counters).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from opentelemetry.sdk.metrics.export import AggregationTemporality, Metric, NumberDataPoint, Sum
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from inference_server.telemetry._merge import Attributes, BulkView

__all__ = ["SumSet", "SumView"]

Clock = Callable[[], int]


@dataclass(frozen=True, slots=True)
class _Instrument:
    name: str
    unit: str
    description: str


@dataclass(slots=True)
class _Series:
    value: int
    start_ns: int

    def copy(self) -> _Series:
        return _Series(self.value, self.start_ns)


class SumView(BulkView[_Series]):
    """A reader's view of a ``SumSet``."""

    def _add(self, name: str, points: list[tuple[Attributes, int]], now_ns: int) -> None:
        start_ns = self.start_ns(now_ns)
        series = self.series
        for attributes, count in points:
            found = series.get((name, attributes))
            if found is None:
                series[(name, attributes)] = _Series(count, start_ns)
            else:
                found.value += count


class SumSet:
    """Monotonic sums of one instrumentation scope, shared by every reader that exports them.

    ``add`` is called from the server's flusher, collections come from exporter threads; one lock guards the counts.
    """

    def __init__(self, scope: str, clock: Clock = time.time_ns) -> None:
        self.scope = InstrumentationScope(scope)
        self.clock = clock
        self._instruments: dict[str, _Instrument] = {}
        self._views: list[SumView] = []
        self._lock = threading.Lock()

    def define(self, name: str, *, unit: str, description: str) -> str:
        """Declare a monotonic sum; returns its name, to pass to ``add``."""
        self._instruments[name] = _Instrument(name, unit, description)
        return name

    def view(self, temporality: AggregationTemporality = AggregationTemporality.CUMULATIVE) -> SumView:
        """A new reader's view; counts added from now on reach it."""
        with self._lock:
            view = SumView(self, temporality)
            self._views.append(view)
        return view

    def add(
        self, name: str, attributes: Mapping[str, str], key: str, labels: Sequence[str], counts: np.ndarray
    ) -> None:
        """Add ``counts[i]`` to the series of ``name`` with ``attributes`` and ``key`` = ``labels[i]``, for every i."""
        if name not in self._instruments:
            raise KeyError(f"sum {name} is not defined")
        points = [
            (tuple(sorted({**attributes, key: label}.items())), int(count))
            for label, count in zip(labels, counts.tolist(), strict=True)
        ]
        with self._lock:
            now_ns = self.clock()
            for view in self._views:
                view._add(name, points, now_ns)

    def collect(self, view: SumView) -> list[Metric]:
        """The data points of ``view`` as OpenTelemetry metrics, one per sum with counts."""
        with self._lock:
            now_ns = self.clock()
            series = view.take(now_ns)
        points: dict[str, list[NumberDataPoint]] = {}
        for (name, attributes), s in series.items():
            points.setdefault(name, []).append(
                NumberDataPoint(
                    attributes=dict(attributes),
                    start_time_unix_nano=s.start_ns,
                    time_unix_nano=now_ns,
                    value=s.value,
                    exemplars=[],
                )
            )
        return [
            Metric(
                name=name,
                description=self._instruments[name].description,
                unit=self._instruments[name].unit,
                data=Sum(data_points=found, aggregation_temporality=view.temporality, is_monotonic=True),
            )
            for name, found in points.items()
        ]
