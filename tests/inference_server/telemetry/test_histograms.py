"""Bulk histograms agree with the OpenTelemetry SDK's own histogram and reach every kind of reader."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.sdk.metrics import Histogram as HistogramInstrument
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import AggregationTemporality, InMemoryMetricReader
from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation, View
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from inference_server.telemetry import HistogramSet, InMemoryReader, PrometheusReader

BOUNDS = (0.001, 0.002, 0.005, 0.01)
NAME = "conduit.test.duration"


class Clock:
    def __init__(self) -> None:
        self.ns = 1_000

    def __call__(self) -> int:
        return self.ns


def histograms(clock: Clock | None = None) -> HistogramSet:
    found = HistogramSet("conduit.test", clock=clock or Clock())
    found.define(NAME, unit="s", description="test latencies", bounds=BOUNDS)
    return found


def points(reader: InMemoryMetricReader, name: str) -> list[Any]:
    data = reader.get_metrics_data()
    assert data is not None
    return [
        point
        for resource in data.resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
        if metric.name == name
        for point in metric.data.data_points
    ]


def test_same_buckets_sum_min_max_as_the_sdk_histogram_including_values_on_bounds() -> None:
    rng = np.random.default_rng(3)
    values = np.concatenate([rng.exponential(0.004, 997), np.array(BOUNDS[:3])])  # bounds fall in the lower bucket
    sdk_reader = InMemoryMetricReader()
    view = View(instrument_name=NAME, aggregation=ExplicitBucketHistogramAggregation(boundaries=BOUNDS))
    sdk = MeterProvider(metric_readers=[sdk_reader], views=[view]).get_meter("sdk").create_histogram(NAME)
    for value in values:
        sdk.record(float(value), {"model": "m"})
    bulk = histograms()
    ours = InMemoryReader(bulk)
    provider = MeterProvider(metric_readers=[ours])
    provider.get_meter("conduit.test").create_counter("conduit.test.requests").add(1)
    bulk.record(NAME, values[:500], {"model": "m"})
    bulk.record(NAME, values[500:], {"model": "m"})

    (expected,) = points(sdk_reader, NAME)
    (found,) = points(ours, NAME)
    assert list(found.bucket_counts) == list(expected.bucket_counts)
    assert found.count == expected.count == values.size
    assert abs(found.sum - expected.sum) < 1e-12
    assert (found.min, found.max) == (expected.min, expected.max)
    assert list(found.explicit_bounds) == list(BOUNDS)
    assert dict(found.attributes) == {"model": "m"}


def test_cumulative_keeps_everything_and_delta_starts_afresh_at_each_collection() -> None:
    clock = Clock()
    bulk = histograms(clock)
    cumulative = InMemoryReader(bulk)
    delta = InMemoryReader(bulk, preferred_temporality={HistogramInstrument: AggregationTemporality.DELTA})
    provider = MeterProvider(metric_readers=[cumulative, delta])
    provider.get_meter("conduit.test").create_counter("conduit.test.requests").add(1)

    clock.ns = 2_000
    bulk.record(NAME, np.array([0.0015, 0.02]), {"model": "m"})
    clock.ns = 3_000
    (first_cumulative,) = points(cumulative, NAME)
    (first_delta,) = points(delta, NAME)
    assert first_cumulative.count == first_delta.count == 2
    assert first_delta.start_time_unix_nano == 1_000  # the view's creation

    clock.ns = 4_000
    bulk.record(NAME, np.array([0.0001]), {"model": "m"})
    clock.ns = 5_000
    (second_cumulative,) = points(cumulative, NAME)
    (second_delta,) = points(delta, NAME)
    assert second_cumulative.count == 3 and list(second_cumulative.bucket_counts) == [1, 1, 0, 0, 1]
    assert second_cumulative.start_time_unix_nano == 2_000
    assert (second_cumulative.min, second_cumulative.max) == (0.0001, 0.02)
    assert second_delta.count == 1 and list(second_delta.bucket_counts) == [1, 0, 0, 0, 0]
    assert second_delta.start_time_unix_nano == 3_000  # the previous collection
    assert (second_delta.min, second_delta.max) == (0.0001, 0.0001)
    assert points(delta, NAME) == []  # nothing since


def test_series_are_kept_apart_by_attributes_and_sit_in_the_sets_scope() -> None:
    bulk = histograms()
    reader = InMemoryReader(bulk)
    provider = MeterProvider(metric_readers=[reader])
    provider.get_meter("conduit.test").create_counter("conduit.test.requests").add(1)
    bulk.record(NAME, np.array([0.001, 0.001]), {"model": "a", "status": "OK"})
    bulk.record(NAME, np.array([0.003]), {"status": "OK", "model": "b"})
    bulk.record(NAME, np.array([]), {"model": "c"})

    data = reader.get_metrics_data()
    assert data is not None
    (scope,) = data.resource_metrics[0].scope_metrics
    assert scope.scope.name == "conduit.test"
    assert {metric.name for metric in scope.metrics} == {"conduit.test.requests", NAME}
    counts = {point.attributes["model"]: point.count for point in points(reader, NAME)}
    assert counts == {"a": 2, "b": 1}


def test_prometheus_scrape_shows_the_histogram_like_the_sdks() -> None:
    bulk = histograms()
    registry = CollectorRegistry()
    provider = MeterProvider(metric_readers=[PrometheusReader(bulk, registry=registry)])
    provider.get_meter("conduit.test").create_counter("conduit.test.requests").add(1)
    bulk.record(NAME, np.array([0.0005, 0.004, 0.004, 0.5]), {"model": "m"})

    samples = {
        (sample.name, sample.labels.get("le", "")): sample.value
        for family in text_string_to_metric_families(generate_latest(registry).decode())
        for sample in family.samples
        if sample.labels.get("model") == "m"
    }
    bucket = "conduit_test_duration_seconds_bucket"
    assert [samples[(bucket, le)] for le in ("0.001", "0.002", "0.005", "0.01", "+Inf")] == [1, 1, 3, 3, 4]
    assert samples[("conduit_test_duration_seconds_count", "")] == 4
    assert samples[("conduit_test_duration_seconds_sum", "")] == 0.5085
    assert isinstance(PrometheusReader(bulk, registry=CollectorRegistry()), PrometheusMetricReader)


def test_bounds_must_increase() -> None:
    with pytest.raises(ValueError, match="strictly increasing"):
        HistogramSet("conduit.test").define("bad", unit="s", description="", bounds=(0.1, 0.1, 0.2))
