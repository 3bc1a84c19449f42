"""Monitoring of served models, as a library: the metric contract inference servers push, and the per-minute
roll-ups built from their points. No grpc and no SQL here.
"""

from control_plane.monitoring.cumulative import CumulativeTracker, Pending
from control_plane.monitoring.histograms import merge_histograms, quantile
from control_plane.monitoring.points import Attributes, HistogramPoint, Point, SumPoint, Temporality
from control_plane.monitoring.rollups import fold, merge_counts, merge_rollups, minute_of, rollups_of

__all__ = [
    "Attributes",
    "CumulativeTracker",
    "HistogramPoint",
    "Pending",
    "Point",
    "SumPoint",
    "Temporality",
    "fold",
    "merge_counts",
    "merge_histograms",
    "merge_rollups",
    "minute_of",
    "quantile",
    "rollups_of",
]
