"""Fixtures of the ``conduit bench`` tests: the bench run as users run it, a command against a real server."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import CONDUIT

RunBench = Callable[..., dict[str, Any]]


@pytest.fixture
def bench_command(tmp_path: Path) -> Callable[..., tuple[list[str], Path]]:
    """The command line of a ``conduit bench`` run writing JSON into ``tmp_path``, and that JSON's path."""
    counter = iter(range(1_000_000))

    def command(target: str, model: str, *flags: str) -> tuple[list[str], Path]:
        out = tmp_path / f"bench-{next(counter)}.json"
        return [CONDUIT, "bench", "--target", target, "--model", model, "--quiet", "--json", str(out), *flags], out

    return command


@pytest.fixture
def run_bench(bench_command: Callable[..., tuple[list[str], Path]]) -> RunBench:
    """Run ``conduit bench`` to completion and return its JSON document; fail with its output if it fails."""

    def run(target: str, model: str, *flags: str) -> dict[str, Any]:
        command, out = bench_command(target, model, *flags)
        done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
        assert done.returncode == 0, f"conduit bench exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
        document: dict[str, Any] = json.loads(out.read_text())
        return document

    return run
