"""The clients balance by themselves over several servers: a list of addresses (or a ``dns:`` name) is spread
``round_robin``, a server that is gone or draining gets no calls, and calls failing UNAVAILABLE are tried again."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import pytest

from clients import AsyncInferenceClient, InferenceClient
from clients._channel import channel_options, channel_target
from tests.conftest import StartServe, TrainedModel


def _served(target: str) -> int:
    with InferenceClient(target, timeout=5.0) as client:
        return sum(int(model.inference_count) for model in client.model_statistics("classifier"))


def test_a_list_of_servers_is_spread_round_robin(
    start_serve: StartServe, repository: Path, classifier: TrainedModel
) -> None:
    servers = [start_serve(repository), start_serve(repository)]
    with InferenceClient([s.target for s in servers], timeout=5.0) as client:
        for _ in range(40):
            client.infer("classifier", {"input": classifier.rows[:1]})
    counts = [_served(s.target) for s in servers]
    assert sum(counts) == 40
    assert min(counts) >= 10, counts


def test_a_server_stopped_under_load_costs_no_call(
    start_serve: StartServe, repository: Path, classifier: TrainedModel
) -> None:
    servers = [start_serve(repository, "--drain-grace", "1"), start_serve(repository, "--drain-grace", "1")]
    with InferenceClient([s.target for s in servers], timeout=5.0) as client:
        for _ in range(20):
            client.infer("classifier", {"input": classifier.rows[:1]})
        servers[0].process.send_signal(signal.SIGTERM)
        answered = 0
        while servers[0].process.poll() is None or answered < 50:
            assert client.infer("classifier", {"input": classifier.rows[:1]}).model_version == "1"
            answered += 1
        servers[0].process.wait(30)
        # Gone for good: every call goes to the other server, none fails.
        for _ in range(20):
            client.infer("classifier", {"input": classifier.rows[:1]})
    assert servers[0].process.returncode == 0


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
    assert '"round_robin"' in options["grpc.service_config"] and "UNAVAILABLE" in options["grpc.service_config"]
    assert "grpc.service_config" not in dict(channel_options(1024, ()))


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
