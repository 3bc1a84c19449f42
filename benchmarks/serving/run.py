"""Serving benchmark: ``conduit serve`` against two floors, measured with Triton's perf_analyzer.

Floors: (1) onnxruntime called in-process, single-threaded, batch 1 (no server can beat it); (2) the smallest honest
Open Inference Protocol server (``minimal_server.py``: grpc.aio, one onnxruntime call per request on the event loop).
Every server is a separate process, started alone, loaded by perf_analyzer at concurrency 1, 4 and 16 with batch-1
unary gRPC requests built from held-out rows of the training distribution.

Usage: .venv/bin/python benchmarks/serving/run.py [--duration-s 5] [--out benchmarks/serving/results.md]
"""

from __future__ import annotations

import argparse
import datetime
import math
import os
import platform
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import onnxruntime as ort
from harness import Point, ServerFailed, free_port, perf_analyzer, running
from workload import Measurement, build_repository, in_process_floor, model_names, write_input_data

ROOT = Path(__file__).resolve().parents[2]
INSTALLER = ROOT / "benchmarks" / "perf_analyzer" / "install.sh"
DEFAULT_PERF_ANALYZER = ROOT / ".cache" / "perf_analyzer" / "bin" / "perf_analyzer"
CONDUIT = Path(sys.executable).parent / "conduit"
HERE = Path(__file__).resolve().parent

IN_PROCESS = "onnxruntime in-process"
MINIMAL = "minimal grpc.aio server"
CONDUIT_SERVE = "conduit serve"


def ensure_perf_analyzer(binary: Path) -> str | None:
    """Install the default perf_analyzer if it is missing. Returns why perf_analyzer is unavailable, or None."""
    if not binary.exists() and binary == DEFAULT_PERF_ANALYZER:
        print(f"perf_analyzer not installed; running {INSTALLER.relative_to(ROOT)}", flush=True)
        if subprocess.run([str(INSTALLER), str(binary.parent.parent)], check=False).returncode != 0:
            return f"{INSTALLER.relative_to(ROOT)} failed"
    if not binary.exists():
        return f"{binary} does not exist"
    return None


def server_commands(repository: Path, port: int, metrics_port: int) -> dict[str, list[str]]:
    """The command line of each server under test."""
    return {
        MINIMAL: [
            *(sys.executable, str(HERE / "minimal_server.py"), "--model-repository", str(repository)),
            *("--host", "127.0.0.1", "--port", str(port)),
        ],
        CONDUIT_SERVE: [
            *(str(CONDUIT), "serve", "--model-repository", str(repository), "--host", "127.0.0.1"),
            *("--grpc-port", str(port), "--metrics-port", str(metrics_port)),
        ],
    }


def machine() -> list[str]:
    """Lines describing where the figures come from."""
    cpu = "unknown"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    usable = len(os.sched_getaffinity(0))
    return [
        f"- date: {datetime.datetime.now(datetime.UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- CPU: {cpu}; nproc: {usable} (of {os.cpu_count()})",
        f"- Python {platform.python_version()} ({platform.python_implementation()}), onnxruntime {ort.__version__}",
        f"- kernel: {platform.release()}",
    ]


def load_average() -> str:
    """The 1, 5 and 15 minute load averages: other work on the machine skews every figure."""
    return ", ".join(f"{v:.2f}" for v in os.getloadavg())


def fmt(value: float, digits: int = 0) -> str:
    """A number for the table; blank when unknown."""
    return "" if math.isnan(value) else f"{value:,.{digits}f}"


def table(points: list[Point]) -> list[str]:
    """The results as a markdown table, with ratios against the minimal server at the same model and concurrency."""
    measured = [p.measurement for p in points]
    minimal = {(m.model, m.concurrency): m for m in measured if m.system == MINIMAL}
    lines = [
        "| system | model | concurrency | throughput (infer/s) | p50 (µs) | p99 (µs) "
        "| p50 vs minimal | throughput vs minimal | window spread |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for p in points:
        m = p.measurement
        ref = minimal.get((m.model, m.concurrency))
        p50_ratio = m.p50_us / ref.p50_us if ref else math.nan
        tput_ratio = m.throughput / ref.throughput if ref else math.nan
        spread = "" if math.isnan(p.spread) else f"{p.spread:.0%}"
        lines.append(
            f"| {m.system} | {m.model} | {m.concurrency} | {fmt(m.throughput)} | {fmt(m.p50_us, 1)} "
            f"| {fmt(m.p99_us, 1)} | {fmt(p50_ratio, 2)} | {fmt(tput_ratio, 2)} | {spread} |"
        )
    return lines


@dataclass
class Session:
    """What every perf_analyzer point of one run shares, and the notices gathered on the way."""

    perf_analyzer: Path
    duration_s: float
    input_data: Path
    workdir: Path
    notices: list[str] = field(default_factory=list)

    def notice(self, text: str) -> None:
        """Say now why something was not measured, and keep it for the report."""
        print(text, file=sys.stderr, flush=True)
        self.notices.append(text)

    def measure(self, system: str, model: str, port: int, concurrency: int) -> Point | None:
        """One perf_analyzer point against a running server, printed as it lands; None (and a notice) on failure."""
        try:
            point = perf_analyzer(
                self.perf_analyzer,
                system=system,
                model=model,
                port=port,
                concurrency=concurrency,
                duration_s=self.duration_s,
                input_data=self.input_data,
                workdir=self.workdir,
            )
        except RuntimeError as exc:
            self.notice(f"{system}, {model}, concurrency {concurrency}: {exc}")
            return None
        m = point.measurement
        print(
            f"{system:26} {model:8} c={concurrency:<3} {m.throughput:9,.0f} infer/s  "
            f"p50 {m.p50_us:8.1f} µs  p99 {m.p99_us:8.1f} µs",
            flush=True,
        )
        return point


def main() -> int:
    """Run the benchmark, print the report and write it to ``--out``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration-s", type=float, default=5.0, help="seconds measured per point (default 5)")
    parser.add_argument("--out", type=Path, default=HERE / "results.md", help="markdown report (default: %(default)s)")
    parser.add_argument("--concurrency", default="1,4,16", help="comma-separated concurrency levels (default 1,4,16)")
    parser.add_argument("--perf-analyzer", type=Path, default=DEFAULT_PERF_ANALYZER, help="perf_analyzer to run")
    parser.add_argument("--workdir", type=Path, default=None, help="keep models, inputs and logs here (default: temp)")
    args = parser.parse_args()
    levels = [int(c) for c in args.concurrency.split(",")]
    load_at_start = load_average()

    with tempfile.TemporaryDirectory(prefix="conduit-bench-") as tmp:
        workdir = args.workdir or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        repository = workdir / "models"
        print(f"training and exporting models into {repository}", flush=True)
        rows = build_repository(repository)
        input_data = write_input_data(rows, workdir / "input_data.json")
        session = Session(args.perf_analyzer, args.duration_s, input_data, workdir)
        models = model_names(repository)

        points: list[Point] = []
        for model in models:
            m: Measurement = in_process_floor(model, repository / model / "1" / "model.onnx", rows, args.duration_s)
            print(f"{m.system:26} {model:8} c=1   {m.throughput:9,.0f} infer/s  p50 {m.p50_us:8.1f} µs", flush=True)
            points.append(Point(m, math.nan))

        problem = ensure_perf_analyzer(args.perf_analyzer)
        if problem:
            session.notice(f"servers not measured: {problem}")
        for system in () if problem else (MINIMAL, CONDUIT_SERVE):
            if system == CONDUIT_SERVE and not CONDUIT.exists():
                session.notice(f"{CONDUIT_SERVE} skipped: {CONDUIT} does not exist yet; re-run once it does")
                continue
            port, metrics_port = free_port(), free_port()
            command = server_commands(repository, port, metrics_port)[system]
            log = workdir / f"{system.replace(' ', '_')}.log"
            try:
                with running(command, port, log):
                    for model in models:
                        for concurrency in levels:
                            point = session.measure(system, model, port, concurrency)
                            points += [point] if point else []
            except ServerFailed as exc:
                session.notice(f"{system} not measured: {exc}")

    report = [
        "# Serving benchmark",
        "",
        "`.venv/bin/python benchmarks/serving/run.py` — batch-1 requests of 32 FP32 features; models: `logreg`",
        "(LogisticRegression) and `forest` (RandomForestClassifier, 100 trees, depth 8), both exported with skl2onnx,",
        "onnxruntime with one intra-op and one inter-op thread everywhere. Servers are measured with perf_analyzer",
        f"(unary gRPC, `--input-data` with held-out rows, three windows totalling {args.duration_s:g} s per point);",
        "latencies are perf_analyzer's client-side figures. The in-process row times `session.run` alone,",
        "single-threaded. Ratios compare with the minimal server at the same model and concurrency. Window spread is",
        "max/min - 1 of the throughput of the three windows: a large spread means a noisy machine, not a slow server.",
        "",
        "## Machine",
        "",
        *machine(),
        f"- load average: {load_at_start} at start, {load_average()} at the end",
        "",
        "## Results",
        "",
        *table(points),
    ]
    if session.notices:
        report += ["", "## Notices", "", *(f"- {n}" for n in session.notices)]
    text = "\n".join(report) + "\n"
    print("\n" + text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
