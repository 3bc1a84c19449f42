"""Latencies into HDR histograms, errors by gRPC status, and a per-second timeline."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field

from hdrh.histogram import HdrHistogram

__all__ = ["PERCENTILES", "Recorder", "Second"]

# Microseconds, 1 µs to 1 hour, 3 significant digits: 0.1% precision everywhere in the range.
_LOWEST_US, _HIGHEST_US, _DIGITS = 1, 3_600_000_000, 3
PERCENTILES = (50.0, 90.0, 99.0, 99.9)


def _histogram() -> HdrHistogram:
    return HdrHistogram(_LOWEST_US, _HIGHEST_US, _DIGITS)


@dataclass
class Second:
    """What completed during one second of the measurement."""

    ok: int = 0
    errors: int = 0
    latency: HdrHistogram = field(default_factory=_histogram)


class Recorder:
    """Collects one level's measurement. Times are ``time.perf_counter_ns`` values.

    Latency is measured from the moment a request was due to be sent (``intended_ns``): in a closed loop that is the
    moment it was sent; in an open loop it is its slot in the schedule, so time spent waiting behind a stalled
    server or a busy client counts (no coordinated omission). ``send lag`` is how late the send itself was.
    """

    def __init__(self, start_ns: int, duration_s: float) -> None:
        self.start_ns = start_ns
        # Answers that arrive after the last full second (requests still in flight at the end) join that second.
        self._last_second = max(math.ceil(duration_s) - 1, 0)
        self.end_ns = start_ns
        self.latency = _histogram()
        self.send_lag = _histogram()
        self.ok = 0
        self.errors: Counter[str] = Counter()
        self.seconds: list[Second] = []

    @property
    def requests(self) -> int:
        """Requests answered, successfully or not."""
        return self.ok + self.errors.total()

    def record(self, intended_ns: int, sent_ns: int, done_ns: int, error: str | None) -> None:
        """One answered request; ``error`` is the gRPC status name, or None on success."""
        second = min(max((done_ns - self.start_ns) // 1_000_000_000, 0), self._last_second)
        while len(self.seconds) <= second:
            self.seconds.append(Second())
        bucket = self.seconds[second]
        self.end_ns = max(self.end_ns, done_ns)
        if error is not None:
            self.errors[error] += 1
            bucket.errors += 1
            return
        latency_us = max(_LOWEST_US, (done_ns - intended_ns) // 1000)
        self.ok += 1
        bucket.ok += 1
        self.latency.record_value(min(latency_us, _HIGHEST_US))
        bucket.latency.record_value(min(latency_us, _HIGHEST_US))
        self.send_lag.record_value(min(max(_LOWEST_US, (sent_ns - intended_ns) // 1000), _HIGHEST_US))

    @property
    def elapsed_s(self) -> float:
        """From the start of the measurement to the last answer."""
        return max(self.end_ns - self.start_ns, 1) / 1e9
