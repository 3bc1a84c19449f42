"""Cumulative points turned into deltas, so that roll-ups only ever add.

A cumulative series is one (process, metric, attributes, start time): its points count everything since its start,
so the receiver remembers the last value of each and adds only the difference. A new start time is a new series
(the process restarted or reset its instrument); a value lower than the last one at the same start time is a reset
too, and counts whole.

The first point of a series is counted whole when the series started after this receiver did; otherwise it only
becomes the reference: what it counts may already have been counted before this receiver started (a control plane
restart), and counting it again would add it twice. The OpenTelemetry Collector's ``cumulativetodelta`` processor
decides its ``auto`` initial value the same way. State lives in this process only: servers behind several control
plane replicas must push deltas (as ``conduit serve`` does), since no replica sees every point of a series.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from contract.entities import LatencyHistogram
from control_plane.monitoring.points import Attributes, HistogramPoint, Point, SumPoint, Temporality

__all__ = ["CumulativeTracker", "Pending"]

NS_PER_S = 1_000_000_000
SeriesKey = tuple[str, str, Attributes, int]


@dataclass(frozen=True, slots=True)
class Pending:
    """What ``CumulativeTracker.deltas`` would remember; ``commit`` it once the deltas are stored."""

    last: dict[SeriesKey, Point]


def _key(point: Point) -> SeriesKey:
    return (point.instance, point.metric, point.attributes, point.start_ns)


def _difference(current: Point, last: Point) -> Point:
    """``current`` minus ``last`` as a delta point, or ``current`` whole when it went down (a reset)."""
    if isinstance(current, SumPoint) and isinstance(last, SumPoint):
        if current.value < last.value:
            return current
        return replace(current, start_ns=last.time_ns, value=current.value - last.value)
    if isinstance(current, HistogramPoint) and isinstance(last, HistogramPoint):
        now, before = current.histogram, last.histogram
        if now.bounds != before.bounds:
            return current
        counts = tuple(a - b for a, b in zip(now.counts, before.counts, strict=True))
        if min(counts, default=0) < 0 or now.count < before.count:
            return current
        # A running minimum or maximum says nothing about the values since the last point.
        difference = LatencyHistogram(now.bounds, counts, now.count - before.count, now.sum - before.sum)
        return replace(current, start_ns=last.time_ns, histogram=difference)
    return current


class CumulativeTracker:
    """Remembers the last point of every cumulative series it saw.

    Args:
        started_ns: When the receiver started (Unix ns): series that started before are not counted whole.
        stale_after_s: A series not seen for this long is forgotten (its process is gone).
    """

    def __init__(self, *, started_ns: int, stale_after_s: float = 3600.0) -> None:
        self._started_ns = started_ns
        self._stale_ns = int(stale_after_s * NS_PER_S)
        self._last: dict[SeriesKey, Point] = {}
        self._seen: dict[SeriesKey, int] = {}
        self._swept_ns = started_ns

    def __len__(self) -> int:
        return len(self._last)

    def deltas(self, points: Sequence[Point]) -> tuple[list[Point], Pending]:
        """Every point as a delta (delta points unchanged); nothing is remembered until ``commit``."""
        out: list[Point] = []
        last: dict[SeriesKey, Point] = {}
        for point in points:
            if point.temporality is Temporality.DELTA:
                out.append(point)
                continue
            key = _key(point)
            previous = last.get(key) or self._last.get(key)
            last[key] = point
            if previous is not None:
                out.append(replace(_difference(point, previous), temporality=Temporality.DELTA))
            elif point.start_ns >= self._started_ns:
                out.append(replace(point, temporality=Temporality.DELTA))
        return out, Pending(last)

    def commit(self, pending: Pending, now_ns: int) -> None:
        """Remember the points of ``pending``; forget series silent for longer than ``stale_after_s``."""
        self._last.update(pending.last)
        self._seen.update(dict.fromkeys(pending.last, now_ns))
        if now_ns - self._swept_ns >= self._stale_ns // 4:
            self._swept_ns = now_ns
            for key in [key for key, seen in self._seen.items() if now_ns - seen > self._stale_ns]:
                del self._last[key], self._seen[key]
