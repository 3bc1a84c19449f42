"""OTLP metrics -> data points of the metric contract (``contract.metrics``).

Only the shape of the messages is checked here; what the contract asks of attributes is checked by the roll-ups.
Metrics outside the contract are skipped unread, so a server may export anything else to the same receiver.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from itertools import pairwise

from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import KeyValue
from opentelemetry.proto.metrics.v1 import metrics_pb2

from contract import metrics
from contract.entities import LatencyHistogram
from contract.errors import ConduitError, ErrorCode
from control_plane.monitoring import MAX_COUNT, Attributes, HistogramPoint, Point, SumPoint, Temporality

__all__ = ["export_request", "points"]

# The OTLP type each metric of the contract must have.
_TYPES = {
    metrics.REQUESTS: "sum",
    metrics.SKETCH_BIN: "sum",
    metrics.SKETCH_CATEGORY: "sum",
    metrics.DURATION: "histogram",
}
_TEMPORALITIES = {
    metrics_pb2.AGGREGATION_TEMPORALITY_DELTA: Temporality.DELTA,
    metrics_pb2.AGGREGATION_TEMPORALITY_CUMULATIVE: Temporality.CUMULATIVE,
}
_SCALARS = ("string_value", "int_value", "double_value", "bool_value")
# OTLP's names of the Metric.data fields' types, for messages.
_TYPE_NAMES = {
    "sum": "Sum",
    "gauge": "Gauge",
    "histogram": "Histogram",
    "exponential_histogram": "ExponentialHistogram",
    "summary": "Summary",
}


def _invalid(metric: str, message: str) -> ConduitError:
    return ConduitError(ErrorCode.INVALID_ARGUMENT, f"metric {metric}: {message}")


def export_request(data: bytes) -> ExportMetricsServiceRequest:
    """Decode a request's bytes (the receiver takes them raw: gRPC would answer undecodable ones with UNKNOWN)."""
    try:
        return ExportMetricsServiceRequest.FromString(data)
    except DecodeError:
        raise ConduitError(ErrorCode.INVALID_ARGUMENT, "not an OTLP ExportMetricsServiceRequest") from None


def _text(pair: KeyValue) -> str | None:
    kind = pair.value.WhichOneof("value")
    if kind not in _SCALARS:
        return None
    value = getattr(pair.value, kind)
    return ("true" if value else "false") if kind == "bool_value" else str(value)


def _attributes(pairs: Iterable[KeyValue]) -> Attributes:
    found = {pair.key: text for pair in pairs if (text := _text(pair)) is not None}
    return tuple(sorted(found.items()))


def _count(metric: str, point: metrics_pb2.NumberDataPoint) -> int:
    kind = point.WhichOneof("value")
    value: float = point.as_int if kind == "as_int" else point.as_double
    if kind is None or not math.isfinite(value) or value < 0 or value != int(value):
        raise _invalid(metric, "counts must be whole numbers of 0 or more")
    if value > MAX_COUNT:
        raise _invalid(metric, f"counts must be at most 2^63 - 1 ({MAX_COUNT})")
    return int(value)


def _temporality(metric: str, value: metrics_pb2.AggregationTemporality.ValueType) -> Temporality:
    try:
        return _TEMPORALITIES[value]
    except KeyError:
        raise _invalid(metric, "aggregation temporality must be DELTA or CUMULATIVE") from None


def _histogram(metric: str, point: metrics_pb2.HistogramDataPoint) -> LatencyHistogram:
    bounds, counts = tuple(point.explicit_bounds), tuple(point.bucket_counts)
    total = point.sum if point.HasField("sum") else 0.0
    low = point.min if point.HasField("min") else None
    high = point.max if point.HasField("max") else None
    if point.count > MAX_COUNT or any(c > MAX_COUNT for c in counts):
        raise _invalid(metric, f"counts must be at most 2^63 - 1 ({MAX_COUNT})")
    # The roll-ups add sums and keep extremes in SQL, where NaN is no number (SQLite stores it as NULL).
    if any(v is not None and not math.isfinite(v) for v in (total, low, high)):
        raise _invalid(metric, "sum, min and max must be finite numbers")
    if not counts:
        # OTLP allows a histogram without buckets: its count is then one bucket holding every value.
        return LatencyHistogram((), (point.count,), point.count, total, low, high)
    if len(counts) != len(bounds) + 1:
        raise _invalid(metric, f"{len(counts)} bucket counts for {len(bounds)} bounds; there must be one more")
    if any(not math.isfinite(b) for b in bounds) or any(b >= c for b, c in pairwise(bounds)):
        raise _invalid(metric, "bucket bounds must be finite and increasing")
    if sum(counts) != point.count:
        raise _invalid(metric, f"bucket counts add up to {sum(counts)}, not the point's count {point.count}")
    return LatencyHistogram(bounds, counts, point.count, total, low, high)


def _points(metric: metrics_pb2.Metric, instance: str) -> Iterable[Point]:
    name = metric.name
    kind = metric.WhichOneof("data")
    if kind != _TYPES[name]:
        found = _TYPE_NAMES.get(kind or "", "metric without data")
        raise _invalid(name, f"must be a {_TYPE_NAMES[_TYPES[name]]}, not a {found}")
    if kind == "sum" and not metric.sum.is_monotonic:
        raise _invalid(name, "must be a monotonic Sum")
    data = metric.sum if kind == "sum" else metric.histogram
    temporality = _temporality(name, data.aggregation_temporality)
    for point in data.data_points:
        if point.flags & metrics_pb2.DATA_POINT_FLAGS_NO_RECORDED_VALUE_MASK:
            continue
        start, end = point.start_time_unix_nano, point.time_unix_nano
        attributes = _attributes(point.attributes)
        if isinstance(point, metrics_pb2.NumberDataPoint):
            yield SumPoint(name, attributes, instance, temporality, start, end, _count(name, point))
        else:
            yield HistogramPoint(name, attributes, instance, temporality, start, end, _histogram(name, point))


def points(request: ExportMetricsServiceRequest) -> list[Point]:
    """The request's points of the metrics the contract names, each with the ``service.instance.id`` of its resource.

    Raises:
        ConduitError: INVALID_ARGUMENT for such a metric of another type (a Gauge of requests), a temporality other
            than delta or cumulative, a count that is no whole number or above 2^63 - 1, a histogram whose buckets
            do not add up or whose sum, min or max is not finite.
    """
    found: list[Point] = []
    for resource in request.resource_metrics:
        instance = dict(_attributes(resource.resource.attributes)).get(metrics.INSTANCE, "")
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                if metric.name in _TYPES:
                    found.extend(_points(metric, instance))
    for point in found:
        if point.time_ns <= 0:
            raise _invalid(point.metric, "every point needs its time")
    return found
