"""Interop tests run in their own pytest process: they load tritonclient, whose generated modules define the same
`inference` protobuf package as Conduit's, and protobuf refuses both in one process. The server under test is always
a `conduit serve` subprocess."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator

import pytest
import tritonclient.grpc as triton


@pytest.fixture(autouse=True)
def _no_conduit_stubs() -> None:
    assert "inference_server.protocol.grpc_service_pb2" not in sys.modules, (
        "Conduit's stubs were imported next to tritonclient's; run tests/interop in its own pytest process"
    )


Connect = Callable[[str], triton.InferenceServerClient]


@pytest.fixture
def connect() -> Iterator[Connect]:
    """Open tritonclient gRPC clients to a target; every one is closed (its stream stopped) at teardown."""
    clients: list[triton.InferenceServerClient] = []

    def open_client(target: str) -> triton.InferenceServerClient:
        client = triton.InferenceServerClient(url=target)
        clients.append(client)
        return client

    yield open_client
    for client in clients:
        client.close()
