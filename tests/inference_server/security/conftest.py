"""Fixtures of the data-plane security tests: a control plane with a user of every role and a server following it
(``secured``), and a repository-mode server behind a tokens file (``tokens``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest

from contract.entities import Role
from contract.tokens import hash_token, new_token
from inference_server.app import InferenceServer
from tests.inference_server.conftest import StartServer
from tests.inference_server.follower.test_follower import (
    FOLLOW,
    MODEL,
    ControlPlane,
    _run_control_plane,
    eventually,
)

ROLES = (Role.VIEWER, Role.MAINTAINER, Role.SERVER, Role.ADMIN)


def bearer(token: str | None) -> tuple[tuple[str, str], ...]:
    """The metadata that carries ``token``; none for ``None``."""
    return () if token is None else (("authorization", f"Bearer {token}"),)


@dataclass
class Secured:
    """A server following ``plane``, the version it serves, and a token of every role (``None``: no token)."""

    plane: ControlPlane
    server: InferenceServer
    port: int
    version: int
    tokens: dict[Role, str]

    def channel(self) -> grpc.aio.Channel:
        return grpc.aio.insecure_channel(f"127.0.0.1:{self.port}")


@pytest.fixture
async def plane(tmp_path: Path) -> AsyncIterator[ControlPlane]:
    async for running in _run_control_plane(ControlPlane(tmp_path / "control-plane", 0)):
        yield running


@pytest.fixture
async def secured(plane: ControlPlane, start_server: StartServer, tmp_path: Path, classifier) -> Secured:  # type: ignore[no-untyped-def]
    tokens = {}
    for role in ROLES:
        _, tokens[role] = await plane.admin.create_user(f"user-{role.value}", role)
    version = await plane.register(classifier.onnx)
    await plane.deploy(version)
    server, port, _ = await start_server(
        None, control_plane=plane.address, token=tokens[Role.SERVER], cache_dir=tmp_path / "cache", **FOLLOW
    )

    async def serving() -> bool:
        return server.models.versions(MODEL) == [str(version)]

    await eventually(serving, "the deployed version served")
    return Secured(plane, server, port, version, tokens)


@dataclass(frozen=True)
class TokensFile:
    """A tokens file with one token of each role it may hold."""

    path: Path
    tokens: dict[Role, str]


@pytest.fixture
def tokens_file(tmp_path: Path) -> TokensFile:
    tokens = {role: new_token() for role in (Role.VIEWER, Role.MAINTAINER, Role.ADMIN)}
    lines = []
    for role, token in tokens.items():
        lines += [
            "[[tokens]]",
            f'name = "{role.value}-user"',
            f'role = "{role.value}"',
            f'sha256 = "{hash_token(token)}"',
            "",
        ]
    path = tmp_path / "tokens.toml"
    path.write_text("\n".join(lines))
    return TokensFile(path, tokens)
