"""Interop tests run in their own pytest process: they load tritonclient, whose generated modules define the same
`inference` protobuf package as Conduit's, and protobuf refuses both in one process. The server under test is always
a `conduit serve` subprocess."""

from __future__ import annotations

import sys

import pytest


@pytest.fixture(autouse=True)
def _no_conduit_stubs() -> None:
    assert "inference_server.protocol.grpc_service_pb2" not in sys.modules, (
        "Conduit's stubs were imported next to tritonclient's; run tests/interop in its own pytest process"
    )
