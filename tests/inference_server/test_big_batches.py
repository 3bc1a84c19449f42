"""Requests larger than a model's ``max_batch_size`` through the real server: split through the batcher, answered
whole with their rows in order, counted as one request of all its rows by the statistics, the data sketches and the
prediction log; and an 8 MiB request fits the default message size limits."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import onnxruntime as ort
import polars as pl
import pytest
from onnx import TensorProto, helper
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression

from clients import AsyncInferenceClient, ConduitError, ErrorCode, InferenceClient, InferResult
from contract.metrics import SKETCH_BIN
from tests.inference_server.conftest import ProfiledModel, StartServer
from tests.inference_server.telemetry.test_sketches import column, expected_bins, sketch_points
from trainers.onnx_export import export_sklearn, write_model_version

MAX_BATCH = 64
FEATURES = 10
BOUND = 60.0
MIB = 1024 * 1024


@pytest.fixture(scope="module")
def scorer() -> tuple[bytes, np.ndarray]:
    """A logistic regression trained here, exported to ONNX, and rows it never saw."""
    x, y = make_classification(n_samples=2000, n_features=FEATURES, n_informative=6, random_state=11)
    rows = x.astype(np.float32)
    model = LogisticRegression(max_iter=1000).fit(rows[:1000], y[:1000])
    return export_sklearn(model, rows[:100]), rows[1000:]


@pytest.fixture
def repository(tmp_path: Path, scorer: tuple[bytes, np.ndarray], credit: ProfiledModel) -> Path:
    repo = tmp_path / "models"
    write_model_version(repo, "scorer", 1, scorer[0], {"max_batch_size": MAX_BATCH})
    credit.write(repo, "credit")
    return repo


def local(onnx: bytes, rows: np.ndarray) -> dict[str, np.ndarray]:
    session = ort.InferenceSession(onnx, providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(names, {"input": rows}), strict=True))


def assert_same(result: InferResult, expected: dict[str, np.ndarray]) -> None:
    np.testing.assert_array_equal(result.as_numpy("label"), expected["label"])
    np.testing.assert_allclose(result.as_numpy("probabilities"), expected["probabilities"], rtol=0, atol=1e-6)


@pytest.mark.parametrize("kind", ["sync", "asyncio"])
async def test_256_rows_to_a_model_of_max_batch_size_64_are_answered_whole(
    start_server: StartServer, repository: Path, scorer: tuple[bytes, np.ndarray], kind: str
) -> None:
    running = await start_server(repository)
    target = f"127.0.0.1:{running.port}"
    rows = scorer[1][:256]
    chunks = [rows[start : start + MAX_BATCH] for start in range(0, len(rows), MAX_BATCH)]

    if kind == "sync":

        def run() -> tuple[InferResult, list[InferResult]]:
            with InferenceClient(target, timeout=BOUND) as client:
                return client.infer("scorer", {"input": rows}), [client.infer("scorer", {"input": c}) for c in chunks]

        whole, parts = await asyncio.to_thread(run)
    else:
        async with AsyncInferenceClient(target, timeout=BOUND) as client:
            whole = await client.infer("scorer", {"input": rows})
            parts = [await client.infer("scorer", {"input": c}) for c in chunks]

    assert whole.as_numpy("label").shape == (256,)
    assert whole.as_numpy("probabilities").shape == (256, 2)
    for name in ("label", "probabilities"):
        np.testing.assert_array_equal(whole.as_numpy(name), np.concatenate([p.as_numpy(name) for p in parts]))
    assert_same(whole, local(scorer[0], rows))

    stats = running.server.dataplane.model_statistics("scorer", "1")[0][1]
    # Five requests of 256 rows in all; the big one ran as four executions of 64 and is counted once.
    assert (stats.success.count, stats.fail.count, stats.inference_count) == (5, 0, 512)
    assert max(stats.batch_stats) == MAX_BATCH
    assert stats.execution_count == 8
    assert stats.compute_infer.count == 5
    assert stats.in_flight == 0


async def test_an_8_mib_request_fits_the_default_limits(
    start_server: StartServer, repository: Path, scorer: tuple[bytes, np.ndarray]
) -> None:
    running = await start_server(repository)
    repeats = 8 * MIB // scorer[1].nbytes + 1
    rows = np.tile(scorer[1], (repeats, 1))
    assert rows.nbytes >= 8 * MIB
    async with AsyncInferenceClient(f"127.0.0.1:{running.port}", timeout=BOUND) as client:
        result = await client.infer("scorer", {"input": rows})
    assert_same(result, local(scorer[0], rows))
    stats = running.server.dataplane.model_statistics("scorer", "1")[0][1]
    assert (stats.success.count, stats.inference_count) == (1, len(rows))
    assert stats.execution_count >= len(rows) // MAX_BATCH
    assert running.server.dataplane.inflight_bytes == 0


async def test_a_split_request_is_sketched_and_logged_once_with_all_its_rows(
    start_server: StartServer, repository: Path, tmp_path: Path, credit: ProfiledModel
) -> None:
    logs = tmp_path / "logs"
    running = await start_server(
        repository, prediction_log_dir=logs, prediction_log_sample=1.0, prediction_log_flush_interval=0.05
    )
    rows = credit.result.test_inputs
    count = len(rows["age"])
    assert count > MAX_BATCH  # the default max_batch_size of a model without config: this request is split
    async with AsyncInferenceClient(f"127.0.0.1:{running.port}", timeout=BOUND) as client:
        answer = await client.infer("credit", rows, request_id="whole")
    assert answer.as_numpy("label").shape[0] == count
    await running.server.stop(5.0)

    bins = sketch_points(running.reader, SKETCH_BIN)
    for name in ("age", "income"):
        assert bins[("credit", name)] == expected_bins(rows[name], column(credit.profile, name)["bin_edges"])
    logged = pl.concat([pl.read_parquet(p) for p in sorted((logs / "credit").rglob("*.parquet"))])
    assert logged.height == count
    assert set(logged["request_id"]) == {"whole"}
    np.testing.assert_array_equal(logged["label"].to_numpy(), answer.as_numpy("label").reshape(-1))


async def test_rows_without_values_above_max_batch_size_are_refused(
    start_server: StartServer, repository: Path
) -> None:
    # Identity over [batch, width] with a variable width: rows of width 0 hold nothing, whatever their number.
    shape: list[int | str] = ["batch", "width"]
    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])],
        "wide",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, shape)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    write_model_version(repository, "wide", 1, model.SerializeToString(), {"max_batch_size": 4})
    running = await start_server(repository)
    async with AsyncInferenceClient(f"127.0.0.1:{running.port}", timeout=BOUND) as client:
        with pytest.raises(ConduitError) as refused:
            await client.infer("wide", {"x": np.zeros((2**40, 0), dtype=np.float32)})
        assert refused.value.code is ErrorCode.INVALID_ARGUMENT
        assert (await client.infer("wide", {"x": np.zeros((4, 0), dtype=np.float32)})).as_numpy("y").shape == (4, 0)
        assert (await client.infer("wide", {"x": np.ones((9, 2), dtype=np.float32)})).as_numpy("y").shape == (9, 2)
