"""OpenTelemetry metrics of the inference server: buffered on the request path, recorded in bulk, read by any reader."""

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
from inference_server.telemetry._sketches import BIN, CATEGORY, MISSING, OTHER, PREDICTION, SketchPlan
from inference_server.telemetry._sums import SumSet, SumView

__all__ = [
    "BIN",
    "CATEGORY",
    "MISSING",
    "OTHER",
    "PREDICTION",
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
    "VersionRecorder",
    "histogram_set",
    "sum_set",
]
