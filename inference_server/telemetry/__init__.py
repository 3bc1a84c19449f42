"""OpenTelemetry metrics of the inference server: buffered on the request path, recorded in bulk, read by any reader."""

from inference_server.telemetry._histograms import HistogramSet, HistogramView
from inference_server.telemetry._readers import InMemoryReader, PeriodicReader, PrometheusReader
from inference_server.telemetry._recorder import SCOPE, InFlightSource, Telemetry, VersionRecorder, histogram_set

__all__ = [
    "SCOPE",
    "HistogramSet",
    "HistogramView",
    "InFlightSource",
    "InMemoryReader",
    "PeriodicReader",
    "PrometheusReader",
    "Telemetry",
    "VersionRecorder",
    "histogram_set",
]
