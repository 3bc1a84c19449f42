"""Training specs: a TOML file that declares a run (data set, features, cleaning, split, model, search, registration).

Every section refuses keys it does not know, and every check that needs no data runs when the spec is parsed:
a spec that parses names a real estimator for its task, with parameters the estimator accepts.
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

import polars as pl
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    PrivateAttr,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)

from trainers._errors import SpecError
from trainers._estimators import ESTIMATORS, EstimatorInfo, describe_estimators
from trainers._metrics import TASK_METRICS
from trainers.datasets import dtype_named
from trainers.expressions import ExpressionError, sql_expression

__all__ = [
    "ESTIMATORS",
    "OUTPUTS",
    "CleaningSection",
    "DatasetSection",
    "EstimatorInfo",
    "FeaturesSection",
    "ModelSection",
    "RegisterSection",
    "SearchChoice",
    "SearchRange",
    "SearchSection",
    "SpecError",
    "SplitSection",
    "TrainingSpec",
    "describe_estimators",
    "load_spec",
    "parse_spec",
    "polars_dtype",
]

Task = Literal["binary", "multiclass", "regression"]
OUTPUTS: dict[str, tuple[str, ...]] = {
    "binary": ("label", "probabilities"),
    "multiclass": ("label", "probabilities"),
    "regression": ("variable",),
}
"""The outputs of a trained model's graph, by task (``trainers.onnx_export.export_pipeline``)."""
Scalar = bool | int | float | str
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DatasetSection(_Section):
    """Which data set version to train on, and its target column."""

    name: str
    version: str | None = None
    """A content version; the newest version of ``name`` when absent."""
    target: str


class FeaturesSection(_Section):
    """Feature columns: numeric ones are served as FP32 inputs, categorical ones as BYTES (strings)."""

    numeric: tuple[str, ...] = ()
    categorical: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _distinct(self) -> FeaturesSection:
        if not self.numeric and not self.categorical:
            raise ValueError("list at least one numeric or categorical feature")
        seen: set[str] = set()
        for name in (*self.numeric, *self.categorical):
            if name in seen:
                raise ValueError(f"feature {name!r} is listed twice")
            seen.add(name)
        return self

    @property
    def columns(self) -> tuple[str, ...]:
        return (*self.numeric, *self.categorical)


class CleaningSection(_Section):
    """What happens to the rows before the split. Imputation and clipping also ship inside the ONNX graph."""

    drop_duplicates: bool = False
    impute: Literal["mean", "median", "most_frequent", "zero"] = "median"
    """How missing numeric values are filled; missing categories are a category of their own (the empty string)."""
    clip: dict[str, tuple[float, float]] = Field(default_factory=dict)
    """Numeric feature → [low, high] (``-inf``/``inf`` for one side)."""
    casts: dict[str, str] = Field(default_factory=dict)
    """Column → type (``int``, ``float``, ``string``, ``bool``, ``date``, ``datetime`` or a polars dtype name such as
    ``Float32``); strict: a value that does not parse fails the run, naming the column and examples."""
    try_casts: dict[str, str] = Field(default_factory=dict)
    """Like ``casts``, but a value that does not parse becomes missing (as SQL's ``TRY_CAST``); the run logs how many
    values each column lost."""
    derived: dict[str, str] = Field(default_factory=dict)
    """New column → SQL expression over the columns, evaluated by polars (e.g. ``debt / income``); only the scalar
    operators and functions of ``trainers.expressions`` are allowed, checked before polars sees the text."""
    filter: str | None = None
    """Keep only the rows where this SQL condition is true (e.g. ``age >= 18 AND city <> 'oslo'``), evaluated after
    casts and derived columns; the same allow-list as ``derived``."""

    @field_validator("clip")
    @classmethod
    def _ordered(cls, clip: dict[str, tuple[float, float]]) -> dict[str, tuple[float, float]]:
        for name, (low, high) in clip.items():
            if math.isnan(low) or math.isnan(high) or low > high:
                raise ValueError(f"clip range of {name!r} must be [low, high] with low <= high")
        return clip

    @field_validator("casts", "try_casts")
    @classmethod
    def _dtypes(cls, casts: dict[str, str]) -> dict[str, str]:
        for name, dtype in casts.items():
            polars_dtype(dtype, name)
        return casts

    @field_validator("filter")
    @classmethod
    def _condition(cls, condition: str | None) -> str | None:
        if condition is not None:
            try:
                sql_expression(condition)
            except ExpressionError as error:
                raise ValueError(error.message) from None
        return condition

    @model_validator(mode="after")
    def _cast_once(self) -> CleaningSection:
        twice = sorted(set(self.casts) & set(self.try_casts))
        if twice:
            raise ValueError(f"column {twice[0]!r} is in both casts and try_casts")
        return self

    @field_validator("derived")
    @classmethod
    def _expressions(cls, derived: dict[str, str]) -> dict[str, str]:
        for name, expression in derived.items():
            try:
                sql_expression(expression)
            except ExpressionError as error:
                raise ValueError(f"derived column {name!r}: {error.message}") from None
        return derived


class SplitSection(_Section):
    """How rows are held out for the test set (and, when searching, a validation set from the training rows)."""

    method: Literal["random", "stratified", "time", "group"] = "random"
    test_size: float = Field(0.2, gt=0.0, lt=1.0)
    validation_size: float = Field(0.2, gt=0.0, lt=1.0)
    """Share of the training rows that scores search trials; the test rows are never seen before evaluation."""
    seed: int = 0
    time_column: str | None = None
    """``time`` split: the newest rows by this column are the test set."""
    group_column: str | None = None
    """``group`` split: all rows of a group land on the same side."""

    @model_validator(mode="after")
    def _columns(self) -> SplitSection:
        if self.method == "time" and not self.time_column:
            raise ValueError("method 'time' needs time_column")
        if self.method == "group" and not self.group_column:
            raise ValueError("method 'group' needs group_column")
        return self


class ModelSection(_Section):
    """The task, the estimator (see ``describe_estimators()``) and its fixed hyper-parameters."""

    task: Task
    estimator: str
    params: dict[str, Scalar | list[Scalar]] = Field(default_factory=dict)


class SearchRange(_Section):
    """A numeric range: integers when ``low`` and ``high`` are both integers, floats otherwise."""

    low: int | float
    high: int | float
    log: bool = False
    step: int | float | None = None

    @model_validator(mode="after")
    def _ordered(self) -> SearchRange:
        if not self.low < self.high:
            raise ValueError(f"range [{self.low}, {self.high}] must have low < high")
        if self.log and self.low <= 0:
            raise ValueError(f"a log range must start above 0, not at {self.low}")
        if self.log and self.step is not None:
            raise ValueError("a range takes log or step, not both")
        return self

    @property
    def integer(self) -> bool:
        return isinstance(self.low, int) and isinstance(self.high, int) and not isinstance(self.step, float)


class SearchChoice(_Section):
    """A choice among values."""

    choices: tuple[bool | int | float | str, ...] = Field(min_length=1)


def _dimension_kind(value: Any) -> str:
    keys = value if isinstance(value, dict) else vars(value)
    return "choice" if "choices" in keys else "range"


Dimension = Annotated[
    Annotated[SearchRange, Tag("range")] | Annotated[SearchChoice, Tag("choice")], Discriminator(_dimension_kind)
]


class SearchSection(_Section):
    """Optuna search: ``trials`` finished trials in total (shared by every worker on the same study)."""

    trials: int = Field(20, ge=1)
    timeout: float | None = Field(None, gt=0)
    """Seconds after which this worker starts no new trial."""
    metric: str | None = None
    """Validation metric to optimise; roc_auc (binary), f1_macro (multiclass) or rmse (regression) by default."""
    pruning: bool = True
    """Median pruning on intermediate scores, for estimators that grow by warm start."""
    study: str | None = None
    """Optuna study name; by default derived from the register name (or data set) and the spec's content."""
    space: dict[str, Dimension] = Field(min_length=1)
    """Parameter → ``[low, high]``, ``{low, high, log, step}``, ``{choices = [...]}`` or a list of non-numbers."""

    @field_validator("space", mode="before")
    @classmethod
    def _shorthand(cls, space: Any) -> Any:
        if not isinstance(space, dict):
            return space
        expanded: dict[str, Any] = {}
        for name, value in space.items():
            numbers = isinstance(value, list) and all(
                isinstance(v, int | float) and not isinstance(v, bool) for v in value
            )
            if numbers and len(value) == 2:
                expanded[name] = {"low": value[0], "high": value[1]}
            elif isinstance(value, list):
                expanded[name] = {"choices": value}
            else:
                expanded[name] = value
        return expanded


class RegisterSection(_Section):
    """Where the model goes in the registry when ``conduit train --register`` runs."""

    name: str
    alias: str | None = None
    description: str = ""

    @field_validator("name", "alias")
    @classmethod
    def _safe(cls, name: str | None) -> str | None:
        if name is not None and not _NAME.fullmatch(name):
            raise ValueError(
                f"{name!r} must be 1-128 letters, digits, '.', '_' or '-', starting with a letter or digit"
            )
        return name


class TrainingSpec(_Section):
    """A whole training spec; ``text`` is the TOML it was parsed from (kept as lineage)."""

    dataset: DatasetSection
    features: FeaturesSection
    cleaning: CleaningSection = CleaningSection()
    split: SplitSection = SplitSection()
    model: ModelSection
    search: SearchSection | None = None
    # "register" would shadow ABCMeta.register on a pydantic model: the section keeps its name in TOML only.
    registration: RegisterSection | None = Field(None, alias="register")
    _text: str = PrivateAttr("")
    _path: Path | None = PrivateAttr(None)

    @property
    def text(self) -> str:
        return self._text

    @property
    def path(self) -> Path | None:
        """The file the spec was read from (``load_spec``); None for a spec parsed from text."""
        return self._path

    @property
    def estimator(self) -> EstimatorInfo:
        return ESTIMATORS[self.model.estimator]

    @property
    def search_metric(self) -> str:
        if self.search is not None and self.search.metric:
            return self.search.metric
        return {"binary": "roc_auc", "multiclass": "f1_macro", "regression": "rmse"}[self.model.task]


def parse_spec(text: str) -> TrainingSpec:
    """Parse and check a spec's TOML text.

    Raises:
        SpecError: invalid TOML, an unknown or missing key, a bad value, an unknown estimator, a task the estimator
            does not support, or a parameter it does not accept; the message names the item.
    """
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise SpecError(f"the spec is not valid TOML: {error}") from None
    try:
        spec = TrainingSpec.model_validate(data)
    except ValidationError as error:
        raise SpecError(_describe(error)) from None
    _check_model(spec)
    spec._text = text
    return spec


def load_spec(path: str | Path) -> TrainingSpec:
    """Read and parse the spec file at ``path``; errors are ``SpecError`` prefixed with the path."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise SpecError(
            f"{path}: cannot read the spec: {error.strerror if isinstance(error, OSError) else error}"
        ) from None
    try:
        spec = parse_spec(text)
    except SpecError as error:
        raise SpecError(f"{path}: {error.message}") from None
    spec._path = path
    return spec


def polars_dtype(name: str, column: str) -> pl.DataType:
    """The dtype called ``name`` (``float``, ``Float64``, ``string``, …); ``ValueError`` naming ``column`` otherwise."""
    return dtype_named(name, column)


def _check_model(spec: TrainingSpec) -> None:
    model = spec.model
    info = ESTIMATORS.get(model.estimator)
    if info is None:
        raise SpecError(f"[model] unknown estimator {model.estimator!r}; choose from {', '.join(ESTIMATORS)}")
    if model.task not in info.tasks:
        raise SpecError(
            f"[model] estimator {model.estimator!r} does not support task {model.task!r} (it supports "
            f"{', '.join(info.tasks)})"
        )
    accepted = info.parameter_names(model.task)
    sections: list[tuple[str, Mapping[str, object]]] = [("[model] params", model.params)]
    if spec.search is not None:
        sections.append(("[search] space", spec.search.space))
    for where, params in sections:
        for name in params:
            if name not in accepted:
                raise SpecError(f"{where}: {model.estimator} has no parameter {name!r}")
    if spec.search is not None and spec.search_metric not in TASK_METRICS[model.task]:
        raise SpecError(
            f"[search] metric {spec.search_metric!r} is not a {model.task} metric; choose from "
            f"{', '.join(TASK_METRICS[model.task])}"
        )
    if spec.split.method == "stratified" and model.task == "regression":
        raise SpecError("[split] method 'stratified' needs a classification task; use random, time or group")
    if spec.dataset.target in spec.features.columns:
        raise SpecError(f"[features] the target {spec.dataset.target!r} cannot also be a feature")
    _check_input_names(spec)


def _check_input_names(spec: TrainingSpec) -> None:
    """Refuse the feature names an ONNX graph cannot take as input names; any other text is served as written."""
    outputs = OUTPUTS[spec.model.task]
    for name in spec.features.columns:
        if not name:
            raise SpecError("[features] a feature has an empty name, which ONNX reads as 'no input'")
        if "\0" in name:
            raise SpecError(f"[features] {name!r} holds a NUL character, which ends a name for ONNX Runtime")
        if name in outputs:
            raise SpecError(
                f"[features] {name!r} is also the name of the model's output; a graph gives each name one value: "
                f"rename the column (e.g. a [cleaning] derived column {name}_value = '\"{name}\"')"
            )


def _describe(error: ValidationError) -> str:
    problems = []
    for item in error.errors():
        # Union members' tags ("range", "choice") are pydantic's bookkeeping, not keys of the spec.
        loc = tuple(str(part) for part in item["loc"] if part not in ("range", "choice"))
        if item["type"] in ("extra_forbidden", "missing"):
            *parents, key = loc
            section = f"[{parents[0]}]" if parents else "spec"
            key = ".".join([*parents[1:], key])
            if item["type"] == "missing":
                problems.append(f"{section} missing key {key!r}")
                continue
            allowed = _allowed_keys(tuple(parents))
            hint = f" (allowed: {', '.join(allowed)})" if allowed else ""
            problems.append(f"{section} unknown key {key!r}{hint}")
            continue
        section = f"[{loc[0]}]" if loc else "spec"
        path = ".".join(loc[1:])
        message = str(item["msg"]).removeprefix("Value error, ")
        problems.append(f"{section} {path}: {message}" if path else f"{section} {message}")
    return "; ".join(problems)


def _allowed_keys(loc: tuple[str, ...]) -> list[str]:
    model: Any = TrainingSpec
    for part in loc:
        fields = model.model_fields if isinstance(model, type) and issubclass(model, BaseModel) else {}
        field = next((f for n, f in fields.items() if (f.alias or n) == part), None)
        if field is None:
            return []
        candidates = [field.annotation, *get_args(field.annotation)]
        model = next((c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)), None)
    if isinstance(model, type) and issubclass(model, BaseModel):
        return [field.alias or name for name, field in model.model_fields.items()]
    return []
