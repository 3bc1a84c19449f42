"""What the native front adds to the protocol both fronts serve: its choice, the private socket behind it, and
batches of the calls that arrive while Python is busy.

Everything else is the same product on both fronts: ``make test`` runs the data-plane and conformance suites once on
each (``CONDUIT_FRONT=python`` for the second run).
"""

from __future__ import annotations

import asyncio
import logging
import stat
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from inference_server.protocol import grpc_service_pb2 as pb
from inference_server.protocol import grpc_service_pb2_grpc as pb_grpc
from tests.inference_server.conftest import Connect, StartServer

# Calls sent at once while the event loop is busy; the test model's max_batch_size (64) takes them all.
BURST = 8
# Bound on the wait for the calls to reach the front.
BOUND_S = 10.0


def _row(value: float = 1) -> pb.ModelInferRequest:
    request = pb.ModelInferRequest(model_name="identity_fp32", id=f"{value:g}")
    request.inputs.add(name="x", datatype="FP32", shape=[1, 3])
    request.raw_input_contents.append(np.array([[value, 2, 3]], dtype=np.float32).tobytes())
    return request


async def _counts(stub: pb_grpc.GRPCInferenceServiceStub) -> tuple[int, int]:
    (stats,) = (await stub.ModelStatistics(pb.ModelStatisticsRequest(name="identity_fp32"), timeout=10)).model_stats
    return stats.inference_count, stats.execution_count


@pytest.mark.parametrize("front", ["native", "python"])
async def test_the_front_chosen_serves_and_says_so(
    start_server: StartServer, repository: Path, connect: Connect, caplog: pytest.LogCaptureFixture, front: str
) -> None:
    caplog.set_level(logging.INFO, logger="conduit.serve")
    _, port, _ = await start_server(repository, front=front)

    assert f"({front} front, plaintext" in caplog.text
    answer = await connect(port).ModelInfer(_row(7), timeout=10)
    assert answer.id == "7"
    assert np.frombuffer(answer.raw_output_contents[0], dtype=np.float32).tolist() == [7, 2, 3]


async def test_calls_that_arrive_while_python_is_busy_run_as_one_batch(
    start_server: StartServer, repository: Path, connect: Connect
) -> None:
    server, port, _ = await start_server(repository, front="native")
    stub = connect(port)
    await stub.ModelInfer(_row(), timeout=10)  # the model has run once: what follows is the steady state
    inferences, executions = await _counts(stub)

    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel, ThreadPoolExecutor(BURST) as pool:
        blocking = pb_grpc.GRPCInferenceServiceStub(channel)  # type: ignore[no-untyped-call]
        calls = [pool.submit(blocking.ModelInfer, _row(i), timeout=30) for i in range(BURST)]
        # This test shares the server's event loop and keeps it busy (no await) until every call is queued: a busy
        # Python side is what the front batches for.
        deadline = time.monotonic() + BOUND_S
        while server.queued_calls < BURST:
            assert time.monotonic() < deadline, f"{server.queued_calls} of {BURST} calls reached the front"
            time.sleep(0.001)  # noqa: ASYNC251 - blocking the loop is the point
        answers = await asyncio.gather(*(asyncio.wrap_future(call) for call in calls))

    assert sorted(a.id for a in answers) == [f"{i}" for i in range(BURST)]
    for answer in answers:
        assert np.frombuffer(answer.raw_output_contents[0], dtype=np.float32)[0] == float(answer.id)
    assert await _counts(stub) == (inferences + BURST, executions + 1)


async def test_the_python_side_listens_on_a_private_socket_removed_at_stop(
    start_server: StartServer, repository: Path, connect: Connect
) -> None:
    before = set(Path(tempfile.gettempdir()).glob("conduit-front-*"))
    running, port, _ = await start_server(repository, front="native")
    (private,) = set(Path(tempfile.gettempdir()).glob("conduit-front-*")) - before

    # Only this user may enter: a call through the socket skips the front's TLS.
    assert stat.S_IMODE(private.stat().st_mode) == 0o700
    assert [p.name for p in private.iterdir()] == ["grpc.sock"]
    # Health is served behind that socket, through the front.
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        health = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
    assert health.status == health_pb2.HealthCheckResponse.SERVING

    await running.stop(5.0)
    assert not private.exists()


def test_a_front_the_installation_lacks_is_refused_in_one_line() -> None:
    # A fresh interpreter where importing conduit_native fails stands for an installation without the build.
    code = (
        "import sys; sys.modules['conduit_native'] = None\n"
        "from inference_server.app import main\n"
        "sys.exit(main({'model_repository': sys.argv[1], 'front': 'native', 'grpc_port': 0, 'metrics_port': 0}))"
    )
    with tempfile.TemporaryDirectory() as repository:
        done = subprocess.run(
            [sys.executable, "-c", code, repository], capture_output=True, text=True, timeout=120, check=False
        )
    assert done.returncode == 1, done.stderr
    assert "--front native: this installation has no native front" in done.stderr
    assert "Traceback" not in done.stderr
