"""Triton's perf_analyzer, unchanged, against `conduit serve`: unary and streaming, at concurrency 1 and 8.

perf_analyzer calls ServerMetadata, ModelMetadata and ModelConfig before it sends a single request, and exits non-zero
when any request fails, so a clean exit already says a lot; the CSV report and the server's own statistics say the
rest. It sends real rows (``--input-data``), not the random bytes it would otherwise reuse for every request.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest
import tritonclient.grpc as triton

ROOT = Path(__file__).resolve().parents[2]
PERF_ANALYZER = ROOT / ".cache" / "perf_analyzer" / "bin" / "perf_analyzer"
MEASUREMENT_MS = 1500
# perf_analyzer calls a measurement stable when the last 3 windows agree within this percentage. These tests check
# that the server answers correctly under load, not how steady a shared CI machine is, so any 3 windows will do.
STABILITY_PERCENT = 1000
MAX_TRIALS = 3


@pytest.fixture(scope="session")
def perf_analyzer() -> Path:
    """The perf_analyzer binary that `make perf-analyzer` installs."""
    if not (PERF_ANALYZER.is_file() and os.access(PERF_ANALYZER, os.X_OK)):
        pytest.fail(
            f"perf_analyzer is not installed at {PERF_ANALYZER}: run `make perf-analyzer` "
            "(benchmarks/perf_analyzer/install.sh) first",
            pytrace=False,
        )
    return PERF_ANALYZER


@pytest.fixture
def input_data(tmp_path: Path, classifier: Any) -> Path:
    """perf_analyzer's JSON input format: one entry per request, each one row of the classifier's features."""
    rows = classifier.rows[:100]
    path = tmp_path / "classifier-rows.json"
    entries = [{"input": {"content": [float(v) for v in row], "shape": [len(row)]}} for row in rows]
    path.write_text(json.dumps({"data": entries}))
    return path


def _read_report(path: Path) -> list[dict[str, str]]:
    """The CSV report: a header row, then one row per concurrency level measured."""
    with path.open(newline="") as report:
        return list(csv.DictReader(line for line in report if line.strip()))


@pytest.fixture
def served(repository: Path, start_serve: Any) -> Any:
    """`conduit serve` on the shared repository (``classifier`` among its models)."""
    return start_serve(repository)


@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    "load",
    [(1, False), (1, True), (8, False), (8, True)],
    ids=["c1-unary", "c1-streaming", "c8-unary", "c8-streaming"],
)
def test_perf_analyzer_runs_clean(
    perf_analyzer: Path, served: Any, input_data: Path, tmp_path: Path, load: tuple[int, bool]
) -> None:
    concurrency, streaming = load
    report = tmp_path / "report.csv"
    args = [str(perf_analyzer), "-m", "classifier", "-i", "grpc", "-u", served.target]
    args += ["--concurrency-range", str(concurrency), "--input-data", str(input_data), "-f", str(report)]
    args += ["--measurement-interval", str(MEASUREMENT_MS), "--max-trials", str(MAX_TRIALS)]
    args += ["--stability-percentage", str(STABILITY_PERCENT)]
    if streaming:
        args.append("--streaming")
    run = subprocess.run(args, capture_output=True, text=True, timeout=90, check=False)
    output = f"{' '.join(args)}\nexit {run.returncode}\nstdout:\n{run.stdout}\nstderr:\n{run.stderr}"
    assert run.returncode == 0, output

    rows = _read_report(report)
    assert len(rows) == 1, output
    measured = rows[0]
    assert int(measured["Concurrency"]) == concurrency, measured
    assert float(measured["Inferences/Second"]) > 0, measured
    assert float(measured["p50 latency"]) > 0, measured
    # Server-side columns come from the ModelStatistics deltas perf_analyzer reads before and after measuring.
    server_columns = ("Server Queue", "Server Compute Input", "Server Compute Infer", "Server Compute Output")
    assert all(float(measured[column]) >= 0 for column in server_columns), measured

    client = triton.InferenceServerClient(url=served.target)
    try:
        stats = client.get_inference_statistics("classifier").model_stats[0]
    finally:
        client.close()
    assert stats.inference_stats.fail.count == 0, stats
    assert stats.inference_stats.success.count > 0, stats
    # perf_analyzer sends batch-1 requests: one inference each.
    assert stats.inference_count == stats.inference_stats.success.count, stats
    assert 1 <= stats.execution_count <= stats.inference_count, stats


def _validation_file(path: Path, classifier: Any, *, wrong_label_at: int | None = None) -> Path:
    """Rows plus the exact outputs perf_analyzer must receive for each (its ``validation_data``).

    perf_analyzer compares outputs byte for byte. At concurrency 1 every request executes alone, so the reference is
    onnxruntime on one row at a time, with the server's session options (one intra-op thread).
    """
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(classifier.onnx, sess_options=options, providers=["CPUExecutionProvider"])
    rows = classifier.rows[:50]
    data, expected = [], []
    for position, row in enumerate(rows):
        label, probabilities = session.run(["label", "probabilities"], {"input": row[np.newaxis]})
        flipped = position == wrong_label_at
        data.append({"input": {"content": [float(v) for v in row], "shape": [len(row)]}})
        expected.append(
            {
                "label": [int(1 - label[0]) if flipped else int(label[0])],
                "probabilities": [float(p) for p in probabilities[0]],
            }
        )
    path.write_text(json.dumps({"data": data, "validation_data": expected}))
    return path


@pytest.mark.timeout(120)
def test_perf_analyzer_validates_every_output(
    perf_analyzer: Path, served: Any, classifier: Any, tmp_path: Path
) -> None:
    """perf_analyzer checks each answer against ``validation_data``: right answers pass, one wrong label fails."""
    args = [str(perf_analyzer), "-m", "classifier", "-i", "grpc", "-u", served.target, "--request-count", "200"]

    right = _validation_file(tmp_path / "right.json", classifier)
    run = subprocess.run([*args, "--input-data", str(right)], capture_output=True, text=True, timeout=60, check=False)
    assert run.returncode == 0, f"stdout:\n{run.stdout}\nstderr:\n{run.stderr}"

    # The control: validation is really on, so one label that the server (rightly) does not answer fails the run.
    wrong = _validation_file(tmp_path / "wrong.json", classifier, wrong_label_at=5)
    run = subprocess.run([*args, "--input-data", str(wrong)], capture_output=True, text=True, timeout=60, check=False)
    assert run.returncode != 0, f"stdout:\n{run.stdout}\nstderr:\n{run.stderr}"
