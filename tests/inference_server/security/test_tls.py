"""TLS and mutual TLS on the inference port: each way a connection can be wrong fails with its own error, and a
certificate rotated on disk is served to the next connections without a restart."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from inference_server.protocol import grpc_service_pb2 as pb
from inference_server.protocol import grpc_service_pb2_grpc as pb_grpc
from tests.inference_server.conftest import StartServer
from tests.pki import Authority, Issued

# Seconds a rotated certificate may take to be looked at (the native front checks every half second).
ROTATION_BOUND_S = 10.0


@dataclass
class Pki:
    ca: Authority
    other_ca: Authority
    server: Issued
    client: Issued
    stranger: Issued  # a client certificate from a CA the server does not trust


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    ca, other = Authority.create(tmp_path / "ca"), Authority.create(tmp_path / "other-ca", "Another CA")
    served = tmp_path / "served"
    issued = ca.issue(tmp_path / "server")
    served.mkdir()
    # The server reads these two paths; rotation replaces them in place.
    shutil.copy(issued.cert, served / "cert.pem")
    shutil.copy(issued.key, served / "key.pem")
    return Pki(
        ca,
        other,
        Issued(served / "cert.pem", served / "key.pem"),
        ca.issue(tmp_path / "client", "alice", client=True),
        other.issue(tmp_path / "stranger", "mallory", client=True),
    )


def _credentials(root: Authority | None, client: Issued | None = None) -> grpc.ChannelCredentials:
    return grpc.ssl_channel_credentials(
        root_certificates=root.cert_bytes() if root is not None else None,
        private_key=client.key_bytes() if client is not None else None,
        certificate_chain=client.cert_bytes() if client is not None else None,
    )


async def _metadata(port: int, credentials: grpc.ChannelCredentials | None) -> tuple[grpc.StatusCode, str]:
    """Status and details of ServerMetadata over a new channel (``None``: plaintext)."""
    target = f"localhost:{port}"
    channel = grpc.aio.insecure_channel(target) if credentials is None else grpc.aio.secure_channel(target, credentials)
    async with channel:
        try:
            await pb_grpc.GRPCInferenceServiceStub(channel).ServerMetadata(pb.ServerMetadataRequest(), timeout=5)  # type: ignore[no-untyped-call]
        except grpc.aio.AioRpcError as exc:
            return exc.code(), exc.details() or ""
    return grpc.StatusCode.OK, ""


async def test_server_tls_serves_health_and_inference_to_a_client_trusting_its_ca(
    start_server: StartServer, repository: Path, pki: Pki
) -> None:
    _, port, _ = await start_server(repository, tls_cert=pki.server.cert, tls_key=pki.server.key)
    assert await _metadata(port, _credentials(pki.ca)) == (grpc.StatusCode.OK, "")
    async with grpc.aio.secure_channel(f"localhost:{port}", _credentials(pki.ca)) as channel:
        health = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
        assert health.status == health_pb2.HealthCheckResponse.SERVING
    code, details = await _metadata(port, _credentials(pki.other_ca))
    assert code is grpc.StatusCode.UNAVAILABLE and "CERTIFICATE_VERIFY_FAILED" in details, details
    code, details = await _metadata(port, None)
    assert code is grpc.StatusCode.UNAVAILABLE, details


async def test_mutual_tls_requires_a_client_certificate_from_its_ca(
    start_server: StartServer, repository: Path, pki: Pki
) -> None:
    _, port, _ = await start_server(
        repository, tls_cert=pki.server.cert, tls_key=pki.server.key, tls_client_ca=pki.ca.cert
    )
    assert await _metadata(port, _credentials(pki.ca, pki.client)) == (grpc.StatusCode.OK, "")
    for credentials in (_credentials(pki.ca), _credentials(pki.ca, pki.stranger)):
        code, details = await _metadata(port, credentials)
        assert code is grpc.StatusCode.UNAVAILABLE, details
    code, details = await _metadata(port, None)
    assert code is grpc.StatusCode.UNAVAILABLE, details


async def _until(seen: Callable[[], bool], port: int, credentials: grpc.ChannelCredentials) -> None:
    """Connect until ``seen``: grpc.aio looks at the files at every handshake, the native front every half second."""
    deadline = asyncio.get_running_loop().time() + ROTATION_BOUND_S
    while not seen():
        assert asyncio.get_running_loop().time() < deadline, "the changed files were never looked at"
        await _metadata(port, credentials)
        await asyncio.sleep(0.05)


def _replace(source: Path, target: Path) -> None:
    """Put ``source``'s bytes at ``target`` the way certificate managers do: a new file renamed into place."""
    staged = target.with_suffix(".new")
    shutil.copy(source, staged)
    os.replace(staged, target)


async def test_a_rotated_certificate_is_served_to_new_connections_without_a_restart(
    start_server: StartServer, repository: Path, pki: Pki, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="conduit.serve")
    _, port, _ = await start_server(repository, tls_cert=pki.server.cert, tls_key=pki.server.key)
    rotated = pki.other_ca.issue(tmp_path / "rotated")
    async with grpc.aio.secure_channel(f"localhost:{port}", _credentials(pki.ca)) as before:
        stub = pb_grpc.GRPCInferenceServiceStub(before)  # type: ignore[no-untyped-call]
        await stub.ServerMetadata(pb.ServerMetadataRequest(), timeout=5)

        # Half a rotation (the certificate without its key) is not taken: the previous pair keeps serving.
        _replace(rotated.cert, pki.server.cert)
        await _until(lambda: "keeping the previous TLS certificate" in caplog.text, port, _credentials(pki.ca))
        assert await _metadata(port, _credentials(pki.ca)) == (grpc.StatusCode.OK, "")

        _replace(rotated.key, pki.server.key)
        await _until(lambda: "TLS certificate reloaded" in caplog.text, port, _credentials(pki.other_ca))
        assert await _metadata(port, _credentials(pki.other_ca)) == (grpc.StatusCode.OK, "")
        code, details = await _metadata(port, _credentials(pki.ca))
        assert code is grpc.StatusCode.UNAVAILABLE and "CERTIFICATE_VERIFY_FAILED" in details, details
        # The connection opened before the rotation goes on with the certificate it started with.
        await asyncio.wait_for(stub.ServerMetadata(pb.ServerMetadataRequest()), 5)
