"""Prediction logs end to end: `conduit serve --control-plane` samples every request, uploads Parquet files to
`conduit control-plane`, and `conduit predictions export` gives back exactly the rows sent, with the outputs answered,
the version and the times; `conduit serve --model-repository` with `--prediction-log-dir` writes them locally."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

from clients import InferenceClient
from clients.training import fetch_dataset, import_frame, register_result
from contract.client import ControlPlaneClient as AsyncControlPlaneClient
from contract.client import SyncControlPlaneClient, collect
from contract.entities import VersionRef
from inference_server.predictions import write_parquet
from tests.conftest import StartServe
from trainers import TrainingResult, bundled, parse_spec, train
from trainers.onnx_export import write_model_version

from .conftest import ADMIN_TOKEN, CALLER, Cluster, eventually

SPEC = """
[dataset]
name = "credit"
target = "default"
[features]
numeric = ["age", "income", "debt"]
categorical = ["city"]
[split]
method = "stratified"
test_size = 0.3
seed = 1
[model]
task = "binary"
estimator = "logistic_regression"
params = { max_iter = 300 }
"""
ROWS_PER_REQUEST = 3
REQUESTS = 20
Sent = list[tuple[str, dict[str, np.ndarray], Any]]


def _plain(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode()
    return value if isinstance(value, str) else value.item()


def _send(target: str, model: str, inputs: dict[str, np.ndarray]) -> Sent:
    sent = []
    with InferenceClient(target, metadata=CALLER) as inference:
        eventually(lambda: inference.model_ready(model), timeout=60, what=f"{model} loaded")
        for i in range(REQUESTS):
            rows = {k: v[i * ROWS_PER_REQUEST : (i + 1) * ROWS_PER_REQUEST] for k, v in inputs.items()}
            answer = inference.infer(model, rows, request_id=f"req-{i}")
            sent.append((f"req-{i}", rows, answer.outputs))
    return sent


def _check(table: pl.DataFrame, sent: Sent, before: float, after: float) -> None:
    """``table`` holds exactly the rows of ``sent``, in order, with their inputs and the outputs answered."""
    assert table.height == REQUESTS * ROWS_PER_REQUEST
    assert table["request_id"].to_list() == [rid for rid, _, _ in sent for _ in range(ROWS_PER_REQUEST)]
    assert set(table["version"]) == {"1"}
    times = [moment.timestamp() for moment in table["time"]]
    assert before <= min(times) and max(times) <= after
    assert times == sorted(times)
    for name in (*sent[0][1], *sent[0][2]):
        expected: list[Any] = []
        for _, inputs, outputs in sent:
            array = inputs[name] if name in inputs else outputs[name]
            for row in array.reshape(array.shape[0], -1):
                values = [_plain(v) for v in row]
                expected.append(values if table[name].dtype == pl.List else values[0])
        got = table[name].to_list()
        if table[name].dtype in (pl.Float32, pl.List(pl.Float32)):
            np.testing.assert_allclose(np.array(got, dtype=np.float64), np.array(expected, dtype=np.float64))
        else:
            assert got == expected, name


@pytest.fixture(scope="module")
def trained() -> TrainingResult:
    return train(parse_spec(SPEC), bundled.load("credit"), dataset_version="d" * 16)


def test_sampled_requests_come_back_from_conduit_predictions_export(
    start_cluster: Callable[[str], Cluster], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    cluster = start_cluster("")
    with SyncControlPlaneClient.connect(cluster.control_plane.address, token=ADMIN_TOKEN) as client:
        import_frame(client, bundled.load("credit"), "credit", source="bundled:credit", target="default")
        frame, stored = fetch_dataset(client, "credit", "")
        result = train(parse_spec(SPEC), frame, dataset_version=stored.version)
        register_result(client, result, model="credit", aliases=["production"])
        client.run(client.api.deploy("default", "credit", alias="production"))

    monkeypatch.setenv("CONDUIT_PREDICTION_LOG_SAMPLE", "1.0")
    monkeypatch.setenv("CONDUIT_PREDICTION_LOG_FLUSH_INTERVAL", "0.2")
    server = cluster.serve()
    before = time.time()
    sent = _send(server.address, "credit", dict(result.test_inputs))
    after = time.time()

    expected_rows = REQUESTS * ROWS_PER_REQUEST
    with SyncControlPlaneClient.connect(cluster.control_plane.address, token=ADMIN_TOKEN) as client:
        production = VersionRef.parse("credit@production")

        def uploaded() -> int:
            logs = client.run(collect(lambda token: client.api.list_prediction_logs(production, page_token=token)))
            return sum(log.rows for log in logs)

        eventually(lambda: uploaded() == expected_rows, what="every row uploaded")
    listed = json.loads(cluster.cli("predictions", "list", "credit@production", "--since", "1h", "--json").stdout)
    assert sum(int(log["rows"]) for log in listed) == expected_rows
    assert {log["version"] for log in listed} == {"1"}

    output = tmp_path / "predictions.parquet"
    done = cluster.cli("predictions", "export", "credit:1", "--since", "1h", "-o", str(output))
    assert f"wrote {expected_rows} row(s)" in done.stdout
    _check(pl.read_parquet(output), sent, before, after)

    # A viewer lists the logs but may not download them; an unknown alias is a precise error.
    viewer = cluster.cli("users", "create", "analyst", "--role", "viewer").stdout.strip()
    assert cluster.cli("predictions", "list", "credit", token=viewer).returncode == 0
    export = ("predictions", "export", "credit", "-o", str(tmp_path / "x.parquet"))
    refused = cluster.cli(*export, token=viewer, check=False)
    assert refused.returncode == 1
    assert "PERMISSION_DENIED: DownloadPredictionLog is not allowed to user 'analyst'" in refused.stderr
    missing = cluster.cli("predictions", "list", "credit@staging", check=False)
    assert missing.returncode == 1
    assert "NOT_FOUND" in missing.stderr and "staging" in missing.stderr
    empty = cluster.cli("predictions", "export", "credit:2", "-o", str(tmp_path / "none.parquet"), check=False)
    assert (empty.returncode, empty.stderr.strip()) == (1, "conduit: no prediction logs of credit:2")
    assert not (tmp_path / "none.parquet").exists()


def test_a_repository_server_writes_its_prediction_logs_locally(
    start_serve: StartServe, trained: TrainingResult, tmp_path: Path
) -> None:
    repo = tmp_path / "models"
    write_model_version(repo, "credit", 1, trained.onnx)
    logs = tmp_path / "logs"
    flags = ("--prediction-log-dir", str(logs), "--prediction-log-sample", "1")
    served = start_serve(repo, *flags, "--prediction-log-flush-interval", "0.2")
    before = time.time()
    sent = _send(served.target, "credit", dict(trained.test_inputs))
    after = time.time()
    assert served.terminate() == 0
    files = sorted((logs / "credit" / "1").glob("*.parquet"))
    assert files
    table = pl.concat([pl.read_parquet(p) for p in files]).sort("time", maintain_order=True)
    _check(table, sent, before, after)


def _upload_log(cluster: Cluster, token: str, frame: pl.DataFrame, directory: Path) -> None:
    log_file = write_parquet(frame, directory, "{sha256}.parquet")

    async def send() -> None:
        client = AsyncControlPlaneClient.connect(cluster.control_plane.address, token=token)
        try:
            assert (await client.upload_prediction_log(log_file.path, log_file.announced("pod-1")))[1]
        finally:
            await client.close()

    asyncio.run(send())


def test_export_of_versions_whose_columns_disagree_names_the_column_and_exits_1(
    start_cluster: Callable[[str], Cluster], tmp_path: Path
) -> None:
    cluster = start_cluster("")
    server = cluster.cli("users", "create", "pod", "--role", "server").stdout.strip()
    at = datetime(2026, 11, 1, tzinfo=UTC)
    for version, score in (("1", pl.Series("score", [0.5], dtype=pl.Float32)),
                           ("2", pl.Series("score", [[0.5, 0.5]], dtype=pl.List(pl.Float32)))):  # fmt: skip
        frame = pl.DataFrame({"time": [at], "model": ["mixed"], "version": [version], "request_id": ["r"]})
        _upload_log(cluster, server, frame.with_columns(score), tmp_path / "files")

    output = tmp_path / "mixed.parquet"
    mixed = cluster.cli("predictions", "export", "mixed", "-o", str(output), check=False)
    assert mixed.returncode == 1 and "Traceback" not in mixed.stderr
    assert "column 'score' is List(Float32) in version 2, Float32 in version 1" in mixed.stderr
    assert "export one version at a time" in mixed.stderr
    assert list(tmp_path.glob("*mixed.parquet*")) == []
    one = cluster.cli("predictions", "export", "mixed:1", "-o", str(output))
    assert "wrote 1 row(s)" in one.stdout and pl.read_parquet(output)["score"].to_list() == [0.5]

    for unwritable in (tmp_path / "missing" / "x.parquet", tmp_path):
        refused = cluster.cli("predictions", "export", "mixed:1", "-o", str(unwritable), check=False)
        assert refused.returncode == 1 and "Traceback" not in refused.stderr
        assert f"conduit: cannot write {unwritable}" in refused.stderr
