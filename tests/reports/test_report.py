"""reports.render_report and render_comparison on models trained here: every plot a version's documents allow,
numbers equal to the stored metrics and to the fitted trees, nothing fetched from anywhere, and what is missing
said rather than silently left out."""

from __future__ import annotations

import dataclasses
import re
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from sklearn import metrics as skm
from sklearn.ensemble import RandomForestClassifier

from contract import wire
from reports import ReportInputs, render_comparison, render_report
from tests.reports.conftest import Trained, figure_ids, figure_texts
from trainers import bundled
from trainers._trees import MAX_TREE_DEPTH, tree_structure

CLASSIFICATION = ["plot-roc", "plot-pr", "plot-ks", "plot-confusion", "plot-calibration"]
EXPECTED = {
    "forest": [*CLASSIFICATION, "plot-importances", "plot-tree-0", "plot-tree-1", "plot-tree-2"],
    "sgd": [*CLASSIFICATION, "plot-weights-hist", "plot-loss", "plot-weights-epochs"],
    "mlp": [*CLASSIFICATION, "plot-loss", "plot-weights-epochs"],
    "ridge": ["plot-predicted-actual", "plot-residuals", "plot-weights-hist"],
    "searched": [
        *CLASSIFICATION,
        "plot-importances",
        "plot-tree-0",
        "plot-tree-1",
        "plot-tree-2",
        "plot-loss",
        "plot-search-trials",
        "plot-search-importances",
    ],
}
_URL = re.compile(r"https?://[^\s\"'<>)]*")
_NAMESPACES = {'xmlns="http://www.w3.org/2000/svg"', 'xmlns:xlink="http://www.w3.org/1999/xlink"'}


def _urls_outside_namespaces(html: str) -> list[str]:
    found = []
    for match in _URL.finditer(html):
        attribute = html[html.rfind(" ", 0, match.start()) + 1 : match.end() + 1]
        if attribute not in _NAMESPACES:
            found.append(attribute)
    return found


@pytest.mark.parametrize("name", list(EXPECTED))
def test_every_applicable_figure_is_drawn_and_nothing_is_fetched(name: str, request: pytest.FixtureRequest) -> None:
    trained: Trained = request.getfixturevalue(name)
    html = render_report(trained.inputs)
    assert html.startswith("<!DOCTYPE html>") and html.rstrip().endswith("</html>")
    assert figure_ids(html) == EXPECTED[name]
    assert 'id="absent"' not in html
    assert _urls_outside_namespaces(html) == []
    assert "<?xml" not in html and "<!DOCTYPE svg" not in html
    assert not re.search(r"""\b(src|href)=["'](?!#)""", html), "a link or resource that is not a fragment"
    assert "@import" not in html and "url(http" not in html
    # Every plot keeps its words as text, so a browser (and the dashboard's test) can read them.
    for figure in figure_ids(html):
        assert figure_texts(html, figure)
        assert re.search(rf'<figure id="{figure}">.*?<figcaption>[^<]+</figcaption></figure>', html, re.DOTALL)


def test_the_header_summary_and_data_set_profile_come_from_the_registry(forest: Trained) -> None:
    inputs = dataclasses.replace(forest.inputs, aliases=("production", "staging"))
    html = render_report(inputs)
    assert "<h1>credit-random_forest</h1>" in html and "@production" in html and "@staging" in html
    for section in ("summary", "dataset", "metrics", "evaluation", "model", "trees", "spec", "environment", "log"):
        assert f'<section id="{section}">' in html and f'href="#{section}"' in html
    frame = bundled.load("credit")
    assert f"Profile ({frame.height:,} rows)" in html
    income = frame["income"].drop_nulls()
    row = re.search(r"<tr><th>income</th>(.*?)</tr>", html, re.DOTALL)
    assert row is not None and "numeric" in row[1]
    assert f"{income.mean():.4g}" in row[1] or f"{income.mean():.4f}" in row[1]
    assert "scikit-learn" in html and forest.result.packages["scikit-learn"] in html
    assert "[model]" in html and "random_forest" in html  # the spec
    assert ">n_estimators</td><td>12</td>" in html


@pytest.mark.parametrize("name", ["forest", "sgd", "searched"])
def test_binary_auc_and_ks_texts_equal_the_stored_metrics(name: str, request: pytest.FixtureRequest) -> None:
    trained: Trained = request.getfixturevalue(name)
    html = render_report(trained.inputs)
    metrics, positive = trained.result.metrics, trained.result.classes[1]
    expected = f"{positive} (AUC = {metrics['roc_auc']:.4f})"
    assert [t for t in figure_texts(html, "plot-roc") if "AUC = " in t] == [expected]
    assert [t for t in figure_texts(html, "plot-ks") if "KS = " in t] == [f"KS = {metrics['ks']:.4f}"]


def test_multiclass_roc_shows_each_class_area_and_the_macro_average(mlp: Trained) -> None:
    html = render_report(mlp.inputs)
    result = mlp.result
    assert result.native_probabilities is not None
    expected = [
        f"{label} (AUC = {skm.roc_auc_score(result.test_target == c, result.native_probabilities[:, c]):.4f})"
        for c, label in enumerate(result.classes)
    ]
    texts = figure_texts(html, "plot-roc")
    assert [t for t in texts if t.endswith(")") and " (AUC = " in t and "macro" not in t] == expected
    assert f"ROC curve (macro-average AUC = {result.metrics['roc_auc']:.4f})" in texts
    assert f"Kolmogorov-Smirnov (mean KS = {result.metrics['ks']:.4f})" in figure_texts(html, "plot-ks")


def _drawn(tree: Any, features: list[str], classes: list[str]) -> tuple[list[list[str]], list[str]]:
    """What a report should show of a scikit-learn tree, in drawing order: each leaf's (or cut subtree's) class
    shares from left to right, and each split's condition."""
    leaves: list[list[str]] = []
    conditions: list[str] = []

    def walk(node: int, depth: int) -> None:
        if tree.children_left[node] == -1 or depth == MAX_TREE_DEPTH:
            share = tree.value[node][0] / tree.value[node][0].sum()
            leaves.append([f"{label}: {p:.3f}" for label, p in zip(classes, share, strict=True)])
            return
        walk(tree.children_left[node], depth + 1)
        walk(tree.children_right[node], depth + 1)
        conditions.append(f"{features[tree.feature[node]]} <= {tree.threshold[node]:.4g}")  # drawn after its children

    walk(0, 0)
    return leaves, conditions


def test_tree_leaves_show_the_scikit_learn_tree_probabilities() -> None:
    frame = bundled.load("iris")
    target = bundled.BUNDLED["iris"].target
    features = [c for c in frame.columns if c != target]
    forest = RandomForestClassifier(n_estimators=4, random_state=0).fit(
        frame.select(features).to_numpy(), frame[target]
    )
    classes = [str(c) for c in forest.classes_]
    evaluation = {"task": "multiclass", "classes": classes, "trees": tree_structure(forest, features, classes)}
    inputs = ReportInputs(model="iris", version=3, tags={"estimator": "random_forest"}, evaluation=evaluation)
    html = render_report(inputs)
    for index, estimator in enumerate(forest.estimators_[:3]):
        leaves, conditions = _drawn(estimator.tree_, features, classes)
        texts = figure_texts(html, f"plot-tree-{index}")
        shown = [t for t in texts if re.fullmatch(r".+: \d\.\d{3}", t)]
        assert shown == [line for leaf in leaves for line in leaf]
        assert [t for t in texts if " <= " in t] == conditions
        assert texts[-1].startswith(f"Tree {index + 1} of 4 (drawn to depth {MAX_TREE_DEPTH}")
        assert np.isclose(sum(float(t.rsplit(" ", 1)[1]) for t in shown[: len(classes)]), 1.0, atol=2e-3)


def test_a_comparison_holds_both_versions_metrics_and_overlaid_curves(forest: Trained, searched: Trained) -> None:
    a = forest.inputs
    b = dataclasses.replace(searched.inputs, model=a.model, version=2, aliases=("production",))
    html = render_comparison(a, b)
    assert figure_ids(html) == ["plot-compare-roc", "plot-compare-pr", "plot-compare-ks", "plot-compare-calibration"]
    assert _urls_outside_namespaces(html) == []
    for name in ("roc_auc", "ks", "accuracy", "log_loss"):
        left, right = a.metrics[name], b.metrics[name]
        row = re.search(rf"<tr><th>{name}</th>(.*?)</tr>", html, re.DOTALL)
        assert row is not None, name
        assert f">{left:.4f}<" in row[1] and f">{right:.4f}<" in row[1] and f"{right - left:+.4f}" in row[1]
        better = right < left if name == "log_loss" else right > left
        assert ("better" if better else "worse") in row[1]
    roc = figure_texts(html, "plot-compare-roc")
    assert (
        f"A v1 · 1 (AUC = {a.metrics['roc_auc']:.4f})" in roc and f"B v2 · 1 (AUC = {b.metrics['roc_auc']:.4f})" in roc
    )
    ks = figure_texts(html, "plot-compare-ks")
    assert f"A: KS = {a.metrics['ks']:.4f}" in ks and f"B: KS = {b.metrics['ks']:.4f}" in ks
    assert "credit-random_forest:1" in html and "credit-random_forest:2" in html


def test_an_older_evaluation_document_draws_what_it_can_and_names_the_rest(forest: Trained) -> None:
    evaluation = dict(forest.inputs.evaluation)
    evaluation["curves"] = {k: v for k, v in evaluation["curves"].items() if k != "calibration"}
    for curve in evaluation["curves"]["roc"]:
        curve.pop("auc", None)
    del evaluation["trees"]
    html = render_report(dataclasses.replace(forest.inputs, evaluation=evaluation))
    assert figure_ids(html) == ["plot-roc", "plot-pr", "plot-ks", "plot-confusion", "plot-importances"]
    absent = re.search(r'<section id="absent">(.*?)</section>', html, re.DOTALL)
    assert absent is not None
    assert "<code>plot-calibration</code>): evaluation.json has no curves.calibration" in absent[1]
    assert "<code>plot-tree-0</code>): evaluation.json has no trees" in absent[1]
    # The binary ROC-AUC is the stored metric, whatever the curve document holds.
    assert f"1 (AUC = {forest.result.metrics['roc_auc']:.4f})" in figure_texts(html, "plot-roc")

    bare = ReportInputs(model="old", version=1, tags={"task": "binary", "estimator": "random_forest"})
    html = render_report(bare)
    assert figure_ids(html) == []
    assert html.count("the version has no evaluation.json") == 7  # five evaluation plots, importances, trees
    assert "None recorded." in html and "No spec recorded." in html


def test_unreadable_attachments_are_reported_not_raised(forest: Trained) -> None:
    from control_plane.protocol import control_plane_pb2 as cp

    version = wire.model_version_of(
        cp.ModelVersion(model="m", version=4, tags={"task": "binary"}, created_at=Timestamp(seconds=1))
    )
    inputs = ReportInputs.of(version, {"evaluation.json": b"{not json", "training.log": b"\xff\xfe"}, None)
    assert inputs.evaluation == {} and inputs.dataset is None
    assert inputs.problems == (
        "evaluation.json is not valid JSON (Expecting property name enclosed in double quotes at line 1)",
        "training.log is not UTF-8 text (invalid start byte at byte 0)",
    )
    html = render_report(inputs)
    assert "evaluation.json is not valid JSON" in html


def test_every_string_from_the_registry_is_escaped(forest: Trained) -> None:
    hostile = "<script>alert('x')</script>"
    inputs = dataclasses.replace(
        forest.inputs,
        model=f"m{hostile}",
        description=hostile,
        spec=f"# {hostile}\n",
        training_log=hostile,
        params={hostile: hostile},
        aliases=(hostile,),
    )
    for html in (render_report(inputs), render_comparison(inputs, forest.inputs)):
        assert "<script" not in html
        assert "&lt;script&gt;" in html


def test_reports_rendered_on_several_threads_are_the_serial_ones(forest: Trained, ridge: Trained) -> None:
    expected = {id(t.inputs): render_report(t.inputs) for t in (forest, ridge)}
    assert render_report(forest.inputs) == expected[id(forest.inputs)]  # the same inputs make the same page
    work = [forest.inputs, ridge.inputs] * 3
    with ThreadPoolExecutor(max_workers=len(work)) as pool:
        pages = list(pool.map(render_report, work))
    assert all(page == expected[id(inputs)] for page, inputs in zip(pages, work, strict=True))
