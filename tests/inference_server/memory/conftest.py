"""Fixtures of the memory tests: `conduit serve` processes whose resident memory is read from /proc.

A server runs as its own process (one worker, so the process started is the one serving), so the resident set
measured is the server's alone: nothing of the test's client, its models or its numpy arrays is counted. Resident
memory (VmRSS) is what the kernel charges the process and what an out-of-memory killer acts on; it also counts what the
allocator keeps after a free, so every bound here leaves room for that, and every workload is run once before its
baseline is taken so that one-time growth (allocator pools, onnxruntime arenas, gRPC buffers) is not counted as its
cost.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import ServeProcess, StartServe

MIB = 1024 * 1024

# Settling: resident memory counts as settled once it moved by at most SETTLE_TOLERANCE_MIB over SETTLE_QUIET_S.
# Freed memory goes back to the allocator at once, so a server that holds nothing more settles in well under a
# second; one that keeps growing never does, and is measured as it is when SETTLE_TIMEOUT_S runs out.
SETTLE_TOLERANCE_MIB = 0.25
SETTLE_QUIET_S = 0.5
SETTLE_TIMEOUT_S = 5.0
# Peaks: a background thread reads the resident set this often while a workload runs.
PEAK_INTERVAL_S = 0.005
# Deadline of the calls these tests make (the longest, a stream of 20,000 requests, takes seconds): a server that
# hangs fails the test instead of stalling it.
CALL_TIMEOUT_S = 30.0


def resident_mib(pid: int) -> float:
    """The resident set of process ``pid`` in MiB, from /proc/PID/status."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024  # kB
    raise RuntimeError(f"process {pid} has no VmRSS (a zombie?)")


class Peak:
    """The highest resident set seen while its ``Resident.peak`` block ran (read it after the block)."""

    def __init__(self, pid: int) -> None:
        self._pid = pid
        self.mib = resident_mib(pid)
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, name="rss-peak", daemon=True)

    def _sample(self) -> None:
        while not self._done.wait(PEAK_INTERVAL_S):
            self.mib = max(self.mib, resident_mib(self._pid))

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._done.set()
        self._thread.join()
        self.mib = max(self.mib, resident_mib(self._pid))


@dataclass(frozen=True)
class Resident:
    """Resident memory of one process, in MiB."""

    pid: int

    def now(self) -> float:
        return resident_mib(self.pid)

    async def settled(self) -> float:
        """The resident set once it stopped moving (see SETTLE_*), or as it is when the wait runs out."""
        deadline = time.monotonic() + SETTLE_TIMEOUT_S
        window: list[tuple[float, float]] = []  # (when, MiB) over the last SETTLE_QUIET_S
        while True:
            now, mib = time.monotonic(), self.now()
            window = [(when, value) for when, value in window if now - when <= SETTLE_QUIET_S]
            window.append((now, mib))
            values = [value for _, value in window]
            quiet = now - window[0][0] >= SETTLE_QUIET_S * 0.9
            if (quiet and max(values) - min(values) <= SETTLE_TOLERANCE_MIB) or now >= deadline:
                return mib
            # Memory coming back to rest has no event to wait for: poll it.
            await asyncio.sleep(0.05)

    @contextmanager
    def peak(self) -> Iterator[Peak]:
        """Sample the resident set while the block runs; the yielded ``Peak.mib`` holds the highest value seen."""
        peak = Peak(self.pid)
        peak.start()
        try:
            yield peak
        finally:
            peak.stop()


@dataclass(frozen=True)
class MeasuredServer:
    """A `conduit serve` process and its resident memory."""

    serve: ServeProcess
    memory: Resident

    @property
    def port(self) -> int:
        return self.serve.port

    def log(self) -> str:
        return self.serve.log.read_text()


StartMeasured = Callable[..., MeasuredServer]


@pytest.fixture
def start_measured(start_serve: StartServe) -> StartMeasured:
    """``start_measured(repo, *flags)``: a `conduit serve` process on ``repo`` whose memory can be measured."""

    def start(repo: Path, *flags: str) -> MeasuredServer:
        serve = start_serve(repo, *flags)
        return MeasuredServer(serve, Resident(serve.process.pid))

    return start
