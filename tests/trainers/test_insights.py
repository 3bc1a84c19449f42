"""What training adds to the evaluation document for reports: calibration curves, the first trees, weight
trajectories and search parameter importances, each checked against the library that computed the model."""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl
import pytest
from sklearn import metrics as skm
from sklearn.calibration import calibration_curve
from sklearn.tree import DecisionTreeClassifier

from tests.trainers.conftest import MakeSpec
from trainers import bundled, train
from trainers._trajectory import MAX_SGD_POINTS, REPLAY_BUDGET, _recorded_epochs
from trainers._trees import MAX_TREE_DEPTH, tree_structure


def _depth(node: dict[str, Any]) -> int:
    return 1 + max(_depth(node["left"]), _depth(node["right"])) if "left" in node else 0


def test_calibration_and_per_class_areas_equal_scikit_learn(
    frames: dict[str, pl.DataFrame], make_spec: MakeSpec
) -> None:
    result = train(make_spec("credit", "logistic_regression", "binary"), frames["credit"], dataset_version="a" * 16)
    assert result.native_probabilities is not None
    y, scores = result.test_target == 1, result.native_probabilities[:, 1]
    curves = result.evaluation["curves"]
    (calibration,) = curves["calibration"]
    observed, predicted = calibration_curve(y, scores, n_bins=10)
    np.testing.assert_allclose(calibration["fraction_positive"], observed)
    np.testing.assert_allclose(calibration["mean_predicted"], predicted)
    assert sum(calibration["count"]) == len(y) and len(calibration["count"]) == len(observed)
    assert curves["roc"][0]["auc"] == pytest.approx(result.metrics["roc_auc"], abs=1e-12)
    assert curves["pr"][0]["average_precision"] == pytest.approx(skm.average_precision_score(y, scores), abs=1e-12)


def test_forest_trees_are_drawn_to_the_depth_cap(frames: dict[str, pl.DataFrame], make_spec: MakeSpec) -> None:
    spec = make_spec("credit", "random_forest", "binary", {"n_estimators": 5, "max_depth": 8})
    result = train(spec, frames["credit"], dataset_version="a" * 16)
    trees = result.evaluation["trees"]
    assert trees["source"] == "sklearn" and trees["values"] == "probabilities" and trees["total"] == 5
    assert [t["index"] for t in trees["trees"]] == [0, 1, 2] and trees["max_depth"] == MAX_TREE_DEPTH
    features = result.evaluation["feature_importances"]["features"]

    def leaves(node: dict[str, Any]) -> list[dict[str, Any]]:
        if "left" in node:
            assert node["feature"] in features and node["operator"] == "<="
            return leaves(node["left"]) + leaves(node["right"])
        return [node]

    for tree in trees["trees"]:
        assert _depth(tree["root"]) == MAX_TREE_DEPTH
        found = leaves(tree["root"])
        assert any(leaf.get("truncated") for leaf in found)
        assert sum(leaf["samples"] for leaf in found) == tree["root"]["samples"]
        for leaf in found:
            assert len(leaf["value"]) == 2 and sum(leaf["value"]) == pytest.approx(1.0)


def test_tree_nodes_are_the_scikit_learn_tree(frames: dict[str, pl.DataFrame]) -> None:
    iris = frames["iris"]
    target = bundled.BUNDLED["iris"].target
    features = [c for c in iris.columns if c != target]
    x = iris.select(features).to_numpy()
    y = iris[target].to_numpy()
    model = DecisionTreeClassifier(random_state=0).fit(x, y)
    structure = tree_structure(model, features, [str(c) for c in model.classes_], depth=2)
    assert structure is not None and structure["total"] == 1
    tree = model.tree_

    def check(node: dict[str, Any], index: int, depth: int) -> None:
        assert node["samples"] == tree.n_node_samples[index]
        if "left" in node:
            assert node["feature"] == features[tree.feature[index]]
            assert node["threshold"] == tree.threshold[index]
            check(node["left"], tree.children_left[index], depth + 1)
            check(node["right"], tree.children_right[index], depth + 1)
            return
        expected = tree.value[index][0] / tree.value[index][0].sum()
        np.testing.assert_allclose(node["value"], expected, rtol=1e-12)
        assert node.get("truncated", False) == (tree.children_left[index] != -1)
        assert depth <= 2

    check(structure["trees"][0]["root"], 0, 0)


@pytest.mark.parametrize(("estimator", "params"), [("lightgbm", {"n_estimators": 5}), ("xgboost", {"n_estimators": 5})])
def test_boosting_libraries_dump_their_trees(
    frames: dict[str, pl.DataFrame], make_spec: MakeSpec, estimator: str, params: dict[str, int]
) -> None:
    result = train(make_spec("wine", estimator, "multiclass", params), frames["wine"], dataset_version="a" * 16)
    trees = result.evaluation["trees"]
    assert trees["source"] == estimator and trees["values"] == "value" and trees["total"] == 15
    assert [t["class"] for t in trees["trees"]] == list(result.classes)
    root = trees["trees"][0]["root"]
    assert root["feature"] in result.spec.features.numeric and 1 <= _depth(root) <= MAX_TREE_DEPTH


@pytest.mark.parametrize(
    ("estimator", "dataset", "task", "params"),
    [
        ("sgd", "breast_cancer", "binary", {}),
        ("mlp", "iris", "multiclass", {"hidden_layer_sizes": [8], "max_iter": 60}),
    ],
)
def test_weight_trajectories_retrace_the_fit(
    frames: dict[str, pl.DataFrame],
    make_spec: MakeSpec,
    estimator: str,
    dataset: str,
    task: str,
    params: dict[str, Any],
) -> None:
    result = train(make_spec(dataset, estimator, task, params), frames[dataset], dataset_version="a" * 16)
    trajectory = result.evaluation["weight_trajectory"]
    assert trajectory["method"] == "refit" and "replay" in trajectory["note"]
    assert trajectory["final_gap"] == pytest.approx(0.0, abs=1e-9)
    epochs = trajectory["epochs"]
    assert epochs[0] == 1 and epochs == sorted(set(epochs))
    assert all(len(layer["norms"]) == len(epochs) for layer in trajectory["layers"])
    if estimator == "sgd":
        coefficients = trajectory["coefficients"]
        final = np.asarray(coefficients["values"][-1])
        np.testing.assert_allclose(final, np.asarray(result.evaluation["coefficients"]["values"]), rtol=1e-12)
    else:
        assert [layer["name"] for layer in trajectory["layers"]] == ["layer 1 (4→8)", "layer 2 (8→3)"]
        assert trajectory["loss"]["train"][-1] == pytest.approx(result.evaluation["training_loss"]["train"][-1])


def test_search_importances_need_two_completed_trials(frames: dict[str, pl.DataFrame], make_spec: MakeSpec) -> None:
    space = {"max_depth": [2, 8], "min_samples_leaf": [1, 20]}
    search = {"trials": 4, "metric": "roc_auc", "space": space}
    result = train(
        make_spec("credit", "random_forest", "binary", {"n_estimators": 10}, search=search),
        frames["credit"],
        dataset_version="a" * 16,
    )
    importances = result.evaluation["search"]["param_importances"]
    assert set(importances) == {"max_depth", "min_samples_leaf"}
    assert sum(importances.values()) == pytest.approx(1.0)
    single = train(
        make_spec("credit", "random_forest", "binary", {"n_estimators": 10}, search=search | {"trials": 1}),
        frames["credit"],
        dataset_version="a" * 16,
    )
    assert single.evaluation["search"]["param_importances"] is None


def test_large_data_records_fewer_epochs_within_the_replay_budget() -> None:
    assert _recorded_epochs(30, 1_000, MAX_SGD_POINTS) == list(range(1, 31))
    few = _recorded_epochs(200, 50_000, MAX_SGD_POINTS)
    assert 1 < len(few) < MAX_SGD_POINTS and few[-1] == 200 and sum(few) * 50_000 <= REPLAY_BUDGET
    assert _recorded_epochs(200, REPLAY_BUDGET // 100, MAX_SGD_POINTS) == []
