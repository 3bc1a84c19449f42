"""Side by side in one run: ``conduit serve`` behind each of its two gRPC fronts, Seldon MLServer and the two floors,
measured with perf_analyzer and with ``conduit bench``.

Floors: (1) onnxruntime called in-process, single-threaded (no server can beat it); (2) the smallest honest Open
Inference Protocol server (``minimal_server.py``: grpc.aio, one onnxruntime call per request on the event loop).
Conduit serves once with ``--front python`` (grpc.aio) and once with ``--front native`` (tonic, the default); the
native front is the Conduit of every comparison but the fronts' own. MLServer runs in its own virtual environment, in
every configuration of ``mlserver.CONFIGURATIONS``; its best figure of each kind is the one compared. Every server is
a separate process, started alone, loaded at concurrency 1, 4, 16 and 64 with batch-1 unary requests built from
held-out rows of the training distribution. perf_analyzer needs ModelConfig, which MLServer does not serve, so MLServer
is measured with ``conduit bench`` only; the python front with perf_analyzer only; the minimal server and the native
front with both, in ``--rounds`` rounds (3) that alternate the three, whose median is reported: on a machine of two
shared cores one measurement of a point varies by a fifth or more, the margins of the bar are smaller. Around each
perf_analyzer run the server's CPU time (from /proc) and, for Conduit, its ModelStatistics counters are read: server
CPU per request and rows per model execution, the figures of the native front's targets. Then the batch-size curve
(the native front, concurrency 1, 1 to 256 rows per request) and the load client's own ceiling against a server that
does nothing.

Usage: benchmarks/compare [--duration-s 3] [--rounds 3] [--out benchmarks/serving/results.md] [--skip-mlserver]
"""

from __future__ import annotations

import argparse
import datetime
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import mlserver
import numpy as np
import onnxruntime as ort
from harness import Point, ServerFailed, free_port, model_counts, perf_analyzer, process_cpu_s, running
from measure import CONDUIT, client_cpu_per_request, conduit_bench
from report import (
    CONDUIT_NATIVE,
    CONDUIT_PYTHON,
    CONDUIT_SERVE,
    MINIMAL,
    Benched,
    CurvePoint,
    bar,
    bench_table,
    curve_plot,
    curve_table,
    fmt,
    native_front_targets,
    perf_analyzer_table,
    server_table,
    versus_table,
)
from workload import Measurement, build_repository, in_process_floor, model_names, write_input_data

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
DEFAULT_PERF_ANALYZER = ROOT / ".cache" / "perf_analyzer" / "bin" / "perf_analyzer"
DEFAULT_MLSERVER_VENV = ROOT / ".cache" / "mlserver" / "venv"
BATCHES = (1, 2, 4, 8, 16, 32, 64, 128, 256)
STOCK = {c.label for c in mlserver.CONFIGURATIONS if c.stock}


def machine() -> list[str]:
    """Lines describing where the figures come from."""
    cpu = "unknown"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    usable = len(os.sched_getaffinity(0))
    memory_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return [
        f"- date: {datetime.datetime.now(datetime.UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- CPU: {cpu}; {usable} usable cores (of {os.cpu_count()}), {memory_gib:.0f} GiB, no accelerator",
        f"- {platform.system()} {platform.release()}; Python {platform.python_version()}; "
        f"onnxruntime {ort.__version__}",
        "- client and server share the machine's cores, as they do in every row",
    ]


def load_average() -> str:
    """The 1, 5 and 15 minute load averages: other work on the machine skews every figure."""
    return ", ".join(f"{v:.2f}" for v in os.getloadavg())


@dataclass
class Run:
    """Everything one comparison gathers."""

    args: argparse.Namespace
    workdir: Path
    rows: np.ndarray
    """Held-out rows the models never saw: the requests, and the in-process floor's inputs."""
    input_data: Path
    perf_analyzer_ok: bool = True
    floors: list[Measurement] = field(default_factory=list)
    points: list[Point] = field(default_factory=list)
    benched: list[Benched] = field(default_factory=list)
    curve: list[CurvePoint] = field(default_factory=list)
    client: list[tuple[int, float, float]] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)

    def notice(self, text: str) -> None:
        """Say now why something was not measured, and keep it for the report."""
        print(text, file=sys.stderr, flush=True)
        self.notices.append(text)

    def with_perf_analyzer(self, system: str, model: str, port: int, pid: int) -> None:
        """Each level with perf_analyzer, and around each run the server's CPU (process ``pid`` and its children)
        and its ModelStatistics counters."""
        for concurrency in self.args.levels:
            counts_before = model_counts(port, model)
            cpu_before, started = process_cpu_s(pid), time.monotonic()
            try:
                point = perf_analyzer(
                    self.args.perf_analyzer,
                    system=system,
                    model=model,
                    port=port,
                    concurrency=concurrency,
                    duration_s=self.args.duration_s,
                    input_data=self.input_data,
                    workdir=self.workdir,
                )
            except RuntimeError as exc:
                self.notice(f"perf_analyzer, {system}, {model}, c={concurrency}: {exc}")
                continue
            cpu, elapsed = process_cpu_s(pid) - cpu_before, time.monotonic() - started
            counts_after = model_counts(port, model)
            m = point.measurement
            rows_per_execution = None
            if counts_before is not None and counts_after is not None:
                counted = counts_after - counts_before
                requests = float(counted.requests)
                rows_per_execution = counted.rows / counted.executions if counted.executions else None
            else:
                # No statistics (the minimal server): perf_analyzer loads the server at about this rate from its
                # warm-up to its last window.
                requests = m.throughput * elapsed
            point = replace(
                point,
                server_cpu_us=cpu / requests * 1e6 if requests else math.nan,
                rows_per_execution=rows_per_execution,
            )
            self.points.append(point)
            print(
                f"  perf_analyzer  {model:7} c={concurrency:<3} {m.throughput:8,.0f}/s  "
                f"p50 {m.p50_us:8.0f}  p99 {m.p99_us:8.0f} µs  server CPU {point.server_cpu_us:6.0f} µs/request"
                + ("" if rows_per_execution is None else f"  {rows_per_execution:5.2f} rows/execution"),
                flush=True,
            )

    def with_bench(self, system: str, model: str, port: int) -> None:
        out = self.workdir / f"bench-{_file_name(system)}-{model}.json"
        try:
            results = conduit_bench(
                system=system,
                model=model,
                port=port,
                levels=self.args.levels,
                duration_s=self.args.duration_s,
                warmup_s=self.args.warmup_s,
                input_data=self.input_data,
                out=out,
            )
        except RuntimeError as exc:
            self.notice(f"conduit bench, {system}, {model}: {exc}")
            return
        for m, errors in results:
            self.benched.append(Benched(m, errors))
            print(
                f"  conduit bench  {model:7} c={m.concurrency:<3} {m.throughput:8,.0f}/s  p50 {m.p50_us:8.0f}  "
                f"p99 {m.p99_us:8.0f} µs  errors {sum(errors.values())}",
                flush=True,
            )


def _measure_floors(run: Run, repository: Path) -> None:
    for model in model_names(repository):
        m = in_process_floor(model, repository / model / "1" / "model.onnx", run.rows, run.args.duration_s)
        run.floors.append(m)
        print(f"{m.system:26} {model:8} {m.throughput:9,.0f} infer/s  p50 {m.p50_us:8.1f} µs", flush=True)


def _median_points(points: list[Point]) -> list[Point]:
    """One point per system, model and concurrency: the median of each figure over the rounds, and the largest
    window spread seen."""
    grouped: dict[tuple[str, str, int], list[Point]] = {}
    for point in points:
        m = point.measurement
        grouped.setdefault((m.system, m.model, m.concurrency), []).append(point)
    return [
        Point(
            _median([p.measurement for p in group]),
            max(p.spread for p in group),
            statistics.median(p.server_cpu_us for p in group),
            _median_or_none([p.rows_per_execution for p in group]),
        )
        for group in grouped.values()
    ]


def _median_or_none(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return statistics.median(known) if known else None


def _median_benched(benched: list[Benched]) -> list[Benched]:
    """One level per system, model and concurrency: the median of each figure, the errors of every round added."""
    grouped: dict[tuple[str, str, int], list[Benched]] = {}
    for b in benched:
        m = b.measurement
        grouped.setdefault((m.system, m.model, m.concurrency), []).append(b)
    merged = []
    for group in grouped.values():
        errors: dict[str, int] = {}
        for b in group:
            for status, count in b.errors.items():
                errors[status] = errors.get(status, 0) + count
        merged.append(Benched(_median([b.measurement for b in group]), errors))
    return merged


def _median(measurements: list[Measurement]) -> Measurement:
    first = measurements[0]
    return Measurement(
        first.system,
        first.model,
        first.concurrency,
        statistics.median(m.throughput for m in measurements),
        statistics.median(m.p50_us for m in measurements),
        statistics.median(m.p99_us for m in measurements),
    )


def _measure_servers(run: Run, repository: Path) -> None:
    """The minimal server and Conduit's two fronts, each point measured in ``--rounds`` rounds that alternate the
    servers (so a slow spell of the machine falls on all of them), reported as medians; the batch curve once."""
    for number in range(run.args.rounds):
        print(f"round {number + 1} of {run.args.rounds}", flush=True)
        _measure_servers_once(run, repository, curve=number == 0)
    run.points = _median_points(run.points)
    run.benched = _median_benched(run.benched)


def _measure_servers_once(run: Run, repository: Path, *, curve: bool) -> None:
    models = model_names(repository)
    conduit = [str(CONDUIT), "serve", "--model-repository", str(repository), "--host", "127.0.0.1"]
    servers = {
        MINIMAL: [sys.executable, str(HERE / "minimal_server.py"), "--model-repository", str(repository)],
        CONDUIT_PYTHON: [*conduit, "--front", "python"],
        CONDUIT_NATIVE: [*conduit, "--front", "native"],
    }
    for system, base in servers.items():
        port = free_port()
        command = (
            [*base, "--host", "127.0.0.1", "--port", str(port)]
            if system == MINIMAL
            else [*base, "--grpc-port", str(port), "--metrics-port", str(free_port())]
        )
        print(f"{system}", flush=True)
        try:
            with running(command, port, run.workdir / f"{_file_name(system)}.log") as process:
                for model in models:
                    if run.perf_analyzer_ok:
                        run.with_perf_analyzer(system, model, port, process.pid)
                    # The python front with perf_analyzer alone: its targets are perf_analyzer's, and conduit bench
                    # on a third server would take the full run past a quarter of an hour.
                    if system != CONDUIT_PYTHON:
                        run.with_bench(system, model, port)
                if system == CONDUIT_SERVE and curve:
                    _measure_curve(run, repository, port)
        except ServerFailed as exc:
            run.notice(f"{system} not measured: {exc}")


def _file_name(system: str) -> str:
    """A system's label as a file name."""
    return "".join(c if c.isalnum() or c in "-." else "_" for c in system)


def _measure_curve(run: Run, repository: Path, port: int) -> None:
    for model in model_names(repository):
        for batch in BATCHES:
            out = run.workdir / f"curve-{model}-{batch}.json"
            try:
                [(served, errors)] = conduit_bench(
                    system=CONDUIT_SERVE,
                    model=model,
                    port=port,
                    levels=[1],
                    duration_s=run.args.curve_duration_s,
                    warmup_s=0.3,
                    input_data=run.input_data,
                    out=out,
                    batch=batch,
                )
            except RuntimeError as exc:
                run.notice(f"batch curve, {model}, {batch} rows: {exc}")
                continue
            if errors:
                run.notice(f"batch curve, {model}, {batch} rows: errors {errors}")
            alone = in_process_floor(model, repository / model / "1" / "model.onnx", run.rows, 0.5, batch=batch)
            run.curve.append(CurvePoint(model, batch, served, alone))
            print(
                f"  batch {batch:3} {model:7} {1e6 / served.throughput:8.2f} µs/row served, "
                f"{1e6 / alone.throughput:8.2f} µs/row in-process",
                flush=True,
            )


def _measure_client(run: Run) -> None:
    port = free_port()
    out = run.workdir / "bench-noop.json"
    command = [sys.executable, str(HERE / "noop_server.py"), "--port", str(port)]
    print("no-op server (the load client's ceiling)", flush=True)
    try:
        with running(command, port, run.workdir / "noop.log"):
            conduit_bench(
                system="no-op server",
                model="noop",
                port=port,
                levels=run.args.levels,
                duration_s=run.args.duration_s,
                warmup_s=run.args.warmup_s,
                input_data=run.input_data,
                out=out,
            )
        run.client = client_cpu_per_request(out)
    except (ServerFailed, RuntimeError) as exc:
        run.notice(f"client ceiling not measured: {exc}")


def _measure_mlserver(run: Run, repository: Path, joblib_dir: Path) -> None:
    try:
        executable = mlserver.install(run.args.mlserver_venv)
    except subprocess.CalledProcessError as exc:
        run.notice(f"MLServer not measured: installing it failed ({exc})")
        return
    models = {
        name: (joblib_dir / f"{name}.joblib", repository / name / "1" / "model.onnx")
        for name in model_names(repository)
    }
    for configuration in mlserver.CONFIGURATIONS:
        port = free_port()
        root = mlserver.write_repository(
            run.workdir / "mlserver" / configuration.runtime,
            configuration,
            models,
            grpc_port=port,
            http_port=free_port(),
            metrics_port=free_port(),
        )
        print(configuration.label, flush=True)
        log = run.workdir / f"mlserver-{configuration.name.replace(' ', '_').replace('/', '_').replace(',', '')}.log"
        try:
            with running([str(executable), "start", str(root)], port, log):
                time.sleep(1.0)  # MLServer answers ready before its inference workers have all started
                for model in models:
                    run.with_bench(configuration.label, model, port)
        except ServerFailed as exc:
            run.notice(f"{configuration.label} not measured: {exc}")


def report(run: Run, load_at_start: str) -> str:
    """The markdown report."""
    a = run.args
    lines = [
        "# Serving comparison",
        "",
        "`benchmarks/compare` — batch-1 requests of 32 FP32 features, built from held-out rows; models: `logreg`",
        "(LogisticRegression) and `forest` (RandomForestClassifier, 100 trees, depth 8), exported with skl2onnx;",
        "onnxruntime with one intra-op and one inter-op thread everywhere. Each point: "
        f"{a.warmup_s:g} s of warm-up, then {a.duration_s:g} s measured (perf_analyzer: three windows totalling "
        f"{a.duration_s:g} s). Conduit and the minimal server: the median of {a.rounds} rounds that alternate them "
        "(MLServer and the floors: one). Latencies are client-side, in µs. Conduit is measured behind each of its",
        f"two gRPC fronts: `{CONDUIT_NATIVE}` (`--front native`, the default: tonic, calls queued for the event",
        f"loop to take in batches) and `{CONDUIT_PYTHON}` (`--front python`: grpc.aio); every comparison outside",
        "the fronts' own uses the native front. The python front is measured with perf_analyzer alone.",
        "",
        "## Machine",
        "",
        *machine(),
        f"- load average: {load_at_start} at start, {load_average()} at the end",
        "",
        "## The bar",
        "",
        *bar(run.points, run.benched, run.curve, STOCK),
        "",
        "## Native front targets",
        "",
        "perf_analyzer's figures (medians over the rounds). Server CPU: the user and system time of the server's",
        "process and its children, from /proc, over the whole perf_analyzer run (warm-up included), per request",
        "completed in it: for Conduit the requests its ModelStatistics counted, for the minimal server (which has no",
        "statistics) throughput × the run's length. Rows per model execution: ModelStatistics' inference_count over",
        "execution_count, the run's deltas.",
        "",
        *native_front_targets(run.points),
        "",
        *server_table(run.points),
        "",
        "## Conduit against MLServer's best configuration (conduit bench)",
        "",
        "MLServer's best of each figure over its configurations with its own scikit-learn runtime (every row named",
        "`MLServer … (sklearn, …)` below), each figure from whichever configuration did best at that point.",
        "",
        *versus_table(run.benched, STOCK),
        "",
        "## Every system, measured with perf_analyzer",
        "",
        *perf_analyzer_table(run.points),
        "",
        "## Every system, measured with conduit bench",
        "",
        *bench_table(run.benched),
        "",
        "## Floors",
        "",
        "| system | model | throughput (infer/s) | p50 (µs) | p99 (µs) |",
        "|---|---|---:|---:|---:|",
        *(
            f"| {m.system} | {m.model} | {fmt(m.throughput)} | {fmt(m.p50_us, 1)} | {fmt(m.p99_us, 1)} |"
            for m in run.floors
        ),
        "",
        "## Per-row cost against the request's batch size",
        "",
        f"`{CONDUIT_SERVE}` at concurrency 1, one round, against onnxruntime in-process on the same rows.",
        "",
        "![per-row cost](batch_curve.png)",
        "",
        *curve_table(run.curve),
        "",
        "## The load client's own ceiling",
        "",
        "`conduit bench` against `noop_server.py`, which answers every request with the same bytes. Client CPU is",
        "the time `conduit bench` itself used (all threads) per request: one core's worth of it is its ceiling.",
        "",
        "| concurrency | requests per second | client CPU per request (µs) | one core's ceiling (requests/s) |",
        "|---:|---:|---:|---:|",
        *(
            f"| {c} | {fmt(rps)} | {fmt(cpu)} | {fmt(1e6 / cpu if cpu and not math.isnan(cpu) else math.nan)} |"
            for c, rps, cpu in run.client
        ),
    ]
    if run.notices:
        lines += ["", "## Notices", "", *(f"- {n}" for n in run.notices)]
    return "\n".join(lines) + "\n"


def main() -> int:
    """Run the comparison, print the report and write it to ``--out``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration-s", type=float, default=3.0, help="seconds measured per point (default 3)")
    parser.add_argument("--warmup-s", type=float, default=1.0, help="conduit bench warm-up per point (default 1)")
    parser.add_argument(
        "--curve-duration-s", type=float, default=1.5, help="seconds per batch-curve point (default 1.5)"
    )
    parser.add_argument("--concurrency", default="1,4,16,64", help="comma-separated levels (default 1,4,16,64)")
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="rounds of Conduit's fronts and the minimal server, medians reported (default 3)",
    )
    parser.add_argument("--out", type=Path, default=HERE / "results.md", help="markdown report (default: %(default)s)")
    parser.add_argument("--perf-analyzer", type=Path, default=DEFAULT_PERF_ANALYZER, help="perf_analyzer to run")
    parser.add_argument("--mlserver-venv", type=Path, default=DEFAULT_MLSERVER_VENV, help="MLServer's own venv")
    parser.add_argument("--skip-mlserver", action="store_true", help="measure Conduit and the floors only")
    parser.add_argument("--workdir", type=Path, default=None, help="keep models, inputs and logs here (default: temp)")
    args = parser.parse_args()
    args.levels = [int(c) for c in args.concurrency.split(",")]
    load_at_start = load_average()
    started = time.monotonic()

    with tempfile.TemporaryDirectory(prefix="conduit-compare-") as tmp:
        workdir = args.workdir or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        repository, joblib_dir = workdir / "models", workdir / "joblib"
        print(f"training and exporting models into {repository}", flush=True)
        rows = build_repository(repository, joblib_dir=joblib_dir)
        run = Run(args, workdir, rows, write_input_data(rows, workdir / "input_data.json"))
        if not args.perf_analyzer.exists():
            run.perf_analyzer_ok = False
            run.notice(f"perf_analyzer not found at {args.perf_analyzer} (`make perf-analyzer` installs it)")
        _measure_floors(run, repository)
        _measure_servers(run, repository)
        _measure_client(run)
        if not args.skip_mlserver:
            _measure_mlserver(run, repository, joblib_dir)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        if run.curve:
            curve_plot(run.curve, args.out.parent / "batch_curve.png")
        text = report(run, load_at_start)
    text += f"\nThe whole comparison took {(time.monotonic() - started) / 60:.1f} minutes.\n"
    print("\n" + text)
    args.out.write_text(text)
    print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
