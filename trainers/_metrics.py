"""Held-out metrics and curves: what a version stores as flat metrics and in its evaluation document."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn import metrics as skm
from sklearn.calibration import calibration_curve

__all__ = [
    "LOWER_IS_BETTER",
    "TASK_METRICS",
    "as_probabilities",
    "classification_curves",
    "classification_metrics",
    "downsample",
    "finite",
    "ks_statistic",
    "regression_metrics",
    "score",
]

TASK_METRICS: dict[str, tuple[str, ...]] = {
    "binary": (
        "accuracy",
        "precision",
        "recall",
        "f1",
        "precision_macro",
        "recall_macro",
        "f1_macro",
        "roc_auc",
        "pr_auc",
        "log_loss",
        "ks",
    ),
    "multiclass": ("accuracy", "precision_macro", "recall_macro", "f1_macro", "roc_auc", "pr_auc", "log_loss", "ks"),
    "regression": ("rmse", "mae", "r2", "mape"),
}
LOWER_IS_BETTER = frozenset({"log_loss", "rmse", "mae", "mape"})
"""Metrics where less is better: a search's direction and a report comparison's better or worse both read this."""
MAX_CURVE_POINTS = 500
CALIBRATION_BINS = 10


def classification_metrics(
    truth: np.ndarray, labels: np.ndarray, probabilities: np.ndarray, classes: Sequence[str]
) -> dict[str, float]:
    """Accuracy, precision/recall/F1 (macro and ``<metric>.<class>``), ROC-AUC, PR-AUC, log-loss and KS.

    ``truth`` and ``labels`` are class indices into ``classes``; ``probabilities`` has one column per class. Binary
    runs add ``precision``/``recall``/``f1`` of the positive class (``classes[1]``); ROC-AUC, PR-AUC and KS are
    one-vs-rest macro averages for more classes, over the classes that ``truth`` holds alongside others. A metric
    that the test rows cannot define (ROC-AUC with one class present) is left out rather than stored as NaN.
    """
    index = np.arange(len(classes))
    result = {"accuracy": float(skm.accuracy_score(truth, labels))}
    precision, recall, f1, _ = skm.precision_recall_fscore_support(truth, labels, labels=index, zero_division=0)
    for i, name in enumerate(classes):
        result[f"precision.{name}"] = float(precision[i])
        result[f"recall.{name}"] = float(recall[i])
        result[f"f1.{name}"] = float(f1[i])
    result["precision_macro"] = float(np.mean(precision))
    result["recall_macro"] = float(np.mean(recall))
    result["f1_macro"] = float(np.mean(f1))
    if len(classes) == 2:
        result.update(precision=float(precision[1]), recall=float(recall[1]), f1=float(f1[1]))
    result["log_loss"] = float(skm.log_loss(truth, probabilities, labels=index))
    separable = _scored_classes(truth, len(classes))
    if separable:
        result["roc_auc"] = _mean(skm.roc_auc_score(truth == c, probabilities[:, c]) for c in separable)
        result["pr_auc"] = _mean(skm.average_precision_score(truth == c, probabilities[:, c]) for c in separable)
        result["ks"] = _mean(ks_statistic(truth == c, probabilities[:, c]) for c in separable)
    return {k: v for k, v in result.items() if math.isfinite(v)}


def regression_metrics(truth: np.ndarray, predictions: np.ndarray) -> dict[str, float]:
    """RMSE, MAE, R² and MAPE (scikit-learn's: a fraction, not a percentage)."""
    result = {
        "rmse": float(np.sqrt(skm.mean_squared_error(truth, predictions))),
        "mae": float(skm.mean_absolute_error(truth, predictions)),
        "r2": float(skm.r2_score(truth, predictions)),
        "mape": float(skm.mean_absolute_percentage_error(truth, predictions)),
    }
    return {k: v for k, v in result.items() if math.isfinite(v)}


def score(metric: str, truth: np.ndarray, predictions: np.ndarray, probabilities: np.ndarray | None, k: int) -> float:
    """One metric, as search trials optimise it; NaN when the rows cannot define it."""
    if probabilities is None:
        return regression_metrics(truth, predictions).get(metric, math.nan)
    names = [str(i) for i in range(k)]
    return classification_metrics(truth, predictions, probabilities, names).get(metric, math.nan)


def as_probabilities(values: np.ndarray) -> np.ndarray:
    """Class probabilities in float64 with rows summing to 1: float32 models (XGBoost) are off by ~1e-7, enough
    for scikit-learn's log-loss to warn."""
    probabilities = np.asarray(values, dtype=np.float64)
    normalised: np.ndarray = probabilities / probabilities.sum(axis=1, keepdims=True)
    return normalised


def ks_statistic(positive: np.ndarray, scores: np.ndarray) -> float:
    """Kolmogorov-Smirnov distance between the score distributions of positives and negatives (max |TPR - FPR|)."""
    fpr, tpr, _ = skm.roc_curve(positive, scores)
    return float(np.max(np.abs(tpr - fpr)))


def classification_curves(truth: np.ndarray, probabilities: np.ndarray, classes: Sequence[str]) -> dict[str, Any]:
    """ROC, precision-recall, KS and calibration curves, ≤ 500 points each: the positive class for binary, one per
    class else.

    Each ROC curve carries its exact ``auc`` and each PR curve its ``average_precision`` (the stored points are
    downsampled, so an area recomputed from them would differ). The KS curve is TPR - FPR against the ROC
    thresholds; its ``statistic`` is the largest gap, at ``at_threshold``. The calibration curve is scikit-learn's
    ``calibration_curve`` over ``CALIBRATION_BINS`` equal-width bins (empty bins left out), with each bin's row count.
    """
    curves: dict[str, list[dict[str, Any]]] = {"roc": [], "pr": [], "ks": [], "calibration": []}
    for c in _scored_classes(truth, len(classes)):
        positive, scores = truth == c, probabilities[:, c]
        fpr, tpr, thresholds = skm.roc_curve(positive, scores)
        gap = tpr - fpr
        best = int(np.argmax(np.abs(gap)))
        precision, recall, pr_thresholds = skm.precision_recall_curve(positive, scores)
        # precision and recall have one point more than their thresholds (recall 0 at precision 1): dropped.
        roc = _curve(classes[c], fpr=fpr, tpr=tpr, thresholds=thresholds)
        roc["auc"] = float(skm.roc_auc_score(positive, scores))
        curves["roc"].append(roc)
        pr = _curve(classes[c], precision=precision[:-1], recall=recall[:-1], thresholds=pr_thresholds)
        pr["average_precision"] = float(skm.average_precision_score(positive, scores))
        curves["pr"].append(pr)
        curves["calibration"].append(_calibration(classes[c], positive, scores))
        ks = _curve(classes[c], thresholds=thresholds, gap=gap)
        ks.update(statistic=float(abs(gap[best])), at_threshold=finite(thresholds[best : best + 1])[0])
        curves["ks"].append(ks)
    return curves


def _calibration(label: str, positive: np.ndarray, scores: np.ndarray) -> dict[str, Any]:
    observed, predicted = calibration_curve(positive, scores, n_bins=CALIBRATION_BINS, strategy="uniform")
    # calibration_curve bins with these edges and drops the empty bins; the counts follow the same rule.
    edges = np.linspace(0.0, 1.0, CALIBRATION_BINS + 1)
    counts = np.bincount(np.searchsorted(edges[1:-1], scores), minlength=CALIBRATION_BINS)
    return {
        "class": label,
        "bins": CALIBRATION_BINS,
        "fraction_positive": finite(observed),
        "mean_predicted": finite(predicted),
        "count": [int(n) for n in counts[counts > 0]],
    }


def _curve(label: str, **series: np.ndarray) -> dict[str, Any]:
    """Equally long arrays, downsampled together to at most 500 points, as JSON-safe lists."""
    keep = downsample(len(next(iter(series.values()))))
    return {"class": label, **{name: finite(values[keep]) for name, values in series.items()}}


def downsample(length: int, points: int = MAX_CURVE_POINTS) -> np.ndarray:
    """Indices of at most ``points`` evenly spaced items of a sequence, first and last included."""
    if length <= points:
        return np.arange(length)
    return np.unique(np.linspace(0, length - 1, points).round().astype(np.int64))


def finite(values: Any) -> list[float | None]:
    """A JSON-safe list: non-finite numbers (e.g. ROC's first threshold, +inf) become None."""
    return [float(v) if math.isfinite(v) else None for v in np.asarray(values, dtype=np.float64).ravel()]


def _scored_classes(truth: np.ndarray, k: int) -> list[int]:
    """The positive class of a binary task; every class of a multiclass one. Only classes the rows hold alongside
    others: one-vs-rest scores need both sides."""
    candidates = [1] if k == 2 else range(k)
    return [c for c in candidates if 0 < int(np.sum(truth == c)) < len(truth)]


def _mean(values: Any) -> float:
    return float(np.mean([float(v) for v in values]))
