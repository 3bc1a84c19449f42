"""A server overloaded with large unary requests refuses what it cannot hold, and its memory stays bounded.

A client sends a request of 1 MiB every PACE_S without waiting for answers, to a model that answers one at a time
and more slowly than they come: what is not answered would pile up. With ``--max-inflight-bytes`` the server holds
that many bytes of requests and answers the rest RESOURCE_EXHAUSTED at once; the negative control, with the default
limit, queues them all and must show the growth the limit prevents.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

import grpc
import numpy as np
import pytest

from inference_server.protocol import grpc_service_pb2 as pb
from inference_server.protocol import grpc_service_pb2_grpc as pb_grpc
from tests.inference_server.conftest import Connect, SlowModel
from trainers.onnx_export import write_model_version

from .conftest import MIB, MeasuredServer, StartMeasured

Stub = pb_grpc.GRPCInferenceServiceStub

# Rows of 1 MiB (FP32), to a model that takes RUN_S a run and runs one request at a time (about 40 a second).
WIDTH = MIB // 4
RUN_S = 0.025
# The load: REQUESTS requests, one every PACE_S (200 a second, five times what the model answers), each with a
# deadline of DEADLINE_S, so that what the negative control queues expires instead of keeping the test waiting.
REQUESTS = 96
PACE_S = 0.005
DEADLINE_S = 2.0
# The limited server's bound on the bytes of requests in flight: 8 requests.
MAX_INFLIGHT_BYTES = 8 * MIB
# Growth allowed to the limited server, at its peak. A request in flight costs a few times its bytes (the received
# message, the parsed message, the decoded tensor), so the 8 admitted hold about 24 MiB; the rest is the cost of
# receiving 200 MiB a second of requests that are refused, which the front buffers before they are refused. Measured
# with the Python front (gRPC's core copies and keeps more): 65 to 80 MiB, 60 to 95 MiB with a limit that admits
# nothing; with the native front 15 to 17 MiB.
OVERLOAD_GROWTH_MIB = 125.0
# Growth the negative control (default limit, 512 MiB) must show: the queue of requests the model has not reached.
# Measured: 220 to 260 MiB with the Python front, 155 to 161 MiB with the native front.
UNLIMITED_MIN_GROWTH_MIB = OVERLOAD_GROWTH_MIB


@pytest.fixture
def overload_repository(tmp_path: Path, slow_identity: SlowModel) -> Path:
    repo = tmp_path / "models"
    write_model_version(repo, "slow", 1, slow_identity(RUN_S, WIDTH), {"max_batch_size": 1})
    return repo


def row_request(value: float) -> pb.ModelInferRequest:
    request = pb.ModelInferRequest(model_name="slow")
    request.inputs.add(name="x", datatype="FP32", shape=[1, WIDTH])
    request.raw_input_contents.append(np.full((1, WIDTH), value, dtype=np.float32).tobytes())
    return request


async def outcome(stub: Stub, value: float) -> grpc.StatusCode:
    try:
        answer = await stub.ModelInfer(row_request(value), timeout=DEADLINE_S)
    except grpc.aio.AioRpcError as error:
        return error.code()
    assert np.frombuffer(answer.raw_output_contents[0], dtype=np.float32)[-1] == value
    return grpc.StatusCode.OK


async def overload(server: MeasuredServer, stub: Stub) -> tuple[Counter[grpc.StatusCode], float]:
    """Send the load; return how its requests ended and the server's peak growth over its settled baseline."""
    for value in range(3):  # warm-up: the model's first runs and the buffers of 1 MiB messages
        assert await outcome(stub, value) == grpc.StatusCode.OK
    baseline = await server.memory.settled()
    with server.memory.peak() as peak:
        calls = []
        for value in range(REQUESTS):
            calls.append(asyncio.ensure_future(outcome(stub, value)))
            # The pace is the load's shape, not a wait for anything: an open-loop client, as hostile ones are.
            await asyncio.sleep(PACE_S)
        outcomes = Counter(await asyncio.gather(*calls))
    return outcomes, peak.mib - baseline


async def test_overload_is_refused_and_memory_stays_bounded(
    start_measured: StartMeasured, connect: Connect, overload_repository: Path
) -> None:
    server = start_measured(overload_repository, "--max-inflight-bytes", str(MAX_INFLIGHT_BYTES))
    stub = connect(server.port)
    outcomes, growth = await overload(server, stub)

    assert set(outcomes) == {grpc.StatusCode.OK, grpc.StatusCode.RESOURCE_EXHAUSTED}, outcomes
    assert growth <= OVERLOAD_GROWTH_MIB, f"{outcomes}: the server grew by {growth:.1f} MiB at its peak"
    # Every refused and answered request gave its bytes back: the next one is served.
    assert await outcome(stub, 7) == grpc.StatusCode.OK
    log = server.log()
    assert "Traceback" not in log and " ERROR " not in log, log


async def test_overload_without_a_limit_grows_the_server(
    start_measured: StartMeasured, connect: Connect, overload_repository: Path
) -> None:
    """Negative control: the same load and measurement, with the default limit, which admits it all."""
    server = start_measured(overload_repository)
    stub = connect(server.port)
    outcomes, growth = await overload(server, stub)

    assert grpc.StatusCode.RESOURCE_EXHAUSTED not in outcomes
    assert growth >= UNLIMITED_MIN_GROWTH_MIB, f"{outcomes}: the server grew by only {growth:.1f} MiB at its peak"
