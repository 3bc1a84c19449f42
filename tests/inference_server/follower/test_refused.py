"""A following ``conduit serve`` whose token the control plane refuses stops with one line and exit 1, instead of
retrying for ever; an empty ``--token`` falls back to ``CONDUIT_TOKEN``. Real processes on a real control plane."""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from contract.client import ControlPlaneClient
from contract.entities import Role
from control_plane.app import ControlPlaneServer
from control_plane.settings import ControlPlaneSettings
from tests.conftest import CONDUIT

ADMIN_TOKEN = "cdt_refused-admin-token-0123456789abcdefghijklmn"
# A refusal must end the process well before this; a server that retries for ever is killed at it.
BOUND_S = 60


@pytest.fixture
async def plane(tmp_path: Path) -> AsyncIterator[str]:
    server = ControlPlaneServer(ControlPlaneSettings(home=tmp_path / "home", grpc_port=0, admin_token=ADMIN_TOKEN))
    await server.start()
    yield server.target
    await server.stop(grace=1.0)


def serve(
    plane: str, tmp_path: Path, *flags: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    command = [CONDUIT, "serve", "--control-plane", plane, "--grpc-port", "0", "--metrics-port", "0"]
    command += ["--cache-dir", str(tmp_path / "cache"), "--heartbeat-interval", "0.2", *flags]
    environment = {k: v for k, v in os.environ.items() if not k.startswith("CONDUIT_")} | (env or {})
    return subprocess.run(command, capture_output=True, text=True, timeout=BOUND_S, env=environment, check=False)


def refusal(done: subprocess.CompletedProcess[str]) -> str:
    """The one line that says why; nothing else on stderr says it, and no traceback."""
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    lines = [line for line in done.stderr.splitlines() if line.startswith("conduit serve:")]
    assert len(lines) == 1, done.stderr
    return lines[0]


async def test_an_unknown_token_stops_the_server(plane: str, tmp_path: Path) -> None:
    done = await asyncio.to_thread(serve, plane, tmp_path, "--token", "cdt_not-a-token-of-this-control-plane-0123")
    line = refusal(done)
    assert line.startswith("conduit serve: the control plane refused this server:") and "UNAUTHENTICATED" in line
    assert "retrying" not in done.stderr and "unreachable" not in done.stderr, done.stderr


async def test_a_token_without_the_server_role_stops_the_server(plane: str, tmp_path: Path) -> None:
    async with ControlPlaneClient.connect(plane, token=ADMIN_TOKEN) as admin:
        _, viewer = await admin.create_user("watcher", Role.VIEWER)
    done = await asyncio.to_thread(serve, plane, tmp_path, "--token", viewer, "--log-level", "ERROR")
    line = refusal(done)
    assert "refused this server" in line and "PERMISSION_DENIED" in line and "role viewer" in line
    assert "retrying" not in done.stderr and "unreachable" not in done.stderr, done.stderr


async def test_an_empty_token_flag_falls_back_to_the_environment(plane: str, tmp_path: Path) -> None:
    env = {"CONDUIT_TOKEN": "cdt_not-a-token-of-this-control-plane-0123"}
    done = await asyncio.to_thread(serve, plane, tmp_path, "--token", "", env=env)
    # The token reached the control plane (and was refused): an empty flag did not override the variable.
    assert "refused this server" in refusal(done)
    without = await asyncio.to_thread(serve, plane, tmp_path, "--token", "")
    assert (without.returncode, without.stderr.strip()) == (
        2,
        "conduit serve: --control-plane needs --token (or CONDUIT_TOKEN)",
    )
