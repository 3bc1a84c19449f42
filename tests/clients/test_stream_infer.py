"""Both clients' ``stream_infer`` against a real server: one answer per request, in order, failures as ConduitError
with the code the server gave."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
import pytest

from clients import AsyncInferenceClient, ConduitError, ErrorCode, InferenceClient, InferResult

# Deadline of every stream: a hung stream fails the test instead of blocking the suite.
BOUND = 30.0
STREAMED = 10
BAD = 5


async def stream(kind: str, target: str, model: str, requests: list[dict[str, np.ndarray]]) -> list[Any]:
    """Every answer ``stream_infer`` of the ``kind`` client yields for ``requests``."""
    if kind == "sync":

        def run() -> list[Any]:
            with InferenceClient(target, timeout=BOUND) as client:
                return list(client.stream_infer(model, requests))

        # The blocking client must not run on the loop thread: the in-process server answers on that loop.
        return await asyncio.to_thread(run)
    async with AsyncInferenceClient(target, timeout=BOUND) as client:
        return [answer async for answer in client.stream_infer(model, requests)]


def row(value: float, width: int = 3) -> dict[str, np.ndarray]:
    return {"x": np.full((1, width), value, dtype=np.float32)}


@pytest.mark.parametrize("kind", ["sync", "async"])
async def test_a_bad_request_in_a_stream_fails_alone(target: str, kind: str) -> None:
    requests = [row(i, width=4 if i == BAD else 3) for i in range(STREAMED)]

    answers = await stream(kind, target, "identity_fp32", requests)

    assert len(answers) == STREAMED
    failed = answers[BAD]
    assert isinstance(failed, ConduitError)
    assert failed.code is ErrorCode.INVALID_ARGUMENT
    results = [a for i, a in enumerate(answers) if i != BAD]
    assert all(isinstance(result, InferResult) for result in results)
    for result in results:
        np.testing.assert_array_equal(result.as_numpy("y"), row(int(result.id))["x"])
    assert [result.id for result in results] == [str(i) for i in range(STREAMED) if i != BAD]


@pytest.mark.parametrize("kind", ["sync", "async"])
async def test_an_unknown_model_in_a_stream_is_not_found(target: str, kind: str) -> None:
    answers = await stream(kind, target, "no_such_model", [row(1), row(2)])

    assert len(answers) == 2
    assert all(isinstance(answer, ConduitError) for answer in answers)
    assert [answer.code for answer in answers] == [ErrorCode.NOT_FOUND, ErrorCode.NOT_FOUND]
