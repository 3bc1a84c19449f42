"""``conduit bench`` against a `conduit serve` that requires mutual TLS and a token: the flags (or CONDUIT_TOKEN) get
it in, over both unary calls and streams; without a token it stops in one line naming the status."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.secure_serve import SecureServer

BenchCommand = Callable[..., tuple[list[str], Path]]
SHORT = ["--duration", "0.5s", "--warmup", "0"]


def bench(command: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False, env=env)


def environment(**variables: str) -> dict[str, str]:
    """This process's environment without CONDUIT_TOKEN, plus ``variables``."""
    return {**{k: v for k, v in os.environ.items() if k != "CONDUIT_TOKEN"}, **variables}


@pytest.mark.parametrize(("token_from", "streaming"), [("flag", False), ("env", True)])
def test_bench_over_mutual_tls_with_a_token(
    secure_server: SecureServer, bench_command: BenchCommand, token_from: str, streaming: bool
) -> None:
    files = secure_server.files
    flags = [*SHORT, *files.client_flags(), *(["--streaming"] if streaming else [])]
    if token_from == "flag":
        flags += ["--token", files.viewer_token]
        env = environment()
    else:
        env = environment(CONDUIT_TOKEN=files.viewer_token)
    command, out = bench_command(secure_server.target, "classifier", *flags)
    done = bench(command, env)
    assert done.returncode == 0, done.stdout + done.stderr
    document = json.loads(out.read_text())
    assert document["tls"] is True
    assert document["streaming"] is streaming
    level = document["levels"][0]
    assert level["errors"] == {}
    assert level["ok"] == level["requests"] > 10


def test_bench_without_a_token_stops_in_one_line(secure_server: SecureServer, bench_command: BenchCommand) -> None:
    command, out = bench_command(secure_server.target, "classifier", *SHORT, *secure_server.files.client_flags())
    done = bench(command, environment())
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.startswith(f"conduit bench: {secure_server.target}: UNAUTHENTICATED: "), done.stderr
    assert len(done.stderr.splitlines()) == 1, done.stderr
    assert not out.exists()
