"""Bulk sums: a table of counts added at a time, exported as monotonic OpenTelemetry Sums to every kind of reader."""

from __future__ import annotations

import numpy as np
from opentelemetry.sdk.metrics import Counter as CounterInstrument
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import AggregationTemporality
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from inference_server.telemetry import HistogramSet, InMemoryReader, PrometheusReader, SumSet
from tests.inference_server.telemetry.test_histograms import Clock, points

NAME = "conduit.test.values"
LABELS = ("0", "1", "below", "above", "missing")


def sums(clock: Clock) -> SumSet:
    found = SumSet("conduit.test", clock=clock)
    found.define(NAME, unit="{value}", description="test counts")
    return found


def by_slot(found: list) -> dict[tuple[str, str], int]:
    return {(p.attributes["feature"], p.attributes["bin"]): p.value for p in found}


def test_cumulative_keeps_counting_and_delta_starts_afresh_at_each_collection() -> None:
    clock = Clock()
    bulk = sums(clock)
    cumulative = InMemoryReader(HistogramSet("conduit.test", clock=clock), bulk)
    delta = InMemoryReader(
        HistogramSet("conduit.test", clock=clock),
        bulk,
        preferred_temporality={CounterInstrument: AggregationTemporality.DELTA},
    )
    provider = MeterProvider(metric_readers=[cumulative, delta])
    # Bulk metrics join a collection of the SDK's own, so there must be one: the server's in-flight gauge is
    # cumulative whatever the reader prefers for counters, and reports while any version is served.
    provider.get_meter("conduit.test").create_up_down_counter("conduit.test.in_flight").add(1)
    bulk.add(NAME, {"model": "m", "feature": "x"}, "bin", LABELS, np.array([1, 2, 0, 0, 3]))
    clock.ns = 2_000
    bulk.add(NAME, {"model": "m", "feature": "x"}, "bin", LABELS, np.array([1, 0, 0, 1, 0]))
    bulk.add(NAME, {"model": "m", "feature": "y"}, "bin", LABELS, np.array([0, 0, 5, 0, 0]))
    clock.ns = 2_500
    first = points(delta, NAME)
    assert by_slot(first) == {
        ("x", "0"): 2, ("x", "1"): 2, ("x", "below"): 0, ("x", "above"): 1, ("x", "missing"): 3,
        ("y", "0"): 0, ("y", "1"): 0, ("y", "below"): 5, ("y", "above"): 0, ("y", "missing"): 0,
    }  # fmt: skip
    assert {p.start_time_unix_nano for p in first} == {1_000}  # the view's creation
    clock.ns = 3_000
    bulk.add(NAME, {"model": "m", "feature": "x"}, "bin", LABELS, np.array([4, 0, 0, 0, 0]))
    second = points(delta, NAME)
    assert by_slot(second) == {("x", "0"): 4, ("x", "1"): 0, ("x", "below"): 0, ("x", "above"): 0, ("x", "missing"): 0}
    assert {p.start_time_unix_nano for p in second} == {2_500}  # the previous collection
    assert by_slot(points(cumulative, NAME))[("x", "0")] == 6
    (metric,) = [
        m
        for scope in cumulative.get_metrics_data().resource_metrics[0].scope_metrics
        for m in scope.metrics
        if m.name == NAME
    ]
    assert metric.data.is_monotonic
    assert metric.data.aggregation_temporality is AggregationTemporality.CUMULATIVE


def test_prometheus_scrape_shows_the_sums_as_counters() -> None:
    bulk = sums(Clock())
    registry = CollectorRegistry()
    provider = MeterProvider(metric_readers=[PrometheusReader(HistogramSet("conduit.test"), bulk, registry=registry)])
    provider.get_meter("conduit.test").create_counter("conduit.test.requests").add(1)
    bulk.add(NAME, {"model": "m", "feature": "x"}, "bin", LABELS, np.array([1, 2, 0, 0, 3]))
    families = {f.name: f for f in text_string_to_metric_families(generate_latest(registry).decode())}
    assert families["conduit_test_values"].type == "counter"
    found = {s.labels["bin"]: s.value for s in families["conduit_test_values"].samples if s.name.endswith("_total")}
    assert found == {"0": 1.0, "1": 2.0, "below": 0.0, "above": 0.0, "missing": 3.0}
