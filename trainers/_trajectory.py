"""How the weights of an iteratively trained model moved across epochs, for reports.

scikit-learn keeps only the final weights, so the training is replayed on a clone with the same parameters and
random state: for each recorded epoch ``e`` (at most 30 for SGD, 20 for networks, evenly spread) the clone is fitted
from scratch with ``max_iter=e``. A fit seeds its initialisation and every epoch's shuffle from its random state, and
the real fit's stopping rules did not fire before its last epoch, so the ``e`` epochs of a refit are exactly the
first ``e`` epochs of the real fit (SGD refits also drop the tolerance, which changes no epoch it runs). An epoch by
epoch ``partial_fit`` would be cheaper but is not the same run: it restarts the shuffle and, for SGD, redraws the
seed every call. Networks with early stopping keep their best epoch on held-out rows, so their points show that.
Refits cost a multiple of the training: large data gets fewer points (``REPLAY_BUDGET``), or no trajectory.

``final_gap`` is the relative distance between the replay's last weights and the fitted model's: 0 when the replay
retraced the run exactly.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn import metrics as skm
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning

from trainers._metrics import as_probabilities, downsample, finite

__all__ = ["MAX_MLP_POINTS", "MAX_SGD_POINTS", "weight_trajectory"]

MAX_SGD_POINTS = 30
MAX_MLP_POINTS = 20
REPLAY_BUDGET = 20_000_000
"""Row-epochs all refits of one model may take together (a refit to epoch ``e`` passes ``e`` times over the rows)."""
_REFIT_NOTE = (
    "a replay: each point refits a clone for that many epochs with the same parameters and random state, which "
    "retraces the first epochs of the real fit"
)


def weight_trajectory(
    model: Any, features: Sequence[str], rows: Sequence[str], train: tuple[np.ndarray, np.ndarray]
) -> dict[str, Any] | None:
    """Per-epoch weight norms (and a linear model's coefficients) of a replayed fit; None for other estimators.

    ``features`` names the model's input columns, ``rows`` its coefficient rows (classes, or one row); ``train`` is
    the transformed training rows and their target, exactly as the model was fitted on.
    """
    name = type(model).__name__
    with warnings.catch_warnings():
        # Every prefix of a run stops before convergence, by design.
        warnings.simplefilter("ignore", ConvergenceWarning)
        if name in ("SGDClassifier", "SGDRegressor") and getattr(model, "n_iter_", None):
            return _sgd(model, features, rows, train)
        if name in ("MLPClassifier", "MLPRegressor") and model.solver in ("adam", "sgd"):
            return _mlp(model, train)
    return None


def _loss(model: Any, x: np.ndarray, y: np.ndarray) -> float | None:
    if hasattr(model, "classes_"):
        if not hasattr(model, "predict_proba"):  # SGD with hinge loss has no probabilities
            return None
        try:
            probabilities = as_probabilities(model.predict_proba(x))
        except AttributeError:
            return None
        return float(skm.log_loss(y, probabilities, labels=model.classes_))
    return float(skm.mean_squared_error(y, model.predict(x)))


def _gap(replayed: list[np.ndarray], fitted: list[np.ndarray]) -> float:
    a = np.concatenate([np.ravel(w) for w in replayed])
    b = np.concatenate([np.ravel(w) for w in fitted])
    return float(np.linalg.norm(a - b)) / max(float(np.linalg.norm(b)), 1e-12)


def _recorded_epochs(total: int, rows: int, most: int) -> list[int]:
    """Up to ``most`` evenly spread epochs whose refits fit in ``REPLAY_BUDGET``; fewer for large data, none when
    even refitting the last epoch alone would not fit."""
    for points in range(most, 0, -1):
        epochs = [int(i) + 1 for i in downsample(total, points)] if points > 1 else [total]
        if sum(epochs) * rows <= REPLAY_BUDGET:
            return epochs
    return []


def _sgd(
    model: Any, features: Sequence[str], rows: Sequence[str], train: tuple[np.ndarray, np.ndarray]
) -> dict[str, Any] | None:
    x, y = train
    epochs = _recorded_epochs(int(model.n_iter_), len(x), MAX_SGD_POINTS)
    if not epochs:
        return None
    coefficients, norms, losses = [], [], []
    last: Any = None
    for epoch in epochs:
        last = clone(model).set_params(max_iter=epoch, tol=None)
        last.fit(x, y)
        weights = np.atleast_2d(np.asarray(last.coef_, dtype=np.float64))
        coefficients.append([finite(row) for row in weights])
        norms.append(float(np.linalg.norm(weights)))
        losses.append(_loss(last, x, y))
    result: dict[str, Any] = {
        "method": "refit",
        "note": _REFIT_NOTE,
        "epochs": epochs,
        "layers": [{"name": "coefficients", "norms": finite(norms)}],
        "coefficients": {"features": list(features), "rows": list(rows), "values": coefficients},
        "final_gap": _gap([last.coef_], [model.coef_]),
    }
    if all(value is not None for value in losses):
        result["loss"] = {"name": "log_loss" if hasattr(model, "classes_") else "mse", "train": finite(losses)}
    return result


def _mlp(model: Any, train: tuple[np.ndarray, np.ndarray]) -> dict[str, Any] | None:
    x, y = train
    epochs = _recorded_epochs(int(model.n_iter_), len(x), MAX_MLP_POINTS)
    if not epochs:
        return None
    layers: list[list[float]] = [[] for _ in model.coefs_]
    losses: list[float] = []
    last: Any = None
    for epoch in epochs:
        last = clone(model).set_params(max_iter=epoch).fit(x, y)
        for norms, weights in zip(layers, last.coefs_, strict=True):
            norms.append(float(np.linalg.norm(weights)))
        losses.append(float(last.loss_))
    sizes = [w.shape for w in model.coefs_]
    names = [f"layer {i + 1} ({fan_in}→{fan_out})" for i, (fan_in, fan_out) in enumerate(sizes)]
    note = _REFIT_NOTE + (
        "; with early stopping each refit keeps its best epoch on held-out rows, not its last"
        if model.early_stopping
        else ""
    )
    return {
        "method": "refit",
        "note": note,
        "epochs": epochs,
        "layers": [{"name": name, "norms": finite(norms)} for name, norms in zip(names, layers, strict=True)],
        "loss": {"name": "estimator", "train": finite(losses)},
        "final_gap": _gap(last.coefs_, model.coefs_),
    }
