"""Stage gate for the compiled front: the minimal grpc.aio server against the native spike, under perf_analyzer.

Systems, one process each, measured in interleaved rounds (A B C D, A B C D, ...) at concurrency 1 and 16 with batch-1
requests of the ``logreg`` workload (32 FP32 features):

- A, ``minimal grpc.aio server``: benchmarks/serving/minimal_server.py, one onnxruntime call per request.
- B, ``spike (a) native no-op``: the Rust front alone, answering every request natively.
- C, ``spike (b) Python identity``: requests queued per model in Rust, one GIL acquisition per batch calling a tiny
  numpy op.
- D, ``spike (b) Python onnxruntime``: as C, but the hand-off runs the model's onnxruntime session on the batch, the
  same work per row as A.

Server CPU per request comes from /proc (every thread of the server process, by kind), perf_analyzer's own CPU beside
it. Rows per Python hand-off come from the spike's ModelStatistics (inference_count / execution_count).

Usage: benchmarks/native_spike/run [--rounds 3] [--duration-s 2] [--out benchmarks/native_spike/results.md]
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "serving"))

import grpc
import onnxruntime as ort
from breakdown import DEFAULT_PERF_ANALYZER, _children_cpu, _thread_cpu
from harness import free_port, perf_analyzer, running
from workload import build_repository, write_input_data

from inference_server.protocol import grpc_service_pb2 as pb
from inference_server.protocol import grpc_service_pb2_grpc as pb_grpc

HERE = Path(__file__).resolve().parent

MODEL = "logreg"
CONCURRENCIES = (1, 16)
GATE = 1.5
MINIMAL = "minimal grpc.aio server"
ONNX = "spike (b) Python onnxruntime"
THREAD_KINDS = ("main", "grpc", "front", "python", "other")


def _systems(repository: Path) -> dict[str, list[str]]:
    python = sys.executable
    spike = [python, str(HERE / "spike_server.py"), "--model-repository", str(repository)]
    return {
        MINIMAL: [python, str(HERE.parent / "serving" / "minimal_server.py"), "--model-repository", str(repository)],
        "spike (a) native no-op": [*spike, "--mode", "native"],
        "spike (b) Python identity": [*spike, "--mode", "identity"],
        ONNX: [*spike, "--mode", "onnx"],
    }


def _kind(tid: int, pid: int, name: str) -> str:
    if tid == pid:
        return "main"  # grpc.aio's event loop; idle in the spike, which blocks in Rust with the GIL released
    if name.startswith(("event_engine", "grpc")):
        return "grpc"
    if name.startswith("front"):
        return "front"  # tokio worker threads: gRPC, decoding, validation, encoding
    if name.startswith("py-"):
        return "python"  # the spike's per-model hand-off thread
    return "other"


@dataclass(frozen=True)
class Point:
    """One system at one concurrency in one round. CPU figures are µs per request."""

    throughput: float
    p50: float
    p99: float
    cpu: dict[str, float]
    client: float
    rows_per_handoff: float | None
    estimate_bias: float | None
    """Requests estimated (throughput × elapsed, the divisor of every CPU figure) over requests the server counted."""

    @property
    def server(self) -> float:
        return sum(self.cpu.values())


def measure(
    binary: Path, command: list[str], *, concurrency: int, duration_s: float, input_data: Path, workdir: Path
) -> Point:
    """Start the server, load it with perf_analyzer, and split the CPU its threads used per request."""
    port = free_port()
    with running([*command, "--port", str(port)], port, workdir / "server.log") as process:
        before, started, client_before = _thread_cpu(process.pid), time.monotonic(), _children_cpu()
        point = perf_analyzer(
            binary,
            system="spike",
            model=MODEL,
            port=port,
            concurrency=concurrency,
            duration_s=duration_s,
            input_data=input_data,
            workdir=workdir,
        )
        after, elapsed, client = _thread_cpu(process.pid), time.monotonic() - started, _children_cpu() - client_before
        counts = _counts(port)
    # perf_analyzer loads the server at about this rate from its warm-up to its last window (as breakdown.py does).
    requests = point.measurement.throughput * elapsed
    spent = dict.fromkeys(THREAD_KINDS, 0.0)
    for tid, (name, seconds) in after.items():
        spent[_kind(tid, process.pid, name)] += seconds - before.get(tid, (name, 0.0))[1]
    m = point.measurement
    return Point(
        m.throughput,
        m.p50_us,
        m.p99_us,
        {kind: s / requests * 1e6 for kind, s in spent.items()},
        client / requests * 1e6,
        counts[0] / counts[1] if counts and counts[1] else None,
        requests / counts[0] if counts and counts[0] else None,
    )


def _counts(port: int) -> tuple[int, int] | None:
    """(requests, executions) the server counted, from ModelStatistics; ``None`` where it has none (minimal)."""
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        try:
            answer = pb_grpc.GRPCInferenceServiceStub(channel).ModelStatistics(  # type: ignore[no-untyped-call]
                pb.ModelStatisticsRequest(name=MODEL), timeout=10
            )
        except grpc.RpcError:
            return None
    stats = answer.model_stats[0]
    return stats.inference_count, stats.execution_count


def _median(points: list[Point]) -> Point:
    rows = [p.rows_per_handoff for p in points if p.rows_per_handoff is not None]
    bias = [p.estimate_bias for p in points if p.estimate_bias is not None]
    return Point(
        statistics.median(p.throughput for p in points),
        statistics.median(p.p50 for p in points),
        statistics.median(p.p99 for p in points),
        {k: statistics.median(p.cpu[k] for p in points) for k in THREAD_KINDS},
        statistics.median(p.client for p in points),
        statistics.median(rows) if rows else None,
        statistics.median(bias) if bias else None,
    )


def _report(results: dict[tuple[str, int], list[Point]], args: argparse.Namespace, minutes: float, load: str) -> str:
    medians = {key: _median(points) for key, points in results.items()}
    systems = list(dict.fromkeys(system for system, _ in results))
    table = [
        "| system | concurrency | throughput (infer/s) | vs minimal | p50 (µs) | p99 (µs) | server CPU / request (µs) "
        "| main thread | gRPC core threads | tokio front | Python hand-off thread | other threads | perf_analyzer "
        "| rows per Python hand-off | requests estimated / counted | throughput per round |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for concurrency in CONCURRENCIES:
        base = medians[(MINIMAL, concurrency)].throughput
        for system in systems:
            p = medians[(system, concurrency)]
            c = p.cpu
            rows = "—" if system == MINIMAL or p.rows_per_handoff is None else f"{p.rows_per_handoff:.2f}"
            if system == "spike (a) native no-op":
                rows = "— (no hand-off)"
            bias = "—" if p.estimate_bias is None else f"{p.estimate_bias:.2f}"
            per_round = ", ".join(f"{q.throughput:,.0f}" for q in results[(system, concurrency)])
            table.append(
                f"| {system} | {concurrency} | {p.throughput:,.0f} | {p.throughput / base:.2f}× | {p.p50:,.0f} "
                f"| {p.p99:,.0f} | {p.server:.0f} | {c['main']:.0f} | {c['grpc']:.0f} | {c['front']:.0f} "
                f"| {c['python']:.0f} | {c['other']:.0f} | {p.client:.0f} | {rows} | {bias} | {per_round} |"
            )
    gate_rows = []
    for system in systems[1:]:
        ratio = medians[(system, 16)].throughput / medians[(MINIMAL, 16)].throughput
        verdict = "**met**" if ratio >= GATE else "**missed**"
        gate_rows.append(f"| {system} | {ratio:.2f}× | {verdict} |")
    command = "benchmarks/native_spike/run " + " ".join(
        f"--{k.replace('_', '-')} {v}" for k, v in (("rounds", args.rounds), ("duration_s", args.duration_s))
    )
    return "\n".join(
        [
            "# Native front spike: stage gate",
            "",
            f"`{command}` — {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC, {minutes:.1f} minutes.",
            "",
            "## Machine",
            "",
            f"- {os.cpu_count()} usable cores, shared with other work; load average {load}",
            f"- Linux {platform.release()}; Python {platform.python_version()}; onnxruntime {ort.__version__}",
            "- perf_analyzer runs on the same 2 cores as the server: its own CPU per request (column *perf_analyzer*; "
            "about 100 µs in benchmarks/serving/breakdown.md) comes out of the same budget, and other work shares "
            "the cores too, so every throughput here is a shared-machine figure, not a server's ceiling. Server CPU "
            "per request is the steadier comparison.",
            "",
            "## Workload",
            "",
            f"`{MODEL}` (LogisticRegression, 32 FP32 features, benchmarks/serving/workload.py), batch-1 requests from "
            "held-out rows, unary gRPC, perf_analyzer with 3 windows totalling "
            f"{args.duration_s:g} s after a warm-up of 100 × concurrency requests, one fresh server process per point. "
            f"{args.rounds} rounds; each round runs every system at concurrency 1, then every system at 16, in the "
            "order of the table. Figures are medians over the rounds; CPU is µs per request from /proc "
            "(utime + stime of every thread of the server process, from just after it is ready until perf_analyzer "
            "exits) divided by throughput × elapsed time, as benchmarks/serving/breakdown.py does; *requests "
            "estimated / counted* checks that divisor against the spike's own request count (above 1: CPU per "
            "request is understated by that factor).",
            "",
            f"## Stage gate: spike (b) throughput at concurrency 16 ≥ {GATE}× the minimal grpc.aio server's",
            "",
            "| system | throughput at c=16 vs minimal | verdict |",
            "|---|---:|---|",
            *gate_rows,
            "",
            "## Every point",
            "",
            *table,
            "",
        ]
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    parser.add_argument("--duration-s", type=float, default=2.0, help="perf_analyzer's measurement per point")
    parser.add_argument("--out", type=Path, default=HERE / "results.md")
    parser.add_argument("--perf-analyzer", type=Path, default=DEFAULT_PERF_ANALYZER)
    args = parser.parse_args()
    began = time.monotonic()
    load_before = ", ".join(f"{v:.2f}" for v in os.getloadavg())
    results: dict[tuple[str, int], list[Point]] = {}
    with tempfile.TemporaryDirectory(prefix="conduit-native-spike-") as tmp:
        workdir = Path(tmp)
        repository = workdir / "models"
        rows = build_repository(repository)
        input_data = write_input_data(rows, workdir / "input_data.json")
        systems = _systems(repository)
        for round_ in range(args.rounds):
            for concurrency in CONCURRENCIES:
                for system, command in systems.items():
                    print(f"round {round_ + 1}: {system} c={concurrency}", file=sys.stderr, flush=True)
                    point = measure(
                        args.perf_analyzer,
                        command,
                        concurrency=concurrency,
                        duration_s=args.duration_s,
                        input_data=input_data,
                        workdir=workdir,
                    )
                    results.setdefault((system, concurrency), []).append(point)
    load = f"{load_before} at start, {', '.join(f'{v:.2f}' for v in os.getloadavg())} at the end"
    args.out.write_text(_report(results, args, (time.monotonic() - began) / 60, load))
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
