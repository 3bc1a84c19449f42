"""Fixtures of the client tests: a real in-process inference server on the shared test repository, and a `conduit
serve` process that requires TLS, a client certificate and a token."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from opentelemetry.sdk.metrics import MeterProvider

from inference_server.app import InferenceServer
from inference_server.settings import ServerSettings
from inference_server.telemetry import InMemoryReader, histogram_set
from tests.conftest import TrainedModel
from tests.secure_serve import SecureFiles, SecureServer, serving_securely
from trainers.onnx_export import write_model_version

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


@pytest.fixture(scope="session")
def secure_server(tmp_path_factory: pytest.TempPathFactory, classifier: TrainedModel) -> Iterator[SecureServer]:
    """`conduit serve` on a repository holding ``classifier`` (v1), with TLS, mutual TLS and a tokens file."""
    tmp = tmp_path_factory.mktemp("secure-serve")
    write_model_version(tmp / "models", "classifier", 1, classifier.onnx)
    files = SecureFiles.create(tmp / "pki")
    with serving_securely(files, tmp / "models", tmp / "serve.log") as server:
        yield server
