"""A training run: spec and data set in, an evaluated, parity-checked ONNX model out (nothing registered here)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl
from sklearn import metrics as skm

from contract.entities import Lineage, TensorSignature, TrainingProfile
from contract.signature import signature_of
from trainers._errors import TrainingError, first_line
from trainers._insights import model_insights
from trainers._lineage import SourceCommit, conduit_commit, package_versions, source_commit
from trainers._metrics import (
    as_probabilities,
    classification_curves,
    classification_metrics,
    downsample,
    finite,
    regression_metrics,
)
from trainers._parity import ParityError, ParityReport, compare_outputs
from trainers._pipeline import build_pipeline, feature_frame, feature_sources, served_inputs
from trainers._prepare import prepare
from trainers._search import SearchOutcome, run_search
from trainers._split import split_rows
from trainers._thresholds import align_thresholds
from trainers.datasets import profile as profile_of
from trainers.onnx_export import export_pipeline, run_onnx
from trainers.spec import TrainingSpec

__all__ = ["PARITY_TOLERANCE", "TrainingResult", "train"]

PARITY_TOLERANCE = 1e-4


@dataclass(frozen=True)
class TrainingResult:
    """Everything a run produced, ready for the registry.

    Attributes:
        onnx: the serialised graph.
        inputs, outputs: the graph's tensors (one ``[-1, 1]`` input per feature, named after its column).
        metrics: flat held-out metrics (``accuracy``, ``f1_macro``, ``f1.<class>``, ``roc_auc``, ``rmse``, …).
        params: the final estimator's hyper-parameters, as text.
        evaluation: a JSON-serialisable document: metrics, confusion matrix, curves, importances, coefficients,
            training loss, search trials, parity report.
        classes: class names; a served ``label`` ``i`` means ``classes[i]`` (empty for regression).
        test_inputs: the test split exactly as a server receives it (float32 and object-of-``str`` arrays).
        test_target: the test split's true labels (class indices) or values.
        native_labels: the native model's predictions on the test split (class indices or values).
        native_probabilities: its class probabilities (None for regression).
        parity: how the graph compared with the native model on the test split.
    """

    onnx: bytes
    inputs: tuple[TensorSignature, ...]
    outputs: tuple[TensorSignature, ...]
    metrics: dict[str, float]
    params: dict[str, str]
    evaluation: dict[str, Any]
    classes: tuple[str, ...]
    test_inputs: dict[str, np.ndarray]
    test_target: np.ndarray
    native_labels: np.ndarray
    native_probabilities: np.ndarray | None
    parity: ParityReport
    spec: TrainingSpec
    lineage: Lineage
    """The data set version, spec text and code version (the commit of the git repository holding the spec file,
    ``-dirty`` appended when it has uncommitted changes), as the registry records them."""
    packages: dict[str, str]
    """Installed versions of the libraries that shape a model (``trainers._lineage.PACKAGES``)."""
    profile: TrainingProfile
    """The rows trained on (both splits, after cleaning), profiled over the spec's features (derived columns
    included) and its target: the drift baseline of the served inputs and predictions."""
    source: SourceCommit | None = None
    """The spec's repository commit (None: the spec came from no file, or from none in a git repository)."""
    conduit_commit: str = ""
    """The commit of the Conduit checkout that trained (empty for an installed release: ``packages`` says which)."""

    @property
    def spec_text(self) -> str:
        return self.spec.text


def train(
    spec: TrainingSpec,
    frame: pl.DataFrame,
    *,
    dataset_version: str,
    study_storage: str | None = None,
    log: Callable[[str], None] | None = None,
    parity_tolerance: float = PARITY_TOLERANCE,
) -> TrainingResult:
    """Train ``spec`` on ``frame`` (the data set version ``dataset_version``), evaluate, export and check parity.

    Args:
        study_storage: an SQLAlchemy URL where the Optuna study lives, shared by every worker given the same URL
            and spec; an in-memory study when None.
        log: receives one line per step (cleaning, split, trials, export).
        parity_tolerance: the largest probability gap (or relative prediction gap) the graph may show.

    Raises:
        SpecError: the spec does not fit the data (checked before any training).
        TrainingError: the search completed no trial.
        ParityError: the graph does not answer like the native model; ``report`` says where.
    """
    say = log or (lambda _: None)
    task = spec.model.task
    source = source_commit(spec.path.parent if spec.path is not None else None)
    prepared = prepare(spec, frame, say)
    features = feature_frame(spec, prepared.frame)
    target, classes = prepared.target, prepared.classes
    stratify = target if spec.split.method == "stratified" else None
    train_rows, test_rows = split_rows(spec.split, prepared.frame, stratify, spec.split.test_size)
    method, seed = spec.split.method, spec.split.seed
    say(f"split: {len(train_rows)} training rows, {len(test_rows)} test rows ({method}, seed {seed})")

    params: dict[str, Any] = dict(spec.model.params)
    search = None
    if spec.search is not None:
        search = _search(
            spec,
            prepared.frame[train_rows],
            features[train_rows],
            target[train_rows],
            classes,
            dataset_version=dataset_version,
            storage=study_storage,
            log=say,
        )
        params.update(search.best_params)
    pipeline = build_pipeline(spec, spec.estimator.build(task, params, spec.split.seed))
    pipeline.fit(features[train_rows], target[train_rows])
    align_thresholds(pipeline.named_steps["model"])
    say(f"trained {spec.model.estimator} on {len(train_rows)} rows")

    test_features, test_target = features[test_rows], target[test_rows]
    inputs = served_inputs(test_features)
    try:
        payload = export_pipeline(pipeline, inputs)
        served = run_onnx(payload, inputs)
    except (RuntimeError, ValueError, TypeError, NotImplementedError) as exc:  # converters' and onnxruntime's own
        raise TrainingError(f"the model does not export to an ONNX graph that runs: {first_line(exc)}") from None
    probabilities: np.ndarray | None = None
    if task == "regression":
        labels = np.asarray(pipeline.predict(test_features), dtype=np.float64)
        report = compare_outputs(labels, served[0], columns=["variable"], tolerance=parity_tolerance, relative=True)
        metrics = regression_metrics(test_target, labels)
    else:
        labels = np.asarray(pipeline.predict(test_features), dtype=np.int64)
        probabilities = as_probabilities(pipeline.predict_proba(test_features))
        report = compare_outputs(
            probabilities,
            served[1],
            columns=classes,
            tolerance=parity_tolerance,
            native_labels=labels,
            served_labels=served[0],
        )
        metrics = classification_metrics(test_target, labels, probabilities, classes)
    if not report.passed:
        raise ParityError(report.describe(), report)
    say(report.describe())
    graph_inputs, graph_outputs = signature_of(payload)

    prepare_step, model = pipeline.named_steps["prepare"], pipeline.named_steps["model"]
    evaluation: dict[str, Any] = {
        "task": task,
        "target": spec.dataset.target,
        "classes": list(classes),
        "rows": {"train": len(train_rows), "test": len(test_rows)},
        "metrics": metrics,
        "parity": report.to_dict(),
        **_prediction_summary(test_target, labels, probabilities, classes),
        **model_insights(
            model,
            feature_sources(pipeline),
            classes,
            (prepare_step.transform(features[train_rows]), target[train_rows]),
            (prepare_step.transform(test_features), test_target),
        ),
    }
    if search is not None:
        evaluation["search"] = {
            "study": search.study,
            "metric": search.metric,
            "direction": search.direction,
            "best_value": search.best_value,
            "best_params": search.best_params,
            "trials": search.trials,
            "param_importances": search.param_importances,
        }
    return TrainingResult(
        onnx=payload,
        inputs=graph_inputs,
        outputs=graph_outputs,
        metrics=metrics,
        params={name: str(value) for name, value in sorted(model.get_params(deep=False).items())},
        evaluation=evaluation,
        classes=classes,
        test_inputs=inputs,
        test_target=test_target,
        native_labels=labels,
        native_probabilities=probabilities,
        parity=report,
        spec=spec,
        lineage=Lineage(
            dataset=spec.dataset.name,
            dataset_version=dataset_version,
            training_spec=spec.text,
            code_version=str(source) if source is not None else "",
        ),
        packages=package_versions(),
        profile=TrainingProfile(
            profile_of(prepared.frame.select(*spec.features.columns, spec.dataset.target)), spec.dataset.target
        ),
        source=source,
        conduit_commit=conduit_commit(),
    )


def _search(
    spec: TrainingSpec,
    rows: pl.DataFrame,
    features: pl.DataFrame,
    target: np.ndarray,
    classes: tuple[str, ...],
    *,
    dataset_version: str,
    storage: str | None,
    log: Callable[[str], None],
) -> SearchOutcome:
    """Split a validation share off the training rows, prepare them once, and search on them."""
    stratify = target if spec.split.method == "stratified" else None
    fit, valid = split_rows(spec.split, rows, stratify, spec.split.validation_size, what="validation")
    # Preprocessing does not depend on the searched parameters: fit it once, not once per trial.
    prepare_step = build_pipeline(spec, None).named_steps["prepare"]
    x_fit = prepare_step.fit_transform(features[fit], target[fit])
    x_valid = prepare_step.transform(features[valid])
    return run_search(
        spec,
        (x_fit, target[fit], x_valid, target[valid]),
        len(classes),
        dataset_version=dataset_version,
        storage=storage,
        log=log,
    )


def _prediction_summary(
    truth: np.ndarray, labels: np.ndarray, probabilities: np.ndarray | None, classes: tuple[str, ...]
) -> dict[str, Any]:
    if probabilities is None:
        keep = downsample(len(truth))
        return {"residuals": {"actual": finite(truth[keep]), "predicted": finite(labels[keep])}}
    matrix = skm.confusion_matrix(truth, labels, labels=np.arange(len(classes)))
    return {
        "confusion_matrix": {"labels": list(classes), "matrix": matrix.tolist()},
        "curves": classification_curves(truth, probabilities, classes),
    }
