"""Monitoring reports: roll-ups grouped into epoch-aligned windows with their quantiles and drift, and the baseline
of the model's own predictions taken from the target column."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from contract.entities import (
    CategoryCount,
    ColumnProfile,
    DatasetProfile,
    DatasetVersion,
    DriftRule,
    LatencyHistogram,
    Rollup,
)
from control_plane.monitoring import Baseline, build_report, compare, quantile, window_start

T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
AMOUNT = ColumnProfile("amount", "Float64", "numeric", 10, 0.01, (0.0, 1.0, 2.0, 4.0), (300, 400, 290))
CITY = ColumnProfile(
    "city", "String", "categorical", 0, 0.0, top_categories=(CategoryCount("paris", 700), CategoryCount("lyon", 300))
)
# A classifier's target: sorted, "no" is class 0 and "yes" class 1.
LABEL = ColumnProfile(
    "label", "String", "categorical", 3, 0.003, top_categories=(CategoryCount("yes", 200), CategoryCount("no", 797))
)
PRICE = ColumnProfile("price", "Float64", "numeric", 7, 0.007, (0.0, 10.0, 20.0), (500, 493))


def baseline(target: str = "label", *columns: ColumnProfile) -> Baseline:
    profile = DatasetProfile(rows=1000, columns=(AMOUNT, CITY, LABEL, PRICE, *columns))
    dataset = DatasetVersion("credit", "0123456789abcdef", "f" * 64, 1, profile, "file:x", target, "", T0, "t")
    return Baseline.of(dataset)


def rollup(minute: int, **fields: object) -> Rollup:
    return Rollup("fraud", "1", T0 + timedelta(minutes=minute), **fields)  # type: ignore[arg-type]


def test_windows_start_at_multiples_of_their_length() -> None:
    assert window_start(datetime(2026, 6, 1, 12, 7, 31, tzinfo=UTC), 5) == datetime(2026, 6, 1, 12, 5, tzinfo=UTC)
    assert window_start(datetime(2026, 6, 1, 12, 7, 31, tzinfo=UTC), 1) == datetime(2026, 6, 1, 12, 7, tzinfo=UTC)
    assert window_start(datetime(2026, 6, 1, 12, 7, tzinfo=UTC), 60) == datetime(2026, 6, 1, 12, tzinfo=UTC)


def test_minutes_are_grouped_into_windows_with_quantiles_and_drift() -> None:
    bounds = (0.01, 0.1)
    shifted = {("amount", "numeric"): {"2": 80, "above": 20}, ("city", "categorical"): {"paris": 70, "lyon": 30}}
    report = build_report(
        "fraud",
        1,
        [
            rollup(0, requests=10, errors={"INTERNAL": 1}, latency=LatencyHistogram(bounds, (5, 5, 0), 10, 0.3)),
            rollup(1, requests=5, errors={"INTERNAL": 2, "NOT_FOUND": 1}, sketches=shifted),
            rollup(3, requests=1, latency=LatencyHistogram(bounds, (0, 0, 1), 1, 0.5, 0.5, 0.5)),
        ],
        minutes=2,
        baseline=baseline(),
        rule=DriftRule(),
    )
    first, second = report.windows
    assert (first.start, first.end, second.start) == (T0, T0 + timedelta(minutes=2), T0 + timedelta(minutes=2))
    assert (first.requests, first.errors) == (15, {"INTERNAL": 3, "NOT_FOUND": 1})
    assert first.latency is not None
    assert first.quantiles == tuple(quantile(first.latency, q) for q in (0.5, 0.9, 0.99))
    assert [f.feature for f in first.features] == ["amount", "city"]
    amount, city = first.features
    assert amount.drifted and not city.drifted
    assert (first.dataset_drift, first.drifted_share) == (True, 0.5)
    assert second.features == () and second.quantiles == (0.5, 0.5, 0.5)
    assert report.baseline is not None and report.baseline.name == "credit"


def test_prediction_baselines_come_from_the_target_column() -> None:
    classes = {("@prediction", "categorical"): {"0": 50, "1": 50}}
    report = build_report("fraud", 1, [rollup(0, sketches=classes)], minutes=1, baseline=baseline(), rule=DriftRule())
    (prediction,) = report.windows[0].features
    # Class i is the i-th target value in sorted order; a prediction is never missing.
    indexed = replace(LABEL, missing=0, top_categories=(CategoryCount("0", 797), CategoryCount("1", 200)))
    assert prediction == compare("@prediction", "categorical", indexed, {"0": 50, "1": 50}, DriftRule())
    assert prediction.drifted
    # The prediction does not count toward the data set's verdict.
    assert (report.windows[0].dataset_drift, report.windows[0].drifted_share) == (False, 0.0)

    values = {("@prediction", "numeric"): {"0": 50, "1": 50}}
    report = build_report(
        "fraud", 1, [rollup(0, sketches=values)], minutes=1, baseline=baseline("price"), rule=DriftRule()
    )
    (prediction,) = report.windows[0].features
    assert prediction == compare("@prediction", "numeric", replace(PRICE, missing=0), {"0": 50, "1": 50}, DriftRule())


def test_a_numeric_class_column_counts_its_values_as_classes() -> None:
    # Classes 2, 10 and 9 stored as integers: class indices follow numeric order (2, 9, 10), not text order.
    grade = ColumnProfile(
        "grade",
        "Int64",
        "numeric",
        4,
        0.004,
        (2.0, 9.0, 10.0),
        (600, 396),
        top_categories=(CategoryCount("2", 500), CategoryCount("10", 396), CategoryCount("9", 100)),
    )
    counts = {"0": 50, "1": 10, "2": 40}
    classes = {("@prediction", "categorical"): counts}
    report = build_report(
        "fraud", 1, [rollup(0, sketches=classes)], minutes=1, baseline=baseline("grade", grade), rule=DriftRule()
    )
    (prediction,) = report.windows[0].features
    indexed = (CategoryCount("0", 500), CategoryCount("1", 100), CategoryCount("2", 396))
    expected = replace(grade, kind="categorical", missing=0, top_categories=indexed)
    assert prediction == compare("@prediction", "categorical", expected, counts, DriftRule())
    assert not prediction.drifted


def test_predictions_without_a_baseline_are_left_out() -> None:
    # A numeric class column profiled without value counts (its quantile bins do not tell its classes apart); a
    # target with classes beyond its top categories does not name them all; a version without a data set has no
    # baseline at all.
    classes = {("@prediction", "categorical"): {"0": 60, "1": 40}, ("amount", "numeric"): {"0": 5}}
    partial = replace(LABEL, name="partial", other_count=5)
    for target in ("price", "partial", "missing-column"):
        report = build_report(
            "fraud", 1, [rollup(0, sketches=classes)], minutes=1, baseline=baseline(target, partial), rule=DriftRule()
        )
        assert [f.feature for f in report.windows[0].features] == ["amount"]
    report = build_report("fraud", 1, [rollup(0, sketches=classes)], minutes=1, baseline=None, rule=DriftRule())
    assert report.windows[0].features == () and report.baseline is None
