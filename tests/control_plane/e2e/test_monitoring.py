"""Monitoring end to end: `conduit serve --control-plane` pushes its metrics and sketches to `conduit control-plane`
over OTLP, and `conduit monitoring show` reports the traffic it served and the one feature whose values were shifted
away from the training data."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from clients import InferenceClient
from clients.training import fetch_dataset, import_frame, register_result
from contract.client import SyncControlPlaneClient
from trainers import bundled, parse_spec, train

from .conftest import ADMIN_TOKEN, CALLER, CREDIT_SPEC, Cluster, eventually

ROWS_PER_REQUEST = 8


def test_served_traffic_and_a_shifted_feature_reach_conduit_monitoring_show(
    start_cluster: Callable[[str], Cluster], monkeypatch: pytest.MonkeyPatch
) -> None:
    cluster = start_cluster("")
    with SyncControlPlaneClient.connect(cluster.control_plane.address, token=ADMIN_TOKEN) as client:
        import_frame(client, bundled.load("credit"), "credit", source="bundled:credit", target="default")
        spec = parse_spec(CREDIT_SPEC)
        frame, stored = fetch_dataset(client, "credit", "")
        result = train(spec, frame, dataset_version=stored.version)
        register_result(client, result, model="credit", aliases=["production"])
        client.run(client.api.deploy("default", "credit", alias="production"))

    monkeypatch.setenv("CONDUIT_OTLP_INTERVAL", "0.5")
    server = cluster.serve()
    inputs = dict(result.test_inputs)
    # Incomes three times what the model was trained on; everything else as in the held-out split.
    inputs["income"] = inputs["income"] * 3
    rows = len(inputs["income"])
    requests = 0
    with InferenceClient(server.address, metadata=CALLER) as inference:
        eventually(lambda: inference.model_ready("credit"), timeout=60, what="credit loaded")
        for start in range(0, rows, ROWS_PER_REQUEST):
            inference.infer("credit", {k: v[start : start + ROWS_PER_REQUEST] for k, v in inputs.items()})
            requests += 1

    def shown() -> dict[str, Any]:
        done = cluster.cli("monitoring", "show", "credit@production", "--since", "15m", "--window", "1d", "--json")
        payload: dict[str, Any] = json.loads(done.stdout)
        return payload

    def served() -> int:
        return sum(int(window.get("requests", 0)) for window in shown()["windows"])

    eventually(lambda: served() == requests, timeout=30, what=f"{requests} requests reported")
    payload = shown()
    assert payload["baseline"] == {"name": "credit", "version": stored.version}
    # Sketched rows arrive with the request counts' export or the next one.
    eventually(
        lambda: {f["count"] for w in shown()["windows"] for f in w["features"]} == {str(rows)},
        timeout=30,
        what="every input's values counted",
    )
    (window,) = (w for w in shown()["windows"] if w["features"])
    features = {f["feature"]: f for f in window["features"]}
    inputs = {"age", "income", "debt", "months_at_address", "city", "employment"}
    # The predicted classes are compared with the 0/1 target's value counts; they are not an input.
    assert set(features) == {*inputs, "@prediction"} and features["@prediction"]["kind"] == "categorical"
    assert {name for name in inputs if features[name]["drifted"]} == {"income"}
    assert features["income"]["kind"] == "numeric" and features["city"]["kind"] == "categorical"
    assert window["drifted_share"] == pytest.approx(1 / 6) and window["dataset_drift"] is False
    # Quantiles come from the latency histogram of the OK requests.
    histogram = window["latency"]
    assert sum(int(c) for c in histogram["counts"]) == requests
    assert float(histogram["min"]) <= window["latency_p50"] <= window["latency_p99"] <= float(histogram["max"])

    text = cluster.cli("monitoring", "show", "credit", "--since", "15m", "--window", "1d").stdout
    assert f"credit:1  drift against credit:{stored.version}" in text and "income" in text
