"""The scikit-learn pipeline a spec trains: imputation, clipping, scaling and one-hot encoding in front of the model.

All of it converts to ONNX, so the served graph takes raw feature values: one FP32 input per numeric feature (NaN
for missing) and one string input per categorical feature (the empty string for missing; unseen categories are
ignored).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import polars as pl
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from trainers.spec import TrainingSpec

__all__ = ["Clip", "build_pipeline", "feature_frame", "feature_sources", "served_inputs"]

MISSING_CATEGORY = ""


class Clip(TransformerMixin, BaseEstimator):  # type: ignore[misc]
    """Clip each column to ``[lower[i], upper[i]]`` (float32 bounds, as the ONNX graph holds them)."""

    def __init__(self, lower: Sequence[float] = (), upper: Sequence[float] = ()) -> None:
        self.lower = lower
        self.upper = upper

    def fit(self, x: Any, y: Any = None) -> Clip:
        self.n_features_in_ = np.asarray(x).shape[1]
        return self

    def transform(self, x: Any) -> np.ndarray:
        low = np.asarray(self.lower, dtype=np.float32)
        high = np.asarray(self.upper, dtype=np.float32)
        clipped: np.ndarray = np.clip(np.asarray(x), low, high)
        return clipped


def build_pipeline(spec: TrainingSpec, estimator: Any) -> Pipeline:
    """The preprocessing of ``spec`` in front of ``estimator`` (unfitted)."""
    features, cleaning = spec.features, spec.cleaning
    transformers: list[tuple[str, Any, list[str]]] = []
    if features.numeric:
        strategy = "constant" if cleaning.impute == "zero" else cleaning.impute
        # keep_empty_features: a column with no value in training still gets an input (imputed to 0).
        steps: list[tuple[str, Any]] = [
            ("impute", SimpleImputer(strategy=strategy, fill_value=0.0, keep_empty_features=True))
        ]
        if any(name in cleaning.clip for name in features.numeric):
            bounds = [cleaning.clip.get(name, (-np.inf, np.inf)) for name in features.numeric]
            steps.append(("clip", Clip([b[0] for b in bounds], [b[1] for b in bounds])))
        if spec.estimator.scaled:
            steps.append(("scale", StandardScaler()))
        transformers.append(("numeric", Pipeline(steps), list(features.numeric)))
    if features.categorical:
        encoder = OneHotEncoder(handle_unknown="ignore", sparse_output=False)
        transformers.append(("categorical", encoder, list(features.categorical)))
    return Pipeline([("prepare", ColumnTransformer(transformers, sparse_threshold=0.0)), ("model", estimator)])


def feature_frame(spec: TrainingSpec, frame: pl.DataFrame) -> pl.DataFrame:
    """The feature columns as the served graph receives them: Float32 (NaN for missing) and String ("" for missing).

    The native model is trained and checked on exactly these values, so ONNX and native see the same numbers.
    """
    numeric = [pl.col(c).cast(pl.Float32).fill_null(float("nan")) for c in spec.features.numeric]
    categorical = [pl.col(c).cast(pl.String).fill_null(MISSING_CATEGORY) for c in spec.features.categorical]
    return frame.select(*numeric, *categorical)


def served_inputs(features: pl.DataFrame) -> dict[str, np.ndarray]:
    """One ``[rows, 1]`` array per feature, named after its column: float32, or object arrays of ``str``."""
    inputs: dict[str, np.ndarray] = {}
    for series in features.get_columns():
        if series.dtype == pl.String:
            inputs[series.name] = np.array(series.to_list(), dtype=object).reshape(-1, 1)
        else:
            inputs[series.name] = series.to_numpy().astype(np.float32).reshape(-1, 1)
    return inputs


def feature_sources(pipeline: Pipeline) -> list[tuple[str, str]]:
    """(transformed feature, input column) for each column the model sees, e.g. ("city=paris", "city")."""
    prepare: ColumnTransformer = pipeline.named_steps["prepare"]
    sources: list[tuple[str, str]] = []
    for name, transformer, columns in prepare.transformers_:
        if name == "numeric":
            sources.extend((column, column) for column in columns)
        elif name == "categorical":
            for column, categories in zip(columns, transformer.categories_, strict=True):
                sources.extend((f"{column}={category}", column) for category in categories)
    return sources
