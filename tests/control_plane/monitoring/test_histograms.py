"""Latency quantiles from a histogram against the raw values it was built from."""

from __future__ import annotations

import numpy as np
import pytest

from contract.entities import LatencyHistogram
from control_plane.monitoring import quantile

# The inference server's latency buckets (inference_server.telemetry).
BOUNDS = (
    0.00005, 0.0001, 0.00015, 0.0002, 0.0003, 0.0004, 0.0005, 0.00075, 0.001, 0.0015, 0.002, 0.003, 0.005, 0.0075,
    0.01, 0.015, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip
QUANTILES = (0.5, 0.9, 0.99)


def histogram_of(values: np.ndarray) -> LatencyHistogram:
    """As OpenTelemetry buckets them: a value equal to a bound belongs to the bucket below it."""
    counts = np.bincount(np.searchsorted(BOUNDS, values, side="left"), minlength=len(BOUNDS) + 1)
    return LatencyHistogram(
        BOUNDS,
        tuple(int(c) for c in counts),
        len(values),
        float(values.sum()),
        float(values.min()),
        float(values.max()),
    )


def bucket(value: float) -> int:
    return int(np.searchsorted(BOUNDS, value, side="left"))


@pytest.mark.parametrize("seed", range(20))
@pytest.mark.parametrize("size", [1, 7, 100, 5000])
def test_quantiles_fall_in_the_bucket_of_the_true_quantile(seed: int, size: int) -> None:
    rng = np.random.default_rng(seed)
    values = rng.lognormal(np.log(0.002), 1.0, size)
    histogram = histogram_of(values)
    for q in QUANTILES:
        estimate = quantile(histogram, q)
        assert estimate is not None
        # The ceil(q * n)-th smallest value, the quantile the estimate interpolates.
        true = float(np.quantile(values, q, method="inverted_cdf"))
        assert bucket(estimate) == bucket(true) or estimate == BOUNDS[bucket(true) - 1]
        assert values.min() <= estimate <= values.max()
        if size >= 100:
            # And within one bucket of numpy's default quantile, which interpolates between neighbouring values: with
            # few values those may lie buckets apart.
            assert abs(bucket(estimate) - bucket(float(np.quantile(values, q)))) <= 1


def test_edge_cases() -> None:
    assert quantile(LatencyHistogram((0.1,), (0, 0), 0, 0.0), 0.5) is None
    one = histogram_of(np.array([0.003]))
    assert quantile(one, 0.5) == quantile(one, 0.99) == 0.003
    # Above every bound, without a reported max: the highest bound is all that is known.
    assert quantile(LatencyHistogram((0.1,), (0, 4), 4, 2.0), 0.5) == 0.1
    # Interpolation inside a bucket: 4 values in (0.1, 0.2], the median is half-way.
    assert quantile(LatencyHistogram((0.1, 0.2), (0, 4, 0), 4, 0.6, 0.1, 0.2), 0.5) == pytest.approx(0.15)
