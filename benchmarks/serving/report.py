"""The comparison's report: tables, the performance bar checked line by line, and the batch-size curve."""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from pathlib import Path

from harness import Point
from workload import Measurement

MINIMAL = "minimal grpc.aio server"
CONDUIT_PYTHON = "conduit serve (python front)"
CONDUIT_NATIVE = "conduit serve (native front)"
CONDUIT_SERVE = CONDUIT_NATIVE
"""The Conduit every comparison but the fronts' own uses: ``conduit serve`` as it serves by default."""
IN_PROCESS = "onnxruntime in-process"

# The native front's targets: throughput at c=16 at least N× the minimal server's, p50 at c=1 at most this fraction
# of the minimal server's, rows per model execution at c=16 above N (logreg, whose calls are cheap enough to queue up),
# server CPU per request at c=16 at most this fraction of the python front's.
NATIVE_THROUGHPUT_TIMES = 2.0
NATIVE_P50_FRACTION = 0.7
NATIVE_ROWS_PER_EXECUTION = {"logreg": 4.0}
NATIVE_CPU_FRACTION = 1 / 3

# The bar against MLServer's best configuration, per model: (p50 at c=1 at least N× lower, throughput at c=16 at
# least N× higher, p99 at c=16 at most this fraction).
VERSUS_MLSERVER = {"logreg": (2.0, 2.5, 0.5), "forest": (10.0, 8.0, 0.2)}


@dataclass(frozen=True)
class Benched:
    """A ``conduit bench`` level: the figures and the errors by gRPC status."""

    measurement: Measurement
    errors: dict[str, int]


@dataclass(frozen=True)
class CurvePoint:
    """One request batch size: Conduit's figures at concurrency 1, and onnxruntime's in-process cost."""

    model: str
    batch: int
    served: Measurement
    in_process: Measurement


def fmt(value: float, digits: int = 0) -> str:
    """A number for a table; blank when unknown."""
    return "" if value is None or math.isnan(value) else f"{value:,.{digits}f}"


def _ratio(a: float, b: float) -> float:
    return a / b if b else math.nan


def perf_analyzer_table(points: list[Point]) -> list[str]:
    """perf_analyzer's figures, with ratios against the minimal server at the same model and concurrency."""
    minimal = {
        (p.measurement.model, p.measurement.concurrency): p.measurement
        for p in points
        if p.measurement.system == MINIMAL
    }
    lines = [
        "| system | model | concurrency | throughput (infer/s) | p50 (µs) | p99 (µs) "
        "| p50 vs minimal | throughput vs minimal | window spread |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for p in points:
        m = p.measurement
        ref = minimal.get((m.model, m.concurrency))
        spread = "" if math.isnan(p.spread) else f"{p.spread:.0%}"
        lines.append(
            f"| {m.system} | {m.model} | {m.concurrency} | {fmt(m.throughput)} | {fmt(m.p50_us)} | {fmt(m.p99_us)} "
            f"| {fmt(_ratio(m.p50_us, ref.p50_us) if ref else math.nan, 2)} "
            f"| {fmt(_ratio(m.throughput, ref.throughput) if ref else math.nan, 2)} | {spread} |"
        )
    return lines


def bench_table(rows: list[Benched]) -> list[str]:
    """``conduit bench``'s figures for every system, with ratios against the minimal server."""
    minimal = {
        (b.measurement.model, b.measurement.concurrency): b.measurement for b in rows if b.measurement.system == MINIMAL
    }
    lines = [
        "| system | model | concurrency | throughput (infer/s) | p50 (µs) | p99 (µs) | errors "
        "| p50 vs minimal | throughput vs minimal |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for b in rows:
        m = b.measurement
        ref = minimal.get((m.model, m.concurrency))
        errors = ", ".join(f"{k} {v}" for k, v in sorted(b.errors.items())) or "0"
        lines.append(
            f"| {m.system} | {m.model} | {m.concurrency} | {fmt(m.throughput)} | {fmt(m.p50_us)} | {fmt(m.p99_us)} "
            f"| {errors} | {fmt(_ratio(m.p50_us, ref.p50_us) if ref else math.nan, 2)} "
            f"| {fmt(_ratio(m.throughput, ref.throughput) if ref else math.nan, 2)} |"
        )
    return lines


@dataclass(frozen=True)
class Best:
    """MLServer's best figure of each kind at one model and concurrency, each from whichever configuration did best."""

    throughput: Measurement
    p50: Measurement
    p99: Measurement


def mlserver_best(rows: list[Benched], stock: set[str]) -> dict[tuple[str, int], Best]:
    """Per (model, concurrency), the best throughput, p50 and p99 over the ``stock`` MLServer configurations that
    answered without errors."""
    groups: dict[tuple[str, int], list[Measurement]] = {}
    for b in rows:
        m = b.measurement
        if m.system in stock and not b.errors:
            groups.setdefault((m.model, m.concurrency), []).append(m)
    return {
        key: Best(max(ms, key=lambda m: m.throughput), min(ms, key=lambda m: m.p50_us), min(ms, key=lambda m: m.p99_us))
        for key, ms in groups.items()
    }


def versus_table(rows: list[Benched], stock: set[str]) -> list[str]:
    """Conduit against MLServer's best, side by side (``conduit bench`` figures)."""
    best = mlserver_best(rows, stock)
    conduit = {
        (b.measurement.model, b.measurement.concurrency): b.measurement
        for b in rows
        if b.measurement.system == CONDUIT_SERVE
    }
    lines = [
        "| model | concurrency | Conduit infer/s | MLServer best infer/s | × "
        "| Conduit p50 (µs) | MLServer best p50 (µs) | × lower | Conduit p99 (µs) | MLServer best p99 (µs) | × lower |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for key in sorted(conduit, key=lambda k: (k[0], k[1])):
        c, b = conduit[key], best.get(key)
        if b is None:
            continue
        lines.append(
            f"| {key[0]} | {key[1]} | {fmt(c.throughput)} | {fmt(b.throughput.throughput)} "
            f"| {fmt(_ratio(c.throughput, b.throughput.throughput), 1)} | {fmt(c.p50_us)} | {fmt(b.p50.p50_us)} "
            f"| {fmt(_ratio(b.p50.p50_us, c.p50_us), 1)} | {fmt(c.p99_us)} | {fmt(b.p99.p99_us)} "
            f"| {fmt(_ratio(b.p99.p99_us, c.p99_us), 1)} |"
        )
    return lines


def _check(criterion: str, measured: str, passed: bool | None) -> str:
    verdict = "n/a" if passed is None else ("**met**" if passed else "**missed**")
    return f"| {criterion} | {measured} | {verdict} |"


def bar(points: list[Point], rows: list[Benched], curve: list[CurvePoint], stock: set[str]) -> list[str]:
    """Each line of the performance bar with the measured figure and whether it holds."""
    pa = {(p.measurement.system, p.measurement.model, p.measurement.concurrency): p.measurement for p in points}
    cb = {(b.measurement.system, b.measurement.model, b.measurement.concurrency): b for b in rows}
    best = mlserver_best(rows, stock)
    lines = ["| criterion | measured | verdict |", "|---|---|---|"]
    for model, (p50_times, throughput_times, p99_fraction) in VERSUS_MLSERVER.items():
        conduit, minimal = pa.get((CONDUIT_SERVE, model, 1)), pa.get((MINIMAL, model, 1))
        if conduit and minimal:
            ratio = conduit.p50_us / minimal.p50_us
            lines.append(
                _check(f"{model}: p50 at c=1 ≤ 1.15× minimal server (perf_analyzer)", f"{ratio:.2f}×", ratio <= 1.15)
            )
        conduit, minimal = pa.get((CONDUIT_SERVE, model, 16)), pa.get((MINIMAL, model, 16))
        if conduit and minimal:
            ratio = conduit.throughput / minimal.throughput
            lines.append(
                _check(f"{model}: throughput at c=16 ≥ minimal server (perf_analyzer)", f"{ratio:.2f}×", ratio >= 1.0)
            )
        ours, theirs = cb.get((CONDUIT_SERVE, model, 1)), best.get((model, 1))
        if ours and theirs:
            ratio = theirs.p50.p50_us / ours.measurement.p50_us
            lines.append(
                _check(
                    f"{model}: p50 at c=1 ≥ {p50_times:g}× lower than MLServer's best",
                    f"{ratio:.2f}×",
                    ratio >= p50_times,
                )
            )
        ours, theirs = cb.get((CONDUIT_SERVE, model, 16)), best.get((model, 16))
        if ours and theirs:
            ratio = ours.measurement.throughput / theirs.throughput.throughput
            lines.append(
                _check(
                    f"{model}: throughput at c=16 ≥ {throughput_times:g}× MLServer's best",
                    f"{ratio:.2f}×",
                    ratio >= throughput_times,
                )
            )
            fraction = ours.measurement.p99_us / theirs.p99.p99_us
            lines.append(
                _check(
                    f"{model}: p99 at c=16 ≤ {p99_fraction:g}× MLServer's best",
                    f"{fraction:.2f}×",
                    fraction <= p99_fraction,
                )
            )
        for tool, table in (("perf_analyzer", pa), ("conduit bench", {k: v.measurement for k, v in cb.items()})):
            at16, at64 = table.get((CONDUIT_SERVE, model, 16)), table.get((CONDUIT_SERVE, model, 64))
            if at16 and at64:
                holds = at64.throughput >= at16.throughput and at64.p99_us <= 4 * at16.p99_us
                lines.append(
                    _check(
                        f"{model}: c=64 throughput ≥ c=16's and p99 ≤ 4× c=16's ({tool})",
                        f"{at64.throughput / at16.throughput:.2f}× throughput, {at64.p99_us / at16.p99_us:.1f}× p99",
                        holds,
                    )
                )
        errors = cb.get((CONDUIT_SERVE, model, 64))
        if errors:
            lines.append(_check(f"{model}: no errors at c=64", str(sum(errors.errors.values())), not errors.errors))
        mine = sorted((c for c in curve if c.model == model), key=lambda c: c.batch)
        if len(mine) > 1:
            costs = [1e6 / c.served.throughput for c in mine]
            # Falling within noise: no step up by more than 10%, and the end well below the start.
            falling = all(b <= a * 1.10 for a, b in itertools.pairwise(costs)) and costs[-1] < costs[0]
            alone = 1e6 / mine[-1].in_process.throughput
            lines.append(
                _check(
                    f"{model}: per-row cost falls from batch {mine[0].batch} to {mine[-1].batch}",
                    f"{costs[0]:.1f} → {costs[-1]:.2f} µs/row (onnxruntime alone: {alone:.2f})",
                    falling,
                )
            )
    return lines


def native_front_targets(points: list[Point]) -> list[str]:
    """Each of the native front's targets, per model, with the measured figure and whether it holds
    (perf_analyzer's figures)."""
    pa = {(p.measurement.system, p.measurement.model, p.measurement.concurrency): p for p in points}
    lines = ["| criterion | measured | verdict |", "|---|---|---|"]
    for model in dict.fromkeys(p.measurement.model for p in points):
        native, minimal = pa.get((CONDUIT_NATIVE, model, 16)), pa.get((MINIMAL, model, 16))
        if native and minimal:
            ratio = _ratio(native.measurement.throughput, minimal.measurement.throughput)
            lines.append(
                _check(
                    f"{model}: throughput at c=16 ≥ {NATIVE_THROUGHPUT_TIMES:g}× the minimal server's",
                    f"{ratio:.2f}× ({fmt(native.measurement.throughput)} against "
                    f"{fmt(minimal.measurement.throughput)} infer/s)",
                    ratio >= NATIVE_THROUGHPUT_TIMES,
                )
            )
        native, minimal = pa.get((CONDUIT_NATIVE, model, 1)), pa.get((MINIMAL, model, 1))
        if native and minimal:
            ratio = _ratio(native.measurement.p50_us, minimal.measurement.p50_us)
            lines.append(
                _check(
                    f"{model}: p50 at c=1 ≤ {NATIVE_P50_FRACTION:g}× the minimal server's",
                    f"{ratio:.2f}× ({fmt(native.measurement.p50_us)} against {fmt(minimal.measurement.p50_us)} µs)",
                    ratio <= NATIVE_P50_FRACTION,
                )
            )
        native, python = pa.get((CONDUIT_NATIVE, model, 16)), pa.get((CONDUIT_PYTHON, model, 16))
        floor = NATIVE_ROWS_PER_EXECUTION.get(model)
        if floor is not None and native and python:
            rows = native.rows_per_execution
            ratio = _ratio(native.measurement.p99_us, python.measurement.p99_us)
            lines.append(
                _check(
                    f"{model}: rows per model execution at c=16 > {floor:g}, p99 at c=16 ≤ the python front's",
                    f"{fmt(rows if rows is not None else math.nan, 2)} rows; p99 {ratio:.2f}× "
                    f"({fmt(native.measurement.p99_us)} against {fmt(python.measurement.p99_us)} µs)",
                    None if rows is None else rows > floor and ratio <= 1.0,
                )
            )
        if native and python:
            ratio = _ratio(native.server_cpu_us, python.server_cpu_us)
            lines.append(
                _check(
                    f"{model}: server CPU per request at c=16 ≤ ⅓ of the python front's",
                    f"{ratio:.2f}× ({fmt(native.server_cpu_us)} against {fmt(python.server_cpu_us)} µs)",
                    None if math.isnan(ratio) else ratio <= NATIVE_CPU_FRACTION,
                )
            )
    return lines


def server_table(points: list[Point]) -> list[str]:
    """perf_analyzer's figures beside what the server spent on them: CPU per request and rows per execution."""
    lines = [
        "| system | model | concurrency | throughput (infer/s) | p50 (µs) | p99 (µs) "
        "| server CPU per request (µs) | rows per model execution |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for p in sorted(points, key=lambda p: p.measurement.model):  # stable: the systems and levels in measured order
        m = p.measurement
        rows = "" if p.rows_per_execution is None else fmt(p.rows_per_execution, 2)
        lines.append(
            f"| {m.system} | {m.model} | {m.concurrency} | {fmt(m.throughput)} | {fmt(m.p50_us)} | {fmt(m.p99_us)} "
            f"| {fmt(p.server_cpu_us, 1)} | {rows} |"
        )
    return lines


def curve_table(curve: list[CurvePoint]) -> list[str]:
    """Per-row cost against the request's batch size: Conduit at concurrency 1 and onnxruntime in-process."""
    lines = [
        "| model | rows per request | Conduit µs per row | Conduit p50 per request (µs) "
        "| onnxruntime in-process µs per row | share of the cost in onnxruntime |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for c in sorted(curve, key=lambda c: (c.model, c.batch)):
        served, alone = 1e6 / c.served.throughput, 1e6 / c.in_process.throughput
        lines.append(
            f"| {c.model} | {c.batch} | {served:.2f} | {fmt(c.served.p50_us)} | {alone:.2f} | {alone / served:.0%} |"
        )
    return lines


def curve_plot(curve: list[CurvePoint], path: Path) -> None:
    """The per-row cost curve as a PNG, log-log."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(8, 5), constrained_layout=True)
    for index, model in enumerate(sorted({c.model for c in curve})):
        mine = sorted((c for c in curve if c.model == model), key=lambda c: c.batch)
        batches = [c.batch for c in mine]
        axis.plot(
            batches,
            [1e6 / c.served.throughput for c in mine],
            marker="o",
            color=f"C{index}",
            label=f"{model}: {CONDUIT_SERVE}",
        )
        axis.plot(
            batches,
            [1e6 / c.in_process.throughput for c in mine],
            linestyle="--",
            color=f"C{index}",
            label=f"{model}: onnxruntime in-process",
        )
    axis.set_xscale("log", base=2)
    axis.set_yscale("log")
    axis.set_xlabel("rows per request")
    axis.set_ylabel("µs per row (concurrency 1)")
    axis.set_title("Per-row cost against request batch size")
    axis.grid(True, which="both", alpha=0.3)
    axis.legend()
    figure.savefig(path, dpi=110)
    plt.close(figure)
