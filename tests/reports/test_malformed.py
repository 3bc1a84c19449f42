"""Reports from documents that do not have the shape the trainers write: each malformed part is named under "Not in
this report" and everything else is drawn, with no exception."""

from __future__ import annotations

import copy
import dataclasses
import re
import subprocess
import sys
from collections.abc import Callable
from html import unescape
from typing import Any

import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from contract import wire
from control_plane.protocol import control_plane_pb2 as cp
from reports import ReportInputs, render_comparison, render_report
from tests.reports.conftest import Trained, figure_ids, figure_texts
from tests.reports.test_report import EXPECTED
from trainers._metrics import LOWER_IS_BETTER

Patch = Callable[[dict[str, Any]], None]
TREES = ["plot-tree-0", "plot-tree-1", "plot-tree-2"]


def _set(key: str, value: Any) -> Patch:
    def patch(document: dict[str, Any]) -> None:
        document[key] = value

    return patch


def _shorten(*path: str | int) -> Patch:
    """Drop the last element of the list at ``path``: two series that should line up no longer do."""

    def patch(document: dict[str, Any]) -> None:
        found: Any = document
        for key in path:
            found = found[key]
        found.pop()

    return patch


def _deep_tree(document: dict[str, Any]) -> None:
    """A tree nested deeper than Python recurses (the JSON parser would refuse it; a document built in code may not)."""
    node: dict[str, Any] = {"value": [1.0], "samples": 1}
    for _ in range(5000):
        node = {"feature": "f", "threshold": 0.5, "samples": 1, "left": node, "right": {"value": [0.0], "samples": 1}}
    document["trees"]["trees"] = [{"index": 0, "root": node}]


# (trained model, what breaks its evaluation.json, the figures it costs, what "Not in this report" says)
CASES: dict[str, tuple[str, Patch, list[str], str]] = {
    "rows-text": (
        "forest",
        _set("rows", {"train": "x"}),
        [],
        "<strong>Rows per split</strong>: evaluation.json's rows",
    ),
    "trials-numbers": (
        "searched",
        _set("search", {"trials": [1]}),
        ["plot-search-trials", "plot-search-importances"],
        "(<code>plot-search-trials</code>): evaluation.json's search.trials",
    ),
    "confusion-text": (
        "forest",
        _set("confusion_matrix", "x"),
        ["plot-confusion"],
        "(<code>plot-confusion</code>): evaluation.json's confusion_matrix",
    ),
    "tree-without-root": (
        "forest",
        _set("trees", {"trees": [{}]}),
        TREES,
        "(<code>plot-tree-0</code>): evaluation.json's trees",
    ),
    "fewer-classes-than-matrix": (
        "forest",
        _shorten("confusion_matrix", "labels"),
        ["plot-confusion"],
        "evaluation.json's confusion_matrix",
    ),
    # The KS plot draws without the ROC's TPR and FPR lines then.
    "roc-series-unequal": ("forest", _shorten("curves", "roc", 0, "tpr"), ["plot-roc"], "evaluation.json's curves.roc"),
    "ks-without-statistic": (
        "mlp",
        lambda d: d["curves"]["ks"][0].pop("statistic"),
        ["plot-ks"],
        "evaluation.json's curves.ks",
    ),
    "calibration-zero-bins": (
        "mlp",
        lambda d: d["curves"]["calibration"][0].update(bins=0),
        ["plot-calibration"],
        "evaluation.json's curves.calibration",
    ),
    "importance-text": (
        "forest",
        lambda d: d["feature_importances"]["by_input"].update(age="high"),
        ["plot-importances"],
        "evaluation.json's feature_importances",
    ),
    "fewer-features-than-coefficients": (
        "ridge",
        _shorten("coefficients", "features"),
        ["plot-weights-hist"],
        "evaluation.json's coefficients",
    ),
    "residuals-unequal": (
        "ridge",
        _shorten("residuals", "predicted"),
        ["plot-predicted-actual", "plot-residuals"],
        "evaluation.json's residuals",
    ),
    "trajectory-names-short": (
        "sgd",
        _shorten("weight_trajectory", "coefficients", "features"),
        ["plot-weights-epochs"],
        "evaluation.json's weight_trajectory",
    ),
    "loss-iterations-short": ("mlp", _shorten("training_loss", "iterations"), ["plot-loss"], "training_loss"),
    "best-params-list": (
        "searched",
        lambda d: d["search"].update(best_params=["max_depth"]),
        [],
        "<strong>Best parameters</strong>: evaluation.json's search.best_params",
    ),
    "tree-too-deep": ("forest", _deep_tree, TREES, "evaluation.json's trees"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_malformed_part_is_named_and_the_rest_is_drawn(case: str, request: pytest.FixtureRequest) -> None:
    name, patch, lost, said = CASES[case]
    trained: Trained = request.getfixturevalue(name)
    evaluation = copy.deepcopy(dict(trained.inputs.evaluation))
    patch(evaluation)
    html = render_report(dataclasses.replace(trained.inputs, evaluation=evaluation))
    assert figure_ids(html) == [f for f in EXPECTED[name] if f not in lost]
    absent = re.search(r'<section id="absent">(.*?)</section>', html, re.DOTALL)
    assert absent is not None and 'href="#absent"' in html
    assert f"{said} is malformed</li>" in unescape(absent[1])
    # One part is named, however many of the figures read it.
    assert len(set(re.findall(r"(\S+'s \S+) is malformed", unescape(absent[1])))) == 1
    assert '<section id="environment">' in html and '<section id="log">' in html


def test_malformed_environment_and_rows_are_named_beside_the_plots(forest: Trained) -> None:
    environment = {"packages": ["scikit-learn"], "inputs": [{"name": "x", "shape": 4}]}
    html = unescape(render_report(dataclasses.replace(forest.inputs, environment=environment)))
    assert figure_ids(html) == EXPECTED["forest"]
    assert "<strong>Packages</strong>: environment.json's packages is malformed" in html
    assert "<strong>Served tensors</strong>: environment.json's inputs or outputs is malformed" in html


def test_nan_and_missing_points_in_curves_are_drawn_not_refused(forest: Trained) -> None:
    evaluation = copy.deepcopy(dict(forest.inputs.evaluation))
    for kind in ("roc", "pr", "ks", "calibration"):
        for curve in evaluation["curves"][kind]:
            for values in curve.values():
                if isinstance(values, list) and len(values) > 2:
                    values[1] = None
    html = render_report(dataclasses.replace(forest.inputs, evaluation=evaluation))
    assert figure_ids(html) == EXPECTED["forest"] and 'id="absent"' not in html


def test_a_comparison_draws_the_version_whose_curves_are_whole(forest: Trained) -> None:
    evaluation = copy.deepcopy(dict(forest.inputs.evaluation))
    evaluation["curves"]["roc"] = "x"
    a = dataclasses.replace(forest.inputs, evaluation=evaluation)
    b = dataclasses.replace(forest.inputs, version=2)
    html = unescape(render_comparison(a, b))
    assert figure_ids(html) == ["plot-compare-roc", "plot-compare-pr", "plot-compare-ks", "plot-compare-calibration"]
    labels = [t for t in figure_texts(html, "plot-compare-roc") if "AUC = " in t]
    assert labels == [f"B v2 · 1 (AUC = {forest.inputs.metrics['roc_auc']:.4f})"]
    assert "(<code>plot-compare-roc</code>): credit-random_forest:1's evaluation.json's curves.roc is malformed" in html

    evaluation["curves"]["ks"] = [{"class": "1", "thresholds": [0.1, 0.2], "gap": [0.3]}]
    html = unescape(render_comparison(a, dataclasses.replace(a, version=2)))
    assert figure_ids(html) == ["plot-compare-pr", "plot-compare-calibration"]
    assert html.count("evaluation.json's curves.ks is malformed") == 2
    assert "neither evaluation.json has curves.roc" not in html


def test_documents_nested_too_deeply_to_parse_are_named() -> None:
    version = cp.ModelVersion(model="m", version=1, tags={"task": "binary"}, created_at=Timestamp(seconds=1))
    inputs = ReportInputs.of(wire.model_version_of(version), {"evaluation.json": b"[" * 100_000}, None)
    assert inputs.problems == ("evaluation.json is nested too deeply to read",)
    assert "evaluation.json is nested too deeply to read" in render_report(inputs)


@pytest.mark.parametrize("metric", sorted(LOWER_IS_BETTER | {"accuracy", "r2", "f1.yes"}))
def test_comparisons_judge_each_metric_in_the_trainers_direction(metric: str) -> None:
    a = ReportInputs(model="m", version=1, metrics={metric: 0.5})
    b = ReportInputs(model="m", version=2, metrics={metric: 0.25})
    row = re.search(rf"<tr><th>{re.escape(metric)}</th>(.*?)</tr>", render_comparison(a, b), re.DOTALL)
    assert row is not None
    lower_is_better = metric.partition(".")[0] in LOWER_IS_BETTER
    assert f'"num {"better" if lower_is_better else "worse"}">-0.2500<' in row[1]


def test_reports_load_without_the_trainers() -> None:
    # The trainers' metric list is read when a comparison is drawn: a dashboard need not load scikit-learn to start.
    code = "import sys, reports; print(sorted(m for m in ('trainers', 'sklearn', 'polars') if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert done.stdout.strip() == "[]"
