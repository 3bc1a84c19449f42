"""The Grafana dashboard's and the autoscaler's PromQL queries name only metrics, and labels, that a real
``conduit serve`` exports: one is started on loopback with a model trained here and its profile, answers requests
(one of them refused), and its Prometheus endpoint is scraped."""

from __future__ import annotations

import json
import re
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from clients import ConduitError, InferenceClient
from tests.conftest import StartServe
from tests.deploy.conftest import Rendered
from tests.inference_server.conftest import ProfiledModel

TARGET_LABELS = {"namespace", "pod", "service", "job", "instance", "endpoint", "container"}
"""Labels Prometheus adds to what a ServiceMonitor scrapes."""

_SELECTOR = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\s*\{([^}]*)\}")
_MATCHER = re.compile(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring)\s*\(([^)]*)\)")
_CONDUIT_METRIC = re.compile(r"\b(conduit_[a-zA-Z0-9_]+)\b")
"""Conduit's metrics are named ``conduit_*``: caught even where a query names one without a selector."""
_LABEL_VALUES = re.compile(r"label_values\(.*,\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\)$")

Series = dict[str, set[str]]
"""Sample name -> the label names it carries."""


def scrape(port: int) -> Series:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    series: Series = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            series.setdefault(sample.name, set()).update(sample.labels)
    return series


def served_series(credit: ProfiledModel, start_serve: StartServe, repository: Path) -> Series:
    credit.write(repository, "credit")
    served = start_serve(repository, "--metrics-flush-interval", "0.1")
    rows = credit.result.test_inputs
    with InferenceClient(served.target, timeout=30) as client:
        for start in range(0, 32, 8):
            client.infer("credit", {name: array[start : start + 8] for name, array in rows.items()})
        with pytest.raises(ConduitError):
            client.infer("credit", {"no_such_input": np.zeros((1, 1), dtype=np.float32)})
    # The flusher moves measurements into the instruments every 0.1 s: wait for the sketches to show.
    deadline = time.monotonic() + 30
    while True:
        series = scrape(served.metrics_port)
        if "conduit_sketch_category_total" in series and "conduit_sketch_bin_total" in series:
            return series
        assert time.monotonic() < deadline, f"no sketches exported: {sorted(series)}"
        time.sleep(0.1)


def references(expr: str) -> tuple[set[str], set[str]]:
    """The metric names and label names a PromQL expression uses."""
    metrics, labels = set(_CONDUIT_METRIC.findall(expr)), set()
    for name, matchers in _SELECTOR.findall(expr):
        metrics.add(name)
        labels.update(_MATCHER.findall(matchers))
    for grouping in _GROUPING.findall(expr):
        labels.update(label.strip() for label in grouping.split(",") if label.strip())
    found = _LABEL_VALUES.search(expr)
    if found:
        labels.add(found.group(1))
    return metrics, labels


def dashboard_queries(rendered: dict[str, Rendered]) -> list[tuple[str, str]]:
    """(where, PromQL) of every query of the Grafana dashboard: panel targets and template variables."""
    (config_map,) = [c for c in rendered["overlays/production"].of_kind("ConfigMap") if "conduit.json" in c["data"]]
    dashboard = json.loads(config_map["data"]["conduit.json"])
    queries = [
        (f"panel {panel['title']!r} {target['refId']}", target["expr"])
        for panel in dashboard["panels"]
        for target in panel["targets"]
    ]
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            queries.append((f"variable {variable['name']}", variable["query"]["query"]))
    return queries


def autoscaler_queries(rendered: dict[str, Rendered]) -> list[tuple[str, str]]:
    return [
        (f"ScaledObject trigger {t['name']}", t["metadata"]["query"])
        for scaled in rendered["overlays/production"].of_kind("ScaledObject")
        for t in scaled["spec"]["triggers"]
    ]


def unknown_references(queries: list[tuple[str, str]], series: Series) -> list[str]:
    """One line per query naming a metric the server does not export, or a label none of its metrics carries."""
    problems = []
    for where, expr in queries:
        metrics, labels = references(expr)
        if not metrics:
            problems.append(f"{where}: names no metric: {expr}")
        for metric in sorted(metrics - set(series)):
            problems.append(f"{where}: {metric} is not exported")
        carried = set().union(*(series.get(m, set()) for m in metrics)) | TARGET_LABELS
        for label in sorted(labels - carried):
            problems.append(f"{where}: no metric of {sorted(metrics)} carries the label {label!r}")
    return problems


def test_queries_name_what_a_server_exports(
    rendered: dict[str, Rendered], credit: ProfiledModel, start_serve: StartServe, tmp_path: Path
) -> None:
    series = served_series(credit, start_serve, tmp_path / "models")
    queries = dashboard_queries(rendered) + autoscaler_queries(rendered)
    assert not unknown_references(queries, series), "\n".join(unknown_references(queries, series))
    # The dashboard covers what it is for: latency percentiles, throughput, errors, queue wait, batch sizes and
    # drift, per model.
    used = set().union(*(references(expr)[0] for _, expr in dashboard_queries(rendered)))
    assert {
        "conduit_inference_duration_seconds_bucket",
        "conduit_inference_requests_total",
        "conduit_inference_queue_duration_seconds_bucket",
        "conduit_inference_batch_size_bucket",
        "conduit_sketch_bin_total",
        "conduit_sketch_category_total",
    } <= used
    # The negative control: a misspelt metric and a label no metric carries are caught.
    assert unknown_references([("q", 'sum(rate(conduit_inference_request_total{model="a"}[1m]))')], series)
    assert unknown_references([("q", "sum by (modle) (rate(conduit_inference_requests_total{}[1m]))")], series)
