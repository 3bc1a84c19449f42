"""What the native front adds to the protocol both fronts serve: its choice, and the private socket behind it.

Everything else is the same product on both fronts: ``make test`` runs the data-plane and conformance suites once on
each (``CONDUIT_FRONT=python`` for the second run).
"""

from __future__ import annotations

import logging
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from inference_server.protocol import grpc_service_pb2 as pb
from tests.inference_server.conftest import Connect, StartServer


def _row() -> pb.ModelInferRequest:
    request = pb.ModelInferRequest(model_name="identity_fp32", id="7")
    request.inputs.add(name="x", datatype="FP32", shape=[1, 3])
    request.raw_input_contents.append(np.array([[1, 2, 3]], dtype=np.float32).tobytes())
    return request


@pytest.mark.parametrize("front", ["native", "python"])
async def test_the_front_chosen_serves_and_says_so(
    start_server: StartServer, repository: Path, connect: Connect, caplog: pytest.LogCaptureFixture, front: str
) -> None:
    caplog.set_level(logging.INFO, logger="conduit.serve")
    _, port, _ = await start_server(repository, front=front)

    assert f"({front} front, plaintext" in caplog.text
    answer = await connect(port).ModelInfer(_row(), timeout=10)
    assert answer.id == "7"
    assert np.frombuffer(answer.raw_output_contents[0], dtype=np.float32).tolist() == [1, 2, 3]


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
