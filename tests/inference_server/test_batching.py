"""Dynamic batching through the real server: concurrent callers share executions and each gets only its own rows."""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc
import numpy as np
import pytest

from inference_server.protocol import grpc_service_pb2 as pb
from inference_server.protocol import grpc_service_pb2_grpc as pb_grpc
from trainers.onnx_export import write_model_version

Stub = pb_grpc.GRPCInferenceServiceStub
CALLERS = 64


def marked_rows(caller: int) -> np.ndarray:
    """Rows only ``caller`` sends: ``[[c, c, c]]``, and a second row ``[-c, -c, -c]`` for odd callers."""
    rows = [[caller] * 3] + ([[-caller] * 3] if caller % 2 else [])
    return np.array(rows, dtype=np.float32)


async def infer(stub: Stub, model: str, x: np.ndarray) -> np.ndarray:
    request = pb.ModelInferRequest(model_name=model, id=f"caller-{x[0, 0]:g}")
    request.inputs.add(name="x", datatype="FP32", shape=x.shape)
    request.raw_input_contents.append(x.tobytes())
    response = await stub.ModelInfer(request)
    assert response.id == request.id
    (output,) = response.outputs
    return np.frombuffer(response.raw_output_contents[0], dtype=np.float32).reshape(tuple(output.shape))


async def statistics(stub: Stub, model: str) -> pb.ModelStatistics:
    answer = await stub.ModelStatistics(pb.ModelStatisticsRequest(name=model, version="1"))
    (stats,) = answer.model_stats
    return stats


@pytest.fixture
def repository(repository: Path) -> Path:
    """Adds ``identity_delay``: identity_fp32 allowed to hold a request 200 ms for a fuller batch, and
    ``identity_executor``: identity_fp32 that never holds a request but runs every batch on the executor thread."""
    identity = (repository / "identity_fp32" / "1" / "model.onnx").read_bytes()
    write_model_version(
        repository, "identity_delay", 1, identity, {"max_batch_size": 16, "max_queue_delay_us": 200_000}
    )
    # Batches of a model this small would otherwise run inline on the loop thread, where no request can arrive
    # during an execution; on the executor thread, requests queue while one batch computes and join the next.
    write_model_version(repository, "identity_executor", 1, identity, {"inline_compute_us": 0})
    return repository


@pytest.mark.parametrize("model", ["identity_executor", "identity_delay"])
async def test_concurrent_callers_are_batched_and_each_gets_its_own_rows(stub: Stub, model: str) -> None:
    sent = [marked_rows(caller) for caller in range(1, CALLERS + 1)]
    answers = await asyncio.gather(*(infer(stub, model, x) for x in sent))

    for x, answer in zip(sent, answers, strict=True):
        np.testing.assert_array_equal(answer, x)
    stats = await statistics(stub, model)
    rows = sum(len(x) for x in sent)
    assert stats.inference_stats.success.count == CALLERS
    assert stats.inference_stats.fail.count == 0
    assert stats.inference_count == rows
    assert stats.execution_count < CALLERS < stats.inference_count
    assert sum(b.batch_size * b.compute_infer.count for b in stats.batch_stats) == rows
    assert sum(b.compute_infer.count for b in stats.batch_stats) == stats.execution_count
    assert max(b.batch_size for b in stats.batch_stats) > 2


async def test_a_bad_request_does_not_fail_its_neighbours(stub: Stub) -> None:
    good = [marked_rows(caller) for caller in range(1, 17)]
    bad = np.zeros((1, 4), dtype=np.float32)  # wrong width: rejected before it can join a batch

    outcomes = await asyncio.gather(
        *(infer(stub, "identity_delay", x) for x in good), infer(stub, "identity_delay", bad), return_exceptions=True
    )

    for x, answer in zip(good, outcomes[:-1], strict=True):
        np.testing.assert_array_equal(answer, x)
    rejected = outcomes[-1]
    assert isinstance(rejected, grpc.aio.AioRpcError)
    assert rejected.code() == grpc.StatusCode.INVALID_ARGUMENT
