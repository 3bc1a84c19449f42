"""A training value and the same value served as FP32 land in the same bin: the profile's edges and counts against
the inference server's sketch kernel, and the drift statistics of training rows served back."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import polars as pl
import pytest

from contract.entities import DriftRule
from control_plane.monitoring import compare
from inference_server.kernels import histogram_counts
from trainers.datasets import profile


def measurements(seed: int = 7, rows: int = 344) -> np.ndarray:
    """Like penguins' bill depths: one decimal, about 80 distinct values, so the quantile edges are data values."""
    rng = np.random.default_rng(seed)
    return np.round(rng.normal(17.15, 1.97, rows), 1)


def served_sketch(values: np.ndarray, edges: tuple[float, ...]) -> dict[str, int]:
    """What an inference server sends for ``values`` served as an FP32 input: the kernel's counts, labelled."""
    counts = np.zeros((1, len(edges) + 2), dtype=np.int64)
    histogram_counts(values.astype(np.float32).reshape(-1, 1), np.array([edges]), counts)
    bins = len(edges) - 1
    labels = [*(str(b) for b in range(bins)), "below", "above", "missing"]
    return {label: int(count) for label, count in zip(labels, counts[0], strict=True) if count}


def test_the_training_rows_served_as_fp32_fill_the_profile_bins_exactly() -> None:
    values = measurements()
    column = profile(pl.DataFrame({"bill_depth_mm": values})).column("bill_depth_mm")
    # The edges are data values (the situation that broke), and float32 numbers.
    assert set(column.bin_edges) & set(values.astype(np.float32).astype(np.float64).tolist())
    assert all(float(np.float32(edge)) == edge for edge in column.bin_edges)
    sketch = served_sketch(values, column.bin_edges)
    assert sketch == {str(b): c for b, c in enumerate(column.bin_counts)}
    drift = compare("bill_depth_mm", "numeric", column, sketch, DriftRule())
    assert drift is not None and drift.observed == drift.expected
    assert drift.chi2 == pytest.approx(0.0, abs=1e-12) and drift.chi2_p_value == pytest.approx(1.0) and drift.psi == 0.0


def test_float64_edges_would_move_training_rows_served_as_fp32() -> None:
    # The negative control: the old edges (float64 quantiles of the float64 values) do not hold the same rows once
    # the values are cast to float32, so the test above can fail.
    values = measurements()
    edges = tuple(float(e) for e in np.unique(np.quantile(values, np.linspace(0, 1, 11))))
    index = np.maximum(np.searchsorted(edges, values, side="left") - 1, 0)
    trained = np.bincount(index, minlength=len(edges) - 1)
    sketch = served_sketch(values, edges)
    served = [sketch.get(str(b), 0) for b in range(len(edges) - 1)]
    assert served != trained.tolist()


@pytest.mark.parametrize("seed", range(5))
def test_rows_resampled_from_the_training_data_do_not_drift(seed: int) -> None:
    values = measurements()
    column = profile(pl.DataFrame({"bill_depth_mm": values})).column("bill_depth_mm")
    rng = np.random.default_rng(seed)
    for size in (100, 344, 2000):
        drift = compare(
            "bill_depth_mm", "numeric", column, served_sketch(rng.choice(values, size), column.bin_edges), DriftRule()
        )
        assert drift is not None and not drift.drifted and not drift.too_few_rows
        assert drift.chi2_p_value > 1e-4, (size, drift.chi2, drift.chi2_p_value)
    # Shifted by 1.5 standard deviations, the same sizes drift.
    for size in (100, 344, 2000):
        shifted = rng.choice(values, size) + 1.5 * values.std()
        drift = compare("bill_depth_mm", "numeric", column, served_sketch(shifted, column.bin_edges), DriftRule())
        assert drift is not None and drift.drifted


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
def test_values_beyond_float32_keep_finite_edges() -> None:
    values = np.array([-1e300, *range(50), 1e300])
    column = profile(pl.DataFrame({"x": values})).column("x")
    assert all(np.isfinite(column.bin_edges)) and sum(column.bin_counts) == len(values)
    sketch = served_sketch(values, column.bin_edges)
    # Served as FP32 they are infinite: outside the edges, which the drift cells count in the outer bins.
    assert sketch["below"] == 1 and sketch["above"] == 1
    drift = compare("x", "numeric", column, sketch, DriftRule(min_rows=1))
    assert drift is not None and drift.observed == (*column.bin_counts, 0)


def test_what_the_profiler_makes_is_never_outdated_and_old_edges_are() -> None:
    values = np.concatenate([measurements(), [-1e300, 1e300]])
    cities = [f"city-{i % 30}" for i in range(len(values))]
    made = profile(pl.DataFrame({"bill_depth_mm": values, "city": cities, "sex": [i % 2 == 0 for i in values]}))
    assert not made.outdated and len(made.column("city").other_categories) == 10
    # The edges as Conduit computed them before (float64 quantiles): outdated, which re-importing fixes.
    old = tuple(float(e) for e in np.unique(np.quantile(measurements(), np.linspace(0, 1, 11))))
    assert replace(made.column("bill_depth_mm"), bin_edges=old).outdated
