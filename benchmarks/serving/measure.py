"""Measurements through ``conduit bench``: one run per server and model covers every concurrency level."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from workload import Measurement

CONDUIT = Path(sys.executable).parent / "conduit"


def conduit_bench(
    *,
    system: str,
    model: str,
    port: int,
    levels: list[int],
    duration_s: float,
    warmup_s: float,
    input_data: Path,
    out: Path,
    batch: int = 1,
) -> list[tuple[Measurement, dict[str, int]]]:
    """Run ``conduit bench`` in closed loop at each level; return each level's figures and its errors by status.

    Raises:
        RuntimeError: the run failed; the message carries its output.
    """
    command = [
        *(str(CONDUIT), "bench", "--target", f"127.0.0.1:{port}", "--model", model, "--quiet"),
        *("--concurrency", ",".join(map(str, levels)), "--batch", str(batch)),
        *("--duration", f"{duration_s}s", "--warmup", f"{warmup_s}s", "--input-data", str(input_data)),
        *("--json", str(out)),
    ]
    out.unlink(missing_ok=True)
    timeout = 120 + len(levels) * (duration_s + warmup_s) * 2
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        raise RuntimeError(f"conduit bench did not finish within {exc.timeout:.0f} s") from exc
    if done.returncode != 0 or not out.exists():
        raise RuntimeError(f"conduit bench exited with {done.returncode}:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    document = json.loads(out.read_text())
    results = []
    for level in document["levels"]:
        latency = level["latency_us"]
        measurement = Measurement(
            system, model, level["concurrency"], level["infer_per_s"], latency["p50"], latency["p99"]
        )
        results.append((measurement, level["errors"]))
    return results


def client_cpu_per_request(out: Path) -> list[tuple[int, float, float]]:
    """(concurrency, requests per second, client CPU µs per request) of each level of a ``conduit bench`` JSON."""
    document = json.loads(out.read_text())
    return [
        (level["concurrency"], level["requests_per_s"], level["client_cpu_us_per_request"] or float("nan"))
        for level in document["levels"]
    ]
