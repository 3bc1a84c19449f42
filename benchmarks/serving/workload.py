"""The benchmark's workload: two scikit-learn models exported to ONNX, realistic request rows, the in-process floor."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import onnxruntime as ort
from sklearn.datasets import make_classification
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression

from trainers.onnx_export import export_sklearn, write_model_version

FEATURES = 32
INPUT_NAME = "input"
# Large enough for the batch-size curve (requests of up to 256 rows); dynamic batching never waits for a full batch.
MAX_BATCH_SIZE = 256


@dataclass(frozen=True)
class Measurement:
    """One benchmark point. Latencies are in microseconds."""

    system: str
    model: str
    concurrency: int
    throughput: float
    """Inferences per second."""
    p50_us: float
    p99_us: float


def build_repository(repository: Path, *, seed: int = 0, joblib_dir: Path | None = None) -> np.ndarray:
    """Train both models, write ``repository/<model>/1/model.onnx`` and ``config.json``, return held-out rows.

    With ``joblib_dir``, the fitted estimators are also saved there as ``<model>.joblib``, for servers that load
    scikit-learn models natively.

    Returns:
        FP32 rows (``n x FEATURES``) the models never saw in training, to send as requests.
    """
    x, y = make_classification(n_samples=5000, n_features=FEATURES, n_informative=16, random_state=seed)
    rows = x.astype(np.float32)
    train, held_out = slice(0, 4000), slice(4000, None)
    estimators: dict[str, Any] = {
        "logreg": LogisticRegression(max_iter=1000),
        "forest": RandomForestClassifier(n_estimators=100, max_depth=8, random_state=seed),
    }
    for name, estimator in estimators.items():
        estimator.fit(rows[train], y[train])
        # export_sklearn is the platform's own exporter: dynamic batch dimension, input "input", no ZipMap (plain
        # "label" INT64 and "probabilities" FP32), and a parity check against the native model.
        payload = export_sklearn(estimator, rows[held_out][:200], input_name=INPUT_NAME)
        write_model_version(repository, name, 1, payload, {"max_batch_size": MAX_BATCH_SIZE})
        if joblib_dir is not None:
            joblib_dir.mkdir(parents=True, exist_ok=True)
            joblib.dump(estimator, joblib_dir / f"{name}.joblib")
    held: np.ndarray = rows[held_out]
    return held


def model_names(repository: Path) -> list[str]:
    """Models in the repository, in a stable order."""
    return sorted(p.name for p in repository.iterdir() if (p / "1" / "model.onnx").is_file())


def write_input_data(rows: np.ndarray, path: Path, *, count: int = 256) -> Path:
    """Write perf_analyzer's ``--input-data`` JSON: one batch-1 request per entry, cycled through in order.

    Without it perf_analyzer sends one buffer of random bytes (FP32 values like 1e31) for every request, which no
    model sees in production and which makes tree models take unrealistic paths.
    """
    path.write_text(json.dumps({"data": [{INPUT_NAME: row.tolist()} for row in rows[:count]]}))
    return path


def session(model_path: Path) -> ort.InferenceSession:
    """An onnxruntime session with the same threading as Conduit's default model config (one thread)."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    return ort.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])


def in_process_floor(
    model: str, model_path: Path, rows: np.ndarray, duration_s: float, *, batch: int = 1
) -> Measurement:
    """Time single-threaded ``session.run`` calls on ``batch``-row inputs for ``duration_s``: the cost no server can
    avoid. Throughput counts rows (inferences) per second."""
    sess = session(model_path)
    # Rows are cut in advance so that the loop times onnxruntime, not numpy slicing.
    count = max(1, len(rows) // batch)
    requests = [np.ascontiguousarray(rows[i * batch : (i + 1) * batch]) for i in range(count)]
    for request in requests[:200]:
        sess.run(None, {INPUT_NAME: request})
    latencies_ns: list[int] = []
    clock = time.perf_counter_ns
    start = clock()
    deadline = start + int(duration_s * 1e9)
    i = 0
    while True:
        before = clock()
        sess.run(None, {INPUT_NAME: requests[i % len(requests)]})
        after = clock()
        latencies_ns.append(after - before)
        i += 1
        if after >= deadline:
            break
    p50, p99 = (float(v) for v in np.percentile(np.asarray(latencies_ns, dtype=np.float64) / 1e3, [50, 99]))
    throughput = batch * len(latencies_ns) / ((after - start) / 1e9)
    return Measurement("onnxruntime in-process", model, 1, throughput, p50, p99)
