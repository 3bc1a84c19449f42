"""`conduit demo` (what `make demo` runs) end to end, as a user starts it, and with TLS on its inference port."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from tests.conftest import CONDUIT, self_signed_certificate


def test_demo_trains_tunes_registers_deploys_and_serves_from_the_bundled_data() -> None:
    command = [CONDUIT, "demo", "--requests", "50"]
    done = subprocess.run(command, check=False, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert re.search(r"imported data set credit:[0-9a-f]{16} \(2000 rows", out)
    assert len(re.findall(r"^trial \d+: ", out, flags=re.MULTILINE)) == 8
    assert "ONNX matches the native model" in out
    assert "registered credit-default version 1" in out
    labels = re.search(r"^labels\s+(\[.*\])$", out, flags=re.MULTILINE)
    native = re.search(r"^native\s+(\[.*\])$", out, flags=re.MULTILINE)
    assert labels and native and labels[1] == native[1]
    assert "50 single-row requests" in out
    assert re.search(r"credit-default:1 READY", out)


def test_demo_serves_its_inference_calls_over_tls_given_a_certificate(tmp_path: Path) -> None:
    cert, key = self_signed_certificate(tmp_path)
    command = [CONDUIT, "demo", "--requests", "20", "--tls-cert", str(cert), "--tls-key", str(key)]
    done = subprocess.run(command, check=False, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert re.search(r"^serving on 127\.0\.0\.1:\d+ with TLS, following the control plane$", out, flags=re.MULTILINE)
    labels = re.search(r"^labels\s+(\[.*\])$", out, flags=re.MULTILINE)
    native = re.search(r"^native\s+(\[.*\])$", out, flags=re.MULTILINE)
    assert labels and native and labels[1] == native[1]
    assert "20 single-row requests" in out
