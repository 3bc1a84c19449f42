"""End to end through the CLI: register → deploy → a `conduit serve --control-plane` serves it → move the alias →
rollback, under load with zero failed requests; and the same with the control plane SIGKILLed under load."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from clients import InferenceClient
from tests.conftest import TrainedModel

from .conftest import CALLER, MODEL, Cluster, Load, eventually


def _write(tmp_path: Path, name: str, model: TrainedModel) -> Path:
    path = tmp_path / name
    path.write_bytes(model.onnx)
    return path


def _onnxruntime_probabilities(model: TrainedModel, rows: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(model.onnx, providers=["CPUExecutionProvider"])
    outputs = session.run(None, {"input": rows})
    return np.asarray(outputs[1])


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_register_deploy_serve_switch_and_rollback(
    backend: str,
    request: pytest.FixtureRequest,
    start_cluster: Callable[[str], Cluster],
    tmp_path: Path,
    classifier: TrainedModel,
    challenger: TrainedModel,
) -> None:
    db = request.getfixturevalue("postgres_url") if backend == "postgresql" else ""
    cluster = start_cluster(db)
    maintainer = cluster.cli("users", "create", "ml-engineer", "--role", "maintainer").stdout.strip()
    assert maintainer.startswith("cdt_")

    registered = cluster.cli(
        "models", "register", MODEL, str(_write(tmp_path, "v1.onnx", classifier)),
        "--metric", "auc=0.91", "--param", "C=1.0", "--tag", "team=risk", "--alias", "production",
        token=maintainer,
    )  # fmt: skip
    assert registered.stdout.strip() == "1"
    second = cluster.cli("models", "register", MODEL, str(_write(tmp_path, "v2.onnx", challenger)), token=maintainer)
    assert second.stdout.strip() == "2"

    shown = json.loads(cluster.cli("models", "show", f"{MODEL}@production", "--json").stdout)
    assert shown["version"] == "1"  # int64 is a string in protobuf's JSON mapping
    assert shown["metrics"] == {"auc": 0.91}
    assert [tensor["name"] for tensor in shown["inputs"]] == ["input"]

    cluster.cli("deploy", f"{MODEL}@production", "--pool", "default", token=maintainer)
    server = cluster.serve()
    rows = classifier.rows[:16]
    with InferenceClient(server.address, timeout=10.0, metadata=CALLER) as client:
        eventually(lambda: client.model_ready(MODEL), what="the deployed model is ready")
        answer = client.infer(MODEL, {"input": rows})
        assert answer.model_version == "1"
        np.testing.assert_allclose(
            answer.as_numpy("probabilities"), _onnxruntime_probabilities(classifier, rows), rtol=1e-5, atol=1e-6
        )

        with Load(server.address, classifier.rows) as load:
            load.wait_for_version("1")
            cluster.cli("models", "alias", MODEL, "production", "2", token=maintainer)
            load.wait_for_version("2")
            after_switch = load.count()
            cluster.cli("deploy", "rollback", MODEL, "--pool", "default", token=maintainer)
            load.wait_for_version("1")
            eventually(lambda: load.count() > after_switch + 50, what="more traffic after the rollback")
        assert load.errors == []
        assert load.versions["1"] > 0 and load.versions["2"] > 0

        answer = client.infer(MODEL, {"input": rows})
        assert answer.model_version == "1"

    def reported_ready() -> bool:
        servers = json.loads(cluster.cli("servers", "list", "--json").stdout)
        loaded = [(m["model"], m["version"], m["state"]) for s in servers if s["alive"] for m in s["models"]]
        return (MODEL, "1", "READY") in loaded

    eventually(reported_ready, what="the server reports version 1 READY by heartbeat")
    audit = json.loads(cluster.cli("audit", "--actor", "ml-engineer", "--json").stdout)
    actions = [entry["action"] for entry in audit]
    for action in ("RegisterVersion", "SetAlias", "Deploy", "Rollback"):
        assert action in actions
    history = json.loads(cluster.cli("deploy", "list", "--history", "--json").stdout)
    assert len(history) >= 1


def test_control_plane_killed_under_load(
    start_cluster: Callable[[str], Cluster], tmp_path: Path, classifier: TrainedModel, challenger: TrainedModel
) -> None:
    cluster = start_cluster("")
    cluster.cli("models", "register", MODEL, str(_write(tmp_path, "v1.onnx", classifier)), "--alias", "production")
    cluster.cli("models", "register", MODEL, str(_write(tmp_path, "v2.onnx", challenger)))
    cluster.cli("deploy", f"{MODEL}@production")
    server = cluster.serve()
    with InferenceClient(server.address, timeout=10.0, metadata=CALLER) as client:
        eventually(lambda: client.model_ready(MODEL), what="the deployed model is ready")

    with Load(server.address, classifier.rows) as load:
        load.wait_for_version("1")
        cluster.control_plane.kill()
        served_before = load.count()
        # Several heartbeat intervals and reconnect attempts pass while the control plane is gone.
        time.sleep(2.0)
        assert load.count() > served_before
        cluster.control_plane.start()
        cluster.cli("models", "alias", MODEL, "production", "2")
        load.wait_for_version("2")
    assert load.errors == []
    assert load.versions["1"] > 0 and load.versions["2"] > 0


def test_server_restarted_while_control_plane_is_down_serves_from_cache(
    start_cluster: Callable[[str], Cluster], tmp_path: Path, classifier: TrainedModel
) -> None:
    cluster = start_cluster("")
    cluster.cli("models", "register", MODEL, str(_write(tmp_path, "v1.onnx", classifier)), "--alias", "production")
    cluster.cli("deploy", f"{MODEL}@production")
    server = cluster.serve()
    with InferenceClient(server.address, timeout=10.0, metadata=CALLER) as client:
        eventually(lambda: client.model_ready(MODEL), what="the deployed model is ready")
    cluster.control_plane.kill()
    assert server.terminate() == 0

    server.start()
    with InferenceClient(server.address, timeout=10.0, metadata=CALLER) as client:
        eventually(lambda: client.model_ready(MODEL), what="the cached model is ready")
        assert client.infer(MODEL, {"input": classifier.rows[:4]}).model_version == "1"
