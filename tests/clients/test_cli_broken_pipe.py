"""``conduit … | head -1``: a reader that leaves early ends any command quietly, in a real process on a real pipe."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from clients.cli import BROKEN_PIPE_EXIT
from control_plane.app import ControlPlaneServer
from control_plane.settings import ControlPlaneSettings

ADMIN_TOKEN = "cdt_cli-pipe-admin-token-0123456789abcdefghijklmn"


@pytest.fixture
async def target(tmp_path: Path) -> AsyncIterator[str]:
    server = ControlPlaneServer(ControlPlaneSettings(home=tmp_path / "home", grpc_port=0, admin_token=ADMIN_TOKEN))
    await server.start()
    yield server.target
    await server.stop(grace=1.0)


def run_into_closed_pipe(*args: str) -> subprocess.CompletedProcess[bytes]:
    """``conduit ARGS`` writing into a pipe whose reader is already gone, as after ``| head -1`` has its line."""
    read, write = os.pipe()
    os.close(read)
    try:
        env = {**os.environ, "CONDUIT_TOKEN": ADMIN_TOKEN}
        return subprocess.run(
            [sys.executable, "-m", "clients.cli", *args],
            check=False,
            stdout=write,
            stderr=subprocess.PIPE,
            env=env,
            timeout=60,
        )
    finally:
        os.close(write)


async def test_a_listing_into_a_closed_pipe_ends_quietly(target: str) -> None:
    listed = await asyncio.to_thread(run_into_closed_pipe, "alerts", "list", "--json", "--control-plane", target)
    assert (listed.returncode, listed.stderr) == (BROKEN_PIPE_EXIT, b"")
