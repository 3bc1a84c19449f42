"""Drift of one feature over one window, measured against the profile of the data set the model was trained on.

The window's sketch (counts per bin or category, as the inference servers send them) and the profile's counts are
compared over the same cells:

- numeric: the profile's ``k`` bins, then ``missing``. Values below the lowest edge count in the first bin and values
  above the highest in the last (the profile's outer edges are its minimum and maximum, so those values are the
  tails the first and last bins stand for); a bin index the profile does not have is left out.
- categorical: the profile's top categories, ``__other__`` (its ``other_count``, plus any category the profile does
  not list, which is by definition not a top one), then ``missing``.

The result carries the cells with both sides' counts, exactly as the statistics below were computed on them, so that
a reader can draw the window against the baseline (or recompute any statistic) without binning anything again.

``missing`` is a cell like any other, with the profile's ``missing`` count: a feature that suddenly arrives empty
has drifted even when its present values have not. With ``p`` the training proportions and ``q`` the window's:

- PSI = Σ (q − p) · ln(q / p), each proportion floored at ``EPSILON`` = 1e-4 first, so that a cell empty on one side
  adds a large but finite amount (ln(1e4) ≈ 9.2 per unit of share) instead of infinity; cells empty on both sides
  add nothing.
- JS = the Jensen-Shannon distance in base 2 (``scipy.spatial.distance.jensenshannon(p, q, base=2)``), 0..1, with
  no flooring.
- KS (numeric) = the largest absolute difference of the two cumulative distributions of the present values at the
  bins' upper edges, i.e. the Kolmogorov-Smirnov distance of the binned data; its p-value is the asymptotic
  two-sided one of ``scipy.stats.ks_2samp(method="asymp")``: ``kstwo.sf(D, round(n·m / (n + m)))``. Binning can
  only hide differences, so D is a lower bound of the raw samples' distance and the test is conservative.
- χ² = Σ (O − E)² / E with O the window's counts and E = (window total) · p (unfloored), over the cells where either
  is non-zero, with cells − 1 degrees of freedom: ``scipy.stats.chisquare(O, E)``. A cell the window holds and the
  training never did makes χ² infinite and its p-value 0, as scipy says too. Its p-value is the chi-squared
  distribution's only when every cell expects enough rows (Cochran's rule: at least 5, ``DriftRule.min_expected``):
  ``compare`` first pools the cells expecting fewer into one cell (and, if that one still expects too few, into the
  smallest other cell), so a rare category or the missing cell seen once in a small window is not "significant".
  Cells the training never had (E = 0) are pooled apart from the others and keep their infinite χ².

Minimum sample: a feature with fewer than ``DriftRule.min_rows`` values (missing ones included; 100 by default) in
a window, or whose cells pool into fewer than two cells that expect rows (one category is then nearly all of the
training data and the window is too small to see the others), gets "too few rows" instead of a verdict: its
statistics are still computed and shown, but it is never "drifted". On a handful of rows PSI is noise (6 rows
over 10 bins leave at least 4 bins empty, and each empty bin adds about 0.1 · ln(1e4 · 0.1) ≈ 0.7), and the χ²
p-value is not the chi-squared distribution's. Evidently has no such floor (it picks a test by the reference's
size), and NannyML leaves a chunk's metric empty only when it cannot be computed at all; both are silent where a
verdict from six rows would be wrong.

Verdict, for both kinds: a feature drifted when it has enough rows, PSI ≥ ``psi_threshold`` (the shift is large
enough to matter) and the χ² p-value < ``chi2_p_threshold`` (the shift is not sampling noise: between two samples
of the same distribution, a one-minute window of 50 requests over 10 bins shows a PSI near 0.2 by chance alone).
Large windows make every shift significant, small ones make PSI noisy; requiring both keeps the verdict sound at
either end. A data set drifted when at least ``drift_share`` of its input features with a verdict did; a window
where none has one has "too few rows".

Unseen categories: a categorical feature whose profile lists every category the training data had (its top
categories, and ``other_categories`` when there are more) counts the window's values outside that list as
``unseen``; the inference servers send them as ``__unseen__`` (and values of a profile that does not list every
category as ``__other__``: unseen is then unknown). They are counted in the ``__other__`` cell for the statistics.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import special, stats

from contract import metrics
from contract.entities import ColumnProfile, DriftRule, FeatureDrift

__all__ = [
    "EPSILON",
    "chi_squared",
    "compare",
    "dataset_verdict",
    "js_distance",
    "ks_binned",
    "pool_cells",
    "psi",
]

EPSILON = 1e-4


def _proportions(counts: np.ndarray) -> np.ndarray:
    shares: np.ndarray = counts / counts.sum()
    return shares


def psi(expected: Sequence[float], actual: Sequence[float]) -> float:
    """Population stability index of ``actual`` against ``expected`` (counts or proportions over the same cells)."""
    p = np.maximum(_proportions(np.asarray(expected, dtype=np.float64)), EPSILON)
    q = np.maximum(_proportions(np.asarray(actual, dtype=np.float64)), EPSILON)
    return float(np.sum((q - p) * np.log(q / p)))


def js_distance(expected: Sequence[float], actual: Sequence[float]) -> float:
    """Jensen-Shannon distance in base 2 of two distributions over the same cells."""
    p = _proportions(np.asarray(expected, dtype=np.float64))
    q = _proportions(np.asarray(actual, dtype=np.float64))
    m = (p + q) / 2.0
    divergence = (np.sum(special.rel_entr(p, m)) + np.sum(special.rel_entr(q, m))) / math.log(2.0)
    # Rounding can leave a tiny negative divergence for identical distributions.
    return math.sqrt(max(float(divergence), 0.0) / 2.0)


def ks_binned(expected: Sequence[float], actual: Sequence[float]) -> tuple[float, float]:
    """Kolmogorov-Smirnov distance of two binned samples (counts per ordered bin) and its asymptotic p-value."""
    p, q = np.asarray(expected, dtype=np.float64), np.asarray(actual, dtype=np.float64)
    n, m = p.sum(), q.sum()
    distance = float(np.max(np.abs(np.cumsum(p) / n - np.cumsum(q) / m)))
    effective = max(float(np.round(n * m / (n + m))), 1.0)
    return distance, float(np.clip(stats.kstwo.sf(distance, effective), 0.0, 1.0))


def chi_squared(expected: Sequence[float], observed: Sequence[float]) -> tuple[float, float]:
    """Pearson's χ² of ``observed`` counts against the proportions of ``expected`` counts, and its p-value."""
    p = _proportions(np.asarray(expected, dtype=np.float64))
    o = np.asarray(observed, dtype=np.float64)
    e = o.sum() * p
    keep = (o > 0) | (e > 0)
    o, e = o[keep], e[keep]
    if len(o) < 2:
        return 0.0, 1.0
    if np.any(e == 0):
        return math.inf, 0.0
    statistic = float(np.sum((o - e) ** 2 / e))
    # chdtrc is scipy.stats.chi2.sf without the distribution object's overhead.
    return statistic, float(special.chdtrc(len(o) - 1, statistic))


def pool_cells(
    expected: Sequence[float], observed: Sequence[float], min_expected: float
) -> tuple[list[float], list[float]]:
    """The cells χ² is computed on: ``observed`` against ``expected`` (training counts), with the cells expecting
    fewer than ``min_expected`` of the window's rows pooled into one.

    A pooled cell that still expects too few joins the smallest of the others. Cells the training never had (and the
    window did) are pooled apart and kept, however few: they are not noise. Cells empty on both sides are dropped.

    Returns:
        Training counts and window counts per pooled cell, in the order of the first cell of each.
    """
    p = _proportions(np.asarray(expected, dtype=np.float64))
    o = np.asarray(observed, dtype=np.float64)
    need = o.sum() * p
    kept_e: list[float] = []
    kept_o: list[float] = []
    small_e = small_o = unseen_o = 0.0
    for training, window, wanted in zip(expected, observed, need, strict=True):
        if training == 0:
            unseen_o += window
        elif wanted >= min_expected:
            kept_e.append(float(training))
            kept_o.append(float(window))
        else:
            small_e += training
            small_o += window
    if small_e > 0:
        if small_e * o.sum() / float(np.sum(expected)) >= min_expected or not kept_e:
            kept_e.append(small_e)
            kept_o.append(small_o)
        else:
            smallest = int(np.argmin(kept_e))
            kept_e[smallest] += small_e
            kept_o[smallest] += small_o
    if unseen_o > 0:
        kept_e.append(0.0)
        kept_o.append(unseen_o)
    return kept_e, kept_o


@dataclass(frozen=True, slots=True)
class _Cells:
    labels: tuple[str, ...]
    expected: tuple[int, ...]
    observed: tuple[int, ...]


def _bin_labels(edges: Sequence[float], bins: int) -> list[str]:
    if len(edges) != bins + 1:  # a profile stored without its edges: the bins still have their order
        return [f"bin {index}" for index in range(bins)]
    # The profile's rule: the first bin is closed on both sides, every later one only on its upper edge.
    return [f"{'[' if i == 0 else '('}{lo:g}, {hi:g}]" for i, (lo, hi) in enumerate(itertools.pairwise(edges))]


def _numeric_cells(column: ColumnProfile, counts: Mapping[str, int]) -> _Cells | None:
    bins = len(column.bin_counts)
    if bins == 0:
        return None
    observed = [0] * bins
    for key, count in counts.items():
        if key.isdigit() and int(key) < bins:
            observed[int(key)] += count
    observed[0] += counts.get(metrics.BELOW, 0)
    observed[-1] += counts.get(metrics.ABOVE, 0)
    return _Cells(
        (*_bin_labels(column.bin_edges, bins), metrics.MISSING),
        (*column.bin_counts, column.missing),
        (*observed, counts.get(metrics.MISSING, 0)),
    )


def _categorical_cells(column: ColumnProfile, counts: Mapping[str, int]) -> _Cells | None:
    if not column.top_categories and not column.other_count:
        return None
    top = [category.value for category in column.top_categories]
    listed = {*top, metrics.OTHER, metrics.MISSING}
    other = counts.get(metrics.OTHER, 0) + sum(count for key, count in counts.items() if key not in listed)
    expected = (*(category.count for category in column.top_categories), column.other_count, column.missing)
    observed = (*(counts.get(value, 0) for value in top), other, counts.get(metrics.MISSING, 0))
    return _Cells((*top, metrics.OTHER, metrics.MISSING), expected, observed)


def unseen_count(column: ColumnProfile, counts: Mapping[str, int]) -> int | None:
    """Values of a categorical window the training data set never had; None when the profile cannot tell (it lists
    only its top categories)."""
    known = column.known_categories()
    if known is None:
        return None
    unseen = sum(
        count for key, count in counts.items() if key not in known and key not in (metrics.OTHER, metrics.MISSING)
    )
    # Against a profile whose top categories are all there is, __other__ (as servers sent it before they sent
    # __unseen__) holds only values the training data never had.
    return unseen + (counts.get(metrics.OTHER, 0) if not column.other_count else 0)


def compare(
    feature: str, kind: str, column: ColumnProfile, counts: Mapping[str, int], rule: DriftRule
) -> FeatureDrift | None:
    """``feature``'s window (``counts`` as sent for ``kind``) against its profile ``column``.

    Returns:
        None when they cannot be compared: the profile has no baseline of that kind (no bins, or no categories), or
        one side is empty.
    """
    numeric = kind == metrics.NUMERIC
    if numeric != (column.kind == metrics.NUMERIC):
        return None
    cells = _numeric_cells(column, counts) if numeric else _categorical_cells(column, counts)
    if cells is None or sum(cells.expected) == 0 or sum(cells.observed) == 0:
        return None
    expected, observed = cells.expected, cells.observed
    index = psi(expected, observed)
    pooled_expected, pooled_observed = pool_cells(expected, observed, rule.min_expected)
    chi2, chi2_p = chi_squared(pooled_expected, pooled_observed)
    testable = sum(1 for training in pooled_expected if training > 0)
    too_few = sum(observed) < rule.min_rows or testable < 2
    ks = ks_p = None
    # The KS test compares present values; a side with none has no distribution to compare.
    if numeric and sum(expected[:-1]) > 0 and sum(observed[:-1]) > 0:
        ks, ks_p = ks_binned(expected[:-1], observed[:-1])
    return FeatureDrift(
        feature=feature,
        kind=kind,
        count=sum(observed),
        psi=index,
        js=js_distance(expected, observed),
        chi2=chi2,
        chi2_p_value=chi2_p,
        drifted=not too_few and index >= rule.psi_threshold and chi2_p < rule.chi2_p_threshold,
        ks=ks,
        ks_p_value=ks_p,
        cells=cells.labels,
        observed=observed,
        expected=expected,
        too_few_rows=too_few,
        unseen=None if numeric else unseen_count(column, counts),
    )


def dataset_verdict(features: Iterable[FeatureDrift], rule: DriftRule) -> tuple[bool, float, bool]:
    """Whether the data set drifted, the share of drifted features among those with a verdict, and whether input
    features were compared but none had a verdict (``@prediction`` is not an input feature)."""
    inputs = [feature for feature in features if feature.feature != metrics.PREDICTION]
    judged = [feature for feature in inputs if not feature.too_few_rows]
    if not judged:
        return False, 0.0, bool(inputs)
    share = sum(feature.drifted for feature in judged) / len(judged)
    return share >= rule.drift_share, share, False
