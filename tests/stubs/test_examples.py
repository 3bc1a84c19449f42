"""The example client of every language, built from the generated stubs, against a running `conduit serve`.

Each sends a batch as raw FP32 and must read back exactly what onnxruntime, run here on the same rows and the same
ONNX file, answers: the same labels and bit-identical probabilities. A wrong shape must come back as
INVALID_ARGUMENT, and an alias looked up in the control plane must lead to the version it names. Against a server
that requires mutual TLS and a token, the CA, a client certificate and a viewer's token (by flag or CONDUIT_TOKEN)
get the same answers; without the token the example reports UNAUTHENTICATED.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest

from tests.conftest import ServeProcess, TrainedModel
from tests.pki import Authority
from tests.secure_serve import SecureServer
from tests.stubs.conftest import ALIAS, MODEL, ControlPlane

# Building the C++ example takes most of a minute; its first test pays for it.
pytestmark = pytest.mark.timeout(900)

BATCH = 16


def write_rows(path: Path, rows: np.ndarray) -> Path:
    # repr of the float64 that holds each float32 exactly: every language parses it back to the same float32.
    path.write_text("".join(",".join(repr(float(value)) for value in row) + "\n" for row in rows))
    return path


def call(example: list[str], *args: str, token: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run the example; CONDUIT_TOKEN is ``token`` (unset when None), whatever this process has."""
    env = {k: v for k, v in os.environ.items() if k != "CONDUIT_TOKEN"}
    if token is not None:
        env["CONDUIT_TOKEN"] = token
    return subprocess.run([*example, *args], capture_output=True, text=True, timeout=120, check=False, env=env)


def failure(done: subprocess.CompletedProcess[str]) -> str:
    """The one line of a failed run, which printed nothing on stdout and exited 1."""
    assert done.returncode == 1, f"exit {done.returncode}\nstdout: {done.stdout}\nstderr: {done.stderr}"
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    return lines[0]


def answer(done: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert done.returncode == 0, f"exit {done.returncode}\nstdout: {done.stdout}\nstderr: {done.stderr}"
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def assert_predictions(result: dict[str, Any], model: TrainedModel, rows: np.ndarray) -> None:
    session = ort.InferenceSession(model.onnx, providers=["CPUExecutionProvider"])
    labels, probabilities = session.run(None, {"input": rows})
    outputs = {output["name"]: output for output in result["outputs"]}
    assert set(outputs) == {"label", "probabilities"}
    assert outputs["label"]["datatype"] == "INT64"
    assert outputs["label"]["shape"] == [len(rows)]
    assert outputs["probabilities"]["datatype"] == "FP32"
    assert outputs["probabilities"]["shape"] == [len(rows), 2]
    np.testing.assert_array_equal(np.array(outputs["label"]["data"], dtype=np.int64), labels)
    received = np.array(outputs["probabilities"]["data"], dtype=np.float32).reshape(len(rows), 2)
    np.testing.assert_array_equal(received, probabilities)


def test_batch_predictions_match_onnxruntime(
    example: list[str], server: ServeProcess, versions: dict[int, TrainedModel], tmp_path: Path
) -> None:
    rows = versions[1].rows[:BATCH]
    csv = write_rows(tmp_path / "rows.csv", rows)
    result = answer(call(example, "--target", server.target, "--model", MODEL, "--version", "1", "--rows", str(csv)))
    assert (result["model_name"], result["model_version"]) == (MODEL, "1")
    assert_predictions(result, versions[1], rows)


def test_wrong_shape_is_invalid_argument(
    example: list[str], server: ServeProcess, versions: dict[int, TrainedModel], tmp_path: Path
) -> None:
    csv = write_rows(tmp_path / "rows.csv", versions[1].rows[:4, :31])
    done = call(example, "--target", server.target, "--model", MODEL, "--rows", str(csv))
    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stdout == ""
    status = done.stderr.strip().splitlines()[-1]
    assert status.startswith("rpc error: INVALID_ARGUMENT: "), done.stderr
    assert "31" in status and "32" in status


def test_alias_looked_up_in_the_control_plane_names_the_version_called(
    example: list[str],
    server: ServeProcess,
    control_plane: ControlPlane,
    versions: dict[int, TrainedModel],
    tmp_path: Path,
) -> None:
    rows = versions[2].rows[BATCH : 2 * BATCH]
    csv = write_rows(tmp_path / "rows.csv", rows)
    args = ["--target", server.target, "--model", MODEL, "--rows", str(csv), "--alias", ALIAS]
    done = call(example, *args, "--control-plane", control_plane.address, "--token", control_plane.viewer_token)
    result = answer(done)
    assert f"{MODEL}@{ALIAS} is version 2" in done.stderr
    assert result["model_version"] == "2"
    assert_predictions(result, versions[2], rows)


def test_alias_lookup_without_a_token_is_unauthenticated(
    example: list[str], server: ServeProcess, control_plane: ControlPlane, tmp_path: Path
) -> None:
    csv = write_rows(tmp_path / "rows.csv", np.zeros((1, 32), dtype=np.float32))
    args = ["--target", server.target, "--model", MODEL, "--rows", str(csv), "--alias", ALIAS]
    done = call(example, *args, "--control-plane", control_plane.address, "--token", "cdt_not-a-token")
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1].startswith("rpc error: UNAUTHENTICATED: "), done.stderr


@pytest.mark.parametrize("token_from", ["flag", "env"])
def test_mutual_tls_and_a_token_get_predictions_that_match_onnxruntime(
    example: list[str], secure_server: SecureServer, versions: dict[int, TrainedModel], tmp_path: Path, token_from: str
) -> None:
    rows = versions[2].rows[2 * BATCH : 3 * BATCH]
    csv = write_rows(tmp_path / "rows.csv", rows)
    files = secure_server.files
    args = ["--target", secure_server.target, "--model", MODEL, "--version", "2", "--rows", str(csv)]
    args += files.client_flags()
    if token_from == "flag":
        done = call(example, *args, "--token", files.viewer_token)
    else:
        done = call(example, *args, token=files.viewer_token)
    result = answer(done)
    assert (result["model_name"], result["model_version"]) == (MODEL, "2")
    assert_predictions(result, versions[2], rows)


def test_without_a_token_the_secure_server_answers_unauthenticated(
    example: list[str], secure_server: SecureServer, tmp_path: Path
) -> None:
    csv = write_rows(tmp_path / "rows.csv", np.zeros((1, 32), dtype=np.float32))
    args = ["--target", secure_server.target, "--model", MODEL, "--rows", str(csv), *secure_server.files.client_flags()]
    assert failure(call(example, *args)).startswith("rpc error: UNAUTHENTICATED: ")
    assert failure(call(example, *args, "--token", "cdt_not-a-token")).startswith("rpc error: UNAUTHENTICATED: ")


def test_a_client_certificate_without_its_key_is_refused_in_one_line(example: list[str], tmp_path: Path) -> None:
    csv = write_rows(tmp_path / "rows.csv", np.zeros((1, 32), dtype=np.float32))
    ca = Authority.create(tmp_path / "ca")
    client = ca.issue(tmp_path / "client", "caller", client=True)
    # Refused before any connection: nothing listens on port 1.
    args = ["--target", "127.0.0.1:1", "--model", MODEL, "--rows", str(csv), "--tls-ca", str(ca.cert)]
    for half in (["--tls-cert", str(client.cert)], ["--tls-key", str(client.key)]):
        assert failure(call(example, *args, *half)) == "error: --tls-cert and --tls-key go together"
