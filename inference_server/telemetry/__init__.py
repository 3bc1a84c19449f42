"""OpenTelemetry metrics and traces of the inference server: buffered on the request path, recorded in bulk."""

from inference_server.telemetry._histograms import HistogramSet, HistogramView
from inference_server.telemetry._readers import InMemoryReader, PeriodicReader, PrometheusReader
from inference_server.telemetry._recorder import (
    SCOPE,
    InFlightSource,
    Telemetry,
    VersionRecorder,
    histogram_set,
    sum_set,
)
from inference_server.telemetry._sketches import SketchPlan
from inference_server.telemetry._sums import SumSet, SumView
from inference_server.telemetry._tracing import Tracing, VersionTracer

__all__ = [
    "SCOPE",
    "HistogramSet",
    "HistogramView",
    "InFlightSource",
    "InMemoryReader",
    "PeriodicReader",
    "PrometheusReader",
    "SketchPlan",
    "SumSet",
    "SumView",
    "Telemetry",
    "Tracing",
    "VersionRecorder",
    "VersionTracer",
    "histogram_set",
    "sum_set",
]
