"""`conduit serve` takes exactly one model source, and a control plane needs a token."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.conftest import CONDUIT


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "exactly one of --model-repository and --control-plane"),
        (["--model-repository", "{repo}", "--control-plane", "127.0.0.1:1", "--token", "t"], "exactly one of"),
        (["--control-plane", "127.0.0.1:1"], "needs --token"),
        (["--control-plane", "127.0.0.1:1", "--token", "t", "--poll-interval", "1"], "--poll-interval"),
        (["--control-plane", "127.0.0.1:1", "--token", "t", "--pool", "../x"], "--pool"),
    ],
)
def test_bad_model_source_exits_2(tmp_path: Path, args: list[str], message: str) -> None:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}  # no CONDUIT_* variables from the caller
    argv = [CONDUIT, "serve", *(a.replace("{repo}", str(tmp_path)) for a in args)]
    result = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=60, check=False)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr
