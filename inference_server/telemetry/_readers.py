"""Metric readers that export a ``HistogramSet`` (and a ``SumSet``) together with the SDK's own instruments.

``MetricReader._receive_metrics`` is the hook the SDK gives its reader subclasses: every collection passes through
it, so adding the bulk histograms and sums there reaches the Prometheus scrape, the OTLP push and the tests'
in-memory reader alike.
"""

from __future__ import annotations

from typing import Any

from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.sdk.metrics import Counter as CounterInstrument
from opentelemetry.sdk.metrics import Histogram as HistogramInstrument
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    InMemoryMetricReader,
    MetricExporter,
    MetricReader,
    MetricsData,
    PeriodicExportingMetricReader,
)

from inference_server.telemetry._histograms import HistogramSet, HistogramView
from inference_server.telemetry._sums import SumSet, SumView

__all__ = ["InMemoryReader", "PeriodicReader", "PrometheusReader"]


class _WithHistograms(MetricReader):
    _histograms: HistogramView
    _sums: SumView | None

    def _attach(self, histograms: HistogramSet, sums: SumSet | None) -> None:
        # Bulk instruments follow the temporality the reader (or its exporter) asked of the SDK's instruments of the
        # same kind, which the reader keys by the SDK's concrete instrument class.
        self._histograms = histograms.view(self._temporality_of(HistogramInstrument))
        self._sums = sums.view(self._temporality_of(CounterInstrument)) if sums is not None else None

    def _temporality_of(self, kind: type) -> AggregationTemporality:
        return next(
            temporality
            for instrument, temporality in self._instrument_class_temporality.items()
            if issubclass(instrument, kind)
        )

    def _receive_metrics(self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any) -> None:
        merged = self._histograms.merge(metrics_data)
        if self._sums is not None:
            merged = self._sums.merge(merged)
        super()._receive_metrics(  # type: ignore[safe-super]  # concrete in every reader this mixes into
            merged, timeout_millis=timeout_millis, **kwargs
        )


class InMemoryReader(_WithHistograms, InMemoryMetricReader):
    """``InMemoryMetricReader`` that also reads ``histograms`` and ``sums``."""

    def __init__(self, histograms: HistogramSet, sums: SumSet | None = None, **kwargs: Any) -> None:
        InMemoryMetricReader.__init__(self, **kwargs)
        self._attach(histograms, sums)


class PrometheusReader(_WithHistograms, PrometheusMetricReader):
    """``PrometheusMetricReader`` that also reads ``histograms`` and ``sums``."""

    def __init__(self, histograms: HistogramSet, sums: SumSet | None = None, **kwargs: Any) -> None:
        PrometheusMetricReader.__init__(self, **kwargs)
        self._attach(histograms, sums)


class PeriodicReader(_WithHistograms, PeriodicExportingMetricReader):
    """``PeriodicExportingMetricReader`` that also exports ``histograms`` and ``sums``."""

    def __init__(
        self, histograms: HistogramSet, exporter: MetricExporter, sums: SumSet | None = None, **kwargs: Any
    ) -> None:
        # Its export thread starts in the base constructor, but collects nothing before a MeterProvider registers it.
        PeriodicExportingMetricReader.__init__(self, exporter, **kwargs)
        self._attach(histograms, sums)
