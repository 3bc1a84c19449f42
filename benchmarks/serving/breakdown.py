"""Where a request's server time goes: ``conduit serve`` against the minimal server, by stage and by thread.

The bar asks Conduit's throughput at concurrency 16 to reach the minimal server's, paid for by batching. This measures
the two sides of that trade on this machine:

1. In-process, without gRPC (best of 7 repeats): the CPU time of each server's ModelInfer handler per batch-1 request,
   Conduit's stages (decode, validate, the data plane with its batcher, statistics and metrics, encode), and what
   batching can save at most: one onnxruntime call on 1 row against the per-row cost of a 16-row call.
2. Each server as its own process under perf_analyzer (batch 1, concurrency 1 and 16, ``--rounds`` alternating rounds,
   medians): CPU per request of the event loop thread, of gRPC's event engine threads and of the other threads (gRPC's
   completion-queue poller, executors), and of perf_analyzer itself.

Usage: benchmarks/breakdown [--rounds 5] [--duration-s 3] [--out benchmarks/serving/breakdown.md]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import os
import resource
import statistics
import sys
import tempfile
import time
import timeit
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import minimal_server
import numpy as np
from harness import TICKS, free_port, model_counts, perf_analyzer, running
from measure import CONDUIT
from opentelemetry.sdk.metrics import MeterProvider
from workload import INPUT_NAME, build_repository, model_names, session, write_input_data

from inference_server.app import InferenceServer
from inference_server.protocol import grpc_service_pb2 as pb
from inference_server.settings import ServerSettings
from inference_server.telemetry import histogram_set, sum_set
from inference_server.transport import converters
from inference_server.transport.servicer import InferenceServicer
from inference_server.validation import validate_inputs

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
DEFAULT_PERF_ANALYZER = ROOT / ".cache" / "perf_analyzer" / "bin" / "perf_analyzer"
REPEATS = 7
CALLS = 5000
BATCH_ROWS = 16


class _Context:
    """The two things a ModelInfer handler asks of its gRPC context on the success path."""

    def time_remaining(self) -> float | None:
        return None

    async def abort(self, code: Any, details: str) -> None:
        raise RuntimeError(f"{code}: {details}")


def _best_us(fn: Callable[[], object]) -> float:
    """CPU-bound ``fn``'s cost in µs: the best of ``REPEATS`` timings of ``CALLS`` calls (noise only adds), after
    ``CALLS`` calls of warm-up."""
    timeit.timeit(fn, number=CALLS)
    return min(timeit.repeat(fn, number=CALLS, repeat=REPEATS)) / CALLS * 1e6


async def _best_async_us(call: Callable[[], Awaitable[object]]) -> float:
    """The coroutine function ``call``'s cost in µs, as ``_best_us`` measures a plain one (CPU time here: the loop
    waits for nothing)."""
    timings = []
    for _ in range(REPEATS + 1):  # the first is warm-up
        start = time.process_time()
        for _ in range(CALLS):
            await call()
        timings.append((time.process_time() - start) / CALLS * 1e6)
    return min(timings[1:])


async def _best_handler_us(handler: Callable[[pb.ModelInferRequest, Any], Any], wire: bytes) -> float:
    """Parse, handle and serialize one request, as gRPC would around the handler."""
    context = _Context()

    async def one() -> None:
        response = await handler(pb.ModelInferRequest.FromString(wire), context)
        response.SerializeToString()

    return await _best_async_us(one)


def _wire_request(model: str, row: np.ndarray) -> bytes:
    request = pb.ModelInferRequest(model_name=model)
    request.inputs.add(name=INPUT_NAME, datatype="FP32", shape=[1, row.size])
    request.raw_input_contents.append(np.ascontiguousarray(row, dtype=np.float32).reshape(1, -1).tobytes())
    return request.SerializeToString()


async def _in_process(repository: Path, rows: np.ndarray) -> list[str]:
    """Part 1: the handlers and Conduit's stages, one model at a time."""
    settings = ServerSettings(model_repository=repository, grpc_port=0, metrics_port=0, otlp_push=False)
    server = InferenceServer(settings, MeterProvider(), histogram_set(), sums=sum_set())
    await server.start()
    try:
        conduit = InferenceServicer(server.dataplane)
        minimal = minimal_server.MinimalServicer(minimal_server.load_repository(repository))
        lines = [
            "| model | minimal handler | Conduit handler | Conduit − minimal | Conduit: decode | validate | data plane "
            "(batcher, statistics, metrics) | of which onnxruntime | encode | batching saves at most |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for model in model_names(repository):
            wire = _wire_request(model, rows[0])
            request = converters.decode_infer_request(pb.ModelInferRequest.FromString(wire))
            served = server.models.get(model)
            response = await server.dataplane.infer(request)
            minimal_us = await _best_handler_us(minimal.ModelInfer, wire)
            conduit_us = await _best_handler_us(conduit.ModelInfer, wire)
            message = pb.ModelInferRequest.FromString(wire)
            decode_us = _best_us(partial(converters.decode_infer_request, message))
            validate_us = _best_us(partial(validate_inputs, served.spec, request.inputs))
            plane_us = await _best_async_us(partial(server.dataplane.infer, request))
            encode_us = _best_us(partial(converters.encode_infer_response, response))
            sess = session(repository / model / "1" / "model.onnx")
            one = {INPUT_NAME: np.ascontiguousarray(rows[:1])}
            many = {INPUT_NAME: np.ascontiguousarray(rows[:BATCH_ROWS])}
            ort_us = _best_us(partial(sess.run, None, one))
            ort_batch_us = _best_us(partial(sess.run, None, many)) / BATCH_ROWS
            lines.append(
                f"| {model} | {minimal_us:.1f} | {conduit_us:.1f} | {conduit_us - minimal_us:+.1f} | {decode_us:.1f} "
                f"| {validate_us:.1f} | {plane_us:.1f} | {ort_us:.1f} | {encode_us:.1f} | {ort_us - ort_batch_us:.1f} |"
            )
        return lines
    finally:
        await server.stop()


def _thread_cpu(pid: int) -> dict[int, tuple[str, float]]:
    """CPU seconds so far of each thread of ``pid``, with its name."""
    threads = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            stat = Path(f"/proc/{pid}/task/{tid}/stat").read_text()
        except FileNotFoundError:
            continue  # ended meanwhile
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat.rsplit(")", 1)[1].split()
        threads[int(tid)] = (name, (int(fields[11]) + int(fields[12])) / TICKS)
    return threads


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@dataclass(frozen=True)
class Split:
    """One server under perf_analyzer: throughput, and CPU µs per request by where it was spent."""

    throughput: float
    loop: float
    """The event loop thread: handlers, asyncio, gRPC's Python layer."""
    engine: float
    """gRPC's event engine threads: sockets, HTTP/2."""
    other: float
    """Every other thread: gRPC's completion-queue poller, executors."""
    client: float
    """perf_analyzer."""
    rows_per_execution: float | None
    """Rows per model execution over the whole run, from ModelStatistics (``None``: the server has none)."""

    @property
    def server(self) -> float:
        return self.loop + self.engine + self.other


def measure(
    binary: Path,
    command: list[str],
    *,
    model: str,
    concurrency: int,
    duration_s: float,
    input_data: Path,
    workdir: Path,
) -> Split:
    """Load the server that ``command`` starts (its port appended) with perf_analyzer and split the CPU it used."""
    port = free_port()
    with running([*command, str(port)], port, workdir / "server.log") as process:
        before, started, client_before = _thread_cpu(process.pid), time.monotonic(), _children_cpu()
        point = perf_analyzer(
            binary,
            system="breakdown",
            model=model,
            port=port,
            concurrency=concurrency,
            duration_s=duration_s,
            input_data=input_data,
            workdir=workdir,
        )
        after, elapsed, client = _thread_cpu(process.pid), time.monotonic() - started, _children_cpu() - client_before
        rows_per_execution = _rows_per_execution(port, model)
    # perf_analyzer loads the server at about this rate from its warm-up to its last window.
    requests = point.measurement.throughput * elapsed
    spent = {"loop": 0.0, "engine": 0.0, "other": 0.0}
    for tid, (name, seconds) in after.items():
        kind = "loop" if tid == process.pid else "engine" if name.startswith("event_engine") else "other"
        spent[kind] += seconds - before.get(tid, (name, 0.0))[1]
    per_request = {kind: seconds / requests * 1e6 for kind, seconds in spent.items()}
    return Split(
        point.measurement.throughput,
        client=client / requests * 1e6,
        rows_per_execution=rows_per_execution,
        **per_request,
    )


def _rows_per_execution(port: int, model: str) -> float | None:
    counts = model_counts(port, model)
    return counts.rows / counts.executions if counts is not None and counts.executions else None


def _median(splits: list[Split]) -> Split:
    fields = ("throughput", "loop", "engine", "other", "client")
    values = [s.rows_per_execution for s in splits if s.rows_per_execution is not None]
    return Split(
        *(statistics.median(getattr(s, f) for s in splits) for f in fields),
        rows_per_execution=statistics.median(values) if values else None,
    )


def _servers_table(results: dict[tuple[str, str, int], list[Split]]) -> list[str]:
    lines = [
        "| model | concurrency | server | throughput (infer/s) | event loop thread | gRPC event engine | other threads "
        "| server total | perf_analyzer | rows per model execution |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for (model, system, concurrency), splits in sorted(results.items(), key=lambda kv: (kv[0][0], kv[0][2], kv[0][1])):
        s = _median(splits)
        lines.append(
            f"| {model} | {concurrency} | {system} | {s.throughput:,.0f} | {s.loop:.0f} | {s.engine:.0f} "
            f"| {s.other:.0f} | {s.server:.0f} | {s.client:.0f} "
            f"| {'—' if s.rows_per_execution is None else f'{s.rows_per_execution:.2f}'} |"
        )
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds per server and point (default 5)")
    parser.add_argument("--duration-s", type=float, default=3.0, help="perf_analyzer's measurement per point")
    parser.add_argument("--out", type=Path, default=HERE / "breakdown.md")
    parser.add_argument("--perf-analyzer", type=Path, default=DEFAULT_PERF_ANALYZER)
    args = parser.parse_args()
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="conduit-breakdown-") as tmp:
        workdir = Path(tmp)
        repository = workdir / "models"
        rows = build_repository(repository)
        input_data = write_input_data(rows, workdir / "input_data.json")
        print("in-process handlers and stages ...", file=sys.stderr, flush=True)
        handlers = asyncio.run(_in_process(repository, rows))
        commands = {
            "minimal": [
                sys.executable,
                str(HERE / "minimal_server.py"),
                "--model-repository",
                str(repository),
                "--port",
            ],
            "Conduit": [
                str(CONDUIT),
                "serve",
                "--model-repository",
                str(repository),
                "--metrics-port",
                "0",
                "--grpc-port",
            ],
        }
        results: dict[tuple[str, str, int], list[Split]] = {}
        for round_ in range(args.rounds):
            for model in model_names(repository):
                for concurrency in (1, 16):
                    for system, command in commands.items():
                        print(f"round {round_ + 1}: {system} {model} c={concurrency}", file=sys.stderr, flush=True)
                        split = measure(
                            args.perf_analyzer,
                            command,
                            model=model,
                            concurrency=concurrency,
                            duration_s=args.duration_s,
                            input_data=input_data,
                            workdir=workdir,
                        )
                        results.setdefault((model, system, concurrency), []).append(split)
    report = [
        "# Where a request's server time goes",
        "",
        f"`benchmarks/breakdown`, {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC, "
        f"{os.cpu_count()} cores; batch-1 requests of 32 FP32 features; "
        f"{(time.monotonic() - began) / 60:.1f} minutes.",
        "",
        "## The handlers in-process, without gRPC (CPU µs per request, best of 7)",
        "",
        "Each handler parses the request and serializes its answer, as gRPC does around it. Conduit's stages are timed "
        "alone. *Batching saves at most*: one onnxruntime call on 1 row less the per-row cost of a "
        f"{BATCH_ROWS}-row call, the most a batch of {BATCH_ROWS} requests can save each of them.",
        "",
        *handlers,
        "",
        f"## The servers under perf_analyzer (CPU µs per request, median of {args.rounds} alternating rounds)",
        "",
        "Every thread of the server process, by kind; perf_analyzer's own CPU beside it (client and server share the "
        "machine's cores).",
        "",
        *_servers_table(results),
        "",
    ]
    args.out.write_text("\n".join(report))
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
