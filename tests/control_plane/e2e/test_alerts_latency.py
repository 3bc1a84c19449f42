"""A latency rule end to end: a deliberately slow model served by `conduit serve --control-plane` makes a
`p99_ms > 10 for 10s` rule post one firing notification to a webhook on loopback, and moving the alias to a fast
version posts exactly one resolved notification while traffic goes on."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from clients import InferenceClient
from contract.client import SyncControlPlaneClient, collect
from tests.control_plane.alerting.conftest import WebhookReceiver, webhook  # noqa: F401 (fixture)

from .conftest import ADMIN_TOKEN, CALLER, MODEL, Cluster, Load, eventually

WIDTH = 256
EVALUATE_INTERVAL_S = 1.0
EVALUATIONS_AFTER = 4
THRESHOLD_MS = 10


def matmul_chain(copies: int, layers: int) -> bytes:
    """An ONNX model whose cost is chosen: each row of ``input`` [batch, 256] is copied ``copies`` times and the
    copies go through ``layers`` MatMul + Tanh layers of 256x256 weights, then are averaged to ``score`` [batch, 1].

    2048 copies through 8 layers are about a billion multiply-adds a row: tens of milliseconds on one core, with
    2 MB of weights. Every layer depends on the input, so onnxruntime cannot fold any of it away.
    """
    rng = np.random.default_rng(0)

    def weight(name: str, rows: int, columns: int) -> onnx.TensorProto:
        return numpy_helper.from_array((rng.standard_normal((rows, columns)) / np.sqrt(rows)).astype(np.float32), name)

    initializers = [
        numpy_helper.from_array(np.array([1], dtype=np.int64), "axis"),
        numpy_helper.from_array(np.array([1, copies, 1], dtype=np.int64), "repeats"),
        weight("w_out", WIDTH, 1),
    ]
    nodes = [
        helper.make_node("Unsqueeze", ["input", "axis"], ["row"]),
        helper.make_node("Tile", ["row", "repeats"], ["h0"]),
    ]
    for i in range(layers):
        initializers.append(weight(f"w{i}", WIDTH, WIDTH))
        nodes.append(helper.make_node("MatMul", [f"h{i}", f"w{i}"], [f"m{i}"]))
        nodes.append(helper.make_node("Tanh", [f"m{i}"], [f"h{i + 1}"]))
    nodes.append(helper.make_node("ReduceMean", [f"h{layers}"], ["mean"], axes=[1], keepdims=0))
    nodes.append(helper.make_node("MatMul", ["mean", "w_out"], ["score"]))
    graph = helper.make_graph(
        nodes,
        "matmul_chain",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", WIDTH])],
        [helper.make_tensor_value_info("score", TensorProto.FLOAT, ["batch", 1])],
        initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


def _latest_tick(admin: SyncControlPlaneClient) -> datetime:
    """The tick of the newest run of the built-in evaluation, finished or not."""
    runs = admin.run(admin.api.job_runs("@evaluate", limit=1))
    return runs[0].tick if runs else datetime.min.replace(tzinfo=UTC)


def _evaluations_since(admin: SyncControlPlaneClient, tick: datetime) -> int:
    """Runs of the built-in evaluation that started after ``tick`` and have finished."""
    runs = admin.run(admin.api.job_runs("@evaluate", limit=100))
    return sum(1 for run in runs if run.tick > tick and run.finished_at is not None)


def test_a_latency_rule_fires_once_for_a_slow_version_and_resolves_once_when_a_fast_one_replaces_it(
    start_cluster: Callable[[str], Cluster],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    webhook: WebhookReceiver,  # noqa: F811
) -> None:
    monkeypatch.setenv("CONDUIT_ALERTS_EVALUATE_INTERVAL_S", str(EVALUATE_INTERVAL_S))
    monkeypatch.setenv("CONDUIT_ALERTS_RETRY_BASE_DELAY_S", "0.1")
    # The receiver listens on loopback, which webhooks may reach only when the operator allows it.
    monkeypatch.setenv("CONDUIT_ALERTS_WEBHOOK_ALLOW", "127.0.0.1/32")
    cluster = start_cluster("")
    slow, fast = tmp_path / "slow.onnx", tmp_path / "fast.onnx"
    slow.write_bytes(matmul_chain(copies=2048, layers=8))
    fast.write_bytes(matmul_chain(copies=1, layers=1))
    with SyncControlPlaneClient.connect(cluster.control_plane.address, token=ADMIN_TOKEN) as admin:
        assert admin.run(admin.api.register_version(MODEL, slow, aliases=["production"])).version == 1
        admin.run(admin.api.deploy("default", MODEL, alias="production"))
        cluster.cli("alerts", "add", "slow", "--model", f"{MODEL}@production", "--when",
                    f"p99_ms > {THRESHOLD_MS} for 10s", "--notify", f"webhook:{webhook.url}")  # fmt: skip

        monkeypatch.setenv("CONDUIT_OTLP_INTERVAL", "0.5")
        server = cluster.serve()
        rows = np.random.default_rng(1).standard_normal((64, WIDTH)).astype(np.float32)
        with InferenceClient(server.address, metadata=CALLER) as inference:
            eventually(lambda: inference.model_ready(MODEL), timeout=60, what="the slow version loaded")
        with Load(server.address, rows, threads=1) as load:
            # Judged on the minute still filling: the firing comes after ten seconds of slow answers, not at its end.
            eventually(lambda: len(webhook.posts) >= 1, timeout=45, what="the firing notification")
            firing = webhook.posts[0]
            assert [firing[key] for key in ("state", "rule", "model", "alias", "version")] == [
                "firing", "slow", MODEL, "production", "1"
            ]  # fmt: skip
            assert firing["value"] > THRESHOLD_MS
            # Acknowledged, like every change a user makes, it is audited.
            assert admin.run(admin.api.acknowledge_alert("slow", MODEL, "1")).acknowledged
            [audited] = admin.run(
                collect(lambda token: admin.api.list_audit(action="AcknowledgeAlert", page_token=token), 100)
            )

            assert admin.run(admin.api.register_version(MODEL, fast)).version == 2
            admin.run(admin.api.set_alias(MODEL, "production", 2))
            load.wait_for_version("2")
            eventually(lambda: len(webhook.posts) >= 2, timeout=30, what="the resolved notification")
            served_by_fast = load.versions["2"]
            # More evaluations pass while the fast version serves: none of them may notify again.
            evaluated = _latest_tick(admin)
            eventually(
                lambda: _evaluations_since(admin, evaluated) >= EVALUATIONS_AFTER,
                timeout=30 + 4 * EVALUATIONS_AFTER * EVALUATE_INTERVAL_S,
                what=f"{EVALUATIONS_AFTER} more evaluations",
            )
            assert load.versions["2"] > served_by_fast
            phases = {alert.version: alert.phase for alert in admin.run(admin.api.list_alerts("slow"))}
            history = admin.run(admin.api.alert_history("slow"))
    assert load.errors == []
    assert [(p["state"], p["version"]) for p in webhook.posts] == [("firing", "1"), ("resolved", "1")]
    assert webhook.posts[1]["started_at"] == firing["started_at"]
    assert "no longer watched" in webhook.posts[1]["detail"]
    assert webhook.posts[1]["acknowledged_by"] == audited.actor
    assert audited.target == "alert/slow" and audited.after is not None
    assert audited.after["acknowledged_by"] == audited.actor
    assert phases == {"1": "resolved", "2": "inactive"}
    assert [(event.phase, event.delivery) for event in history] == [("resolved", "delivered"), ("firing", "delivered")]
