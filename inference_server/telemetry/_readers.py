"""Metric readers that export a ``HistogramSet`` together with the SDK's own instruments.

``MetricReader._receive_metrics`` is the hook the SDK gives its reader subclasses: every collection passes through
it, so adding the bulk histograms there reaches the Prometheus scrape, the OTLP push and the tests' in-memory reader
alike.
"""

from __future__ import annotations

from typing import Any

from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.sdk.metrics import Histogram as HistogramInstrument
from opentelemetry.sdk.metrics.export import (
    InMemoryMetricReader,
    MetricExporter,
    MetricReader,
    MetricsData,
    PeriodicExportingMetricReader,
)

from inference_server.telemetry._histograms import HistogramSet, HistogramView

__all__ = ["InMemoryReader", "PeriodicReader", "PrometheusReader"]


class _WithHistograms(MetricReader):
    _histograms: HistogramView

    def _attach(self, histograms: HistogramSet) -> None:
        # Histograms follow the temporality the reader (or its exporter) asked of the SDK's histograms, which the
        # reader keys by the SDK's concrete instrument class.
        temporality = next(
            temporality
            for instrument, temporality in self._instrument_class_temporality.items()
            if issubclass(instrument, HistogramInstrument)
        )
        self._histograms = histograms.view(temporality)

    def _receive_metrics(self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any) -> None:
        super()._receive_metrics(  # type: ignore[safe-super]  # concrete in every reader this mixes into
            self._histograms.merge(metrics_data), timeout_millis=timeout_millis, **kwargs
        )


class InMemoryReader(_WithHistograms, InMemoryMetricReader):
    """``InMemoryMetricReader`` that also reads ``histograms``."""

    def __init__(self, histograms: HistogramSet, **kwargs: Any) -> None:
        InMemoryMetricReader.__init__(self, **kwargs)
        self._attach(histograms)


class PrometheusReader(_WithHistograms, PrometheusMetricReader):
    """``PrometheusMetricReader`` that also reads ``histograms``."""

    def __init__(self, histograms: HistogramSet, **kwargs: Any) -> None:
        PrometheusMetricReader.__init__(self, **kwargs)
        self._attach(histograms)


class PeriodicReader(_WithHistograms, PeriodicExportingMetricReader):
    """``PeriodicExportingMetricReader`` that also exports ``histograms``."""

    def __init__(self, histograms: HistogramSet, exporter: MetricExporter, **kwargs: Any) -> None:
        # Its export thread starts in the base constructor, but collects nothing before a MeterProvider registers it.
        PeriodicExportingMetricReader.__init__(self, exporter, **kwargs)
        self._attach(histograms)
