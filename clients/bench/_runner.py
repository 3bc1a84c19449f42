"""The load loops: closed (fixed concurrency) and open (fixed arrival rate), each with a warm-up before it counts."""

from __future__ import annotations

import asyncio
import contextlib
import selectors
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import grpc
import numpy as np

from clients._channel import DEFAULT_MAX_MESSAGE_BYTES, channel_options
from clients.bench._callers import Caller, StreamCaller, UnaryCaller
from clients.bench._config import BenchConfig, Level
from clients.bench._inputs import build_requests, fetch_inputs
from clients.bench._recorder import Recorder
from contract.entities import TensorSignature

__all__ = ["BenchResult", "LevelResult", "Progress", "new_event_loop", "run_bench"]

# Open loop: the last stretch before a send is spent yielding to the loop, not in a timer, which wakes ~100 µs late.
_SPIN_NS = 150_000

Progress = Callable[[Level, str, float, Recorder], None]
"""Called about once a second with the level, the phase ("warmup" or "measure"), seconds into it, and its recorder."""


@dataclass(frozen=True)
class LevelResult:
    """One level's measurement."""

    level: Level
    recorder: Recorder
    warmup_requests: int
    """Requests sent (and answered) during the warm-up; not in ``recorder``."""
    client_cpu_s: float
    """CPU time this process used during the measurement, all threads: the client's own cost."""


@dataclass(frozen=True)
class BenchResult:
    """A whole run: what was asked, what the model takes, and each level's result."""

    config: BenchConfig
    inputs: list[TensorSignature]
    levels: list[LevelResult]


def _clock() -> int:
    return time.perf_counter_ns()


def new_event_loop() -> asyncio.AbstractEventLoop:
    """The event loop runs should use: timers precise to microseconds.

    The default loop waits with epoll, whose timeout is rounded up to whole milliseconds, so an open-loop send would
    leave up to a millisecond late and that lateness would be counted as latency. ``select`` takes microseconds.
    """
    return asyncio.SelectorEventLoop(selectors.SelectSelector())


async def _until(deadline_ns: int) -> None:
    """Wait until ``deadline_ns``: a timer for most of the way, then yielding to the loop (answers are still read)
    for the last stretch, which timers overshoot."""
    while (remaining := deadline_ns - _clock()) > 0:  # noqa: ASYNC110 - a deadline, not an event to wait for
        await asyncio.sleep((remaining - _SPIN_NS) / 1e9 if remaining > _SPIN_NS else 0)


@dataclass(frozen=True)
class _Phases:
    """A level's timing: warm-up from ``start_ns``, measurement from ``measure_ns``, no new send after ``end_ns``."""

    start_ns: int
    measure_ns: int
    end_ns: int
    warm: Recorder
    main: Recorder

    def recorder(self, intended_ns: int) -> Recorder:
        """Where a request belongs: the phase it was due to be sent in."""
        return self.warm if intended_ns < self.measure_ns else self.main


async def _closed_loop(callers: list[Caller], requests: list[bytes], phases: _Phases) -> None:
    count = len(callers)

    async def run(index: int, call: Caller) -> None:
        i = index
        while (sent := _clock()) < phases.end_ns:
            error = await call(requests[i % len(requests)])
            phases.recorder(sent).record(sent, sent, _clock(), error)
            i += count

    await asyncio.gather(*(run(index, call) for index, call in enumerate(callers)))


def _schedule(config: BenchConfig, rate: float, start_ns: int, end_ns: int) -> Iterator[int]:
    """Intended send times: evenly spaced, or exponential gaps (a Poisson process) with the same mean."""
    rng = np.random.default_rng(config.seed)
    mean_gap_ns = 1e9 / rate
    intended = float(start_ns)
    while intended < end_ns:
        yield int(intended)
        intended += rng.exponential(mean_gap_ns) if config.arrival == "poisson" else mean_gap_ns


async def _open_loop(call: Caller, requests: list[bytes], config: BenchConfig, rate: float, phases: _Phases) -> None:
    gate = asyncio.Semaphore(config.max_outstanding)
    pending: set[asyncio.Task[None]] = set()
    loop = asyncio.get_running_loop()

    async def one(request: bytes, intended: int) -> None:
        try:
            sent = _clock()
            error = await call(request)
            phases.recorder(intended).record(intended, sent, _clock(), error)
        finally:
            gate.release()

    for number, intended in enumerate(_schedule(config, rate, phases.start_ns, phases.end_ns)):
        await _until(intended)
        # At the in-flight limit the send waits; it keeps its slot in the schedule, so the wait counts as latency.
        await gate.acquire()
        task = loop.create_task(one(requests[number % len(requests)], intended))
        pending.add(task)
        task.add_done_callback(pending.discard)
    await asyncio.gather(*pending)


async def _report_progress(level: Level, phases: _Phases, progress: Progress) -> None:
    while True:
        await asyncio.sleep(1.0)
        now = _clock()
        if now < phases.measure_ns:
            progress(level, "warmup", (now - phases.start_ns) / 1e9, phases.warm)
        else:
            progress(level, "measure", (now - phases.measure_ns) / 1e9, phases.main)


def _caller(channel: grpc.aio.Channel, config: BenchConfig) -> Caller:
    kind = StreamCaller if config.streaming else UnaryCaller
    return kind(channel, config.timeout_s, config.metadata)


async def _run_level(
    channel: grpc.aio.Channel, config: BenchConfig, level: Level, requests: list[bytes], progress: Progress | None
) -> LevelResult:
    start_ns = _clock()
    measure_ns = start_ns + int(config.warmup_s * 1e9)
    end_ns = measure_ns + int(config.duration_s * 1e9)
    phases = _Phases(
        start_ns, measure_ns, end_ns, Recorder(start_ns, config.warmup_s), Recorder(measure_ns, config.duration_s)
    )
    callers = [_caller(channel, config) for _ in range(level.concurrency or 1)]
    reporter = None
    if progress is not None:
        reporter = asyncio.get_running_loop().create_task(_report_progress(level, phases, progress))
    cpu_at: dict[str, float] = {}

    def mark_cpu() -> None:
        cpu_at["start"] = time.process_time()

    marker = asyncio.get_running_loop().call_later((measure_ns - _clock()) / 1e9, mark_cpu)
    try:
        if level.rate is not None:
            await _open_loop(callers[0], requests, config, level.rate, phases)
        else:
            await _closed_loop(callers, requests, phases)
    finally:
        cpu_end = time.process_time()
        marker.cancel()
        if reporter is not None:
            reporter.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reporter
        for call in callers:
            await call.aclose()
    return LevelResult(level, phases.main, phases.warm.requests, cpu_end - cpu_at.get("start", cpu_end))


async def run_bench(config: BenchConfig, progress: Progress | None = None) -> BenchResult:
    """Measure every level of ``config`` in turn against its target.

    Raises:
        grpc.aio.AioRpcError: the server did not describe the model (unknown model, not ready, unreachable).
        InputError: the model's inputs cannot be filled as asked.
    """
    options = channel_options(DEFAULT_MAX_MESSAGE_BYTES, ())
    if config.credentials is None:
        channel = grpc.aio.insecure_channel(config.target, options=options)
    else:
        channel = grpc.aio.secure_channel(config.target, config.credentials, options=options)
    async with channel:
        inputs = await fetch_inputs(channel, config.model, config.version, config.metadata, config.timeout_s)
        requests = build_requests(
            config.model,
            config.version,
            inputs,
            batch=config.batch,
            shapes=config.shapes,
            input_data=config.input_data,
            seed=config.seed,
        )
        results = [await _run_level(channel, config, level, requests, progress) for level in config.levels]
    return BenchResult(config, inputs, results)
