"""The example client of every language, built from the generated stubs, against a running `conduit serve`.

Each sends a batch as raw FP32 and must read back exactly what onnxruntime, run here on the same rows and the same
ONNX file, answers: the same labels and bit-identical probabilities. A wrong shape must come back as
INVALID_ARGUMENT, and an alias looked up in the control plane must lead to the version it names.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest

from tests.conftest import ServeProcess, TrainedModel
from tests.stubs.conftest import ALIAS, MODEL, ControlPlane

# Building the C++ example takes most of a minute; its first test pays for it.
pytestmark = pytest.mark.timeout(900)

BATCH = 16


def write_rows(path: Path, rows: np.ndarray) -> Path:
    # repr of the float64 that holds each float32 exactly: every language parses it back to the same float32.
    path.write_text("".join(",".join(repr(float(value)) for value in row) + "\n" for row in rows))
    return path


def call(example: list[str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*example, *args], capture_output=True, text=True, timeout=120, check=False)


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
