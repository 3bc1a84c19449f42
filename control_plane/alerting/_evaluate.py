"""Conditions evaluated against the monitoring roll-ups, read through the small ``MetricsSource`` protocol.

What the roll-ups must provide (the contract with the monitoring receiver):

- ``window_stats``: one ``WindowStats`` per model version and **one-minute window** (``[start, end)``, aligned to
  the minute, UTC) that ended within ``[since, until]``, oldest first. A window exists once any request of that
  minute has been received; a minute with no window is a minute without requests (or without data). Each carries
  ``requests`` (every answered request, failed ones included), ``errors`` (failed requests by status name, e.g.
  ``RESOURCE_EXHAUSTED``: the ``status`` attribute of ``conduit.inference.requests`` other than ``OK``) and
  ``latency``, the histogram of ``conduit.inference.duration`` for status ``OK`` with its **explicit bucket bounds
  in seconds** and delta counts for the window (``len(bounds) + 1`` counts, the last one above the last bound, as
  OpenTelemetry exports them).
- ``drift``: the population stability index of each input feature against the training baseline's bins, over the
  rows received in ``[since, until]``, and how many rows that was; None when nothing was received.
- ``ready``: whether the servers report the version ready (None: no server reports it).

Versions are strings, as the servers label their metrics.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from control_plane.alerting._expressions import (
    Condition,
    DriftAbove,
    DriftScope,
    ErrorRateAbove,
    NoTraffic,
    NotReady,
    P99Above,
)
from control_plane.alerting._state import Evaluation, Outcome

__all__ = ["DriftScores", "Evaluator", "LatencyHistogram", "MetricsSource", "WindowStats", "quantile"]


@dataclass(frozen=True, slots=True)
class LatencyHistogram:
    """Counts of latencies per bucket: ``counts[i]`` is in ``(bounds_s[i-1], bounds_s[i]]`` (the first from 0), and
    ``counts[-1]`` above ``bounds_s[-1]``."""

    bounds_s: tuple[float, ...]
    counts: tuple[int, ...]

    def __post_init__(self) -> None:
        if len(self.counts) != len(self.bounds_s) + 1:
            raise ValueError(
                f"{len(self.bounds_s)} bounds need {len(self.bounds_s) + 1} counts, not {len(self.counts)}"
            )
        if any(b <= a for a, b in zip(self.bounds_s, self.bounds_s[1:], strict=False)):
            raise ValueError("histogram bounds must increase")

    @property
    def total(self) -> int:
        return sum(self.counts)


@dataclass(frozen=True, slots=True)
class WindowStats:
    """What one version did in one window (see the module's docstring for each field's source)."""

    start: datetime
    end: datetime
    requests: int
    errors: Mapping[str, int] = field(default_factory=dict)
    latency: LatencyHistogram | None = None

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())


@dataclass(frozen=True, slots=True)
class DriftScores:
    """Per-feature PSI over a period and the number of rows it was computed from."""

    rows: int
    psi: Mapping[str, float]


class MetricsSource(Protocol):
    """The monitoring roll-ups, as alert evaluation reads them."""

    def window_stats(self, model: str, version: str, since: datetime, until: datetime) -> Sequence[WindowStats]:
        """The one-minute windows of ``model``/``version`` that ended in ``[since, until]``, oldest first."""
        ...

    def drift(self, model: str, version: str, since: datetime, until: datetime) -> DriftScores | None:
        """PSI per feature over the rows received in ``[since, until]``; None when none was."""
        ...

    def ready(self, model: str, version: str) -> bool | None:
        """Whether the servers report the version ready; None when no server reports it."""
        ...


def quantile(histogram: LatencyHistogram, q: float) -> float | None:
    """The ``q`` quantile in seconds, interpolated linearly inside its bucket (as Prometheus' ``histogram_quantile``
    does); ``inf`` when it falls above the last bound, None for an empty histogram."""
    total = histogram.total
    if total == 0:
        return None
    rank = q * total
    cumulative = 0
    for index, count in enumerate(histogram.counts):
        if count and cumulative + count >= rank:
            if index == len(histogram.bounds_s):
                return math.inf
            lower = histogram.bounds_s[index - 1] if index else 0.0
            upper = histogram.bounds_s[index]
            return lower + (upper - lower) * (rank - cumulative) / count
        cumulative += count
    return math.inf


def _p99_ms(window: WindowStats) -> float | None:
    if window.latency is None:
        return None
    seconds = quantile(window.latency, 0.99)
    return None if seconds is None else seconds * 1000


def _error_rate(window: WindowStats) -> float | None:
    return window.error_count / window.requests if window.requests else None


def _show_ms(ms: float) -> str:
    return "above the histogram's last bound" if math.isinf(ms) else f"{ms:.4g} ms"


class Evaluator:
    """Evaluates conditions at a given time against one ``MetricsSource``.

    Args:
        source: the roll-ups.
        lag_s: how late a window may arrive after it ends (the servers' export interval plus the roll-up's own
            delay); the newest data counts as current within this lag.
        drift_window_s: the period drift is measured over.
    """

    def __init__(self, source: MetricsSource, *, lag_s: float = 120.0, drift_window_s: float = 3600.0) -> None:
        self._source = source
        self._lag = timedelta(seconds=lag_s)
        self._drift_window = timedelta(seconds=drift_window_s)

    def evaluate(
        self, condition: Condition, model: str, version: str, at: datetime, *, watched_since: datetime | None = None
    ) -> Evaluation:
        """Whether ``condition`` holds for ``model``/``version`` at ``at``.

        Args:
            watched_since: when the version started to be served, if known: ``no_traffic`` counts no silence
                before it.
        """
        if isinstance(condition, P99Above | ErrorRateAbove):
            return self._per_window(condition, model, version, at)
        if isinstance(condition, NoTraffic):
            return self._no_traffic(condition, model, version, at, watched_since)
        if isinstance(condition, DriftAbove):
            return self._drift(condition, model, version, at)
        return self._ready(condition, model, version, at)

    def _windows(self, model: str, version: str, at: datetime, for_s: float) -> list[WindowStats]:
        since = at - timedelta(seconds=for_s) - self._lag
        return sorted(self._source.window_stats(model, version, since, at), key=lambda w: w.start)

    def _per_window(self, condition: P99Above | ErrorRateAbove, model: str, version: str, at: datetime) -> Evaluation:
        measure = _p99_ms if isinstance(condition, P99Above) else _error_rate
        threshold = condition.threshold
        # Windows without a value (no request) neither break nor extend a run: the condition is judged on data.
        measured = [(w, v) for w in self._windows(model, version, at, condition.for_s) if (v := measure(w)) is not None]
        if not measured or measured[-1][0].end < at - self._lag:
            return Evaluation(Outcome.NO_DATA, at, detail="no request in the window")
        newest, value = measured[-1]
        shown = _show_ms(value) if isinstance(condition, P99Above) else f"{value:.4%}"
        if not value > threshold:
            return Evaluation(Outcome.CLEAR, at, _finite(value), detail=f"{condition.metric} {shown}")
        since = newest.start
        for window, earlier in reversed(measured[:-1]):
            if not earlier > threshold:
                break
            since = window.start
        return Evaluation(
            Outcome.HOLDS, at, _finite(value), since=since, through=newest.end, detail=f"{condition.metric} {shown}"
        )

    def _no_traffic(
        self, condition: NoTraffic, model: str, version: str, at: datetime, watched_since: datetime | None
    ) -> Evaluation:
        busy = [w for w in self._windows(model, version, at, condition.for_s) if w.requests > 0]
        if busy and busy[-1].end >= at - self._lag:
            return Evaluation(Outcome.CLEAR, at, 0.0, detail="requests are arriving")
        # The last traffic we know of; with none in the whole range, the silence is at least that long.
        quiet_since = busy[-1].end if busy else at - timedelta(seconds=condition.for_s) - self._lag
        if watched_since is not None:
            quiet_since = max(quiet_since, watched_since)
        quiet_s = (at - quiet_since).total_seconds()
        return Evaluation(
            Outcome.HOLDS, at, quiet_s, since=quiet_since, detail=f"no request for {quiet_s:.0f} s or more"
        )

    def _drift(self, condition: DriftAbove, model: str, version: str, at: datetime) -> Evaluation:
        scores = self._source.drift(model, version, at - self._drift_window, at)
        psi = {name: value for name, value in (scores.psi if scores else {}).items() if math.isfinite(value)}
        if scores is None or scores.rows == 0 or not psi:
            return Evaluation(Outcome.NO_DATA, at, detail="no rows to compare with the baseline")
        drifted = sorted(name for name, value in psi.items() if value > condition.threshold)
        value = max(psi.values()) if condition.scope is DriftScope.ANY else min(psi.values())
        detail = f"{len(drifted)} of {len(psi)} features above PSI {condition.threshold}"
        if drifted:
            detail += ": " + ", ".join(drifted[:10]) + (", …" if len(drifted) > 10 else "")
        outcome = Outcome.HOLDS if value > condition.threshold else Outcome.CLEAR
        return Evaluation(outcome, at, value, detail=detail)

    def _ready(self, condition: NotReady, model: str, version: str, at: datetime) -> Evaluation:
        ready = self._source.ready(model, version)
        if ready is None:
            return Evaluation(Outcome.NO_DATA, at, detail="no server reports this version")
        if ready:
            return Evaluation(Outcome.CLEAR, at, detail="ready")
        return Evaluation(Outcome.HOLDS, at, detail="not ready")


def _finite(value: float) -> float | None:
    # JSON has no infinity: a p99 above the histogram's range is reported in the detail instead.
    return value if math.isfinite(value) else None
