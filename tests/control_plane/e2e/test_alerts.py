"""Alerting end to end: `conduit serve --control-plane` pushes sketches of what it serves, the control plane's
built-in evaluation measures drift against the training profile, and a `drift > 0.2` rule tells a webhook on
loopback exactly once when shifted traffic arrives and once when normal traffic has diluted it again."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping

import numpy as np
import pytest

from clients import InferenceClient
from clients.training import fetch_dataset, import_frame, register_result
from contract.client import SyncControlPlaneClient
from tests.control_plane.alerting.conftest import WebhookReceiver, webhook  # noqa: F401 (fixture)
from trainers import bundled, parse_spec, train

from .conftest import ADMIN_TOKEN, CALLER, CREDIT_SPEC, Cluster, eventually
from .test_monitoring import ROWS_PER_REQUEST

EVALUATE_INTERVAL_S = 1.0


def _send(address: str, inputs: Mapping[str, np.ndarray], repeat: int = 1) -> int:
    """Infer every row of ``inputs`` ``repeat`` times; the number of rows sent."""
    rows = len(next(iter(inputs.values())))
    with InferenceClient(address, metadata=CALLER) as inference:
        for _ in range(repeat):
            for start in range(0, rows, ROWS_PER_REQUEST):
                inference.infer("credit", {k: v[start : start + ROWS_PER_REQUEST] for k, v in inputs.items()})
    return rows * repeat


def test_a_drift_rule_fires_once_on_shifted_traffic_and_resolves_once_after(
    start_cluster: Callable[[str], Cluster],
    monkeypatch: pytest.MonkeyPatch,
    webhook: WebhookReceiver,  # noqa: F811
) -> None:
    monkeypatch.setenv("CONDUIT_ALERTS_EVALUATE_INTERVAL_S", str(EVALUATE_INTERVAL_S))
    monkeypatch.setenv("CONDUIT_ALERTS_RETRY_BASE_DELAY_S", "0.1")
    # The receiver listens on loopback, which webhooks may reach only when the operator allows it.
    monkeypatch.setenv("CONDUIT_ALERTS_WEBHOOK_ALLOW", "127.0.0.1/32")
    cluster = start_cluster("")
    with SyncControlPlaneClient.connect(cluster.control_plane.address, token=ADMIN_TOKEN) as client:
        import_frame(client, bundled.load("credit"), "credit", source="bundled:credit", target="default")
        frame, stored = fetch_dataset(client, "credit", "")
        result = train(parse_spec(CREDIT_SPEC), frame, dataset_version=stored.version)
        register_result(client, result, model="credit", aliases=["production"])
        client.run(client.api.deploy("default", "credit", alias="production"))
    cluster.cli("alerts", "add", "drifting", "--model", "credit@production", "--when", "drift > 0.2 over 15m",
                "--notify", f"webhook:{webhook.url}")  # fmt: skip

    monkeypatch.setenv("CONDUIT_OTLP_INTERVAL", "0.5")
    server = cluster.serve()
    with InferenceClient(server.address, metadata=CALLER) as inference:
        eventually(lambda: inference.model_ready("credit"), timeout=60, what="credit loaded")
    normal = dict(result.test_inputs)
    shifted = {**normal, "income": normal["income"] * 3}

    def alert_value() -> float | None:
        with SyncControlPlaneClient.connect(cluster.control_plane.address, token=ADMIN_TOKEN) as client:
            values = [a.value for a in client.run(client.api.list_alerts("drifting")) if a.value is not None]
        return values[0] if values else None

    def settled_on(rows: int) -> None:
        """Wait until every row sent is counted by monitoring, then for evaluations that saw them all."""
        eventually(lambda: _counted(cluster) == rows, timeout=30, what=f"{rows} rows counted")
        time.sleep(3 * EVALUATE_INTERVAL_S)

    sent = _send(server.address, normal)
    settled_on(sent)
    value = alert_value()
    assert value is not None and value < 0.2 and webhook.posts == []

    sent += _send(server.address, shifted)
    eventually(lambda: len(webhook.posts) >= 1, timeout=30, what="the firing notification")
    settled_on(sent)
    assert [(p["state"], p["rule"], p["model"], p["version"]) for p in webhook.posts] == [
        ("firing", "drifting", "credit", "1")
    ]
    assert webhook.posts[0]["value"] > 0.2 and "income" in webhook.posts[0]["detail"]

    # Enough normal rows that the shifted ones no longer move the distribution past the threshold.
    sent += _send(server.address, normal, repeat=8)
    eventually(lambda: len(webhook.posts) >= 2, timeout=30, what="the resolved notification")
    settled_on(sent)
    assert [p["state"] for p in webhook.posts] == ["firing", "resolved"]
    history = cluster.cli("alerts", "history", "drifting").stdout
    assert history.count("delivered") == 2


def _counted(cluster: Cluster) -> int:
    done = cluster.cli("monitoring", "show", "credit@production", "--since", "15m", "--window", "1d", "--json")
    windows = json.loads(done.stdout)["windows"]
    counts = [int(f["count"]) for w in windows for f in w["features"] if f["feature"] == "income"]
    return sum(counts)
