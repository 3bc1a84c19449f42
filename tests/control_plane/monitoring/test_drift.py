"""Drift numbers against a straightforward computation on the raw samples: profiles and sketches built from samples
with numpy (the trainers' and servers' binning rules), statistics from scipy. Exact to 1e-9 where the definitions
are the same; the verdicts where they are not."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import replace

import numpy as np
import pytest
from scipy import stats
from scipy.spatial.distance import jensenshannon

from contract.entities import CategoryCount, ColumnProfile, DriftRule, FeatureDrift
from control_plane.monitoring import compare, dataset_verdict
from control_plane.monitoring.drift import EPSILON, chi_squared

from .conftest import categorical_sketch, numeric_sketch

RULE = DriftRule()
TOP = 5


def numeric_profile(values: np.ndarray, bins: int = 10) -> ColumnProfile:
    """As ``trainers.datasets`` profiles a numeric column: quantile edges, ``[e0, e1]`` then ``(e[i], e[i+1]]``."""
    present = values[~np.isnan(values)]
    edges = np.unique(np.quantile(present, np.linspace(0.0, 1.0, bins + 1)))
    index = np.maximum(np.searchsorted(edges, present, side="left") - 1, 0)
    counts = np.bincount(index, minlength=len(edges) - 1)
    missing = int(np.isnan(values).sum())
    return ColumnProfile(
        name="x",
        dtype="Float64",
        kind="numeric",
        missing=missing,
        missing_rate=missing / len(values),
        bin_edges=tuple(float(e) for e in edges),
        bin_counts=tuple(int(c) for c in counts),
    )


def categorical_profile(values: list[str | None]) -> ColumnProfile:
    present = [v for v in values if v is not None]
    ranked = sorted(Counter(present).items(), key=lambda item: (-item[1], item[0]))
    top = tuple(CategoryCount(v, c) for v, c in ranked[:TOP])
    return ColumnProfile(
        name="city",
        dtype="String",
        kind="categorical",
        missing=len(values) - len(present),
        missing_rate=(len(values) - len(present)) / len(values),
        distinct=len(ranked),
        top_categories=top,
        other_count=len(present) - sum(c.count for c in top),
    )


# -- the straightforward computation -------------------------------------------------------------------------------


def reference_psi(expected: np.ndarray, actual: np.ndarray) -> float:
    p = np.maximum(expected / expected.sum(), EPSILON)
    q = np.maximum(actual / actual.sum(), EPSILON)
    return float(np.sum((q - p) * np.log(q / p)))


def reference_chi2(
    expected: np.ndarray, observed: np.ndarray, min_expected: float = RULE.min_expected
) -> tuple[float, float]:
    """scipy's χ² over the cells after Cochran's pooling: cells expecting fewer than ``min_expected`` rows become one
    cell (joined to the smallest other one when it still expects too few); cells the training never had, one more."""
    f_exp = observed.sum() * expected / expected.sum()
    unseen = expected == 0
    small = ~unseen & (f_exp < min_expected)
    large = ~unseen & ~small
    obs, exp = list(observed[large]), list(f_exp[large])
    if small.any():
        if f_exp[small].sum() >= min_expected or not exp:
            obs.append(observed[small].sum())
            exp.append(f_exp[small].sum())
        else:
            smallest = int(np.argmin(exp))
            obs[smallest] += observed[small].sum()
            exp[smallest] += f_exp[small].sum()
    if observed[unseen].sum() > 0:
        obs.append(observed[unseen].sum())
        exp.append(0.0)
    if len(obs) < 2:
        return 0.0, 1.0
    with np.errstate(divide="ignore", invalid="ignore"):
        result = stats.chisquare(np.array(obs), np.array(exp))
    return float(result.statistic), float(result.pvalue)


def numeric_cells(train: np.ndarray, window: np.ndarray, edges: tuple[float, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Training and window counts per bin (outer values clipped to the edges), then missing, from the raw samples."""
    bounds = np.asarray(edges)
    cells = []
    for values in (train, np.clip(window, edges[0], edges[-1])):
        present = values[~np.isnan(values)]
        upto = np.array([(present <= e).sum() for e in bounds[1:]], dtype=float)
        cells.append(np.append(np.diff(np.concatenate([[0.0], upto])), np.isnan(values).sum()))
    return cells[0], cells[1]


def categorical_cells(profile: ColumnProfile, window: list[str | None]) -> tuple[np.ndarray, np.ndarray]:
    """Training and window counts per top category, then the other categories, then missing."""
    top = [c.value for c in profile.top_categories]
    expected = np.array([*(c.count for c in profile.top_categories), profile.other_count, profile.missing], float)
    counts = Counter(window)
    other = sum(n for v, n in counts.items() if v is not None and v not in top)
    return expected, np.array([*(counts[c] for c in top), other, counts[None]], float)


def numeric_reference(train: np.ndarray, window: np.ndarray, edges: tuple[float, ...]) -> dict[str, float]:
    """From the raw samples: the bins (outer values clipped to the edges) and the ECDFs at the edges; scipy."""
    train_present, window_present = train[~np.isnan(train)], window[~np.isnan(window)]
    clipped = np.clip(window_present, edges[0], edges[-1])
    bounds = np.asarray(edges)
    expected, observed = numeric_cells(train, window, edges)
    f_train = np.array([(train_present <= e).mean() for e in bounds[1:]])
    f_window = np.array([(clipped <= e).mean() for e in bounds[1:]])
    ks = float(np.max(np.abs(f_train - f_window)))
    n, m = len(train_present), len(window_present)
    chi2, chi2_p = reference_chi2(expected, observed)
    return {
        "psi": reference_psi(expected, observed),
        "js": float(jensenshannon(expected, observed, base=2)),
        "ks": ks,
        "ks_p_value": float(np.clip(stats.kstwo.sf(ks, np.round(n * m / (n + m))), 0, 1)),
        "chi2": chi2,
        "chi2_p_value": chi2_p,
    }


def assert_matches(found: FeatureDrift | None, reference: dict[str, float]) -> None:
    assert found is not None
    for name, value in reference.items():
        assert getattr(found, name) == pytest.approx(value, rel=1e-9, abs=1e-12), name


# -- numeric -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize(("shift", "size"), [(0.0, 2000), (0.3, 500), (1.5, 300), (0.0, 40)])
def test_numeric_drift_matches_scipy_on_the_samples(seed: int, shift: float, size: int) -> None:
    rng = np.random.default_rng(seed)
    train = rng.normal(10.0, 2.0, 5000)
    train[rng.random(5000) < 0.02] = np.nan
    window = rng.normal(10.0 + shift * 2.0, 2.0 * (1 + shift / 3), size)
    window[rng.random(size) < 0.03] = np.nan
    profile = numeric_profile(train)
    found = compare("x", "numeric", profile, numeric_sketch(window, profile.bin_edges), RULE)
    assert_matches(found, numeric_reference(train, window, profile.bin_edges))
    assert found is not None and found.count == size


def test_numeric_ks_equals_ks_2samp_when_values_sit_on_the_edges() -> None:
    # Samples drawn from the upper edges: their ECDFs only step there, so binning hides nothing and the binned
    # distance and p-value are scipy's own on the raw samples.
    rng = np.random.default_rng(3)
    edges = (0.0, 1.0, 2.0, 3.0, 5.0, 8.0)
    train = rng.choice(edges[1:], 4000, p=[0.1, 0.2, 0.3, 0.3, 0.1])
    window = rng.choice(edges[1:], 700, p=[0.15, 0.2, 0.25, 0.3, 0.1])
    counts = np.array([(train == e).sum() for e in edges[1:]])
    profile = ColumnProfile("x", "Float64", "numeric", 0, 0.0, edges, tuple(int(c) for c in counts))
    found = compare("x", "numeric", profile, numeric_sketch(window, edges), RULE)
    expected = stats.ks_2samp(train, window, method="asymp")
    assert found is not None and found.ks is not None and found.ks_p_value is not None
    assert found.ks == pytest.approx(expected.statistic, rel=1e-9)
    assert found.ks_p_value == pytest.approx(expected.pvalue, rel=1e-9)


# -- categorical ---------------------------------------------------------------------------------------------------


CITIES = [f"city{i}" for i in range(12)]


def city_sample(rng: np.random.Generator, size: int, weights: np.ndarray, missing: float) -> list[str | None]:
    drawn = rng.choice(CITIES, size, p=weights / weights.sum())
    return [None if rng.random() < missing else str(v) for v in drawn]


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize(("tilt", "size"), [(0.0, 3000), (0.5, 800), (2.0, 300), (0.0, 30)])
def test_categorical_drift_matches_scipy_on_the_samples(seed: int, tilt: float, size: int) -> None:
    rng = np.random.default_rng(seed)
    base = np.linspace(3.0, 0.5, len(CITIES))
    train = city_sample(rng, 6000, base, 0.01)
    window = city_sample(rng, size, base * np.exp(tilt * np.linspace(-1, 1, len(CITIES))), 0.02)
    profile = categorical_profile(train)
    found = compare(
        "city", "categorical", profile, categorical_sketch(window, {c.value for c in profile.top_categories}), RULE
    )
    expected, observed = categorical_cells(profile, window)
    chi2, chi2_p = reference_chi2(expected, observed)
    reference = {
        "psi": reference_psi(expected, observed),
        "js": float(jensenshannon(expected, observed, base=2)),
        "chi2": chi2,
        "chi2_p_value": chi2_p,
    }
    assert_matches(found, reference)
    assert found is not None and found.ks is None and found.ks_p_value is None


def test_the_cells_returned_are_those_the_statistics_were_computed_on() -> None:
    rng = np.random.default_rng(5)
    # Numeric: a shifted window with values beyond both outer edges and missing ones.
    edges = (0.5, 1.25, 3.0, 7.5, 12.0)
    train = np.concatenate([rng.uniform(0.5, 12.0, 3000), np.full(30, np.nan)])
    window = np.concatenate([rng.normal(6.0, 5.0, 400), np.full(25, np.nan)])
    expected, _ = numeric_cells(train, train, edges)
    profile = ColumnProfile("x", "Float64", "numeric", 30, 0.01, edges, tuple(int(c) for c in expected[:-1]))
    found = compare("x", "numeric", profile, numeric_sketch(window, edges), RULE)
    assert found is not None
    assert found.cells == ("[0.5, 1.25]", "(1.25, 3]", "(3, 7.5]", "(7.5, 12]", "missing")
    assert (found.expected, found.observed) == counts(numeric_cells(train, window, edges))
    assert np.nanmin(window) < edges[0] and np.nanmax(window) > edges[-1] and found.observed[-1] == 25
    assert_recomputed(found)
    # Categorical: top categories, every other one, then missing.
    base = np.linspace(3.0, 0.5, len(CITIES))
    cities = city_sample(rng, 6000, base, 0.01)
    profile = categorical_profile(cities)
    window_cities = city_sample(rng, 500, base[::-1], 0.05)
    top = {c.value for c in profile.top_categories}
    found = compare("city", "categorical", profile, categorical_sketch(window_cities, top), RULE)
    assert found is not None
    assert found.cells == (*(c.value for c in profile.top_categories), "__other__", "missing")
    assert (found.expected, found.observed) == counts(categorical_cells(profile, window_cities))
    assert_recomputed(found)


def counts(cells: tuple[np.ndarray, np.ndarray]) -> tuple[tuple[int, ...], tuple[int, ...]]:
    return tuple(int(c) for c in cells[0]), tuple(int(c) for c in cells[1])


def assert_recomputed(found: FeatureDrift) -> None:
    """Every statistic of ``found``, computed again from its cells alone, is the one it reports."""
    assert len(found.cells) == len(found.expected) == len(found.observed)
    expected, observed = np.array(found.expected, float), np.array(found.observed, float)
    assert found.count == observed.sum()
    assert found.psi == pytest.approx(reference_psi(expected, observed), rel=1e-12)
    assert found.js == pytest.approx(float(jensenshannon(expected, observed, base=2)), rel=1e-9)
    assert (found.chi2, found.chi2_p_value) == pytest.approx(reference_chi2(expected, observed), rel=1e-9)


def test_categories_the_profile_does_not_list_count_as_other() -> None:
    profile = ColumnProfile(
        "city", "String", "categorical", 10, 0.01, top_categories=(CategoryCount("a", 600), CategoryCount("b", 300)),
        other_count=90,
    )  # fmt: skip
    folded = compare("city", "categorical", profile, {"a": 50, "__other__": 10, "missing": 1}, RULE)
    unfolded = compare("city", "categorical", profile, {"a": 50, "zz": 4, "yy": 6, "missing": 1}, RULE)
    assert folded == unfolded


def test_an_unseen_cell_makes_chi_squared_infinite_like_scipy() -> None:
    expected, observed = np.array([50.0, 50.0, 0.0]), np.array([40.0, 40.0, 20.0])
    with np.errstate(divide="ignore", invalid="ignore"):
        reference = stats.chisquare(observed, observed.sum() * expected / expected.sum())
    assert chi_squared(list(expected), list(observed)) == (math.inf, 0.0) == (reference.statistic, reference.pvalue)


# -- verdicts ------------------------------------------------------------------------------------------------------


def test_the_verdict_needs_a_large_and_significant_shift() -> None:
    rng = np.random.default_rng(11)
    train = rng.normal(0.0, 1.0, 20000)
    profile = numeric_profile(train)

    def drift(window: np.ndarray) -> FeatureDrift:
        found = compare("x", "numeric", profile, numeric_sketch(window, profile.bin_edges), RULE)
        assert found is not None
        return found

    same = drift(rng.normal(0.0, 1.0, 5000))
    assert same.psi < 0.02 and not same.drifted
    shifted = drift(rng.normal(1.0, 1.0, 2000))
    assert shifted.psi >= RULE.psi_threshold and shifted.chi2_p_value < RULE.chi2_p_threshold and shifted.drifted
    # A handful of values: PSI alone would cry drift; there are too few rows for any verdict.
    few = drift(rng.normal(0.3, 1.0, 12))
    assert few.psi >= RULE.psi_threshold and few.too_few_rows and not few.drifted
    assert few.verdict == "too few rows"
    # Even a strong shift is no verdict below the minimum, and one at the minimum is.
    assert drift(rng.normal(3.0, 1.0, RULE.min_rows - 1)).verdict == "too few rows"
    assert drift(rng.normal(3.0, 1.0, RULE.min_rows)).verdict == "drift"
    # Only empty values: the missing cell, where training had almost none.
    empty = drift(np.full(300, np.nan))
    assert empty.drifted and empty.ks is None


def test_features_that_cannot_be_compared() -> None:
    numeric = ColumnProfile("x", "Float64", "numeric", 0, 0.0, (0.0, 1.0), (10,))
    assert compare("x", "categorical", numeric, {"a": 1}, RULE) is None
    assert compare("x", "numeric", numeric, {}, RULE) is None
    assert compare("x", "numeric", ColumnProfile("x", "Float64", "numeric", 5, 1.0), {"0": 1}, RULE) is None
    dates = ColumnProfile("d", "Date", "datetime", 0, 0.0)
    assert compare("d", "categorical", dates, {"x": 1}, RULE) is None


def test_the_data_set_verdict_is_the_share_of_drifted_input_features() -> None:
    def feature(name: str, drifted: bool) -> FeatureDrift:
        return FeatureDrift(name, "numeric", 10, 0.5 if drifted else 0.0, 0.1, 1.0, 0.5, drifted)

    features = [feature("a", True), feature("b", False), feature("c", True), feature("d", False)]
    assert dataset_verdict(features, RULE) == (True, 0.5, False)
    assert dataset_verdict(features, DriftRule(drift_share=0.75)) == (False, 0.5, False)
    # The prediction is not an input feature.
    assert dataset_verdict([feature("a", False), feature("@prediction", True)], RULE) == (False, 0.0, False)
    assert dataset_verdict([], RULE) == (False, 0.0, False)
    # Features with too few rows have no verdict: the share is of the others, and with none the window has none.
    few = FeatureDrift("e", "numeric", 6, 4.0, 0.9, 30.0, 0.0, False, too_few_rows=True)
    assert dataset_verdict([*features, few, few], RULE) == (True, 0.5, False)
    assert dataset_verdict([few, feature("@prediction", True)], RULE) == (False, 0.0, True)


def test_one_request_of_six_rows_is_too_few_rows_not_drift() -> None:
    # What a minute holding one request of 6 rows showed: PSI 4-8 on most features, and "DRIFT 5/6".
    rng = np.random.default_rng(2)
    profile = numeric_profile(rng.normal(0.0, 1.0, 344))
    found = compare("x", "numeric", profile, numeric_sketch(rng.normal(0.0, 1.0, 6), profile.bin_edges), RULE)
    assert found is not None and found.psi > 1.0
    assert found.too_few_rows and not found.drifted
    assert dataset_verdict([found] * 5, RULE) == (False, 0.0, True)
    # Both minimums are the rule's: 6 rows over 10 bins expect 0.6 in each, too few for χ² at 5 however few rows
    # the rule asks for.
    sketch = numeric_sketch(rng.normal(0.0, 1.0, 6), profile.bin_edges)
    assert compare("x", "numeric", profile, sketch, DriftRule(min_rows=5)).too_few_rows  # type: ignore[union-attr]
    lax = compare("x", "numeric", profile, sketch, DriftRule(min_rows=5, min_expected=0.5))
    assert lax is not None and not lax.too_few_rows


def test_rare_cells_are_pooled_so_one_rare_value_is_not_significant() -> None:
    # Training: 1 % missing. A window of 200 with 3 missing values (1.5 %) expects 2 there; unpooled, χ² would see
    # 3 against 2 in that cell only; pooled with nothing else small it joins the smallest bin.
    profile = ColumnProfile("x", "Float64", "numeric", 10, 0.01, (0.0, 1.0, 2.0, 3.0), (330, 330, 330))
    found = compare("x", "numeric", profile, {"0": 66, "1": 66, "2": 65, "missing": 3}, RULE)
    assert found is not None and not found.too_few_rows
    pooled = stats.chisquare([66 + 3, 66, 65], np.array([330 + 10, 330, 330]) * 200 / 1000)
    assert (found.chi2, found.chi2_p_value) == pytest.approx((pooled.statistic, pooled.pvalue), rel=1e-12)
    # One category holding 99 % of the training data: 100 rows cannot test the others (they expect 1 together).
    skewed = ColumnProfile("c", "String", "categorical", 0, 0.0, top_categories=(CategoryCount("a", 990),
                           CategoryCount("b", 10)))  # fmt: skip
    lopsided = compare("c", "categorical", skewed, {"a": 100}, RULE)
    assert lopsided is not None and lopsided.too_few_rows
    assert not compare("c", "categorical", skewed, {"a": 1000}, RULE).too_few_rows  # type: ignore[union-attr]


def test_unseen_categories_are_counted_where_the_profile_lists_them_all() -> None:
    complete = ColumnProfile("c", "String", "categorical", 0, 0.0, top_categories=(CategoryCount("a", 600),
                             CategoryCount("b", 400)))  # fmt: skip
    found = compare("c", "categorical", complete, {"a": 60, "b": 30, "__unseen__": 8, "zz": 2, "missing": 1}, RULE)
    assert found is not None and found.unseen == 10
    # They are counted in the __other__ cell for the statistics.
    assert found.cells == ("a", "b", "__other__", "missing") and found.observed == (60, 30, 10, 1)
    partial = ColumnProfile("c", "String", "categorical", 0, 0.0, top_categories=(CategoryCount("a", 600),),
                            other_count=400)  # fmt: skip
    assert compare("c", "categorical", partial, {"a": 60, "__other__": 40}, RULE).unseen is None  # type: ignore[union-attr]
    # The rarer categories listed by name: those are other, the rest unseen.
    listed = replace(partial, other_categories=("b", "c"))
    found = compare("c", "categorical", listed, {"a": 60, "__other__": 30, "__unseen__": 7, "zz": 3}, RULE)
    assert found is not None and found.unseen == 10 and found.observed == (60, 40, 0)
    numeric = ColumnProfile("x", "Float64", "numeric", 0, 0.0, (0.0, 1.0), (10,))
    assert compare("x", "numeric", numeric, {"0": 200}, RULE).unseen is None  # type: ignore[union-attr]
