"""What a fitted model says about itself, for reports: feature importances, coefficients, training loss per
iteration, the first trees, and how the weights moved across epochs. Each is present only where the estimator has
it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn import metrics as skm

from trainers._metrics import as_probabilities, downsample, finite
from trainers._trajectory import weight_trajectory
from trainers._trees import tree_structure

__all__ = ["model_insights"]

_MAX_LOSS_POINTS = 100


def model_insights(
    model: Any,
    sources: Sequence[tuple[str, str]],
    classes: Sequence[str],
    train: tuple[np.ndarray, np.ndarray],
    test: tuple[np.ndarray, np.ndarray],
) -> dict[str, Any]:
    """Importances, coefficients, loss curves, trees and weight trajectories of ``model``, the fitted final step of
    a pipeline.

    ``sources`` pairs each column the model sees with the input column it comes from; ``train`` and ``test`` are the
    transformed rows and their targets.
    """
    insights: dict[str, Any] = {}
    features = [feature for feature, _ in sources]
    importances = getattr(model, "feature_importances_", None)
    if importances is not None and len(importances) == len(features):
        values = np.asarray(importances, dtype=np.float64)
        by_input: dict[str, float] = {}
        for (_, column), value in zip(sources, values, strict=True):
            by_input[column] = by_input.get(column, 0.0) + float(value)
        insights["feature_importances"] = {
            "features": features,
            "importances": finite(values),
            "by_input": {column: by_input[column] for column in dict.fromkeys(c for _, c in sources)},
        }
    coefficients = getattr(model, "coef_", None)
    rows = list(classes) or ["prediction"]
    if coefficients is not None:
        matrix = np.atleast_2d(np.asarray(coefficients, dtype=np.float64))
        rows = [classes[1]] if len(classes) == 2 and len(matrix) == 1 else rows
        insights["coefficients"] = {
            "features": features,
            "rows": rows,
            "values": [finite(row) for row in matrix],
            "intercept": finite(np.atleast_1d(getattr(model, "intercept_", 0.0))),
        }
    loss = _training_loss(model, bool(classes), train, test)
    if loss is not None:
        insights["training_loss"] = loss
    trees = tree_structure(model, features, classes)
    if trees is not None:
        insights["trees"] = trees
    trajectory = weight_trajectory(model, features, rows, train)
    if trajectory is not None:
        insights["weight_trajectory"] = trajectory
    return insights


def _training_loss(
    model: Any, classifier: bool, train: tuple[np.ndarray, np.ndarray], test: tuple[np.ndarray, np.ndarray]
) -> dict[str, Any] | None:
    name = "log_loss" if classifier else "mse"
    curve = getattr(model, "loss_curve_", None)
    if curve is not None:  # networks record their own training loss per epoch
        keep = downsample(len(curve), _MAX_LOSS_POINTS)
        return {"loss": "estimator", "iterations": [int(i) + 1 for i in keep], "train": finite(np.asarray(curve)[keep])}
    total = _iterations(model)
    if not total:
        return None
    iterations = [int(i) + 1 for i in downsample(total, _MAX_LOSS_POINTS)]
    result: dict[str, Any] = {"loss": name, "iterations": iterations}
    for split, (x, y) in (("train", train), ("test", test)):
        values = []
        for predicted in _predictions_at(model, classifier, x, iterations):
            if classifier:
                values.append(skm.log_loss(y, as_probabilities(predicted), labels=np.arange(predicted.shape[1])))
            else:
                values.append(skm.mean_squared_error(y, predicted))
        result[split] = finite(values)
    return result


def _iterations(model: Any) -> int:
    """How many boosting iterations ``model`` ran; 0 when it is not a boosted model."""
    library = type(model).__module__.split(".")[0]
    if library == "lightgbm":
        return int(model.booster_.current_iteration())
    if library == "xgboost":
        return int(model.get_booster().num_boosted_rounds())
    if hasattr(model, "staged_predict"):
        count: Any = getattr(model, "n_iter_", None) or getattr(model, "n_estimators_", 0)
        return int(count)
    return 0


def _predictions_at(model: Any, classifier: bool, x: np.ndarray, iterations: list[int]) -> list[np.ndarray]:
    """Predictions (probabilities for classifiers) after each of ``iterations`` (ascending, 1-based)."""
    method = "predict_proba" if classifier else "predict"
    library = type(model).__module__.split(".")[0]
    if library == "lightgbm":
        return [getattr(model, method)(x, num_iteration=i) for i in iterations]
    if library == "xgboost":
        return [getattr(model, method)(x, iteration_range=(0, i)) for i in iterations]
    wanted = set(iterations)
    # scikit-learn's staged predictions walk the ensemble once.
    staged = getattr(model, f"staged_{method}")(x)
    return [np.asarray(p) for i, p in enumerate(staged, start=1) if i in wanted]
