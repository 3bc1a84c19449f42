"""An empty connection flag (``--token "$UNSET"``) counts as not given: its ``CONDUIT_*`` variable applies."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from clients.cli import main
from control_plane.app import ControlPlaneServer
from control_plane.settings import ControlPlaneSettings

ADMIN_TOKEN = "cdt_cli-empty-flags-admin-token-0123456789abcdef"


@pytest.fixture
async def target(tmp_path: Path) -> AsyncIterator[str]:
    server = ControlPlaneServer(ControlPlaneSettings(home=tmp_path / "home", grpc_port=0, admin_token=ADMIN_TOKEN))
    await server.start()
    yield server.target
    await server.stop(grace=1.0)


async def test_empty_connection_flags_fall_back_to_the_environment(
    target: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CONDUIT_CONTROL_PLANE", target)
    monkeypatch.setenv("CONDUIT_TOKEN", ADMIN_TOKEN)
    monkeypatch.delenv("CONDUIT_CONTROL_PLANE_CA", raising=False)
    empty = ["--control-plane", "", "--token", "", "--ca", ""]
    assert await asyncio.to_thread(main, ["models", "list", *empty]) == 0, capsys.readouterr().err
    monkeypatch.delenv("CONDUIT_TOKEN")
    assert await asyncio.to_thread(main, ["models", "list", *empty]) == 2
    assert capsys.readouterr().err.strip() == "conduit: no token: pass --token or set CONDUIT_TOKEN"
