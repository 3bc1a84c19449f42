"""``conduit deploy`` against a real control plane: a misspelt model or alias is one line and exit 1; a pool no
live server follows is deployed to, with a warning on stderr."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from clients.cli import main
from contract.client import ControlPlaneClient
from contract.entities import Role
from control_plane.app import ControlPlaneServer
from control_plane.settings import ControlPlaneSettings
from tests.conftest import TrainedModel

ADMIN_TOKEN = "cdt_cli-deploy-admin-token-0123456789abcdefghijkl"


@pytest.fixture
async def target(tmp_path: Path, classifier: TrainedModel) -> AsyncIterator[str]:
    server = ControlPlaneServer(ControlPlaneSettings(home=tmp_path / "home", grpc_port=0, admin_token=ADMIN_TOKEN))
    await server.start()
    model = tmp_path / "fraud.onnx"
    model.write_bytes(classifier.onnx)
    async with ControlPlaneClient.connect(server.target, token=ADMIN_TOKEN) as client:
        await client.register_version("fraud", model, aliases=["production"])
    yield server.target
    await server.stop(grace=1.0)


async def conduit(target: str, *args: str) -> int:
    return await asyncio.to_thread(main, [*args, "--control-plane", target, "--token", ADMIN_TOKEN])


async def test_an_unknown_model_or_alias_is_one_line_and_exit_1(
    target: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await conduit(target, "deploy", "frud@production", "--pool", "default") == 1
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "NOT_FOUND" in err and "frud" in err
    assert await conduit(target, "deploy", "fraud@prodution", "--pool", "default") == 1
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "NOT_FOUND" in err and "prodution" in err


async def test_a_pool_without_a_live_server_is_a_warning(target: str, capsys: pytest.CaptureFixture[str]) -> None:
    async with ControlPlaneClient.connect(target, token=ADMIN_TOKEN) as admin:
        _, token = await admin.create_user("serve-1", Role.SERVER)
        async with ControlPlaneClient.connect(target, token=token) as server:
            await server.register_server("default", "127.0.0.1:8001", "serve-1")
    assert await conduit(target, "deploy", "fraud@production", "--pool", "defualt") == 0
    captured = capsys.readouterr()
    assert captured.out.startswith("deployed fraud@production to pool defualt")
    assert captured.err == (
        "conduit: warning: no server follows pool 'defualt' yet (none registered; live servers follow 'default'); "
        "start one with `conduit serve --control-plane ADDR --pool defualt --token SERVER_TOKEN`\n"
    )
    assert await conduit(target, "deploy", "fraud@production", "--pool", "default", "--json") == 0
    assert capsys.readouterr().err == ""
