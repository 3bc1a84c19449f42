"""Sampled prediction logging on a real server over a model repository: every row of the requests sampled lands in
Parquet with its inputs, the outputs answered, its model version, request id and time (FP32, INT64 and BYTES tensors,
scalar and list columns, batches above 1); a ratio samples its share; a full buffer drops and counts instead of
growing; a server without a log directory logs nothing."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from pydantic import ValidationError

from clients import AsyncInferenceClient
from contract.entities import TensorSignature
from inference_server.config import ModelConfig
from inference_server.predictions import LocalSink, PredictionLogger, PredictionSampler, frames
from inference_server.settings import ServerSettings
from inference_server.spec import ModelSpec
from inference_server.types import Tensor
from tests.conftest import identity_model
from tests.inference_server.conftest import ProfiledModel, StartServer
from trainers.onnx_export import write_model_version


@pytest.fixture
def repository(tmp_path: Path, credit: ProfiledModel) -> Path:
    repo = tmp_path / "models"
    credit.write(repo, "credit")
    for datatype in ("FP32", "INT64", "BYTES"):
        write_model_version(repo, f"identity_{datatype.lower()}", 1, identity_model(datatype))
    return repo


def _plain(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode()
    return value if isinstance(value, str) else value.item()


def read_logs(directory: Path, model: str) -> pl.DataFrame:
    found = sorted((directory / model).rglob("*.parquet"))
    assert found, f"no prediction log of {model}"
    assert all(not p.name.startswith(".") for p in found)
    return pl.concat([pl.read_parquet(p) for p in found]).sort("time", "request_id", maintain_order=True)


async def test_every_sampled_row_is_logged_with_its_inputs_outputs_version_and_time(
    start_server: StartServer, repository: Path, tmp_path: Path, credit: ProfiledModel
) -> None:
    logs = tmp_path / "logs"
    running = await start_server(
        repository, prediction_log_dir=logs, prediction_log_sample=1.0, prediction_log_flush_interval=0.05
    )
    rng = np.random.default_rng(5)
    sent: dict[str, list[tuple[str, dict[str, np.ndarray], dict[str, np.ndarray]]]] = {}
    before = time.time()
    async with AsyncInferenceClient(f"127.0.0.1:{running.port}", timeout=30.0) as client:
        for i in range(6):
            rows = 1 + i % 3
            inputs = {
                "identity_fp32": {"x": rng.normal(size=(rows, 3)).astype(np.float32)},
                "identity_int64": {"x": rng.integers(-1000, 1000, size=(rows, 3))},
                "identity_bytes": {"x": np.array([[f"r{i}-{r}-{c}é".encode() for c in range(3)] for r in range(rows)])},
            }
            for model, tensors in inputs.items():
                answer = await client.infer(model, tensors, request_id=f"{model}-{i}")
                sent.setdefault(model, []).append((f"{model}-{i}", tensors, answer.outputs))
        test = credit.result.test_inputs
        for start in range(0, 12, 4):
            tensors = {name: array[start : start + 4] for name, array in test.items()}
            answer = await client.infer("credit", tensors, request_id=f"credit-{start}")
            sent.setdefault("credit", []).append((f"credit-{start}", tensors, answer.outputs))
    after = time.time()
    await running.server.stop(5.0)

    for model, requests in sent.items():
        table = read_logs(logs, model)
        expected_ids = [rid for rid, tensors, _ in requests for _ in range(len(next(iter(tensors.values()))))]
        assert table["request_id"].to_list() == expected_ids
        assert set(table["model"]) == {model}
        assert set(table["version"]) == {"1"}
        times = [t.timestamp() for t in table["time"]]
        assert before <= min(times) and max(times) <= after
        for name in (*requests[0][1], *requests[0][2]):
            values = table[name].to_list()
            expected: list[Any] = []
            for _, tensors, outputs in requests:
                array = tensors[name] if name in tensors else outputs[name]
                for row in array.reshape(array.shape[0], -1):
                    items = [_plain(v) for v in row]
                    expected.append(items[0] if table[name].dtype != pl.List else items)
            if table[name].dtype in (pl.Float32, pl.List(pl.Float32)):
                np.testing.assert_allclose(np.array(values, dtype=np.float64), np.array(expected, dtype=np.float64))
            else:
                assert values == expected, (model, name)

    # [batch, 1] tensors are scalar columns, [batch, 3] ones list columns; BYTES are strings.
    credit_table = read_logs(logs, "credit")
    assert credit_table.schema["age"] == pl.Float32
    assert credit_table.schema["city"] == pl.String
    assert read_logs(logs, "identity_fp32").schema["x"] == pl.List(pl.Float32)
    assert read_logs(logs, "identity_int64").schema["y"] == pl.List(pl.Int64)
    assert read_logs(logs, "identity_bytes").schema["x"] == pl.List(pl.String)


async def test_a_ratio_samples_its_share_of_requests(
    start_server: StartServer, repository: Path, tmp_path: Path
) -> None:
    logs = tmp_path / "logs"
    running = await start_server(repository, prediction_log_dir=logs, prediction_log_sample=0.25)
    async with AsyncInferenceClient(f"127.0.0.1:{running.port}", timeout=30.0) as client:
        for i in range(800):
            await client.infer("identity_int64", {"x": np.full((1, 3), i)}, request_id=str(i))
    await running.server.stop(5.0)
    logged = read_logs(logs, "identity_int64")
    # Binomial(800, 0.25): mean 200, standard deviation 12.2; six of them either side.
    assert 127 <= logged.height <= 273
    assert [row[0] for row in logged["x"].to_list()] == [int(i) for i in logged["request_id"]]


async def test_without_a_log_directory_a_repository_server_logs_nothing(
    start_server: StartServer, repository: Path
) -> None:
    running = await start_server(repository)
    assert running.server.predictions is None


def _spec(rows_dims: tuple[int, ...] = (1,)) -> ModelSpec:
    return ModelSpec(
        name="m",
        version="1",
        inputs=(TensorSignature("x", "FP32", rows_dims),),
        outputs=(TensorSignature("y", "FP32", rows_dims),),
        config=ModelConfig(max_batch_size=8),
    )


async def test_a_full_buffer_drops_and_counts_and_never_grows() -> None:
    draws = iter([0.9, 0.1] + [0.0] * 10)
    sampler = PredictionSampler(0.5, max_rows=5, flush_rows=4, draw=lambda: next(draws))
    spec = _spec()
    batch = np.arange(2, dtype=np.float32).reshape(2, 1)
    assert not sampler.sampled()
    assert sampler.sampled()
    for _ in range(2):
        sampler.keep(spec, "a", [Tensor("x", "FP32", batch)], [batch])
    assert (sampler.buffered_rows, sampler.dropped_rows, sampler.wanted.is_set()) == (4, 0, True)
    sampler.keep(spec, "b", [Tensor("x", "FP32", batch)], [batch])  # 6 rows would not fit in 5
    assert (sampler.buffered_rows, sampler.dropped_rows, sampler.kept_rows) == (4, 2, 4)
    taken = sampler.take()
    assert [s.request_id for s in taken] == ["a", "a"]
    assert (sampler.buffered_rows, sampler.wanted.is_set()) == (0, False)
    # The kept rows are copies: the caller's buffers may be reused.
    batch[:] = 7
    assert taken[0].inputs[0].tolist() == [[0.0], [1.0]]


def _keep(sampler: PredictionSampler, spec: ModelSpec, request_id: str, rows: int = 2) -> None:
    batch = np.arange(rows, dtype=np.float32).reshape(rows, 1)
    sampler.keep(spec, request_id, [Tensor("x", "FP32", batch)], [batch])


class GatedSink(LocalSink):
    """A local directory whose writes wait for ``release``, so that a test can act while a flush is under way."""

    def __init__(self, directory: Path) -> None:
        super().__init__(directory)
        self.entered = asyncio.Event()
        self.release = asyncio.Event()

    async def write(self, table: pl.DataFrame) -> None:
        self.entered.set()
        await self.release.wait()
        await super().write(table)


async def test_stopping_lets_the_flush_under_way_finish_then_flushes_what_came_after(tmp_path: Path) -> None:
    sampler = PredictionSampler(1.0, max_rows=100, flush_rows=2)
    sink = GatedSink(tmp_path / "logs")
    logger = PredictionLogger(sampler, sink, interval_s=3600.0)
    logger.start()
    _keep(sampler, _spec(), "first")  # asks for a flush at once
    await sink.entered.wait()
    stopping = asyncio.create_task(logger.stop())
    _keep(sampler, _spec(), "after")  # sampled while the first flush writes
    await asyncio.sleep(0)  # let stop() begin before the write goes on
    sink.release.set()
    await stopping
    table = read_logs(tmp_path / "logs", "m")
    assert table["request_id"].to_list() == ["first", "first", "after", "after"]
    assert sampler.dropped_rows == 0


async def test_stopping_flushes_what_the_buffer_holds(tmp_path: Path) -> None:
    sampler = PredictionSampler(1.0, max_rows=100, flush_rows=100)
    logger = PredictionLogger(sampler, LocalSink(tmp_path / "logs"), interval_s=3600.0)
    logger.start()
    _keep(sampler, _spec(), "only")
    await logger.stop()
    assert read_logs(tmp_path / "logs", "m")["request_id"].to_list() == ["only", "only"]


async def test_a_version_that_cannot_be_written_costs_its_rows_alone_counted_dropped(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    (logs / "m").mkdir(parents=True)
    (logs / "m" / "1").write_text("a file where version 1's directory goes")
    sampler = PredictionSampler(1.0, max_rows=100, flush_rows=100)
    logger = PredictionLogger(sampler, LocalSink(logs), interval_s=3600.0)
    other = ModelSpec(name="n", version="1", inputs=_spec().inputs, outputs=_spec().outputs,
                      config=ModelConfig(max_batch_size=8))  # fmt: skip
    _keep(sampler, _spec(), "lost", rows=3)
    _keep(sampler, other, "kept")
    await logger.flush()
    assert read_logs(logs, "n")["request_id"].to_list() == ["kept", "kept"]
    assert (sampler.kept_rows, sampler.dropped_rows) == (5, 3)


async def test_workers_sharing_a_log_directory_clear_only_their_own_partial_files(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    first = LocalSink(logs, worker=0)
    sampler = PredictionSampler(1.0, max_rows=100, flush_rows=100)
    _keep(sampler, _spec(), "a")
    await first.store(frames(sampler.take()))
    assert read_logs(logs, "m")["request_id"].to_list() == ["a", "a"]
    directory = logs / "m" / "1"
    # Worker 0 writing a file while worker 1 starts late; and a file worker 1's predecessor left when killed.
    writing = directory / f"{first.partial_prefix}being-written.parquet"
    writing.write_bytes(b"half a file")
    second = LocalSink(logs, worker=1)
    left = directory / f"{second.partial_prefix}left-behind.parquet"
    left.write_bytes(b"half a file")

    LocalSink(logs, worker=1)  # worker 1 restarted
    assert writing.exists() and not left.exists()
    assert first.partial_prefix != second.partial_prefix


async def test_a_buffer_full_in_bytes_drops_and_counts_before_its_rows_are_reached() -> None:
    spec = _spec((256,))  # 1 KiB of FP32 per row, in and out
    sampler = PredictionSampler(1.0, max_rows=1000, flush_rows=1000, max_bytes=5 * 2048)
    row = np.ones((1, 256), dtype=np.float32)
    for i in range(7):
        sampler.keep(spec, str(i), [Tensor("x", "FP32", row)], [row])
    assert (sampler.buffered_rows, sampler.buffered_bytes, sampler.kept_rows, sampler.dropped_rows) == (5, 10240, 5, 2)
    sampler.take()
    assert sampler.buffered_bytes == 0
    sampler.keep(spec, "after", [Tensor("x", "FP32", row)], [row])
    assert (sampler.buffered_rows, sampler.dropped_rows) == (1, 2)


def test_settings_bound_the_buffer_in_bytes_and_refuse_a_flush_above_the_buffer(repository: Path) -> None:
    settings = ServerSettings(model_repository=repository)
    assert settings.prediction_log_buffer_bytes == 64 * 1024 * 1024
    with pytest.raises(ValidationError, match="flush-rows exceeds --prediction-log-buffer-rows"):
        ServerSettings(model_repository=repository, prediction_log_flush_rows=11, prediction_log_buffer_rows=10)
    ServerSettings(model_repository=repository, prediction_log_flush_rows=10, prediction_log_buffer_rows=10)
