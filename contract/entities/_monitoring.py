"""What the servers report: per-minute roll-ups of their metrics and sketches, and sampled prediction logs."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

__all__ = ["LatencyHistogram", "NewPredictionLog", "PredictionLog", "Rollup"]


@dataclass(frozen=True, slots=True)
class LatencyHistogram:
    """Request durations in seconds as OpenTelemetry exports them: ``counts[i]`` holds the values in
    ``(bounds[i-1], bounds[i]]``, the last count those above ``bounds[-1]``."""

    bounds: tuple[float, ...]
    counts: tuple[int, ...]
    """One more than ``bounds``."""
    count: int
    sum: float
    min: float | None = None
    """None when no exporter reported it."""
    max: float | None = None


@dataclass(frozen=True, slots=True)
class Rollup:
    """What the inference servers reported about one model version during one minute (UTC), or what is added to it.

    ``version`` is the text the servers send, so that a server outside the registry is recorded too.
    """

    model: str
    version: str
    minute: datetime
    """The minute's first instant, timezone-aware."""
    requests: int = 0
    """Requests answered OK."""
    errors: Mapping[str, int] = field(default_factory=dict)
    """Failed requests by status name (``INVALID_ARGUMENT``…)."""
    latency: LatencyHistogram | None = None
    """Durations of the OK requests; None: none reported."""
    sketches: Mapping[tuple[str, str], Mapping[str, int]] = field(default_factory=dict)
    """(feature, ``numeric`` or ``categorical``) -> count per bin or category, as the servers send them."""


@dataclass(frozen=True, slots=True)
class NewPredictionLog:
    """A Parquet file of sampled predictions of one model version, as an inference server announces it; its bytes
    are already stored under ``sha256``."""

    model: str
    version: int
    first_at: datetime
    """Time of its earliest row, timezone-aware."""
    last_at: datetime
    """Time of its latest row."""
    rows: int
    sha256: str
    size_bytes: int
    server: str
    """Instance name of the server that sampled it."""


@dataclass(frozen=True, slots=True)
class PredictionLog:
    """A stored prediction log; ``sha256`` is its key in the artifact store."""

    id: int
    model: str
    version: int
    first_at: datetime
    last_at: datetime
    rows: int
    sha256: str
    size_bytes: int
    server: str
    created_at: datetime
    created_by: str
