"""Both clients against a real server with data as callers hold it: float64 and int64 arrays, polars and pandas
DataFrames of the bundled credit data (int, float with nulls, bool and string columns), cast to the datatypes the
models declare and scored like the arrays the trainers send; values that do not fit never reach the server."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

from clients import AsyncInferenceClient, ConduitError, ErrorCode, InferenceClient, InferResult
from tests.conftest import TrainedModel
from tests.inference_server.conftest import ProfiledModel, credit  # noqa: F401  (the fixture)
from trainers import bundled

BOUND = 60.0
FEATURES = ["age", "income", "debt", "months_at_address", "has_mortgage", "city", "employment"]
CATEGORIES = ("city", "employment")


@pytest.fixture
def repository(repository: Path, credit: ProfiledModel) -> Path:  # noqa: F811
    credit.write(repository, "credit")
    return repository


def credit_frame(rows: int) -> pl.DataFrame:
    """Real rows as polars reads them: Int64 ages, Float64 incomes with nulls, a Boolean, String categories."""
    frame = bundled.load("credit").select(FEATURES)
    assert frame["income"].null_count() and frame["has_mortgage"].dtype == pl.Boolean
    return frame.head(rows)


def trainer_arrays(frame: pl.DataFrame) -> dict[str, np.ndarray]:
    """What the trainers send: [rows, 1] float32 (null as NaN) and object-of-str columns ("" for null)."""
    return {
        name: (
            frame[name].fill_null("").to_numpy().astype(object)
            if name in CATEGORIES
            else frame[name].cast(pl.Float32).to_numpy().astype(np.float32)
        ).reshape(-1, 1)
        for name in FEATURES
    }


async def call(kind: str, target: str, work: Any) -> Any:
    """Run ``work(client)`` with the blocking client on a thread, or await it with the asyncio one."""
    if kind == "sync":

        def run() -> Any:
            with InferenceClient(target, timeout=BOUND) as client:
                return work(client)

        return await asyncio.to_thread(run)
    async with AsyncInferenceClient(target, timeout=BOUND) as client:
        return await work(client)


def same(a: InferResult, b: InferResult) -> None:
    for name in b.outputs:
        np.testing.assert_array_equal(a.as_numpy(name), b.as_numpy(name))


@pytest.mark.parametrize("kind", ["sync", "asyncio"])
@pytest.mark.parametrize("library", ["polars", "pandas"])
async def test_a_dataframe_of_real_data_is_scored_like_the_trainers_arrays(
    target: str, kind: str, library: str
) -> None:
    frame = credit_frame(300)  # more rows than max_batch_size, as a file would have
    sent = frame if library == "polars" else frame.to_pandas(use_pyarrow_extension_array=False)
    arrays = trainer_arrays(frame)

    if kind == "sync":

        def work(c: InferenceClient) -> tuple[InferResult, InferResult]:
            return c.infer("credit", sent), c.infer("credit", arrays, cast=False)

    else:

        async def work(c: AsyncInferenceClient) -> tuple[InferResult, InferResult]:  # type: ignore[misc]
            return await c.infer("credit", sent), await c.infer("credit", arrays, cast=False)

    from_frame, from_arrays = await call(kind, target, work)
    assert from_frame.as_numpy("label").shape == (300,)
    same(from_frame, from_arrays)


@pytest.mark.parametrize("kind", ["sync", "asyncio"])
async def test_float64_rows_and_a_frame_of_columns_feed_a_single_two_dimensional_input(
    target: str, kind: str, classifier: TrainedModel
) -> None:
    rows = classifier.rows[:100].astype(np.float64)
    frame = pl.DataFrame(rows, schema=[f"f{i}" for i in range(rows.shape[1])])

    requests: list[Any] = [{"input": rows}, frame, {"input": rows.astype(np.float32)}]
    if kind == "sync":

        def work(c: InferenceClient) -> list[InferResult]:
            return [c.infer("classifier", x) for x in requests]

    else:

        async def work(c: AsyncInferenceClient) -> list[InferResult]:  # type: ignore[misc]
            return [await c.infer("classifier", x) for x in requests]

    from_float64, from_frame, reference = await call(kind, target, work)
    same(from_float64, reference)
    same(from_frame, reference)


@pytest.mark.parametrize("kind", ["sync", "asyncio"])
async def test_values_that_do_not_fit_are_refused_before_anything_is_sent(target: str, kind: str) -> None:
    beyond = {"x": np.array([[1, 2, 2**31]], dtype=np.int64)}
    bad_frame = credit_frame(3).rename({"city": "town"})

    if kind == "sync":

        def work(c: InferenceClient) -> list[ConduitError]:
            errors = []
            for model, inputs in (("identity_int32", beyond), ("credit", bad_frame)):
                with pytest.raises(ConduitError) as caught:
                    c.infer(model, inputs)
                errors.append(caught.value)
            assert c.model_statistics("identity_int32")[0].inference_stats.fail.count == 0
            return errors

    else:

        async def work(c: AsyncInferenceClient) -> list[ConduitError]:  # type: ignore[misc]
            errors = []
            for model, inputs in (("identity_int32", beyond), ("credit", bad_frame)):
                with pytest.raises(ConduitError) as caught:
                    await c.infer(model, inputs)
                errors.append(caught.value)
            assert (await c.model_statistics("identity_int32"))[0].inference_stats.fail.count == 0
            return errors

    out_of_range, columns = await call(kind, target, work)
    assert out_of_range.code is ErrorCode.INVALID_ARGUMENT and str(2**31) in out_of_range.message
    assert columns.code is ErrorCode.INVALID_ARGUMENT
    assert "missing ['city']" in columns.message and "unknown ['town']" in columns.message


class CountingClient(InferenceClient):
    """Counts the metadata lookups the client makes."""

    lookups = 0

    def model_metadata(self, name: str, version: str = "", *, timeout: float | None = None) -> Any:
        self.lookups += 1
        return super().model_metadata(name, version, timeout=timeout)


async def test_metadata_is_read_once_per_model_and_version_and_streams_cast_too(target: str) -> None:
    frame = credit_frame(40)

    def run() -> tuple[int, list[Any], int]:
        with CountingClient(target, timeout=BOUND) as client:
            for _ in range(3):
                client.infer("credit", frame)
                client.infer("credit", frame, version="1")
            client.infer("identity_fp32", {"x": np.zeros((1, 3))})
            streamed = list(client.stream_infer("credit", [frame.head(5), frame.tail(7)]))
            counted = client.lookups
            # A refusal may come from a stale declaration (a new default version): the next request reads it again.
            with pytest.raises(ConduitError, match="shape"):
                client.infer("identity_fp32", {"x": np.zeros((1, 4))})
            client.infer("identity_fp32", {"x": np.zeros((1, 3))})
            return counted, streamed, client.lookups - counted

    lookups, streamed, again = await asyncio.to_thread(run)
    assert lookups == 3  # credit, credit version 1, identity_fp32; the stream reuses credit's
    assert again == 1
    assert [r.as_numpy("label").shape for r in streamed] == [(5,), (7,)]

    async with AsyncInferenceClient(target, timeout=BOUND) as client:
        answers = [a async for a in client.stream_infer("credit", [frame.head(5), frame.tail(7)])]
    for a, b in zip(answers, streamed, strict=True):
        assert isinstance(a, InferResult)
        same(a, b)
