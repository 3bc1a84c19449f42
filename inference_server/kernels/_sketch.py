"""Per-feature histogram sketches against fixed bin edges: the streaming half of drift monitoring.

The training profile supplies, per feature, quantile bin edges; the server adds the batches it serves into a counts
table and exports it (merging tables is adding them). The bins follow the profile's rule
(``trainers.datasets._profile``): the first bin is closed on both sides, ``[e0, e1]``, every later one is
``(e[i], e[i+1]]``, so a served value lands in the bin the training value equal to it was counted in.

That holds when both sides compare the same numbers: the profile's edges are float32 values and it counted the
float32-cast training values, so the sketches pass float32 values (whatever the input's datatype). A float32 value
against a float32 edge compares exactly in float64, where the kernel compares them; a float32 value against an edge
that is not a float32 (a profile made before) can fall one bin off a training value equal to the edge.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numba import types

from inference_server.kernels._jit import kernel

__all__ = ["histogram_counts"]

# Offsets of the extra columns after the ``bins`` bin columns (histogram_counts documents the layout).
_BELOW = 0
_ABOVE = 1
_MISSING = 2
# Up to this many bins, counting the inner edges at or below a value (vectorised, no branches) beats even a branch-free
# binary search, whose loads wait on each other (measured: 3x faster at 10 bins, even at 256, slower past 512).
_LINEAR_MAX_BINS = 512

_EDGES = types.Array(types.float64, 2, "C", readonly=True)
_COUNTS = types.Array(types.int64, 2, "C")


@kernel(
    *[(types.Array(scalar, 2, "C", readonly=True), _EDGES, _COUNTS) for scalar in (types.float32, types.float64)],
    nogil=True,  # a drift task can count on a worker thread while the event loop keeps serving
)
def _histogram(values: Any, edges: Any, counts: Any) -> int:
    """Add ``values`` into ``counts``; return -1, or the first feature whose edges are NaN or decreasing (no count
    is touched then)."""
    rows, features = values.shape
    bins = edges.shape[1] - 1
    for feature in range(features):
        for at in range(bins):
            # "not <=" rather than ">" so that NaN edges are refused too.
            if not edges[feature, at] <= edges[feature, at + 1]:
                return feature
    for row in range(rows):
        for feature in range(features):
            value = values[row, feature]
            # Branch-free slot selection: drifting data makes every data-dependent branch a coin flip, and a
            # mispredicted search cost 3x the whole update (benchmarks/kernels.py feeds fresh batches to show it).
            if bins <= _LINEAR_MAX_BINS:
                slot = 0
                for at in range(1, bins):
                    slot += edges[feature, at] < value
            else:
                slot = 0
                high = bins
                while high - slot > 1:
                    middle = (slot + high) >> 1
                    right = edges[feature, middle] < value
                    slot = middle if right else slot
                    high = high if right else middle
            # A value on an inner edge belongs to the bin that edge closes; e0 itself to the first bin.
            slot = bins + _BELOW if value < edges[feature, 0] else slot
            slot = bins + _ABOVE if value > edges[feature, bins] else slot
            slot = bins + _MISSING if np.isnan(value) else slot
            counts[feature, slot] += 1
    return -1


def histogram_counts(values: np.ndarray, edges: np.ndarray | list[Any], counts: np.ndarray) -> None:
    """Add a batch to per-feature histogram counts, in place.

    For ``bins`` bins (``edges`` has ``bins + 1`` columns), row ``f`` of ``counts`` holds, in order: the count of
    each bin, where bin 0 is ``[edges[f, 0], edges[f, 1]]`` and bin ``b > 0`` is ``(edges[f, b], edges[f, b + 1]]``
    (the training profile's rule); then values below range (``< edges[f, 0]``, -inf included); then above range
    (``> edges[f, -1]``, +inf included); then missing values (NaN). Tables for the same edges merge by addition.
    Features with fewer bins repeat their last edge: the padding bins stay empty.

    Args:
        values: rows × features, float32 or float64 (other numeric types are converted to float64).
        edges: features × (bins + 1) bin edges, non-decreasing per feature; a list of equal-length per-feature
            sequences works too.
        counts: features × (bins + 3) int64, C-contiguous, laid out as above.

    Raises:
        ValueError: when the shapes disagree, ``counts`` is not a writable C-contiguous int64 array, or a feature's
            edges are NaN or decreasing. These are the caller's bugs, not a request's: nothing is counted then.
    """
    edge_table = np.ascontiguousarray(edges, dtype=np.float64)
    if values.dtype not in (np.float32, np.float64):
        values = values.astype(np.float64)
    if values.ndim != 2 or edge_table.ndim != 2 or edge_table.shape[1] < 2:
        raise ValueError(
            f"need values of rows × features and edges of features × (bins + 1), bins >= 1; got values of shape "
            f"{values.shape} and edges of shape {edge_table.shape}"
        )
    features, bins = edge_table.shape[0], edge_table.shape[1] - 1
    if values.shape[1] != features or counts.shape != (features, bins + 3):
        raise ValueError(
            f"values have {values.shape[1]} features and edges {features} with {bins} bins, so counts must have "
            f"shape ({features}, {bins + 3}), not {counts.shape}"
        )
    if counts.dtype != np.int64 or not counts.flags.c_contiguous or not counts.flags.writeable:
        raise ValueError("counts must be a writable C-contiguous int64 array: they are updated in place")
    rows = np.ascontiguousarray(values).view()
    rows.setflags(write=False)  # one compiled signature for read-only and writable batches alike
    edge_table = edge_table.view()
    edge_table.setflags(write=False)
    bad = _histogram(rows, edge_table, counts)
    if bad >= 0:
        raise ValueError(f"bin edges of feature {bad} are NaN or decreasing: {edge_table[bad].tolist()}")
