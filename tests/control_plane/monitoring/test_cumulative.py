"""Cumulative points become deltas: differences per series, resets, first points of series older than the receiver,
nothing remembered until committed, silent series forgotten."""

from __future__ import annotations

from contract.entities import LatencyHistogram
from control_plane.monitoring import CumulativeTracker, HistogramPoint, Point, SumPoint, Temporality

STARTED_NS = 1_000_000_000_000
S = 1_000_000_000
ATTRIBUTES = (("model", "fraud"), ("status", "OK"), ("version", "1"))


def _sum(value: int, at_s: int, *, start_ns: int = STARTED_NS + S, instance: str = "a") -> SumPoint:
    at = STARTED_NS + at_s * S
    return SumPoint("conduit.inference.requests", ATTRIBUTES, instance, Temporality.CUMULATIVE, start_ns, at, value)


def _values(points: list[Point]) -> list[int]:
    return [p.value for p in points if isinstance(p, SumPoint)]


def _track(tracker: CumulativeTracker, *points: Point) -> list[Point]:
    deltas, pending = tracker.deltas(list(points))
    tracker.commit(pending, max(p.time_ns for p in points))
    assert all(p.temporality is Temporality.DELTA for p in deltas)
    return deltas


def test_differences_of_a_series_and_its_resets() -> None:
    tracker = CumulativeTracker(started_ns=STARTED_NS)
    assert _values(_track(tracker, _sum(10, 10))) == [10]  # started after the receiver: counted whole
    assert _values(_track(tracker, _sum(25, 20))) == [15]
    assert _values(_track(tracker, _sum(25, 30))) == [0]
    # Another process's series with the same attributes is its own.
    assert _values(_track(tracker, _sum(7, 30, instance="b"))) == [7]
    # A new start time: the process restarted.
    assert _values(_track(tracker, _sum(4, 40, start_ns=STARTED_NS + 35 * S))) == [4]
    # Lower than before at the same start: a reset that kept its start time counts whole.
    assert _values(_track(tracker, _sum(3, 50, start_ns=STARTED_NS + 35 * S))) == [3]


def test_a_series_older_than_the_receiver_starts_as_a_reference_only() -> None:
    tracker = CumulativeTracker(started_ns=STARTED_NS)
    assert _track(tracker, _sum(1000, 10, start_ns=STARTED_NS - 60 * S)) == []
    assert _values(_track(tracker, _sum(1004, 20, start_ns=STARTED_NS - 60 * S))) == [4]


def test_two_points_of_a_series_in_one_export_and_uncommitted_state() -> None:
    tracker = CumulativeTracker(started_ns=STARTED_NS)
    deltas, _ = tracker.deltas([_sum(5, 10), _sum(8, 20)])
    assert _values(deltas) == [5, 3]
    # Not committed (the store refused the write): the retry counts the same again.
    assert _values(_track(tracker, _sum(5, 10), _sum(8, 20))) == [5, 3]
    assert _values(_track(tracker, _sum(9, 30))) == [1]


def test_histogram_differences_drop_running_min_and_max() -> None:
    tracker = CumulativeTracker(started_ns=STARTED_NS)

    def point(counts: tuple[int, ...], total: float, at_s: int) -> HistogramPoint:
        histogram = LatencyHistogram((0.1,), counts, sum(counts), total, 0.01, 0.5)
        at = STARTED_NS + at_s * S
        metric = "conduit.inference.duration"
        return HistogramPoint(metric, ATTRIBUTES, "a", Temporality.CUMULATIVE, STARTED_NS + S, at, histogram)

    (first,) = _track(tracker, point((2, 1), 0.6, 10))
    assert isinstance(first, HistogramPoint) and first.histogram == LatencyHistogram((0.1,), (2, 1), 3, 0.6, 0.01, 0.5)
    (second,) = _track(tracker, point((5, 1), 0.9, 20))
    assert isinstance(second, HistogramPoint)
    difference = second.histogram
    assert (difference.counts, difference.count, round(difference.sum, 9)) == ((3, 0), 3, 0.3)
    assert (difference.min, difference.max) == (None, None)


def test_delta_points_pass_unchanged_and_silent_series_are_forgotten() -> None:
    tracker = CumulativeTracker(started_ns=STARTED_NS, stale_after_s=60)
    delta = SumPoint("conduit.inference.requests", ATTRIBUTES, "a", Temporality.DELTA, 0, STARTED_NS, 3)
    assert _track(tracker, delta) == [delta]
    _track(tracker, _sum(5, 10))
    assert len(tracker) == 1
    _track(tracker, _sum(1, 200, instance="b"))
    assert len(tracker) == 1
