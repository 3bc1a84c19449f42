"""`conduit dashboard`'s command line: settings it cannot use are refused before it starts, naming the flag."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.conftest import CONDUIT


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CONDUIT, "dashboard", *args], capture_output=True, text=True, timeout=60, check=False)


def test_a_port_out_of_range_is_refused_naming_the_flag() -> None:
    done = _run("--port", "70000")
    assert done.returncode == 2 and "conduit dashboard: --port:" in done.stderr


def test_a_missing_ca_file_is_refused(tmp_path: Path) -> None:
    missing = tmp_path / "ca.pem"
    done = _run("--control-plane-ca", str(missing), "--port", "0")
    assert done.returncode == 1
    assert done.stderr.strip() == f"conduit dashboard: cannot read {missing}: No such file or directory"
