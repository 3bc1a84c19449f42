"""A run's figures as a terminal table, a JSON document and CSV rows."""

from __future__ import annotations

import csv
import datetime
import json
import os
import platform
from pathlib import Path
from typing import Any

from clients.bench._recorder import PERCENTILES, Recorder
from clients.bench._runner import BenchResult, LevelResult

__all__ = ["summary", "table", "to_json", "write_csv", "write_json"]

_CSV_FIELDS = (
    "level",
    "concurrency",
    "rate",
    "requests",
    "ok",
    "errors",
    "warmup_requests",
    "elapsed_s",
    "requests_per_s",
    "infer_per_s",
    "p50_us",
    "p90_us",
    "p99_us",
    "p99.9_us",
    "max_us",
    "mean_us",
    "client_cpu_us_per_request",
)


def _percentiles(histogram: Any) -> dict[str, float]:
    values = {f"p{p:g}": float(histogram.get_value_at_percentile(p)) for p in PERCENTILES}
    values["max"] = float(histogram.get_max_value())
    values["min"] = float(histogram.get_min_value())
    values["mean"] = float(histogram.get_mean_value())
    return values


def _spectrum(histogram: Any) -> list[tuple[float, float]]:
    """(percentile, latency µs) points, dense in the tail, as far into it as the sample count supports."""
    count = histogram.get_total_count()
    if count == 0:
        return []
    points: list[tuple[float, float]] = []
    tail = 1.0
    while tail * count >= 1:
        for step in range(10):
            percentile = 100.0 * (1.0 - tail * (1.0 - step / 10.0))
            points.append((percentile, float(histogram.get_value_at_percentile(percentile))))
        tail /= 10
    points.append((100.0, float(histogram.get_max_value())))
    return points


def summary(result: LevelResult, batch: int) -> dict[str, Any]:
    """One level's figures, with latencies in microseconds."""
    recorder: Recorder = result.recorder
    elapsed = recorder.elapsed_s
    answered = recorder.requests
    return {
        "level": result.level.label,
        "concurrency": result.level.concurrency,
        "rate": result.level.rate,
        "requests": answered,
        "ok": recorder.ok,
        "errors": dict(recorder.errors),
        "warmup_requests": result.warmup_requests,
        "elapsed_s": round(elapsed, 6),
        "requests_per_s": answered / elapsed,
        "infer_per_s": recorder.ok * batch / elapsed,
        "latency_us": _percentiles(recorder.latency),
        "send_lag_us": _percentiles(recorder.send_lag),
        "client_cpu_us_per_request": result.client_cpu_s * 1e6 / answered if answered else None,
        "timeline": [
            {
                "second": number,
                "ok": second.ok,
                "errors": second.errors,
                "p50_us": float(second.latency.get_value_at_percentile(50)),
                "p99_us": float(second.latency.get_value_at_percentile(99)),
            }
            for number, second in enumerate(recorder.seconds)
        ],
        "spectrum": _spectrum(recorder.latency),
    }


def to_json(result: BenchResult) -> dict[str, Any]:
    """The whole run as one JSON-ready document."""
    config = result.config
    return {
        "tool": "conduit bench",
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "client": {"host": platform.node(), "python": platform.python_version(), "cpus": os.cpu_count()},
        "target": config.target,
        "tls": config.credentials is not None,
        "model": config.model,
        "version": config.version,
        "mode": "open" if config.open_loop else "closed",
        "arrival": config.arrival if config.open_loop else None,
        "streaming": config.streaming,
        "batch": config.batch,
        "duration_s": config.duration_s,
        "warmup_s": config.warmup_s,
        "input_data": str(config.input_data) if config.input_data else None,
        "inputs": [{"name": s.name, "datatype": s.datatype, "shape": list(s.shape)} for s in result.inputs],
        "latency_measured_from": "intended send time" if config.open_loop else "send time",
        "levels": [summary(level, config.batch) for level in result.levels],
    }


def write_json(document: dict[str, Any], path: Path) -> None:
    """Write the document, indented."""
    path.write_text(json.dumps(document, indent=2) + "\n")


def write_csv(document: dict[str, Any], path: Path) -> None:
    """One row per level: the summary columns, errors as their total."""
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=_CSV_FIELDS)
        writer.writeheader()
        for level in document["levels"]:
            latency = level["latency_us"]
            row = {key: level.get(key) for key in _CSV_FIELDS}
            row["errors"] = sum(level["errors"].values())
            row.update({f"{k}_us": latency[k] for k in ("p50", "p90", "p99", "p99.9", "max", "mean")})
            writer.writerow(row)


def _ms(value_us: float) -> str:
    return f"{value_us / 1000:.3f}"


def table(document: dict[str, Any]) -> str:
    """The levels as an aligned table for the terminal; latencies in milliseconds."""
    header = ("level", "requests", "errors", "infer/s", "p50 ms", "p90 ms", "p99 ms", "p99.9 ms", "max ms")
    rows = [header]
    for level in document["levels"]:
        latency = level["latency_us"]
        errors = ", ".join(f"{name} {count}" for name, count in sorted(level["errors"].items())) or "0"
        rows.append(
            (
                level["level"],
                f"{level['requests']:,}",
                errors,
                f"{level['infer_per_s']:,.0f}",
                *(_ms(latency[k]) for k in ("p50", "p90", "p99", "p99.9", "max")),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(cell.rjust(width) for cell, width in zip(row, widths, strict=True)) for row in rows]
    return "\n".join(lines)
