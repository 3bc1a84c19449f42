"""Fixtures of the client tests: a real in-process inference server on the shared test repository."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from opentelemetry.sdk.metrics import MeterProvider

from inference_server.app import InferenceServer
from inference_server.settings import ServerSettings
from inference_server.telemetry import InMemoryReader, histogram_set

# Seconds a stopping test server waits for in-flight calls; tests never leave calls running, so it is only a bound.
STOP_GRACE = 5.0


@pytest.fixture
async def target(repository: Path) -> AsyncIterator[str]:
    """Address of an ``InferenceServer`` serving ``repository``, started and stopped through its public API."""
    histograms = histogram_set()
    provider = MeterProvider(metric_readers=[InMemoryReader(histograms)])
    settings = ServerSettings(model_repository=repository, grpc_port=0, metrics_port=0)
    server = InferenceServer(settings, provider, histograms)
    port = await server.start()
    yield f"127.0.0.1:{port}"
    await server.stop(STOP_GRACE)
    provider.shutdown()
