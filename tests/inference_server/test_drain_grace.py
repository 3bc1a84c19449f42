"""SIGTERM in two steps, as load balancers need: `conduit serve` first reports NOT_SERVING through gRPC health (and
not ready through ServerReady) while it still answers every call for --drain-grace seconds, then drains and exits 0.
SIGINT, or a second signal, skips the grace."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from clients import InferenceClient
from tests.conftest import StartServe, TrainedModel

GRACE_S = 3.0


def _health(target: str) -> int:
    with grpc.insecure_channel(target) as channel:
        answer = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=""), timeout=2)
        status: int = answer.status
        return status


def test_sigterm_reports_not_serving_and_keeps_answering_for_the_grace(
    start_serve: StartServe, repository: Path, classifier: TrainedModel
) -> None:
    server = start_serve(repository, "--drain-grace", str(GRACE_S))
    with InferenceClient(server.target, timeout=5.0) as client:
        assert client.infer("classifier", {"input": classifier.rows[:2]}).as_numpy("label").shape == (2,)
        assert _health(server.target) == health_pb2.HealthCheckResponse.SERVING
        signalled = time.monotonic()
        server.process.send_signal(signal.SIGTERM)
        deadline = signalled + 2.0
        while _health(server.target) != health_pb2.HealthCheckResponse.NOT_SERVING:
            assert time.monotonic() < deadline, "health still SERVING 2 s after SIGTERM"
            time.sleep(0.05)
        assert not client.server_ready()
        answered = 0
        while time.monotonic() < signalled + GRACE_S - 0.5:
            assert client.infer("classifier", {"input": classifier.rows[:2]}).as_numpy("label").shape == (2,)
            answered += 1
        assert answered > 0
    assert server.process.wait(30) == 0
    assert time.monotonic() - signalled >= GRACE_S
    assert "still answering for 3 s before draining" in server.log.read_text()


def test_sigint_and_a_second_sigterm_skip_the_grace(start_serve: StartServe, repository: Path) -> None:
    interrupted = start_serve(repository, "--drain-grace", "60")
    started = time.monotonic()
    interrupted.process.send_signal(signal.SIGINT)
    assert interrupted.process.wait(30) == 0
    assert time.monotonic() - started < 30

    twice = start_serve(repository, "--drain-grace", "60")
    twice.process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 5
    while _health(twice.target) != health_pb2.HealthCheckResponse.NOT_SERVING:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    started = time.monotonic()
    twice.process.send_signal(signal.SIGTERM)
    assert twice.process.wait(30) == 0
    assert time.monotonic() - started < 30
