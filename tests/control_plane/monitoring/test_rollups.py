"""Roll-ups from delta points: which metric feeds which field, the minute a point counts in, and precise refusals of
points that break the metric contract."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from contract.entities import LatencyHistogram, Rollup
from contract.errors import ConduitError, ErrorCode
from control_plane.monitoring import HistogramPoint, Point, SumPoint, Temporality, merge_histograms, rollups_of

T0_NS = int(datetime(2026, 6, 1, 12, 0, tzinfo=UTC).timestamp()) * 1_000_000_000
MINUTE_NS = 60 * 1_000_000_000
VERSION = {"model": "fraud", "version": "3"}


def _sum(metric: str, value: int, at_ns: int = T0_NS + 5, **attributes: str) -> SumPoint:
    pairs = tuple(sorted({**VERSION, **attributes}.items()))
    return SumPoint(metric, pairs, "server-1", Temporality.DELTA, at_ns - 10, at_ns, value)


def _histogram(counts: tuple[int, ...], status: str = "OK", metric: str = "conduit.inference.duration") -> Point:
    pairs = tuple(sorted({**VERSION, "status": status}.items()))
    histogram = LatencyHistogram((0.01, 0.1), counts, sum(counts), 0.3, 0.002, 0.2)
    return HistogramPoint(metric, pairs, "server-1", Temporality.DELTA, T0_NS, T0_NS + 1, histogram)


def _error(points: list[Point]) -> str:
    with pytest.raises(ConduitError) as caught:
        rollups_of(points)
    assert caught.value.code is ErrorCode.INVALID_ARGUMENT
    return caught.value.message


def test_each_metric_feeds_its_field_of_the_minute() -> None:
    (rollup,) = rollups_of(
        [
            _sum("conduit.inference.requests", 5, status="OK"),
            _sum("conduit.inference.requests", 2, status="INVALID_ARGUMENT"),
            _sum("conduit.inference.requests", 3, status="OK", at_ns=T0_NS + MINUTE_NS - 1),
            _histogram((1, 2, 1)),
            _histogram((4, 0, 0), status="INVALID_ARGUMENT"),
            _sum("conduit.sketch.bin", 4, feature="amount", bin="0"),
            _sum("conduit.sketch.bin", 1, feature="amount", bin="above"),
            _sum("conduit.sketch.category", 2, feature="city", category="paris"),
            _sum("conduit.sketch.category", 1, feature="@prediction", category="1"),
            _sum("conduit.sketch.bin", 0, feature="amount", bin="1"),
        ]
    )
    assert rollup == Rollup(
        model="fraud",
        version="3",
        minute=datetime(2026, 6, 1, 12, 0, tzinfo=UTC),
        requests=8,
        errors={"INVALID_ARGUMENT": 2},
        # Only the OK series: failures are counted above, not timed.
        latency=LatencyHistogram((0.01, 0.1), (1, 2, 1), 4, 0.3, 0.002, 0.2),
        sketches={
            ("amount", "numeric"): {"0": 4, "above": 1},
            ("city", "categorical"): {"paris": 2},
            ("@prediction", "categorical"): {"1": 1},
        },
    )


def test_points_count_in_the_minute_their_interval_ends_in() -> None:
    rollups = rollups_of(
        [_sum("conduit.inference.requests", 1, at_ns=T0_NS + i * MINUTE_NS // 2, status="OK") for i in range(5)]
    )
    assert [(r.minute.minute, r.requests) for r in rollups] == [(0, 2), (1, 2), (2, 1)]


@pytest.mark.parametrize(
    ("point", "says"),
    [
        (_sum("conduit.inference.requests", 1), "'status'"),
        (SumPoint("conduit.inference.requests", (("status", "OK"),), "", Temporality.DELTA, 0, T0_NS, 1), "'model'"),
        (_sum("conduit.inference.requests", 1, status="OK", model=""), "'model'"),
        (_sum("conduit.inference.requests", 1, status="OK", version="v" * 65), "longer than 64"),
        (_sum("conduit.sketch.bin", 1, feature="amount"), "'bin'"),
        (_sum("conduit.sketch.bin", 1, feature="amount", bin="01"), "bin '01'"),
        (_sum("conduit.sketch.bin", 1, feature="amount", bin="1000"), "below 1000"),
        (_sum("conduit.sketch.bin", 1, feature="amount", bin="-1"), "bin '-1'"),
        (_sum("conduit.sketch.category", 1, category="x"), "'feature'"),
        (_sum("conduit.inference.duration", 1, status="OK"), "must be a Histogram"),
        (_histogram((1, 0, 0), metric="conduit.inference.requests"), "must be a Sum"),
    ],
)
def test_points_breaking_the_contract_are_refused_by_name(point: Point, says: str) -> None:
    message = _error([_sum("conduit.inference.requests", 1, status="OK"), point])
    assert message.startswith(f"metric {point.metric}: ") and says in message


def test_a_feature_with_more_keys_than_any_profile_is_refused() -> None:
    points: list[Point] = [_sum("conduit.sketch.category", 1, feature="id", category=str(i)) for i in range(2001)]
    assert "2001 distinct" in _error(points)


def test_histograms_with_other_bounds_are_rebucketed_by_upper_bound() -> None:
    stored = LatencyHistogram((0.01, 0.1, 1.0), (1, 1, 1, 1), 4, 2.0, 0.001, 2.0)
    # Finer buckets whose bounds include the stored ones: exact.
    finer = LatencyHistogram((0.005, 0.01, 0.05, 0.1, 1.0), (1, 1, 1, 1, 1, 1), 6, 3.0, 0.0001, 3.0)
    merged = merge_histograms(stored, finer)
    assert merged == LatencyHistogram((0.01, 0.1, 1.0), (3, 3, 2, 2), 10, 5.0, 0.0001, 3.0)
    assert merge_histograms(None, stored) is stored and merge_histograms(stored, None) is stored
