"""The estimators a spec can name: snake_case names, the tasks each supports, and how each is built and trained."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["ESTIMATORS", "EstimatorInfo", "describe_estimators", "estimator_info"]

TASKS = ("binary", "multiclass", "regression")


@dataclass(frozen=True)
class EstimatorInfo:
    """One estimator family.

    Attributes:
        classifier, regressor: ``module:Class`` of the scikit-learn-compatible class per task kind (None: unsupported).
        scaled: numeric features are standardised in front of it (linear models and networks; trees need not).
        budget: the parameter that ``warm_start`` grows, so a search can report intermediate values and prune.
        defaults: parameters set unless the spec sets them.
    """

    name: str
    summary: str
    classifier: str | None
    regressor: str | None
    scaled: bool = False
    budget: str | None = None
    defaults: Mapping[str, Any] = field(default_factory=dict)
    classifier_defaults: Mapping[str, Any] = field(default_factory=dict)

    @property
    def tasks(self) -> tuple[str, ...]:
        return tuple(t for t in TASKS if (self.regressor if t == "regression" else self.classifier))

    def estimator_class(self, task: str) -> type[Any]:
        path = self.regressor if task == "regression" else self.classifier
        if path is None:
            raise ValueError(f"{self.name} does not support {task}")
        module, _, name = path.partition(":")
        cls: type[Any] = getattr(importlib.import_module(module), name)
        return cls

    def parameter_names(self, task: str) -> frozenset[str]:
        """The hyper-parameters the estimator accepts for ``task``."""
        return frozenset(self.estimator_class(task)().get_params(deep=False))

    def build(self, task: str, params: Mapping[str, Any], seed: int) -> Any:
        """A fresh estimator: defaults, then ``params``; ``random_state`` is ``seed`` unless ``params`` sets it."""
        cls = self.estimator_class(task)
        merged: dict[str, Any] = dict(self.defaults)
        if task != "regression":
            merged.update(self.classifier_defaults)
        if "random_state" in self.parameter_names(task):
            merged["random_state"] = seed
        # TOML has arrays, scikit-learn wants tuples (e.g. hidden_layer_sizes).
        merged.update({k: tuple(v) if isinstance(v, list) else v for k, v in params.items()})
        return cls(**merged)


ESTIMATORS: dict[str, EstimatorInfo] = {
    e.name: e
    for e in (
        EstimatorInfo(
            "logistic_regression",
            "L2-regularised logistic regression (scaled inputs)",
            "sklearn.linear_model:LogisticRegression",
            None,
            scaled=True,
            defaults={"max_iter": 2000},
        ),
        EstimatorInfo(
            "linear_regression", "ordinary least squares", None, "sklearn.linear_model:LinearRegression", scaled=True
        ),
        EstimatorInfo("ridge", "L2-regularised least squares", None, "sklearn.linear_model:Ridge", scaled=True),
        EstimatorInfo(
            "sgd",
            "linear model by stochastic gradient descent (log-loss for classes)",
            "sklearn.linear_model:SGDClassifier",
            "sklearn.linear_model:SGDRegressor",
            scaled=True,
            classifier_defaults={"loss": "log_loss"},
        ),
        EstimatorInfo(
            "decision_tree",
            "a single CART tree",
            "sklearn.tree:DecisionTreeClassifier",
            "sklearn.tree:DecisionTreeRegressor",
        ),
        EstimatorInfo(
            "random_forest",
            "bagged CART trees",
            "sklearn.ensemble:RandomForestClassifier",
            "sklearn.ensemble:RandomForestRegressor",
            budget="n_estimators",
        ),
        EstimatorInfo(
            "extra_trees",
            "extremely randomised trees",
            "sklearn.ensemble:ExtraTreesClassifier",
            "sklearn.ensemble:ExtraTreesRegressor",
            budget="n_estimators",
        ),
        EstimatorInfo(
            "gradient_boosting",
            "gradient-boosted CART trees",
            "sklearn.ensemble:GradientBoostingClassifier",
            "sklearn.ensemble:GradientBoostingRegressor",
            budget="n_estimators",
        ),
        EstimatorInfo(
            "hist_gradient_boosting",
            "histogram-based gradient boosting (LightGBM-style, in scikit-learn)",
            "sklearn.ensemble:HistGradientBoostingClassifier",
            "sklearn.ensemble:HistGradientBoostingRegressor",
            budget="max_iter",
            # Early stopping would hold out rows of its own and make the iteration count data-dependent.
            defaults={"early_stopping": False},
        ),
        EstimatorInfo(
            "mlp",
            "multi-layer perceptron (scaled inputs)",
            "sklearn.neural_network:MLPClassifier",
            "sklearn.neural_network:MLPRegressor",
            scaled=True,
            defaults={"max_iter": 500},
        ),
        EstimatorInfo(
            "lightgbm",
            "LightGBM gradient boosting (converted by onnxmltools)",
            "lightgbm:LGBMClassifier",
            "lightgbm:LGBMRegressor",
            defaults={"verbose": -1, "n_jobs": 1},
        ),
        EstimatorInfo(
            "xgboost",
            "XGBoost gradient boosting (converted by onnxmltools)",
            "xgboost:XGBClassifier",
            "xgboost:XGBRegressor",
            defaults={"n_jobs": 1},
        ),
    )
}


def estimator_info(name: str) -> EstimatorInfo | None:
    return ESTIMATORS.get(name)


def describe_estimators() -> str:
    """One line per estimator: name, tasks, summary (for ``conduit train --help``)."""
    width = max(len(name) for name in ESTIMATORS)
    lines = [f"  {e.name:<{width}}  {'/'.join(e.tasks):<29}  {e.summary}" for e in ESTIMATORS.values()]
    return "estimators:\n" + "\n".join(lines)
