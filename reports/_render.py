"""One version's report: the sections, tables and plots its stored data allows, and a list of what it lacks."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import Any

from contract import wire
from reports._guard import guard
from reports._inputs import ReportInputs
from reports._plots_eval import (
    calibration_plot,
    confusion_plot,
    ks_plot,
    pr_plot,
    predicted_actual_plot,
    residuals_plot,
    roc_plot,
)
from reports._plots_model import (
    importances_plot,
    loss_plot,
    search_importances_plot,
    search_trials_plot,
    weights_epochs_plot,
    weights_histogram_plot,
)
from reports._plots_trees import tree_plots
from reports._svg import Plot
from reports._templates import environment

__all__ = ["fmt", "metric_table", "render_report", "task_of"]

HEADLINE = ("roc_auc", "pr_auc", "ks", "accuracy", "f1_macro", "log_loss", "rmse", "mae", "r2")
TREE_ESTIMATORS = frozenset(
    {
        "decision_tree",
        "random_forest",
        "extra_trees",
        "gradient_boosting",
        "hist_gradient_boosting",
        "lightgbm",
        "xgboost",
    }
)
BOOSTED_OR_NETWORK = frozenset({"gradient_boosting", "hist_gradient_boosting", "lightgbm", "xgboost", "mlp"})
LINEAR = frozenset({"logistic_regression", "linear_regression", "ridge", "sgd"})
ITERATIVE = frozenset({"sgd", "mlp"})

Builder = Callable[[Mapping[str, Any]], Plot | None]


def fmt(value: Any) -> str:
    """A number as a report shows it: 4 decimals for fractions, 4 significant digits else."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if isinstance(value, int):
        return str(value)
    if not math.isfinite(value):
        return str(value)
    return f"{value:.4f}" if abs(value) < 10 else f"{value:.4g}"


def task_of(inputs: ReportInputs) -> str:
    return str(inputs.evaluation.get("task") or inputs.tags.get("task") or "")


def metric_table(metrics: Mapping[str, float]) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """Overall metrics (one row each), and per-class metrics (``f1.<class>``) as a class by metric grid."""
    overall = [[name, fmt(value)] for name, value in sorted(metrics.items()) if "." not in name]
    per_class: dict[str, dict[str, float]] = {}
    for name, value in metrics.items():
        metric, dot, label = name.partition(".")
        if dot:
            per_class.setdefault(label, {})[metric] = value
    columns = sorted({m for values in per_class.values() for m in values})
    grid = None
    if per_class:
        rows = [[label, *(fmt(values.get(c, "")) for c in columns)] for label, values in sorted(per_class.items())]
        grid = {"headers": ["class", *columns], "rows": rows}
    return {"headers": ["metric", "value"], "rows": overall}, grid


def _lineage(inputs: ReportInputs) -> list[list[str]]:
    return [
        ["model", inputs.ref],
        ["data set", f"{inputs.dataset_name}:{inputs.dataset_version}" if inputs.dataset_name else "-"],
        ["code version", inputs.code_version or "-"],
        ["parent version", str(inputs.parent_version) if inputs.parent_version else "-"],
        ["artifact sha256", inputs.sha256 or "-"],
        ["artifact size", f"{inputs.size_bytes:,} bytes" if inputs.size_bytes else "-"],
    ]


def _split_rows(evaluation: Mapping[str, Any]) -> list[list[str]]:
    """The lineage's ``rows`` line: rows per split (``train 750, test 250``), when the document counts them."""
    split = evaluation.get("rows")
    if not split:
        return []
    return [["rows", ", ".join(f"{k} {v:,}" for k, v in split.items())]]


def _dataset(inputs: ReportInputs) -> dict[str, Any] | None:
    dataset, training = inputs.dataset, inputs.training_profile
    # The rows trained on, over the columns the spec reads (derived ones too), where the version stores them: what
    # monitoring compares the served inputs with. Else the data set as imported.
    if training is not None:
        profile = training.profile
    elif dataset is not None:
        profile = dataset.profile
    else:
        return None
    facts = [["target", inputs.target or "-"]]
    if dataset is not None:
        created = wire.timestamp(dataset.created_at).ToJsonString()
        facts = [
            ["name", dataset.name],
            ["version", dataset.version],
            ["source", dataset.source or "-"],
            *facts,
            ["created", f"{created} by {dataset.created_by or '-'}"],
        ]
        if dataset.target and dataset.target != inputs.target:
            facts.insert(4, ["target at import", dataset.target])
    facts.append(["profile", "the rows trained on, as the spec prepared them" if training else "the data set"])
    headers = ["column", "kind", "dtype", "missing", "min", "max", "mean", "std", "distinct", "top categories"]
    rows = []
    for column in profile.columns:
        numeric = column.kind == "numeric"
        top = ", ".join(f"{c.value} ({c.count:,})" for c in column.top_categories)
        rows.append(
            [
                column.name,
                column.kind,
                column.dtype,
                f"{column.missing:,} ({column.missing_rate:.1%})",
                fmt(column.min) if numeric else "",
                fmt(column.max) if numeric else "",
                fmt(column.mean) if numeric else "",
                fmt(column.std) if numeric else "",
                "" if numeric else f"{column.distinct:,}",
                top,
            ]
        )
    return {"facts": facts, "rows": f"{profile.rows:,}", "columns": {"headers": headers, "rows": rows}}


def _plot_sections(inputs: ReportInputs) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    """The plot sections and the plots that apply to this version but that its documents cannot draw."""
    evaluation, metrics = inputs.evaluation, inputs.metrics
    task, estimator = task_of(inputs), inputs.tags.get("estimator", "")
    classification = task in ("binary", "multiclass")
    sections: list[dict[str, Any]] = []
    absent: list[dict[str, str]] = []
    missing = "the version has no evaluation.json" if not evaluation else ""

    def collect(
        title: str,
        section_id: str,
        builders: Sequence[tuple[str, str, Builder, bool, str]],
        *,
        empty: Mapping[str, str] | None = None,
        **extra: Any,
    ) -> None:
        """Draw each builder's plot; a plot that applies but is not drawn is listed with why (``empty`` says it in
        a sentence where saying which key is absent would not), and a malformed part is listed whether it applies
        or not."""
        plots = []
        for plot_id, name, build, expected, part in builders:
            plot, malformed = guard(partial(build, evaluation), f"evaluation.json's {part}")
            if plot is not None:
                plots.append(plot)
            elif malformed:
                absent.append({"id": plot_id, "title": name, "reason": malformed})
            elif expected:
                reason = (empty or {}).get(plot_id) or f"evaluation.json has no {part}"
                absent.append({"id": plot_id, "title": name, "reason": missing or reason})
        if plots or extra.get("tables"):
            sections.append(
                {"id": section_id, "title": title, "plots": plots, "wide": False, "text": "", "tables": []} | extra
            )

    def with_metrics(build: Callable[[Mapping[str, Any], Mapping[str, float]], Plot | None]) -> Builder:
        return lambda e: build(e, metrics)

    if classification:
        collect(
            "Evaluation",
            "evaluation",
            [
                ("plot-roc", "ROC curve", with_metrics(roc_plot), True, "curves.roc"),
                ("plot-pr", "Precision-recall curve", with_metrics(pr_plot), True, "curves.pr"),
                ("plot-ks", "KS curve", with_metrics(ks_plot), True, "curves.ks"),
                ("plot-confusion", "Confusion matrix", confusion_plot, True, "confusion_matrix"),
                ("plot-calibration", "Calibration curve", calibration_plot, True, "curves.calibration"),
            ],
        )
    elif task == "regression":
        collect(
            "Evaluation",
            "evaluation",
            [
                ("plot-predicted-actual", "Predicted against actual", predicted_actual_plot, True, "residuals"),
                ("plot-residuals", "Residuals", residuals_plot, True, "residuals"),
            ],
        )
    trees = estimator in TREE_ESTIMATORS
    collect(
        "Model",
        "model",
        [
            ("plot-importances", "Feature importances", importances_plot, trees, "feature_importances"),
            ("plot-weights-hist", "Weight distribution", weights_histogram_plot, estimator in LINEAR, "coefficients"),
        ],
    )
    drawn, malformed = guard(partial(_trees_section, evaluation), "evaluation.json's trees")
    if drawn is not None:
        sections.append(drawn)
    elif malformed or trees:
        absent.append(
            {"id": "plot-tree-0", "title": "Trees", "reason": malformed or missing or "evaluation.json has no trees"}
        )
    collect(
        "Training dynamics",
        "dynamics",
        [
            ("plot-loss", "Loss per iteration", loss_plot, estimator in BOOSTED_OR_NETWORK, "training_loss"),
            (
                "plot-weights-epochs",
                "Weights across epochs",
                weights_epochs_plot,
                estimator in ITERATIVE,
                "weight_trajectory",
            ),
        ],
    )
    search = evaluation.get("search")
    searched = bool(search) or "[search]" in inputs.spec
    best, malformed = guard(partial(_best_params, search), "evaluation.json's search.best_params")
    if malformed:
        absent.append({"id": "", "title": "Best parameters", "reason": malformed})
    unranked = "Optuna could not rank the parameters: every completed trial scored the same"
    collect(
        "Hyper-parameter search",
        "search",
        [
            ("plot-search-trials", "Objective per trial", search_trials_plot, searched, "search.trials"),
            (
                "plot-search-importances",
                "Parameter importances",
                search_importances_plot,
                searched and _completed(search) >= 2,
                "search.param_importances",
            ),
        ],
        empty={"plot-search-importances": unranked}
        if isinstance(search, Mapping) and "param_importances" in search
        else None,
        tables=[best] if best else [],
    )
    return sections, absent


def _trees_section(evaluation: Mapping[str, Any]) -> dict[str, Any] | None:
    drawn = tree_plots(evaluation)
    if not drawn:
        return None
    shown = evaluation["trees"]
    text = (
        f"The first {len(drawn)} of {shown.get('total')} trees, drawn to depth {shown.get('max_depth')} "
        f"from the {shown.get('source')} model's own structure."
    )
    return {"id": "trees", "title": "Trees", "plots": drawn, "wide": True, "text": text, "tables": []}


def _best_params(search: Any) -> dict[str, Any] | None:
    if not search or not search.get("best_params"):
        return None
    return {
        "title": f"Best parameters ({search.get('metric', '')} {fmt(search.get('best_value'))})",
        "headers": ["parameter", "value"],
        "rows": [[name, str(value)] for name, value in search["best_params"].items()],
    }


def _completed(search: Any) -> int:
    """Completed trials; a malformed trial list counts none (its plot names it as malformed)."""
    trials = search.get("trials") if isinstance(search, Mapping) else None
    if not isinstance(trials, list):
        return 0
    return sum(1 for t in trials if isinstance(t, Mapping) and t.get("state") == "COMPLETE")


def _environment(inputs: ReportInputs, absent: list[dict[str, str]]) -> tuple[list[list[str]], list[list[str]]]:
    """Package versions and served tensors from ``environment.json``; a malformed one listed in ``absent``."""
    document = inputs.environment

    def packages() -> list[list[str]]:
        return [[name, str(version)] for name, version in sorted((document.get("packages") or {}).items())]

    def tensors() -> list[list[str]]:
        return [
            [t.get("name", ""), way, t.get("datatype", ""), "[" + ", ".join(str(d) for d in t.get("shape", [])) + "]"]
            for way in ("inputs", "outputs")
            for t in document.get(way) or []
        ]

    found_packages, malformed = guard(packages, "environment.json's packages")
    if malformed:
        absent.append({"id": "", "title": "Packages", "reason": malformed})
    found_tensors, malformed = guard(tensors, "environment.json's inputs or outputs")
    if malformed:
        absent.append({"id": "", "title": "Served tensors", "reason": malformed})
    return found_packages or [], found_tensors or []


def render_report(inputs: ReportInputs) -> str:
    """The report of one version as a complete, self-contained HTML document."""
    metrics, per_class = metric_table(inputs.metrics)
    plot_sections, absent = _plot_sections(inputs)
    split, malformed = guard(partial(_split_rows, inputs.evaluation), "evaluation.json's rows")
    if malformed:
        absent.append({"id": "", "title": "Rows per split", "reason": malformed})
    packages, tensors = _environment(inputs, absent)
    dataset = _dataset(inputs)
    sections = [{"id": "summary", "title": "Summary"}]
    if dataset:
        sections.append({"id": "dataset", "title": "Data set"})
    sections.append({"id": "metrics", "title": "Metrics"})
    sections += [{"id": s["id"], "title": s["title"]} for s in plot_sections]
    if absent:
        sections.append({"id": "absent", "title": "Not in this report"})
    sections += [
        {"id": "spec", "title": "Training spec"},
        {"id": "environment", "title": "Environment"},
        {"id": "log", "title": "Training log"},
    ]
    headline = [(name, fmt(inputs.metrics[name])) for name in HEADLINE if name in inputs.metrics]
    created = inputs.created_at.strftime("%Y-%m-%d %H:%M UTC") if inputs.created_at else "-"
    return (
        environment()
        .get_template("report.html")
        .render(
            title=f"{inputs.ref} · Conduit model report",
            heading=inputs.model,
            r=inputs,
            created=created,
            sections=sections,
            headline=headline,
            lineage=_lineage(inputs) + (split or []),
            params=sorted(inputs.params.items()),
            tags=sorted(inputs.tags.items()),
            problems=list(inputs.problems),
            dataset=dataset,
            metrics=metrics,
            per_class=per_class,
            plot_sections=plot_sections,
            absent=absent,
            packages=packages,
            tensors=tensors,
            log_lines=len(inputs.training_log.splitlines()),
        )
    )
