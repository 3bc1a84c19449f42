"""``conduit bench``: flags in, a table, JSON, CSV and a plot out."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

import grpc

from clients._cli_inference import InferenceConnection, add_inference_flags, inference_connection
from clients.bench._config import BenchConfig, Level, parse_duration
from clients.bench._inputs import InputError
from clients.bench._recorder import Recorder
from clients.bench._report import table, to_json, write_csv, write_json

__all__ = ["add_bench_parser", "run_bench_command"]

_DESCRIPTION = """\
Measure the latency and throughput of a model on any Open Inference Protocol gRPC server (Conduit, Triton,
MLServer).

Closed loop (--concurrency): N callers, each sending its next request as soon as the previous one is answered.
Open loop (--rate): requests sent on a fixed schedule (constant spacing, or Poisson arrivals), whatever the server
does. In open loop each latency is measured from the request's intended send time, not from when it was actually
sent: a server that stalls for a second makes every request scheduled during that second wait, and they all count.
A closed loop cannot show this (its callers stop sending while the server stalls: coordinated omission), so use
--rate to learn what callers at a given traffic level experience.

Latencies are recorded in HDR histograms (1 µs to 1 h, 3 significant digits). Requests are built once before the
clock starts (random data shaped from ModelMetadata, or rows from --input-data) and sent with raw contents; a
request answered with an error is counted under its gRPC status and kept out of the latency figures.
"""


def _levels(text: str, kind: type[int] | type[float]) -> list[int | float]:
    try:
        values = [kind(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None
    if not values:
        raise argparse.ArgumentTypeError("no value given")
    return values


def _concurrency(text: str) -> list[int | float]:
    return _levels(text, int)


def _rates(text: str) -> list[int | float]:
    return _levels(text, float)


def _duration(text: str) -> float:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _shape(text: str) -> tuple[str, tuple[int, ...]]:
    name, _, dims = text.rpartition(":")
    try:
        sizes = tuple(int(d) for d in dims.split(","))
    except ValueError:
        sizes = ()
    if not name or not sizes or any(d < 1 for d in sizes):
        raise argparse.ArgumentTypeError(f"expected NAME:D1[,D2…] with positive sizes, got {text!r}")
    return name, sizes


def add_bench_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``conduit bench``."""
    p = sub.add_parser(
        "bench",
        help="measure latency and throughput against any Open Inference Protocol gRPC server",
        description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--target", required=True, metavar="HOST:PORT", help="the server to measure")
    p.add_argument("--model", required=True, metavar="NAME", help="the model to call")
    p.add_argument("--version", default="", metavar="V", help="model version (default: the server's choice)")
    load = p.add_mutually_exclusive_group()
    load.add_argument(
        "--concurrency", type=_concurrency, metavar="N[,N…]", help="closed loop: callers per level (default 1)"
    )
    load.add_argument(
        "--rate",
        type=_rates,
        metavar="R[,R…]",
        help="open loop: requests per second per level; latency counted from each intended send time",
    )
    p.add_argument(
        "--arrival", choices=["constant", "poisson"], default="constant", help="open-loop spacing (default constant)"
    )
    p.add_argument("--duration", type=_duration, default=30.0, metavar="T", help="measured time per level (30s)")
    p.add_argument("--warmup", type=_duration, default=5.0, metavar="T", help="uncounted load before each level (5s)")
    p.add_argument("--batch", type=int, default=1, metavar="N", help="rows per request (default 1)")
    p.add_argument("--streaming", action="store_true", help="send over ModelStreamInfer instead of ModelInfer")
    p.add_argument(
        "--input-data",
        type=Path,
        metavar="FILE",
        help="rows to send: perf_analyzer's JSON, CSV, Parquet (a column per input, by name) or .npy (default: random "
        "data)",
    )
    p.add_argument(
        "--shape",
        type=_shape,
        action="append",
        default=[],
        metavar="NAME:D1,D2",
        help="sizes of an input's dynamic dimensions, without the batch dimension (repeatable)",
    )
    p.add_argument("--timeout", type=_duration, default=10.0, metavar="T", help="deadline of each request (10s)")
    p.add_argument(
        "--max-outstanding",
        type=int,
        default=10_000,
        metavar="N",
        help="open loop: most requests in flight; later sends wait and the wait counts as latency (10000)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the random data and Poisson arrivals (default 0)")
    p.add_argument("--json", type=Path, metavar="OUT", help="write every figure, timeline and spectrum as JSON")
    p.add_argument("--csv", type=Path, metavar="OUT", help="write one summary row per level as CSV")
    p.add_argument("--plot", type=Path, metavar="OUT.png", help="plot the percentile spectrum and the timeline")
    p.add_argument("--quiet", action="store_true", help="no live progress")
    add_inference_flags(p)


def _config(args: argparse.Namespace, connection: InferenceConnection) -> BenchConfig:
    if args.rate is not None:
        levels = tuple(Level(rate=float(r)) for r in args.rate)
    else:
        levels = tuple(Level(concurrency=int(c)) for c in (args.concurrency or [1]))
    return BenchConfig(
        target=args.target,
        model=args.model,
        levels=levels,
        version=args.version,
        duration_s=args.duration,
        warmup_s=args.warmup,
        batch=args.batch,
        streaming=args.streaming,
        arrival=args.arrival,
        input_data=args.input_data,
        shapes=dict(args.shape),
        timeout_s=args.timeout,
        max_outstanding=args.max_outstanding,
        seed=args.seed,
        metadata=connection.metadata,
        credentials=connection.credentials,
    )


class _Live:
    """Live progress on stderr: one line rewritten in place on a terminal, a line every 5 s otherwise."""

    def __init__(self, duration_s: float, warmup_s: float) -> None:
        self._tty = sys.stderr.isatty()
        self._durations = {"warmup": warmup_s, "measure": duration_s}
        self._last: tuple[int, int] = (0, 0)
        self._ticks = 0

    def __call__(self, level: Level, phase: str, elapsed_s: float, recorder: Recorder) -> None:
        self._ticks += 1
        if not self._tty and self._ticks % 5:
            return
        answered = recorder.requests
        recent = recorder.seconds[-2] if len(recorder.seconds) > 1 else None
        p99 = f"{recent.latency.get_value_at_percentile(99) / 1000:.3f} ms" if recent and recent.ok else "-"
        line = (
            f"{level.label:>10}  {phase} {elapsed_s:5.1f}/{self._durations[phase]:g}s  {answered:,} answered  "
            f"errors {recorder.errors.total():,}  last-second p99 {p99}"
        )
        print(f"\r{line}\033[K" if self._tty else line, end="" if self._tty else "\n", file=sys.stderr, flush=True)

    def done(self) -> None:
        if self._tty:
            print("\r\033[K", end="", file=sys.stderr, flush=True)


def run_bench_command(args: argparse.Namespace) -> int:
    """Run ``conduit bench`` as parsed; 0 when the run completed, 1 when it could not start."""
    from clients.bench._runner import new_event_loop, run_bench

    try:
        connection = inference_connection(args)
    except ValueError as exc:
        print(f"conduit bench: {exc}", file=sys.stderr)
        return 1
    try:
        config = _config(args, connection)
    except ValueError as exc:
        print(f"conduit bench: {exc}", file=sys.stderr)
        return 2
    if config.input_data is not None and not config.input_data.is_file():
        print(f"conduit bench: --input-data {config.input_data}: no such file", file=sys.stderr)
        return 2
    live = None if args.quiet else _Live(config.duration_s, config.warmup_s)
    try:
        with asyncio.Runner(loop_factory=new_event_loop) as runner:
            result = runner.run(run_bench(config, live))
    except grpc.aio.AioRpcError as exc:
        print(f"conduit bench: {config.target}: {exc.code().name}: {exc.details()}", file=sys.stderr)
        return 1
    except InputError as exc:
        print(f"conduit bench: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    finally:
        if live is not None:
            live.done()
    document = to_json(result)
    print(table(document))
    if args.json:
        write_json(document, args.json)
    if args.csv:
        write_csv(document, args.csv)
    if args.plot:
        from clients.bench._plot import write_plot

        write_plot(document, args.plot)
    return 0
