"""What one ``conduit bench`` run measures: the target, the load, and how long."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import grpc

__all__ = ["Arrival", "BenchConfig", "Level", "parse_duration"]

Arrival = Literal["constant", "poisson"]

_DURATION = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*(ms|s|m|h)?\s*$")
_UNIT_S = {"ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


def parse_duration(text: str) -> float:
    """Seconds in ``text``: ``30s``, ``500ms``, ``2m``, ``1h`` or a bare number of seconds.

    Raises:
        ValueError: ``text`` is not a duration.
    """
    match = _DURATION.match(text)
    if match is None:
        raise ValueError(f"not a duration: {text!r} (use e.g. 30s, 500ms, 2m)")
    return float(match.group(1)) * _UNIT_S[match.group(2)]


@dataclass(frozen=True)
class Level:
    """One load level: a fixed number of callers (closed loop) or a fixed arrival rate (open loop)."""

    concurrency: int | None = None
    """Callers each sending their next request when the previous one is answered (closed loop)."""
    rate: float | None = None
    """Requests per second sent on a schedule, whatever the answers (open loop)."""

    def __post_init__(self) -> None:
        if (self.concurrency is None) == (self.rate is None):
            raise ValueError("a level has either a concurrency or a rate")
        if self.concurrency is not None and self.concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {self.concurrency}")
        if self.rate is not None and not self.rate > 0:
            raise ValueError(f"rate must be above 0, got {self.rate}")

    @property
    def label(self) -> str:
        """``c=16`` or ``r=500/s``."""
        return f"c={self.concurrency}" if self.concurrency is not None else f"r={self.rate:g}/s"


@dataclass(frozen=True)
class BenchConfig:
    """Everything a run needs; built by the command line or by a caller's own code."""

    target: str
    """``host:port`` of any Open Inference Protocol gRPC server."""
    model: str
    levels: tuple[Level, ...]
    version: str = ""
    """Model version to ask for; empty lets the server choose."""
    duration_s: float = 30.0
    """Measured seconds per level."""
    warmup_s: float = 5.0
    """Seconds of the same load before each level's measurement; not counted."""
    batch: int = 1
    """Rows per request (the batch dimension)."""
    streaming: bool = False
    """Send over ModelStreamInfer (one bidirectional stream per caller) instead of unary ModelInfer."""
    arrival: Arrival = "constant"
    """Open loop: evenly spaced sends, or a Poisson process with the same mean rate."""
    input_data: Path | None = None
    """Rows to send (perf_analyzer JSON, CSV, Parquet or .npy); random data shaped from ModelMetadata when None."""
    shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)
    """Sizes of dynamic dimensions other than the batch dimension, per input."""
    timeout_s: float = 10.0
    """Deadline of each request; an expired one counts as DEADLINE_EXCEEDED."""
    max_outstanding: int = 10_000
    """Open loop: most requests in flight at once; beyond it sends wait, and their wait counts as latency."""
    seed: int = 0
    metadata: tuple[tuple[str, str], ...] = ()
    """Headers sent with every call, e.g. ``("authorization", "Bearer …")``."""
    credentials: grpc.ChannelCredentials | None = field(default=None, compare=False)
    """TLS credentials of the channel (``clients.tls_credentials`` builds them); plaintext when None."""

    def __post_init__(self) -> None:
        if not self.levels:
            raise ValueError("no load level given")
        open_loop = {level.rate is not None for level in self.levels}
        if len(open_loop) > 1:
            raise ValueError("levels are either all concurrencies or all rates")
        if self.batch < 1:
            raise ValueError(f"batch must be at least 1, got {self.batch}")
        if not self.duration_s > 0:
            raise ValueError(f"duration must be above 0, got {self.duration_s}")
        if self.warmup_s < 0:
            raise ValueError(f"warmup must not be negative, got {self.warmup_s}")

    @property
    def open_loop(self) -> bool:
        """True when the levels are arrival rates."""
        return self.levels[0].rate is not None
