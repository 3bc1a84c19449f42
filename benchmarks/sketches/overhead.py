"""What the data sketches cost a served model: perf_analyzer throughput at concurrency 16, sketches on against off.

The model is what the trainers make of a 32-feature table (28 numbers and 4 string categories, one ``[-1, 1]``
input per feature), served with the table's profile, so every request's values are counted: 28 numeric features
in 10 bins, 4 categorical ones, and the predicted class. Requests are held-out rows (``--input-data``), batch 1,
unary gRPC. Each round starts a fresh ``conduit serve`` per system, one after the other in an order that alternates
between rounds, so a machine that slows down or speeds up during the run weighs on both alike; the median over the
rounds is compared. Throughput on a shared machine swings by 20% from run to run, so the server's own CPU time per
inference (from /proc, over the whole perf_analyzer run) is reported beside it: it moves far less with the
neighbours' load, and it is what the sketches add.

``--baseline DIR`` adds a third system: ``conduit serve`` from another source tree (for example a worktree of the
commit before the sketches), sketches off, to check that the code path with sketches off did not get slower.

Usage: benchmarks/sketches/overhead [--rounds 5] [--duration-s 6] [--baseline DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "serving"))
import grpc
from harness import free_port, perf_analyzer, wait_ready

from inference_server.protocol import grpc_service_pb2 as pb
from inference_server.protocol import grpc_service_pb2_grpc as pb_grpc
from trainers import parse_spec, train
from trainers.datasets import profile
from trainers.onnx_export import write_model_version

ROOT = Path(__file__).resolve().parents[2]
MODEL = "wide"
NUMERIC, CATEGORICAL = 28, 4
CONCURRENCY = 16
CITIES = ("paris", "lyon", "marseille", "toulouse", "lille", "nantes", "nice", "rennes", "brest")


def table(rows: int, seed: int) -> pl.DataFrame:
    """A synthetic classification table: 28 numbers (a few missing), 4 string categories, a 0/1 target."""
    rng = np.random.default_rng(seed)
    numbers = rng.normal(size=(rows, NUMERIC))
    columns: dict[str, object] = {f"n{i}": numbers[:, i] for i in range(NUMERIC)}
    for i in range(CATEGORICAL):
        columns[f"c{i}"] = [CITIES[j] for j in rng.integers(0, len(CITIES) - i, size=rows)]
    score = numbers[:, :8].sum(axis=1) + rng.normal(scale=1.0, size=rows)
    columns["target"] = (score > 0).astype(np.int64)
    frame = pl.DataFrame(columns)
    # Some missing numbers, as in real data (served as NaN, sketched as "missing").
    return frame.with_columns(pl.when(pl.int_range(pl.len()) % 97 == 0).then(None).otherwise(pl.col("n0")).alias("n0"))


def build(repository: Path, input_data: Path) -> None:
    """Train the model, write it with its profile, and write perf_analyzer's input rows."""
    frame = table(4000, seed=0)
    spec = parse_spec(
        f"""
[dataset]
name = "wide"
target = "target"
[features]
numeric = {[f"n{i}" for i in range(NUMERIC)]!r}
categorical = {[f"c{i}" for i in range(CATEGORICAL)]!r}
[split]
method = "stratified"
test_size = 0.25
seed = 1
[model]
task = "binary"
estimator = "logistic_regression"
params = {{ max_iter = 500 }}
[register]
name = "wide"
""".replace("'", '"')
    )
    result = train(spec, frame, dataset_version="b" * 16)
    write_model_version(repository, MODEL, 1, result.onnx, {"max_batch_size": 64})
    (repository / MODEL / "profile.json").write_text(json.dumps({**profile(frame).to_json(), "target": "target"}))
    rows = result.test_inputs

    # JSON has no NaN: the few missing numbers are sent as 0.
    def value(item: object) -> object:
        return item if isinstance(item, str) else float(np.nan_to_num(item))

    count = min(256, len(rows["n0"]))
    data = [{name: [value(v) for v in array[i]] for name, array in rows.items()} for i in range(count)]
    input_data.write_text(json.dumps({"data": data}))


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _inferences(port: int) -> int:
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = pb_grpc.GRPCInferenceServiceStub(channel)  # type: ignore[no-untyped-call]
        answer = stub.ModelStatistics(pb.ModelStatisticsRequest(name=MODEL), timeout=10.0)
        return int(sum(stats.inference_count for stats in answer.model_stats))


def measure(
    system: str,
    command: list[str],
    *,
    env: dict[str, str],
    cwd: Path,
    input_data: Path,
    workdir: Path,
    duration_s: float,
) -> tuple[float, float]:
    """Throughput (inferences per second) and the server's CPU microseconds per inference, over one run."""
    port = free_port()
    log = workdir / f"{system.replace(' ', '_')}-{port}.log"
    full = [*command, "serve", "--model-repository", str(workdir / "repo"), "--grpc-port", str(port)]
    full += ["--metrics-port", "0"]
    with log.open("wb") as sink:
        process = subprocess.Popen(full, stdout=sink, stderr=subprocess.STDOUT, env={**os.environ, **env}, cwd=cwd)
        try:
            wait_ready(port, process, log)
            cpu, count = _cpu_s(process.pid), _inferences(port)
            point = perf_analyzer(
                ROOT / ".cache" / "perf_analyzer" / "bin" / "perf_analyzer",
                system=system,
                model=MODEL,
                port=port,
                concurrency=CONCURRENCY,
                duration_s=duration_s,
                input_data=input_data,
                workdir=workdir,
            )
            cpu_us = (_cpu_s(process.pid) - cpu) * 1e6 / max(1, _inferences(port) - count)
        finally:
            process.terminate()
            process.wait(60)
    return point.measurement.throughput, cpu_us


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--duration-s", type=float, default=6.0, help="perf_analyzer time per point (3 windows)")
    parser.add_argument("--baseline", type=Path, help="another source tree to serve with sketches off")
    args = parser.parse_args()
    conduit = [sys.executable, "-c", "import sys; from clients.cli import main; sys.exit(main())"]
    systems: dict[str, tuple[list[str], dict[str, str], Path]] = {
        "sketches on": (conduit, {"CONDUIT_SKETCHES": "true"}, ROOT),
        "sketches off": (conduit, {"CONDUIT_SKETCHES": "false"}, ROOT),
    }
    if args.baseline is not None:
        # The other tree's packages first on the path; its `conduit serve` knows nothing of sketches.
        tree = args.baseline.resolve()
        systems["baseline (sketches off)"] = (conduit, {"PYTHONPATH": str(tree)}, tree)
    with tempfile.TemporaryDirectory(prefix="conduit-sketch-overhead-") as tmp:
        workdir = Path(tmp)
        input_data = workdir / "input.json"
        build(workdir / "repo", input_data)
        results: dict[str, list[float]] = {name: [] for name in systems}
        cpu: dict[str, list[float]] = {name: [] for name in systems}
        names = list(systems)
        for round_ in range(args.rounds):
            order = names if round_ % 2 == 0 else names[::-1]
            for name in order:
                command, env, cwd = systems[name]
                throughput, cpu_us = measure(
                    name, command, env=env, cwd=cwd, input_data=input_data, workdir=workdir, duration_s=args.duration_s
                )
                results[name].append(throughput)
                cpu[name].append(cpu_us)
                print(f"round {round_ + 1}: {name:<24} {throughput:8.0f} infer/s {cpu_us:7.1f} us CPU", flush=True)
    print(f"\nperf_analyzer, concurrency {CONCURRENCY}, batch 1, {args.rounds} interleaved rounds (median, min-max):")
    medians = {name: statistics.median(values) for name, values in results.items()}
    cpu_medians = {name: statistics.median(values) for name, values in cpu.items()}
    for name, values in results.items():
        print(
            f"  {name:<24} {medians[name]:8.0f} infer/s ({min(values):.0f}-{max(values):.0f}); "
            f"server CPU {cpu_medians[name]:.1f} us per inference ({min(cpu[name]):.1f}-{max(cpu[name]):.1f})"
        )
    off = "sketches off"
    print(f"  sketches on / off: throughput {medians['sketches on'] / medians[off]:.3f}, ", end="")
    print(f"CPU per inference {cpu_medians['sketches on'] / cpu_medians[off]:.3f}")
    if "baseline (sketches off)" in medians:
        base = "baseline (sketches off)"
        print(f"  sketches off / baseline: throughput {medians[off] / medians[base]:.3f}, ", end="")
        print(f"CPU per inference {cpu_medians[off] / cpu_medians[base]:.3f}")


if __name__ == "__main__":
    main()
