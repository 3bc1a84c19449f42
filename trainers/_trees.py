"""The first trees of a fitted tree model as plain JSON, for reports: split conditions with feature names and
thresholds, and what each leaf predicts. Depth-capped, so a deep forest stays a few kilobytes.

A node is either a split, ``{"feature", "operator", "threshold", "samples", "left", "right"}`` (rows meeting
``feature operator threshold`` go left), or a leaf, ``{"samples", "value"}``; XGBoost's nodes carry ``cover`` (its
hessian sum) instead of ``samples``. A split below the cap becomes a leaf
marked ``"truncated": true`` holding what that whole subtree sees (scikit-learn keeps it at every node; the boosting
libraries do not, so theirs has ``value`` None). ``value`` is a list: class probabilities for scikit-learn
classification trees (``values`` = ``"probabilities"``), else one number, the tree's output (``"value"``: a
regression tree's prediction or a boosted tree's raw-score contribution).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["MAX_TREES", "MAX_TREE_DEPTH", "tree_structure"]

MAX_TREES = 3
MAX_TREE_DEPTH = 4


def tree_structure(
    model: Any, features: Sequence[str], classes: Sequence[str], *, trees: int = MAX_TREES, depth: int = MAX_TREE_DEPTH
) -> dict[str, Any] | None:
    """The first ``trees`` trees of ``model`` to ``depth`` levels of splits; None when it is not a tree model.

    ``features`` names the columns the model sees; ``classes`` labels the per-class trees of multiclass boosting.
    """
    library = type(model).__module__.split(".")[0]
    found: tuple[str, int, list[dict[str, Any]]] | None
    if library == "lightgbm":
        found = _lightgbm(model, features, classes, trees, depth)
    elif library == "xgboost":
        found = _xgboost(model, features, classes, trees, depth)
    elif hasattr(model, "tree_") or hasattr(model, "estimators_"):
        found = _sklearn(model, features, classes, trees, depth)
    elif hasattr(model, "_predictors"):
        found = _hist_gradient_boosting(model, features, classes, trees, depth)
    else:
        return None
    if found is None:
        return None
    kind, total, drawn = found
    return {"source": library, "values": kind, "total": total, "max_depth": depth, "trees": drawn}


def _entry(index: int, root: dict[str, Any], label: str | None) -> dict[str, Any]:
    entry: dict[str, Any] = {"index": index, "root": root}
    if label is not None:
        entry["class"] = label
    return entry


def _per_class_label(index: int, classes: Sequence[str], per_round: int) -> str | None:
    """Boosting grows one tree per class per round for multiclass tasks: which class tree ``index`` scores."""
    return classes[index % per_round] if per_round > 1 and len(classes) == per_round else None


# -- scikit-learn CART trees ---------------------------------------------------------------------------------------


def _sklearn(
    model: Any, features: Sequence[str], classes: Sequence[str], count: int, depth: int
) -> tuple[str, int, list[dict[str, Any]]] | None:
    if hasattr(model, "tree_"):
        estimators: list[tuple[Any, str | None]] = [(model, None)]
    else:
        grid = np.asarray(model.estimators_, dtype=object)
        if grid.ndim == 2:  # gradient boosting: one regression tree per round and class
            per_round = grid.shape[1]
            estimators = [
                (tree, _per_class_label(i, classes, per_round)) for i, tree in enumerate(grid.ravel()) if i < count
            ]
            total = grid.size
        else:
            estimators = [(tree, None) for tree in grid[:count]]
            total = len(grid)
        if not estimators or not hasattr(estimators[0][0], "tree_"):
            return None
        drawn = [_entry(i, _sklearn_node(t.tree_, 0, features, depth), c) for i, (t, c) in enumerate(estimators)]
        return _sklearn_kind(estimators[0][0]), total, drawn
    tree = model.tree_
    return _sklearn_kind(model), 1, [_entry(0, _sklearn_node(tree, 0, features, depth), None)]


def _sklearn_kind(tree_model: Any) -> str:
    return "probabilities" if hasattr(tree_model, "classes_") else "value"


def _sklearn_value(tree: Any, node: int) -> list[float]:
    value = np.asarray(tree.value[node], dtype=np.float64)[0]
    if tree.n_classes[0] > 1:
        # scikit-learn ≥ 1.4 stores class fractions already; normalising again keeps older weighted counts right.
        total = value.sum()
        value = value / total if total > 0 else value
    return [float(v) for v in value]


def _sklearn_node(tree: Any, node: int, features: Sequence[str], depth: int) -> dict[str, Any]:
    samples = int(tree.n_node_samples[node])
    left, right = int(tree.children_left[node]), int(tree.children_right[node])
    if left == -1:
        return {"samples": samples, "value": _sklearn_value(tree, node)}
    if depth == 0:
        return {"samples": samples, "value": _sklearn_value(tree, node), "truncated": True}
    return {
        "feature": _name(features, int(tree.feature[node])),
        "operator": "<=",
        "threshold": float(tree.threshold[node]),
        "samples": samples,
        "left": _sklearn_node(tree, left, features, depth - 1),
        "right": _sklearn_node(tree, right, features, depth - 1),
    }


def _name(features: Sequence[str], index: int) -> str:
    return features[index] if 0 <= index < len(features) else f"x{index}"


# -- scikit-learn histogram gradient boosting ------------------------------------------------------------------------


def _hist_gradient_boosting(
    model: Any, features: Sequence[str], classes: Sequence[str], count: int, depth: int
) -> tuple[str, int, list[dict[str, Any]]]:
    rounds = model._predictors  # one list of per-class predictors per iteration
    per_round = len(rounds[0]) if rounds else 1
    flat = [predictor for round_ in rounds for predictor in round_]
    drawn = [
        _entry(i, _hgb_node(p.nodes, 0, features, depth), _per_class_label(i, classes, per_round))
        for i, p in enumerate(flat[:count])
    ]
    return "value", len(flat), drawn


def _hgb_node(nodes: np.ndarray, node: int, features: Sequence[str], depth: int) -> dict[str, Any]:
    row = nodes[node]
    samples = int(row["count"])
    if row["is_leaf"]:
        return {"samples": samples, "value": [float(row["value"])]}
    if depth == 0:
        return {"samples": samples, "value": None, "truncated": True}
    return {
        "feature": _name(features, int(row["feature_idx"])),
        "operator": "<=",
        "threshold": float(row["num_threshold"]),
        "samples": samples,
        "left": _hgb_node(nodes, int(row["left"]), features, depth - 1),
        "right": _hgb_node(nodes, int(row["right"]), features, depth - 1),
    }


# -- LightGBM and XGBoost, through their own dumps -----------------------------------------------------------------


def _lightgbm(
    model: Any, features: Sequence[str], classes: Sequence[str], count: int, depth: int
) -> tuple[str, int, list[dict[str, Any]]]:
    dump = model.booster_.dump_model(num_iteration=-1)
    per_round = int(dump.get("num_tree_per_iteration", 1))
    info = dump["tree_info"]
    drawn = [
        _entry(i, _lightgbm_node(tree["tree_structure"], features, depth), _per_class_label(i, classes, per_round))
        for i, tree in enumerate(info[:count])
    ]
    return "value", len(info), drawn


def _lightgbm_node(node: dict[str, Any], features: Sequence[str], depth: int) -> dict[str, Any]:
    if "leaf_value" in node:
        return {"samples": int(node.get("leaf_count", 0)), "value": [float(node["leaf_value"])]}
    samples = int(node.get("internal_count", 0))
    if depth == 0:
        return {"samples": samples, "value": None, "truncated": True}
    return {
        "feature": _name(features, int(node["split_feature"])),
        "operator": str(node.get("decision_type", "<=")),
        "threshold": float(node["threshold"]),
        "samples": samples,
        "left": _lightgbm_node(node["left_child"], features, depth - 1),
        "right": _lightgbm_node(node["right_child"], features, depth - 1),
    }


def _xgboost(
    model: Any, features: Sequence[str], classes: Sequence[str], count: int, depth: int
) -> tuple[str, int, list[dict[str, Any]]]:
    booster = model.get_booster()
    dumps = booster.get_dump(dump_format="json", with_stats=True)
    per_round = max(1, len(dumps) // max(1, booster.num_boosted_rounds()))
    drawn = [
        _entry(i, _xgboost_node(json.loads(text), features, depth), _per_class_label(i, classes, per_round))
        for i, text in enumerate(dumps[:count])
    ]
    return "value", len(dumps), drawn


def _xgboost_node(node: dict[str, Any], features: Sequence[str], depth: int) -> dict[str, Any]:
    # XGBoost records cover, the hessian sum under the node (the row count only for squared error), not rows.
    cover = float(node.get("cover", 0.0))
    if "leaf" in node:
        return {"cover": cover, "value": [float(node["leaf"])]}
    if depth == 0:
        return {"cover": cover, "value": None, "truncated": True}
    children = {child["nodeid"]: child for child in node["children"]}
    split = str(node["split"])
    index = int(split[1:]) if split.startswith("f") and split[1:].isdigit() else -1
    return {
        "feature": _name(features, index) if index >= 0 else split,
        "operator": "<",  # XGBoost sends rows with feature < split_condition to "yes"
        "threshold": float(node["split_condition"]),
        "cover": cover,
        "left": _xgboost_node(children[node["yes"]], features, depth - 1),
        "right": _xgboost_node(children[node["no"]], features, depth - 1),
    }
