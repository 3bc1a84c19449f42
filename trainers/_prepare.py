"""From a data set frame to training rows: spec checked against the columns, cleaning applied, target encoded."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import polars as pl

from trainers._errors import DatasetError, SpecError, first_line
from trainers.datasets import cast_columns, column_kind, column_listing, filter_rows, log_lost
from trainers.expressions import ExpressionError, sql_expression
from trainers.spec import TrainingSpec

__all__ = ["Prepared", "prepare"]

MAX_CLASSES = 1000


@dataclass(frozen=True)
class Prepared:
    """Cleaned rows, the encoded target and the class names (empty for regression)."""

    frame: pl.DataFrame
    target: np.ndarray
    classes: tuple[str, ...]


def prepare(spec: TrainingSpec, frame: pl.DataFrame, log: Callable[[str], None]) -> Prepared:
    """Apply casts, derived columns and the filter, check every column the spec names, then drop rows as the spec
    says.

    Raises:
        SpecError: a column the spec names is missing or has a type its role cannot use, a value a strict cast
            cannot parse, a filter that does not fit the data, or a target that does not fit the task.
    """
    frame = _filter(spec, _derive(spec, _cast(spec, frame, log)), log)
    _check_columns(spec, frame)
    target = spec.dataset.target
    before = frame.height
    frame = frame.filter(pl.col(target).is_not_null() & ~_is_nan(frame, target))
    if frame.height < before:
        log(f"cleaning: dropped {before - frame.height} rows without a target")
    if spec.cleaning.drop_duplicates:
        before = frame.height
        frame = frame.unique(maintain_order=True)
        log(f"cleaning: dropped {before - frame.height} duplicate rows")
    if frame.height < 2:
        raise SpecError(f"[dataset] only {frame.height} rows have a target {target!r}; nothing to train on")
    encoded, classes = _encode_target(spec, frame[target])
    return Prepared(frame, encoded, classes)


def _cast(spec: TrainingSpec, frame: pl.DataFrame, log: Callable[[str], None]) -> pl.DataFrame:
    cleaning = spec.cleaning
    for key, casts, strict in (("casts", cleaning.casts, True), ("try_casts", cleaning.try_casts, False)):
        try:
            frame, lost = cast_columns(frame, casts, strict=strict)
        except DatasetError as error:
            raise SpecError(f"[cleaning] {key}: {error.message}") from None
        log_lost(lost, casts, log)
    return frame


def _derive(spec: TrainingSpec, frame: pl.DataFrame) -> pl.DataFrame:
    for name, expression in spec.cleaning.derived.items():
        try:
            # Checked again here: a spec reaches this point parsed, but this is where the expression runs.
            frame = frame.with_columns(sql_expression(expression).alias(name))
        except (ExpressionError, pl.exceptions.PolarsError) as error:
            raise SpecError(f"[cleaning] derived column {name!r} ({expression}): {first_line(error)}") from None
    return frame


def _filter(spec: TrainingSpec, frame: pl.DataFrame, log: Callable[[str], None]) -> pl.DataFrame:
    condition = spec.cleaning.filter
    if condition is None:
        return frame
    try:
        kept = filter_rows(frame, condition)
    except DatasetError as error:
        raise SpecError(f"[cleaning] {error.message}") from None
    log(f"cleaning: the filter kept {kept.height} of {frame.height} rows")
    return kept


def _check_columns(spec: TrainingSpec, frame: pl.DataFrame) -> None:
    schema = frame.schema
    target = spec.dataset.target
    if target not in schema:
        raise SpecError(f"[dataset] target column {target!r} is not in the data set ({column_listing(frame)})")
    for role, names in (("numeric", spec.features.numeric), ("categorical", spec.features.categorical)):
        for name in names:
            if name not in schema:
                raise SpecError(f"[features] {role} column {name!r} is not in the data set ({column_listing(frame)})")
            kind = column_kind(schema[name])
            if role == "numeric" and kind not in ("numeric", "boolean"):
                raise SpecError(
                    f"[features] numeric column {name!r} holds {schema[name]} values; list it as categorical or "
                    "cast it in [cleaning] casts"
                )
            if role == "categorical" and kind not in ("categorical", "boolean", "numeric"):
                raise SpecError(f"[features] categorical column {name!r} holds {schema[name]} values")
    for name in spec.cleaning.clip:
        if name not in spec.features.numeric:
            raise SpecError(f"[cleaning] clip: {name!r} is not a numeric feature")
    for role, column in (("time_column", spec.split.time_column), ("group_column", spec.split.group_column)):
        if column is not None and column not in schema:
            raise SpecError(f"[split] {role} {column!r} is not in the data set ({column_listing(frame)})")


def _encode_target(spec: TrainingSpec, series: pl.Series) -> tuple[np.ndarray, tuple[str, ...]]:
    task, name = spec.model.task, series.name
    kind = column_kind(series.dtype)
    if task == "regression":
        if kind != "numeric":
            raise SpecError(f"[model] task 'regression' needs a numeric target; {name!r} holds {series.dtype} values")
        return series.cast(pl.Float64).to_numpy(), ()
    if kind not in ("numeric", "categorical", "boolean"):
        raise SpecError(f"[model] task {task!r} needs a target of classes; {name!r} holds {series.dtype} values")
    if series.dtype.is_float() and not (series == series.round()).all():
        raise SpecError(f"[model] task {task!r}: target {name!r} holds fractional numbers; did you mean regression?")
    values = series.unique().sort()
    count = len(values)
    if task == "binary" and count != 2:
        raise SpecError(f"[model] task 'binary' needs exactly 2 classes; target {name!r} has {count}")
    if task == "multiclass" and not 3 <= count <= MAX_CLASSES:
        raise SpecError(f"[model] task 'multiclass' needs 3 to {MAX_CLASSES} classes; target {name!r} has {count}")
    # Served labels are indices into ``classes`` (sorted values), so every estimator (XGBoost included) and every
    # target type gives an INT64 label; the class names travel with the model.
    index = series.replace_strict(values, pl.Series(range(count)), return_dtype=pl.Int64)
    texts = values.cast(pl.Int64) if series.dtype.is_float() else values
    return index.to_numpy(), tuple(str(v) for v in texts.cast(pl.String).to_list())


def _is_nan(frame: pl.DataFrame, column: str) -> pl.Expr:
    return pl.col(column).is_nan() if frame.schema[column].is_float() else pl.lit(False)
