"""Held-out evaluation plots: ROC, precision-recall, KS, confusion matrix and calibration for classifiers; predicted
against actual and residuals for regressors. Each takes the evaluation document and answers None when it lacks the
data."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.axes import Axes

from reports._svg import PALETTE, Plot, new_figure, to_svg

__all__ = [
    "auc_of",
    "calibration_plot",
    "confusion_plot",
    "curves_of",
    "ks_of",
    "ks_plot",
    "numbers",
    "pr_plot",
    "predicted_actual_plot",
    "residuals_plot",
    "roc_plot",
]


def curves_of(evaluation: Mapping[str, Any], kind: str) -> list[Mapping[str, Any]]:
    """The stored curves of one kind (``roc``, ``pr``, ``ks``, ``calibration``), one per class; none when absent.

    Raises:
        TypeError: where the document holds something else than a list of curves.
    """
    found = (evaluation.get("curves") or {}).get(kind) or []
    if not isinstance(found, list) or not all(isinstance(c, Mapping) for c in found):
        raise TypeError(f"curves.{kind} is not a list of curves")
    return found


def _single(evaluation: Mapping[str, Any]) -> bool:
    """A binary task scores one class, so its curve's area is the version's metric itself."""
    return len(evaluation.get("classes") or []) == 2


def numbers(values: Sequence[Any]) -> np.ndarray:
    """A stored series as floats, a missing point (``None``) as NaN."""
    return np.array([np.nan if v is None else float(v) for v in values], dtype=np.float64)


def auc_of(curve: Mapping[str, Any], evaluation: Mapping[str, Any], metrics: Mapping[str, float]) -> float:
    """The ROC-AUC of one curve: the stored metric for a binary task, the curve's own exact area otherwise, and
    the trapezoid over its stored (downsampled) points for documents from before areas were stored."""
    if _single(evaluation) and "roc_auc" in metrics:
        return float(metrics["roc_auc"])
    if curve.get("auc") is not None:
        return float(curve["auc"])
    return float(np.trapezoid(numbers(curve["tpr"]), numbers(curve["fpr"])))


def ks_of(curve: Mapping[str, Any], evaluation: Mapping[str, Any], metrics: Mapping[str, float]) -> float:
    """The KS distance of one curve: the stored metric for a binary task, else the curve's statistic."""
    if _single(evaluation) and "ks" in metrics:
        return float(metrics["ks"])
    return float(curve["statistic"])


def _average_precision(curve: Mapping[str, Any], evaluation: Mapping[str, Any], metrics: Mapping[str, float]) -> float:
    if _single(evaluation) and "pr_auc" in metrics:
        return float(metrics["pr_auc"])
    if curve.get("average_precision") is not None:
        return float(curve["average_precision"])
    recall, precision = numbers(curve["recall"]), numbers(curve["precision"])
    return float(-np.sum(np.diff(recall) * precision[1:]))


def roc_plot(evaluation: Mapping[str, Any], metrics: Mapping[str, float]) -> Plot | None:
    curves = curves_of(evaluation, "roc")
    if not curves:
        return None
    with new_figure(5.2, 4.4) as figure:
        ax = figure.add_subplot()
        for curve in curves:
            auc = auc_of(curve, evaluation, metrics)
            ax.plot(numbers(curve["fpr"]), numbers(curve["tpr"]), label=f"{curve['class']} (AUC = {auc:.4f})")
        ax.plot([0, 1], [0, 1], linestyle="--", color="#9ca3af", linewidth=0.8, label="chance")
        title = "ROC curve"
        if not _single(evaluation) and "roc_auc" in metrics:
            title += f" (macro-average AUC = {metrics['roc_auc']:.4f})"
        _square(ax, "false positive rate", "true positive rate", title)
        ax.legend(loc="lower right")
        caption = "Receiver operating characteristic on the test rows" + (
            "" if _single(evaluation) else ", one class against the rest per curve"
        )
        return to_svg(figure, "plot-roc", caption)


def pr_plot(evaluation: Mapping[str, Any], metrics: Mapping[str, float]) -> Plot | None:
    curves = curves_of(evaluation, "pr")
    if not curves:
        return None
    with new_figure(5.2, 4.4) as figure:
        ax = figure.add_subplot()
        for curve in curves:
            ap = _average_precision(curve, evaluation, metrics)
            ax.plot(numbers(curve["recall"]), numbers(curve["precision"]), label=f"{curve['class']} (AP = {ap:.4f})")
        _square(ax, "recall", "precision", "Precision-recall curve")
        ax.legend(loc="lower left")
        return to_svg(figure, "plot-pr", "Precision against recall as the threshold moves; AP is average precision")


def ks_plot(evaluation: Mapping[str, Any], metrics: Mapping[str, float]) -> Plot | None:
    curves = curves_of(evaluation, "ks")
    if not curves:
        return None
    # The ROC curves only add TPR and FPR lines: a KS plot does not fail for their faults, it goes without them.
    stored = (evaluation.get("curves") or {}).get("roc")
    rocs = {c.get("class"): c for c in stored if isinstance(c, Mapping)} if isinstance(stored, list) else {}
    single = _single(evaluation)
    with new_figure(6.0, 4.8) as figure:
        ax = figure.add_subplot()
        for i, curve in enumerate(curves):
            color = PALETTE[i % len(PALETTE)]
            thresholds, gap = numbers(curve["thresholds"]), numbers(curve["gap"])
            keep = np.isfinite(thresholds)
            name = curve["class"]
            ax.plot(thresholds[keep], gap[keep], color=color, label=f"{name}: TPR − FPR")
            roc = rocs.get(name)
            if single and roc is not None and _aligned(roc, len(thresholds)):
                ax.plot(thresholds[keep], numbers(roc["tpr"])[keep], color=PALETTE[2], linewidth=0.9, label="TPR")
                ax.plot(thresholds[keep], numbers(roc["fpr"])[keep], color=PALETTE[1], linewidth=0.9, label="FPR")
            ks = ks_of(curve, evaluation, metrics)
            at = curve.get("at_threshold")
            if at is None:
                at = float(thresholds[keep][np.argmax(np.abs(gap[keep]))]) if keep.any() else 0.5
            ax.vlines(at, 0, ks, colors=color, linestyles=":", linewidth=1.2)
            ax.plot([at], [ks], marker="o", color=color)
            ax.annotate(
                f"KS = {ks:.4f}",
                xy=(at, ks),
                # Near the top the label goes below its point, where it cannot run into the title.
                xytext=(8, -16 - 12 * i) if ks > 0.85 else (8, 6 + 12 * i),
                textcoords="offset points",
                color=color,
                fontweight="bold",
                bbox={"boxstyle": "round,pad=0.2", "facecolor": "white", "edgecolor": "none", "alpha": 0.85},
            )
        title = "Kolmogorov-Smirnov"
        if not single and "ks" in metrics:
            title += f" (mean KS = {metrics['ks']:.4f})"
        ax.set(xlabel="score threshold", ylabel="rate", title=title, ylim=(0, 1.05))
        # Below the axes: inside, it would cover the gap's peak or its label wherever they fall.
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=3)
        caption = (
            "Share of positives (TPR) and negatives (FPR) scoring above each threshold; the KS distance is the largest "
            "gap, marked where it occurs"
        )
        return to_svg(figure, "plot-ks", caption)


def confusion_plot(evaluation: Mapping[str, Any]) -> Plot | None:
    confusion = evaluation.get("confusion_matrix")
    if not confusion or not confusion.get("matrix"):
        return None
    labels = [str(label) for label in confusion["labels"]]
    matrix = np.asarray(confusion["matrix"], dtype=np.float64)
    if matrix.shape != (len(labels), len(labels)):
        # Drawn anyway, rows would carry another class's name, or none.
        raise ValueError(f"a {matrix.shape} matrix for {len(labels)} classes")
    totals = matrix.sum(axis=1, keepdims=True)
    share = np.divide(matrix, totals, out=np.zeros_like(matrix), where=totals > 0)
    size = min(3.2 + 0.55 * len(labels), 9.0)
    with new_figure(size + 1.0, size) as figure:
        ax = figure.add_subplot()
        # pcolormesh draws vector cells; imshow would embed a bitmap.
        mesh = ax.pcolormesh(share, cmap="Blues", vmin=0, vmax=1, edgecolors="white", linewidth=1)
        for (row, column), count in np.ndenumerate(matrix):
            dark = share[row, column] > 0.55
            ax.text(
                column + 0.5,
                row + 0.5,
                f"{int(count)}\n{share[row, column]:.0%}",
                ha="center",
                va="center",
                color="white" if dark else "#111827",
                fontsize=8,
            )
        ticks = np.arange(len(labels)) + 0.5
        ax.set_xticks(ticks, labels, rotation=30 if len(labels) > 4 else 0)
        ax.set_yticks(ticks, labels)
        ax.invert_yaxis()
        ax.grid(False)
        ax.set(xlabel="predicted", ylabel="actual", title="Confusion matrix")
        bar = figure.colorbar(mesh, ax=ax, label="share of the actual class", shrink=0.8)
        if bar.solids is not None:
            bar.solids.set_rasterized(False)  # matplotlib rasterises long colour bars: an embedded PNG otherwise
        return to_svg(figure, "plot-confusion", "Test rows by actual and predicted class: count and row share")


def calibration_plot(evaluation: Mapping[str, Any]) -> Plot | None:
    curves = curves_of(evaluation, "calibration")
    if not curves:
        return None
    with new_figure(5.2, 5.4) as figure:
        top, bottom = figure.subplots(2, 1, height_ratios=(3, 1), sharex=True)
        top.plot([0, 1], [0, 1], linestyle="--", color="#9ca3af", linewidth=0.8, label="perfectly calibrated")
        width = 0.8 / max(1, len(curves)) / int(curves[0].get("bins", 10))
        for i, curve in enumerate(curves):
            predicted = numbers(curve["mean_predicted"])
            top.plot(predicted, numbers(curve["fraction_positive"]), marker="o", markersize=3, label=curve["class"])
            counts = numbers(curve.get("count") or [])
            if len(counts) == len(predicted):
                bottom.bar(predicted + i * width, counts, width=width, color=PALETTE[i % len(PALETTE)])
        _square(top, "", "fraction of positives", "Calibration curve")
        top.legend(loc="upper left")
        bottom.set(xlabel="mean predicted probability", ylabel="rows")
        caption = "Observed share of positives against the mean predicted probability, per bin; rows per bin below"
        return to_svg(figure, "plot-calibration", caption)


def _aligned(roc: Mapping[str, Any], points: int) -> bool:
    series = [roc.get(key) for key in ("thresholds", "tpr", "fpr")]
    return all(isinstance(values, list) and len(values) == points for values in series)


def _residuals(evaluation: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray] | None:
    residuals = evaluation.get("residuals")
    if not residuals or not residuals.get("actual"):
        return None
    actual, predicted = numbers(residuals["actual"]), numbers(residuals["predicted"])
    keep = np.isfinite(actual) & np.isfinite(predicted)
    return actual[keep], predicted[keep]


def predicted_actual_plot(evaluation: Mapping[str, Any]) -> Plot | None:
    found = _residuals(evaluation)
    if found is None:
        return None
    actual, predicted = found
    with new_figure(5.2, 4.8) as figure:
        ax = figure.add_subplot()
        ax.scatter(actual, predicted, s=10, alpha=0.6, edgecolors="none")
        low, high = float(min(actual.min(), predicted.min())), float(max(actual.max(), predicted.max()))
        ax.plot([low, high], [low, high], linestyle="--", color="#9ca3af", linewidth=0.8, label="predicted = actual")
        ax.set(xlabel="actual", ylabel="predicted", title="Predicted against actual")
        ax.legend(loc="upper left")
        return to_svg(
            figure, "plot-predicted-actual", f"Test rows ({len(actual)} shown): the closer to the line the better"
        )


def residuals_plot(evaluation: Mapping[str, Any]) -> Plot | None:
    found = _residuals(evaluation)
    if found is None:
        return None
    actual, predicted = found
    residual = actual - predicted
    with new_figure(8.0, 3.8) as figure:
        left, right = figure.subplots(1, 2, width_ratios=(3, 2))
        left.scatter(predicted, residual, s=10, alpha=0.6, edgecolors="none")
        left.axhline(0, color="#9ca3af", linestyle="--", linewidth=0.8)
        left.set(xlabel="predicted", ylabel="actual − predicted", title="Residuals")
        right.hist(residual, bins=30, color=PALETTE[0])
        right.set(xlabel="actual − predicted", ylabel="rows", title="Residual distribution")
        caption = f"Residuals of the test rows (mean {residual.mean():.4g}, standard deviation {residual.std():.4g})"
        return to_svg(figure, "plot-residuals", caption)


def _square(ax: Axes, xlabel: str, ylabel: str, title: str) -> None:
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title, xlim=(-0.01, 1.01), ylim=(-0.01, 1.03))
