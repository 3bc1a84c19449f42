"""Two versions side by side: metrics with their difference, parameters, and ROC, precision-recall, KS and
calibration curves overlaid (A solid, B dashed, one colour per class)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np

from reports._guard import guard
from reports._inputs import ReportInputs
from reports._plots_eval import auc_of, curves_of, ks_of, numbers
from reports._render import fmt, task_of
from reports._svg import PALETTE, Plot, new_figure, to_svg
from reports._templates import environment

__all__ = ["render_comparison"]

_STYLES = ("-", "--")
_KINDS = {
    "roc": ("plot-compare-roc", "ROC curves", "false positive rate", "true positive rate"),
    "pr": ("plot-compare-pr", "Precision-recall curves", "recall", "precision"),
    "ks": ("plot-compare-ks", "KS curves (TPR − FPR)", "score threshold", "TPR − FPR"),
    "calibration": (
        "plot-compare-calibration",
        "Calibration curves",
        "mean predicted probability",
        "fraction of positives",
    ),
}
_SERIES = {
    "roc": ("fpr", "tpr"),
    "pr": ("recall", "precision"),
    "ks": ("thresholds", "gap"),
    "calibration": ("mean_predicted", "fraction_positive"),
}


def _label(which: str, inputs: ReportInputs, curve: Mapping[str, Any], kind: str) -> str:
    name = f"{which} v{inputs.version} · {curve['class']}"
    if kind == "roc":
        return f"{name} (AUC = {auc_of(curve, inputs.evaluation, inputs.metrics):.4f})"
    if kind == "ks":
        return f"{name} (KS = {ks_of(curve, inputs.evaluation, inputs.metrics):.4f})"
    if kind == "pr" and curve.get("average_precision") is not None:
        return f"{name} (AP = {float(curve['average_precision']):.4f})"
    return name


@dataclass(frozen=True)
class _Line:
    """One stored curve of one version, read and checked before anything is drawn."""

    x: np.ndarray
    y: np.ndarray
    label: str
    colour_key: str
    ks: tuple[float, float] | None  # (threshold, distance) of a KS curve that stores where its maximum is


def _lines(kind: str, which: str, inputs: ReportInputs) -> list[_Line]:
    xkey, ykey = _SERIES[kind]
    lines = []
    for curve in curves_of(inputs.evaluation, kind):
        x, y = numbers(curve[xkey]), numbers(curve[ykey])
        keep = np.isfinite(x) & np.isfinite(y)  # raises ValueError when the two series differ in length
        ks = None
        if kind == "ks" and curve.get("at_threshold") is not None:
            ks = (float(curve["at_threshold"]), ks_of(curve, inputs.evaluation, inputs.metrics))
        lines.append(_Line(x[keep], y[keep], _label(which, inputs, curve, kind), str(curve["class"]), ks))
    return lines


def _overlay(kind: str, a: ReportInputs, b: ReportInputs) -> tuple[Plot | None, list[str]]:
    """Both versions' curves of one kind on one plot (None when neither has any), and which version's curves are
    malformed: those are left out and the other's still drawn."""
    plot_id, title, xlabel, ylabel = _KINDS[kind]
    sides, problems = [], []
    for which, inputs in (("A", a), ("B", b)):
        lines, malformed = guard(
            partial(_lines, kind, which, inputs), f"{inputs.ref}'s evaluation.json's curves.{kind}"
        )
        if malformed:
            problems.append(malformed)
        sides.append((which, lines or []))
    if not any(lines for _, lines in sides):
        return None, problems
    colours: dict[str, str] = {}
    with new_figure(5.6, 4.6) as figure:
        ax = figure.add_subplot()
        for (which, lines), style in zip(sides, _STYLES, strict=True):
            for line in lines:
                colour = colours.setdefault(line.colour_key, PALETTE[len(colours) % len(PALETTE)])
                marker = "o" if kind == "calibration" else None
                ax.plot(line.x, line.y, linestyle=style, color=colour, marker=marker, markersize=3, label=line.label)
                if line.ks is not None:
                    at, ks = line.ks
                    ax.vlines(at, 0, ks, colors=colour, linestyles=":", linewidth=1)
                    ax.annotate(
                        f"{which}: KS = {ks:.4f}",
                        xy=(at, ks),
                        xytext=(6, 4 if which == "A" else -12),
                        textcoords="offset points",
                        color=colour,
                        fontsize=7.5,
                    )
        if kind in ("roc", "calibration"):
            ax.plot([0, 1], [0, 1], linestyle=":", color="#9ca3af", linewidth=0.8)
        ax.set(xlabel=xlabel, ylabel=ylabel, title=title, ylim=(-0.01, 1.05))
        ax.legend(loc="lower right" if kind == "roc" else "best", fontsize=6.5)
        caption = f"{title}: A = {a.ref} (solid), B = {b.ref} (dashed)"
        return to_svg(figure, plot_id, caption), problems


def _difference(delta: float, *, lower_is_better: bool) -> str | dict[str, str]:
    """B − A as its cell shows it: green or red only where the difference survives the 4 decimals it is shown with;
    one that rounds to zero (float noise such as 0.1 + 0.2 − 0.3 included) or is not a number is plain, unsigned."""
    if not math.isfinite(delta):
        return str(delta)
    if round(delta, 4) == 0:
        return f"{0:.4f}"
    better = delta < 0 if lower_is_better else delta > 0
    return {"text": f"{delta:+.4f}" if abs(delta) < 10 else f"{delta:+.4g}", "css": "better" if better else "worse"}


def _metrics(a: ReportInputs, b: ReportInputs) -> dict[str, Any]:
    # The trainers' one list, which also sets each search's direction. Imported here, not at the top: the trainers
    # bring scikit-learn and polars, which a dashboard showing reports would otherwise load before its first page.
    from trainers import LOWER_IS_BETTER

    rows: list[list[Any]] = []
    for name in sorted(set(a.metrics) | set(b.metrics), key=lambda n: ("." in n, n)):
        left, right = a.metrics.get(name), b.metrics.get(name)
        difference: Any = ""
        if left is not None and right is not None:
            difference = _difference(right - left, lower_is_better=name.partition(".")[0] in LOWER_IS_BETTER)
        rows.append(
            [name, fmt(left) if left is not None else "-", fmt(right) if right is not None else "-", difference]
        )
    return {"headers": ["metric", f"A: {a.ref}", f"B: {b.ref}", "B − A"], "rows": rows}


def _params(a: ReportInputs, b: ReportInputs) -> dict[str, Any]:
    rows = []
    for name in sorted(set(a.params) | set(b.params)):
        left, right = a.params.get(name, "-"), b.params.get(name, "-")
        rows.append([name, left, right, "" if left == right else {"text": "differs", "css": "worse"}])
    return {"headers": ["parameter", f"A: {a.ref}", f"B: {b.ref}", ""], "rows": rows}


def _overview(a: ReportInputs, b: ReportInputs) -> dict[str, Any]:
    def row(label: str, get: Any) -> list[str]:
        return [label, get(a), get(b)]

    created = lambda r: r.created_at.strftime("%Y-%m-%d %H:%M UTC") if r.created_at else "-"  # noqa: E731
    return {
        "headers": ["", "A", "B"],
        "rows": [
            row("version", lambda r: r.ref),
            row("aliases", lambda r: ", ".join(r.aliases) or "-"),
            row("created", created),
            row("task", lambda r: task_of(r) or "-"),
            row("estimator", lambda r: r.tags.get("estimator", "-")),
            row("data set", lambda r: f"{r.dataset_name}:{r.dataset_version}" if r.dataset_name else "-"),
            row("code version", lambda r: r.code_version or "-"),
        ],
    }


def render_comparison(a: ReportInputs, b: ReportInputs) -> str:
    """Versions ``a`` and ``b`` side by side as a complete, self-contained HTML document."""
    plots: list[Plot] = []
    absent: list[dict[str, str]] = []
    classification = task_of(a) in ("binary", "multiclass") or task_of(b) in ("binary", "multiclass")
    for kind, (plot_id, title, _, _) in _KINDS.items():
        plot, problems = _overlay(kind, a, b)
        absent += [{"id": plot_id, "title": title, "reason": problem} for problem in problems]
        if plot is not None:
            plots.append(plot)
        elif classification and not problems:
            absent.append({"id": plot_id, "title": title, "reason": f"neither evaluation.json has curves.{kind}"})
    sections = [
        {"id": "versions", "title": "Versions"},
        {"id": "metrics", "title": "Metrics"},
        {"id": "params", "title": "Parameters"},
    ]
    if plots:
        sections.append({"id": "curves", "title": "Curves"})
    if absent:
        sections.append({"id": "absent", "title": "Not in this report"})
    title = f"{a.ref} vs {b.ref}"
    return (
        environment()
        .get_template("compare.html")
        .render(
            title=f"{title} · Conduit model comparison",
            heading=title,
            versions=[a, b],
            sections=sections,
            overview=_overview(a, b),
            metrics=_metrics(a, b),
            params=_params(a, b),
            plots=plots,
            absent=absent,
        )
    )
