"""Fixtures of the inference-server tests: in-process servers on free ports, with an in-memory metric reader.

Each server is an ``InferenceServer`` started and stopped through its public ``start``/``stop``; its OpenTelemetry
``MeterProvider`` reads into an ``InMemoryMetricReader`` instead of any global state.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, NamedTuple

import grpc
import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from inference_server.app import InferenceServer
from inference_server.protocol import grpc_service_pb2_grpc as pb_grpc
from inference_server.settings import ServerSettings

# Seconds a stopping test server waits for in-flight calls; tests never leave calls running, so it is only a bound.
STOP_GRACE = 5.0


class Running(NamedTuple):
    """A started in-process server: unpack as ``server, port, reader``."""

    server: InferenceServer
    port: int
    reader: InMemoryMetricReader


StartServer = Callable[..., Awaitable[Running]]
Connect = Callable[[int], pb_grpc.GRPCInferenceServiceStub]


@pytest.fixture
async def start_server() -> AsyncIterator[StartServer]:
    """Start in-process servers: ``await start_server(repo, **settings)``; every one is stopped at teardown."""
    started: list[tuple[InferenceServer, MeterProvider]] = []

    async def start(repo: Path, **settings: Any) -> Running:
        reader = InMemoryMetricReader()
        provider = MeterProvider(metric_readers=[reader])
        server = InferenceServer(
            ServerSettings(model_repository=repo, grpc_port=0, metrics_port=0, **settings), provider
        )
        started.append((server, provider))
        port = await server.start()
        return Running(server, port, reader)

    yield start
    for server, provider in reversed(started):
        # stop() is safe to call again for a server a test already stopped.
        await server.stop(STOP_GRACE)
        provider.shutdown()


@pytest.fixture
async def server(start_server: StartServer, repository: Path) -> Running:
    """A server on the shared test repository (classifier, forest, identity_<type> for every datatype)."""
    return await start_server(repository)


@pytest.fixture
async def connect() -> AsyncIterator[Connect]:
    """``connect(port)`` opens a ``grpc.aio`` channel to a server and returns an inference stub; closed at teardown."""
    channels: list[grpc.aio.Channel] = []

    def open_stub(port: int) -> pb_grpc.GRPCInferenceServiceStub:
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
        channels.append(channel)
        return pb_grpc.GRPCInferenceServiceStub(channel)  # type: ignore[no-untyped-call]

    yield open_stub
    for channel in channels:
        await channel.close()


@pytest.fixture
def stub(server: Running, connect: Connect) -> pb_grpc.GRPCInferenceServiceStub:
    """An inference stub connected to ``server``."""
    return connect(server.port)
