"""Monitoring of served models, as a library: the points of the metrics inference servers push, the per-minute roll-ups
built from their points, and drift against training profiles. No grpc and no SQL here: the receiver and the API are
in ``control_plane.transport``, the roll-ups' storage in ``control_plane.store``, the calls in
``control_plane.service.monitoring``.
"""

from control_plane.monitoring.cumulative import CumulativeTracker, Pending
from control_plane.monitoring.drift import compare, dataset_verdict
from control_plane.monitoring.histograms import merge_histograms, quantile
from control_plane.monitoring.points import Attributes, HistogramPoint, Point, SumPoint, Temporality
from control_plane.monitoring.report import QUANTILES, Baseline, build_report, window_start
from control_plane.monitoring.rollups import (
    MAX_COUNT,
    check_counts,
    fold,
    merge_counts,
    merge_rollups,
    minute_of,
    rollups_of,
)

__all__ = [
    "MAX_COUNT",
    "QUANTILES",
    "Attributes",
    "Baseline",
    "CumulativeTracker",
    "HistogramPoint",
    "Pending",
    "Point",
    "SumPoint",
    "Temporality",
    "build_report",
    "check_counts",
    "compare",
    "dataset_verdict",
    "fold",
    "merge_counts",
    "merge_histograms",
    "merge_rollups",
    "minute_of",
    "quantile",
    "rollups_of",
    "window_start",
]
