"""Where to count the data sketches: on every executed batch, or once per flush over the batches kept since.

Builds the plan of a 32-feature classifier (28 FP32 features binned in 10 bins, 4 string features with 8 categories,
the predicted class) and times, on the same batches: counting each batch as it executes (what an observer that
counts would cost the request path), and keeping each batch by reference then counting a whole flush window at once
(what the server does). Prints microseconds per batch for both.

Run: .venv/bin/python benchmarks/sketches/counting.py
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import numpy as np

from contract.entities import CategoryCount, ColumnProfile, TensorSignature
from inference_server import kernels
from inference_server.config import ModelConfig
from inference_server.profile import DataProfile
from inference_server.spec import ModelSpec
from inference_server.telemetry import SketchPlan, sum_set
from inference_server.telemetry._sketches import VersionSketches

NUMERIC, CATEGORICAL, BINS, CATEGORIES = 28, 4, 10, 8
WINDOW_BATCHES = 1000  # one flush window at a few thousand requests per second


def _column(name: str, kind: str, **baseline: Any) -> ColumnProfile:
    return ColumnProfile(name=name, dtype="", kind=kind, missing=0, missing_rate=0.0, **baseline)


def plan() -> SketchPlan:
    inputs = [TensorSignature(f"x{i}", "FP32", (1,)) for i in range(NUMERIC)]
    inputs += [TensorSignature(f"c{i}", "BYTES", (1,)) for i in range(CATEGORICAL)]
    outputs = (TensorSignature("label", "INT64", ()), TensorSignature("probabilities", "FP32", (2,)))
    spec = ModelSpec("bench", "1", tuple(inputs), outputs, ModelConfig(max_batch_size=64))
    edges = tuple(float(edge) for edge in np.linspace(-2, 2, BINS + 1))
    columns = {f"x{i}": _column(f"x{i}", "numeric", bin_edges=edges) for i in range(NUMERIC)}
    categories = tuple(CategoryCount(f"v{j}", 1) for j in range(CATEGORIES))
    columns |= {f"c{i}": _column(f"c{i}", "categorical", top_categories=categories) for i in range(CATEGORICAL)}
    return SketchPlan(spec, DataProfile(columns))


def batches(count: int, rng: np.random.Generator) -> list[tuple[dict[str, np.ndarray], list[np.ndarray]]]:
    words = np.array([f"v{j}" for j in range(CATEGORIES + 2)], dtype=object)
    made = []
    for _ in range(count):
        rows = int(rng.integers(1, 17))
        feeds = {f"x{i}": rng.normal(size=(rows, 1)).astype(np.float32) for i in range(NUMERIC)}
        feeds |= {f"c{i}": words[rng.integers(0, len(words), size=(rows, 1))] for i in range(CATEGORICAL)}
        outputs = [rng.integers(0, 2, size=rows).astype(np.int64), rng.random((rows, 2)).astype(np.float32)]
        made.append((feeds, outputs))
    return made


def main() -> None:
    kernels.warm_up()
    rng = np.random.default_rng(0)
    the_plan = plan()
    window = batches(WINDOW_BATCHES, rng)
    per_batch, deferred = [], []
    for _ in range(7):
        sums = sum_set()
        start = time.perf_counter_ns()
        for feeds, outputs in window:
            one = the_plan.window()
            the_plan.keep(one, feeds, outputs)
            the_plan.count(one, sums)
        per_batch.append((time.perf_counter_ns() - start) / len(window) / 1e3)
        sketches = VersionSketches(sum_set())
        start = time.perf_counter_ns()
        for feeds, outputs in window:
            sketches.keep(the_plan, feeds, outputs)
        kept = time.perf_counter_ns()
        sketches.flush()
        done = time.perf_counter_ns()
        deferred.append(((kept - start) / len(window) / 1e3, (done - kept) / len(window) / 1e3))
    rows = sum(len(outputs[0]) for _, outputs in window)
    print(f"{NUMERIC} numeric + {CATEGORICAL} categorical features + prediction; {len(window)} batches, {rows} rows")
    print(f"count every batch:           {statistics.median(per_batch):7.2f} us per batch (on the request path)")
    keep = statistics.median(k for k, _ in deferred)
    flush = statistics.median(f for _, f in deferred)
    print(f"keep, count once per window: {keep:7.2f} us per batch on the request path + {flush:.2f} us in the flusher")


if __name__ == "__main__":
    main()
