"""Latency histograms: adding two, and estimating quantiles from one.

Quantiles are interpolated linearly inside the bucket that holds them, like Prometheus' ``histogram_quantile``, with
one refinement: the first bucket starts at the observed minimum and the overflow bucket ends at the observed maximum
(when the exporter sent them), and no estimate leaves ``[min, max]``. The estimate therefore lies in the same bucket
as the true quantile of the recorded values (the ``ceil(q * count)``-th smallest), and is exact when a bucket holds
one distinct value at its bound.
"""

from __future__ import annotations

import bisect

from contract.entities import LatencyHistogram

__all__ = ["merge_histograms", "quantile"]


def _lowest(a: float | None, b: float | None) -> float | None:
    return b if a is None else a if b is None else min(a, b)


def _highest(a: float | None, b: float | None) -> float | None:
    return b if a is None else a if b is None else max(a, b)


def _rebucket(histogram: LatencyHistogram, bounds: tuple[float, ...]) -> list[int]:
    """``histogram``'s counts in the buckets of ``bounds``: each of its buckets goes where its upper bound falls."""
    counts = [0] * (len(bounds) + 1)
    for index, count in enumerate(histogram.counts):
        upper = histogram.bounds[index] if index < len(histogram.bounds) else float("inf")
        counts[bisect.bisect_left(bounds, upper)] += count
    return counts


def merge_histograms(a: LatencyHistogram | None, b: LatencyHistogram | None) -> LatencyHistogram | None:
    """The histogram of both ``a``'s and ``b``'s values.

    Histograms with other bounds (a server that changed its buckets) are re-bucketed into ``a``'s: a bucket's values
    move to the bucket of ``a`` holding its upper bound, which is exact when every bound of ``a`` is one of ``b``'s.
    """
    if a is None or b is None:
        return b if a is None else a
    other = list(b.counts) if b.bounds == a.bounds else _rebucket(b, a.bounds)
    return LatencyHistogram(
        bounds=a.bounds,
        counts=tuple(x + y for x, y in zip(a.counts, other, strict=True)),
        count=a.count + b.count,
        sum=a.sum + b.sum,
        min=_lowest(a.min, b.min),
        max=_highest(a.max, b.max),
    )


def quantile(histogram: LatencyHistogram, q: float) -> float | None:
    """The ``q``-quantile (0..1) of the histogram's values; None when it is empty."""
    total = sum(histogram.counts)
    if total == 0:
        return None
    rank = q * total
    below = 0
    for index, count in enumerate(histogram.counts):
        if count == 0 or below + count < rank:
            below += count
            continue
        lower = histogram.bounds[index - 1] if index > 0 else histogram.min
        upper = histogram.bounds[index] if index < len(histogram.bounds) else histogram.max
        # Without a reported min (max), the first (overflow) bucket has one bound only: its bound is the estimate.
        if lower is None:
            lower = upper
        if upper is None:
            upper = lower
        assert lower is not None and upper is not None
        if histogram.min is not None:
            lower = max(lower, histogram.min)
        if histogram.max is not None:
            upper = min(upper, histogram.max)
        upper = max(upper, lower)
        return lower + (upper - lower) * max(rank - below, 0.0) / count
    return None
