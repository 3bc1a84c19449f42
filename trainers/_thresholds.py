"""Tree thresholds stored so that float32 graphs split exactly like the native model.

scikit-learn keeps split thresholds in float64 (midpoints between training values) and the ONNX tree operators in
float32. Rounding a threshold to the nearest float32 can move it past a value the model sees: a row holding exactly
that value then goes down the other branch, and its probability jumps. Served inputs are float32, and for a float32
``x`` and float64 ``t``, ``x <= t`` holds exactly when ``x <= f`` for ``f`` the largest float32 not above ``t``.
Storing ``f`` instead of ``t`` therefore leaves every native prediction on float32 inputs unchanged and makes the
conversion exact. LightGBM keeps float64 thresholds too (in its model text, rewritten the same way); XGBoost's are
float32 already.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

__all__ = ["align_thresholds"]


def align_thresholds(model: Any) -> None:
    """Round ``model``'s split thresholds down to float32, in place (scikit-learn trees and ensembles, LightGBM)."""
    if type(model).__module__.split(".")[0] == "lightgbm":
        _align_lightgbm(model)
        return
    for tree in _trees(model):
        tree.threshold[:] = _floor32(tree.threshold)
    for predictors in getattr(model, "_predictors", None) or ():
        for predictor in predictors:
            nodes = predictor.nodes
            nodes["num_threshold"] = _floor32(nodes["num_threshold"])


def _trees(model: Any) -> list[Any]:
    if hasattr(model, "tree_"):
        return [model.tree_]
    estimators = getattr(model, "estimators_", None)
    if estimators is None:
        return []
    return [e.tree_ for e in np.asarray(estimators, dtype=object).ravel() if hasattr(e, "tree_")]


def _align_lightgbm(model: Any) -> None:
    import lightgbm

    def floor(match: re.Match[str]) -> str:
        values = _floor32(np.array(match.group(1).split(), dtype=np.float64))
        return "threshold=" + " ".join(repr(float(v)) for v in values)

    text = re.sub(r"^threshold=(.*)$", floor, model.booster_.model_to_string(), flags=re.MULTILINE)
    # tree_sizes holds each tree's length in bytes, which the rewrite changes; without it LightGBM reads the trees
    # one after the other.
    text = re.sub(r"^tree_sizes=.*\n", "", text, flags=re.MULTILINE)
    model._Booster = lightgbm.Booster(model_str=text)


def _floor32(values: np.ndarray) -> np.ndarray:
    rounded = values.astype(np.float32)
    above = rounded.astype(np.float64) > values
    rounded[above] = np.nextafter(rounded[above], np.float32(-np.inf))
    return rounded.astype(np.float64)
