"""Monitoring reports: a model version's per-minute roll-ups grouped into windows, with latency quantiles and the
drift of every sketched feature against the training profile.

The baseline of ``@prediction`` is the profile of the data set's target column, without its missing values (a
prediction is never missing, and training drops unlabelled rows): a regressor's predictions are binned over its
bins; a classifier's class indices stand for the target's values in sorted order (the trainers' encoding), which the
profile gives when every class is among the target's top categories: categorical and boolean targets, and numeric
ones of few whole numbers, whose profile counts each value (sorted as numbers). Profiles made before numeric columns
had value counts give no baseline for such a classifier's predictions.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from contract import metrics
from contract.entities import (
    CategoryCount,
    ColumnProfile,
    DatasetRef,
    DatasetVersion,
    DriftRule,
    FeatureDrift,
    MonitoringReport,
    MonitoringWindow,
    Rollup,
)
from control_plane.monitoring.drift import compare, dataset_verdict
from control_plane.monitoring.histograms import quantile
from control_plane.monitoring.rollups import merge_rollups

__all__ = ["QUANTILES", "Baseline", "build_report", "window_start"]

QUANTILES = (0.5, 0.9, 0.99)


@dataclass(frozen=True, slots=True)
class Baseline:
    """The data set version a model was trained on: the profile its features are compared with."""

    dataset: str
    version: str
    columns: Mapping[str, ColumnProfile]
    target: str = ""

    @classmethod
    def of(cls, dataset: DatasetVersion) -> Baseline:
        columns = {column.name: column for column in dataset.profile.columns}
        return cls(dataset.name, dataset.version, columns, dataset.target)

    def column(self, feature: str, kind: str) -> ColumnProfile | None:
        """The profile ``feature``'s sketch of ``kind`` is compared with, if any."""
        if feature != metrics.PREDICTION:
            return self.columns.get(feature)
        target = self.columns.get(self.target)
        if target is None:
            return None
        if kind == metrics.NUMERIC:
            return replace(target, missing=0) if target.kind == metrics.NUMERIC else None
        if target.other_count or not target.top_categories:
            return None
        if target.kind in ("categorical", "boolean"):
            classes = sorted(target.top_categories, key=lambda category: category.value)
        elif target.kind == metrics.NUMERIC:
            classes = sorted(target.top_categories, key=lambda category: float(category.value))
        else:
            return None
        indexed = tuple(CategoryCount(str(index), category.count) for index, category in enumerate(classes))
        return replace(target, kind=metrics.CATEGORICAL, missing=0, top_categories=indexed)


def window_start(moment: datetime, minutes: int) -> datetime:
    """The start of the ``minutes``-long window holding ``moment``: windows start at multiples of their length since
    the Unix epoch, so the same call made twice groups the same minutes."""
    length = minutes * 60
    return datetime.fromtimestamp(int(moment.timestamp()) // length * length, UTC)


def _order(drift: FeatureDrift) -> tuple[bool, str]:
    return drift.feature == metrics.PREDICTION, drift.feature


def _window(
    start: datetime, minutes: int, rollups: Sequence[Rollup], baseline: Baseline | None, rule: DriftRule
) -> MonitoringWindow:
    merged = functools.reduce(merge_rollups, rollups)
    features: list[FeatureDrift] = []
    for (feature, kind), counts in merged.sketches.items():
        column = baseline.column(feature, kind) if baseline is not None else None
        drift = compare(feature, kind, column, counts, rule) if column is not None else None
        if drift is not None:
            features.append(drift)
    features.sort(key=_order)
    drifted, share, too_few = dataset_verdict(features, rule)
    latency = merged.latency
    return MonitoringWindow(
        start=start,
        end=start + timedelta(minutes=minutes),
        requests=merged.requests,
        errors=dict(sorted(merged.errors.items())),
        latency=latency,
        quantiles=tuple(quantile(latency, q) if latency is not None else None for q in QUANTILES),
        features=tuple(features),
        dataset_drift=drifted,
        drifted_share=share,
        too_few_rows=too_few,
    )


def build_report(
    model: str,
    version: int,
    rollups: Sequence[Rollup],
    *,
    minutes: int,
    baseline: Baseline | None,
    rule: DriftRule,
) -> MonitoringReport:
    """Group ``rollups`` (one model version's) into windows of ``minutes``; windows without a roll-up are left out."""
    groups: dict[datetime, list[Rollup]] = {}
    for rollup in rollups:
        groups.setdefault(window_start(rollup.minute, minutes), []).append(rollup)
    windows = tuple(_window(start, minutes, groups[start], baseline, rule) for start in sorted(groups))
    source = None if baseline is None else DatasetRef(baseline.dataset, baseline.version)
    return MonitoringReport(model, version, source, rule, windows)
