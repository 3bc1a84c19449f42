"""Server processes under test and the perf_analyzer runs against them.

Only Conduit's generated stubs are imported here (for the readiness probe); tritonclient must stay out of this process
because protobuf refuses two definitions of the ``inference`` package in one process.
"""

from __future__ import annotations

import contextlib
import csv
import math
import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
from workload import Measurement

from inference_server.protocol import grpc_service_pb2 as pb
from inference_server.protocol import grpc_service_pb2_grpc as pb_grpc

PASS_LINE = re.compile(r"Pass \[\d+\] throughput: ([0-9.]+) infer/sec")


class ServerFailed(RuntimeError):
    """A server process exited or never became ready."""


@dataclass(frozen=True)
class Point:
    """A perf_analyzer result plus how much throughput varied between its measurement windows."""

    measurement: Measurement
    spread: float
    """max/min - 1 of the windows' throughputs: how noisy the machine was during this point."""
    server_cpu_us: float = math.nan
    """The server's CPU time (every thread, its children's too) per request completed; NaN when not measured."""
    rows_per_execution: float | None = None
    """Rows per model execution over the run, from ModelStatistics (``None``: the server serves none)."""


@dataclass(frozen=True)
class ModelCounts:
    """A model's ModelStatistics counters, summed over its versions."""

    requests: int
    """Requests answered successfully."""
    rows: int
    """Rows inferred (``inference_count``)."""
    executions: int
    """Model executions (``execution_count``): a batch of rows run together counts once."""

    def __sub__(self, earlier: ModelCounts) -> ModelCounts:
        return ModelCounts(
            self.requests - earlier.requests, self.rows - earlier.rows, self.executions - earlier.executions
        )


TICKS = os.sysconf("SC_CLK_TCK")


def process_cpu_s(pid: int) -> float:
    """CPU seconds (user and system) used so far by process ``pid`` and its descendants, every thread of each.

    Each process counts its own time and that of the children it has waited for (``cutime``, ``cstime``); a child
    still running counts its own, so a child that ends between two samples moves from one term to the other.
    """
    parent, ticks = {}, {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except (FileNotFoundError, ProcessLookupError):
            continue  # ended meanwhile
        # After the command name: state, ppid, ...; utime, stime, cutime and cstime are the 12th to the 15th.
        fields = stat.rsplit(")", 1)[1].split()
        parent[int(entry)] = int(fields[1])
        ticks[int(entry)] = sum(int(f) for f in fields[11:15])
    children: dict[int, list[int]] = {}
    for child, ppid in parent.items():
        children.setdefault(ppid, []).append(child)
    total, pending = 0, [pid]
    while pending:
        current = pending.pop()
        total += ticks.get(current, 0)
        pending += children.get(current, [])
    return total / TICKS


def model_counts(port: int, model: str, host: str = "127.0.0.1") -> ModelCounts | None:
    """``model``'s ModelStatistics counters on the server at ``port``; ``None`` when it serves no statistics."""
    with grpc.insecure_channel(f"{host}:{port}") as channel:
        try:
            answer = pb_grpc.GRPCInferenceServiceStub(channel).ModelStatistics(  # type: ignore[no-untyped-call]
                pb.ModelStatisticsRequest(name=model), timeout=10
            )
        except grpc.RpcError:
            return None  # the minimal server serves no statistics
    return ModelCounts(
        sum(s.inference_stats.success.count for s in answer.model_stats),
        sum(s.inference_count for s in answer.model_stats),
        sum(s.execution_count for s in answer.model_stats),
    )


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_ready(
    port: int,
    process: subprocess.Popen[bytes],
    log: Path,
    timeout_s: float = 120.0,
    credentials: grpc.ChannelCredentials | None = None,
) -> None:
    """Poll OIP ServerReady until it answers ready; fail fast if the process dies first.

    With ``credentials`` the server is reached over TLS, as ``localhost`` (the name its certificate carries).
    """
    deadline = time.monotonic() + timeout_s
    channel = (
        grpc.insecure_channel(f"127.0.0.1:{port}")
        if credentials is None
        else grpc.secure_channel(f"localhost:{port}", credentials)
    )
    with channel:
        stub = pb_grpc.GRPCInferenceServiceStub(channel)  # type: ignore[no-untyped-call]
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise ServerFailed(f"exited with status {process.returncode}:\n{tail(log)}")
            try:
                if stub.ServerReady(pb.ServerReadyRequest(), timeout=1.0).ready:
                    return
            except grpc.RpcError:
                pass  # not listening yet, or loading models
            time.sleep(0.1)
    raise ServerFailed(f"not ready after {timeout_s:.0f} s:\n{tail(log)}")


def tail(log: Path, lines: int = 15) -> str:
    """The last lines of a log file, indented for a notice."""
    text = log.read_text(errors="replace").splitlines() if log.exists() else []
    return "\n".join("    " + line for line in text[-lines:])


@contextlib.contextmanager
def running(command: list[str], port: int, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``command`` (a server listening on ``port``) until the block ends; output goes to ``log``."""
    with log.open("wb") as sink:
        process = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT)
        try:
            wait_ready(port, process, log)
            yield process
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()


def perf_analyzer(
    binary: Path,
    *,
    system: str,
    model: str,
    port: int,
    concurrency: int,
    duration_s: float,
    input_data: Path,
    workdir: Path,
    host: str = "127.0.0.1",
    extra: tuple[str, ...] = (),
) -> Point:
    """Measure one (model, concurrency) point: batch 1, unary gRPC, three windows totalling ``duration_s``.

    ``extra`` arguments go to perf_analyzer as they are (headers, TLS options).

    Raises:
        RuntimeError: perf_analyzer failed; the message carries its output.
    """
    csv_path = workdir / f"{system.replace(' ', '_')}-{model}-c{concurrency}.csv"
    window_ms = max(200, int(duration_s * 1000 / 3))
    command = [
        str(binary),
        *("-m", model, "-i", "grpc", "-u", f"{host}:{port}", "-b", "1"),
        *("--concurrency-range", str(concurrency), "--measurement-interval", str(window_ms)),
        # A fixed length instead of "until three windows agree within 10%": on a shared machine the default never
        # converges, and perf_analyzer then writes no result at all. The spread between windows is reported instead.
        *("--stability-percentage", "10000", "--max-trials", "3"),
        *("--warmup-request-count", str(100 * concurrency)),
        *("--input-data", str(input_data), "-f", str(csv_path), "-v"),
        *extra,
    ]
    csv_path.unlink(missing_ok=True)  # a kept --workdir must not hand back an older run's figures
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=60 + 10 * duration_s, check=False)
    except subprocess.TimeoutExpired as exc:
        raise RuntimeError(f"perf_analyzer did not finish within {exc.timeout:.0f} s") from exc
    if done.returncode != 0 or not csv_path.exists():
        raise RuntimeError(f"perf_analyzer exited with {done.returncode}:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    with csv_path.open() as f:
        row = next(csv.DictReader(f))
    # perf_analyzer's CSV latencies are in microseconds.
    throughput, p50, p99 = (float(row[k]) for k in ("Inferences/Second", "p50 latency", "p99 latency"))
    measurement = Measurement(system, model, concurrency, throughput, p50, p99)
    windows = [float(v) for v in PASS_LINE.findall(done.stdout)]
    spread = max(windows) / min(windows) - 1 if windows and min(windows) > 0 else float("nan")
    return Point(measurement, spread)
