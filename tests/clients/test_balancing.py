"""The clients balance by themselves over several servers: a list of addresses (or a ``dns:`` name) is spread
``round_robin``, a server that is gone or draining gets no calls, and calls failing UNAVAILABLE are tried again."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from clients import AsyncInferenceClient, InferenceClient
from clients._channel import channel_authority, channel_options, channel_target
from tests.conftest import ServeProcess, StartServe, TrainedModel


def _health(target: str) -> int:
    with grpc.insecure_channel(target) as channel:
        answer = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=""), timeout=2)
        status: int = answer.status
        return status


def _served(target: str) -> int:
    with InferenceClient(target, timeout=5.0) as client:
        return sum(int(model.inference_count) for model in client.model_statistics("classifier"))


def _until_both_answer(client: InferenceClient, servers: list[ServeProcess], classifier: TrainedModel) -> None:
    """Calls until every server has answered one: round_robin picks a server once its connection and its health
    check are up, which the first calls may not wait for."""
    deadline = time.monotonic() + 20
    while min(_served(s.target) for s in servers) == 0:
        assert time.monotonic() < deadline, "a server never got a call"
        client.infer("classifier", {"input": classifier.rows[:1]})


def test_a_list_of_servers_is_spread_round_robin(
    start_serve: StartServe, repository: Path, classifier: TrainedModel
) -> None:
    servers = [start_serve(repository), start_serve(repository)]
    with InferenceClient([s.target for s in servers], timeout=5.0) as client:
        _until_both_answer(client, servers, classifier)
        before = [_served(s.target) for s in servers]
        for _ in range(40):
            client.infer("classifier", {"input": classifier.rows[:1]})
    counts = [_served(s.target) - b for s, b in zip(servers, before, strict=True)]
    assert sum(counts) == 40
    assert min(counts) >= 10, counts


def test_a_draining_server_gets_no_calls_and_its_stop_costs_none(
    start_serve: StartServe, repository: Path, classifier: TrainedModel
) -> None:
    servers = [start_serve(repository, "--drain-grace", "4"), start_serve(repository, "--drain-grace", "4")]
    with InferenceClient([s.target for s in servers], timeout=5.0) as client:
        _until_both_answer(client, servers, classifier)
        servers[0].process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 2.0
        while _health(servers[0].target) != health_pb2.HealthCheckResponse.NOT_SERVING:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        time.sleep(0.3)  # the client's health watch hears it
        before = _served(servers[0].target)  # still answering: in its grace
        for _ in range(30):
            client.infer("classifier", {"input": classifier.rows[:1]})
        assert _served(servers[0].target) == before
        answered = 0
        while servers[0].process.poll() is None or answered < 50:
            assert client.infer("classifier", {"input": classifier.rows[:1]}).model_version == "1"
            answered += 1
    assert servers[0].process.wait(30) == 0


async def test_the_asyncio_client_takes_a_dns_name(
    start_serve: StartServe, repository: Path, classifier: TrainedModel
) -> None:
    server = start_serve(repository)
    async with AsyncInferenceClient(f"dns:///localhost:{server.port}", timeout=5.0) as client:
        answers = await asyncio.gather(*(client.infer("classifier", {"input": classifier.rows[:1]}) for _ in range(8)))
    assert len(answers) == 8


def test_targets_and_policies() -> None:
    assert channel_target("127.0.0.1:8001", None) == ("127.0.0.1:8001", None)
    assert channel_target("dns:///conduit:8001", None) == ("dns:///conduit:8001", "round_robin")
    assert channel_target(["127.0.0.1:1", "127.0.0.2:2"], None) == ("ipv4:127.0.0.1:1,127.0.0.2:2", "round_robin")
    assert channel_target(["[::1]:1"], "pick_first") == ("ipv6:[::1]:1", "pick_first")
    assert channel_target(["localhost:5"], None)[0] == "ipv4:127.0.0.1:5"
    options = dict(channel_options(1024, (), "round_robin"))
    config = options["grpc.service_config"]
    assert '"round_robin"' in config and "UNAVAILABLE" in config and '"healthCheckConfig"' in config
    assert "grpc.service_config" not in dict(channel_options(1024, ()))
    # A list's calls carry its first address as their authority, never the comma-joined target.
    assert channel_authority(["localhost:1", "127.0.0.2:2"]) == "localhost:1"
    assert channel_authority("dns:///conduit:8001") is None
    assert dict(channel_options(1024, (), authority="localhost:1"))["grpc.default_authority"] == "localhost:1"


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ([], "no server address given"),
        (["127.0.0.1"], "is not host:port"),
        (["127.0.0.1:x"], "is not host:port"),
        (["127.0.0.1:1", "[::1]:2"], "all IPv4 or all IPv6"),
        (["no-such-host.invalid:1"], "cannot resolve"),
    ],
)
def test_bad_lists_are_refused_with_a_clear_error(target: list[str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        InferenceClient(target)
