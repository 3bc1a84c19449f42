"""Fixtures of the trainers' tests: bundled data sets and a builder of training specs over them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import polars as pl
import pytest

from trainers import TrainingSpec, bundled, parse_spec

FEATURES: dict[str, tuple[list[str], list[str]]] = {
    "credit": (["age", "income", "debt", "months_at_address", "has_mortgage"], ["city", "employment"]),
    "iris": (["sepal_length_cm", "sepal_width_cm", "petal_length_cm", "petal_width_cm"], []),
    "wine": (["alcohol", "malic_acid", "ash", "magnesium", "flavanoids", "color_intensity", "hue", "proline"], []),
    "diabetes": (["age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6"], []),
    "breast_cancer": (["mean_radius", "mean_texture", "mean_smoothness", "worst_area", "worst_concavity"], []),
}

MakeSpec = Callable[..., TrainingSpec]


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + " }"
    return repr(value)


def spec_text(
    dataset: str,
    estimator: str,
    task: str,
    params: dict[str, Any] | None = None,
    *,
    split: dict[str, Any] | None = None,
    search: dict[str, Any] | None = None,
    extra: str = "",
) -> str:
    """The TOML of a spec training ``estimator`` on the bundled data set ``dataset`` (its usual features)."""
    numeric, categorical = FEATURES[dataset]
    method = "random" if task == "regression" else "stratified"
    lines = [
        "[dataset]",
        f'name = "{dataset}"',
        f'target = "{bundled.BUNDLED[dataset].target}"',
        "[features]",
        f"numeric = {_toml(numeric)}",
        f"categorical = {_toml(categorical)}",
        "[split]",
        *(f"{k} = {_toml(v)}" for k, v in ({"method": method, "test_size": 0.25, "seed": 3} | (split or {})).items()),
        "[model]",
        f'task = "{task}"',
        f'estimator = "{estimator}"',
        f"params = {_toml(params or {})}",
    ]
    if search:
        lines += ["[search]", *(f"{k} = {_toml(v)}" for k, v in search.items())]
    return "\n".join(lines) + "\n" + extra


@pytest.fixture
def make_spec() -> MakeSpec:
    """Build and parse a spec over a bundled data set: ``make_spec("credit", "random_forest", "binary", {...})``."""

    def make(*args: Any, **kwargs: Any) -> TrainingSpec:
        return parse_spec(spec_text(*args, **kwargs))

    return make


@pytest.fixture(scope="session")
def frames() -> dict[str, pl.DataFrame]:
    """Every bundled data set, loaded once."""
    return {name: bundled.load(name) for name in bundled.BUNDLED}
