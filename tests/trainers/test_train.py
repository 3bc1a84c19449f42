"""trainers.train: every estimator family exports a graph that answers like the native model, metrics equal
scikit-learn's, the examples run as shipped, and a parity failure says where."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import polars as pl
import pytest
from scipy import stats
from sklearn import metrics as skm

from contract.entities import TensorSignature
from tests.trainers.conftest import MakeSpec
from trainers import ParityError, TrainingResult, bundled, load_spec, train
from trainers.datasets import content_version
from trainers.onnx_export import ParityReport

EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "examples").glob("*.toml"))

FAMILIES: list[tuple[str, str, str, dict[str, Any]]] = [
    ("logistic_regression", "credit", "binary", {}),
    ("logistic_regression", "wine", "multiclass", {}),
    ("linear_regression", "diabetes", "regression", {}),
    ("ridge", "diabetes", "regression", {"alpha": 2.0}),
    ("sgd", "breast_cancer", "binary", {}),
    ("sgd", "diabetes", "regression", {}),
    ("decision_tree", "iris", "multiclass", {"max_depth": 4}),
    ("decision_tree", "diabetes", "regression", {"max_depth": 5}),
    ("random_forest", "credit", "binary", {"n_estimators": 15, "max_depth": 8}),
    ("random_forest", "diabetes", "regression", {"n_estimators": 15}),
    ("extra_trees", "wine", "multiclass", {"n_estimators": 15}),
    ("gradient_boosting", "wine", "multiclass", {"n_estimators": 20}),
    ("gradient_boosting", "credit", "binary", {"n_estimators": 20}),
    ("hist_gradient_boosting", "credit", "binary", {"max_iter": 30}),
    ("hist_gradient_boosting", "diabetes", "regression", {"max_iter": 30}),
    ("mlp", "iris", "multiclass", {"hidden_layer_sizes": [16], "max_iter": 300}),
    ("mlp", "diabetes", "regression", {"hidden_layer_sizes": [16], "max_iter": 300, "learning_rate_init": 0.05}),
    ("lightgbm", "credit", "binary", {"n_estimators": 25, "num_leaves": 15}),
    ("lightgbm", "wine", "multiclass", {"n_estimators": 25}),
    ("lightgbm", "diabetes", "regression", {"n_estimators": 25}),
    ("xgboost", "credit", "binary", {"n_estimators": 25, "max_depth": 4}),
    ("xgboost", "iris", "multiclass", {"n_estimators": 25, "max_depth": 3}),
    ("xgboost", "diabetes", "regression", {"n_estimators": 25, "max_depth": 3}),
]


def _served(result: TrainingResult) -> dict[str, np.ndarray]:
    session = ort.InferenceSession(result.onnx, providers=["CPUExecutionProvider"])
    return dict(zip([o.name for o in session.get_outputs()], session.run(None, result.test_inputs), strict=True))


@pytest.mark.parametrize(
    ("estimator", "dataset", "task", "params"), FAMILIES, ids=lambda v: v if isinstance(v, str) else ""
)
def test_the_graph_answers_like_the_native_model(
    frames: dict[str, pl.DataFrame],
    make_spec: MakeSpec,
    estimator: str,
    dataset: str,
    task: str,
    params: dict[str, Any],
) -> None:
    frame = frames[dataset]
    result = train(make_spec(dataset, estimator, task, params), frame, dataset_version=content_version(frame))
    numeric, categorical = (result.spec.features.numeric, result.spec.features.categorical)
    assert result.inputs == tuple(
        [TensorSignature(name, "FP32", (-1, 1)) for name in numeric]
        + [TensorSignature(name, "BYTES", (-1, 1)) for name in categorical]
    )
    for name in numeric:
        assert result.test_inputs[name].dtype == np.float32 and result.test_inputs[name].shape[1] == 1
    for name in categorical:
        assert result.test_inputs[name].dtype == object and isinstance(result.test_inputs[name][0, 0], str)
    served = _served(result)
    if task == "regression":
        assert result.outputs == (TensorSignature("variable", "FP32", (-1, 1)),)
        np.testing.assert_allclose(served["variable"].ravel(), result.native_labels, rtol=1e-4, atol=1e-4)
    else:
        k = len(result.classes)
        assert result.outputs == (
            TensorSignature("label", "INT64", (-1,)),
            TensorSignature("probabilities", "FP32", (-1, k)),
        )
        np.testing.assert_array_equal(served["label"], result.native_labels)
        assert result.native_probabilities is not None
        assert np.max(np.abs(served["probabilities"] - result.native_probabilities)) <= 1e-4
    assert result.parity.passed and result.parity.rows == len(result.test_target)
    json.dumps(result.evaluation, allow_nan=False)
    assert result.params and all(isinstance(v, str) for v in result.params.values())


def test_binary_metrics_equal_scikit_learn(frames: dict[str, pl.DataFrame], make_spec: MakeSpec) -> None:
    result = train(
        make_spec("credit", "gradient_boosting", "binary", {"n_estimators": 20}),
        frames["credit"],
        dataset_version="c" * 16,
    )
    y, labels, proba = result.test_target, result.native_labels, result.native_probabilities
    assert proba is not None and result.classes == ("0", "1")
    positive = y == 1
    expected = {
        "accuracy": skm.accuracy_score(y, labels),
        "precision": skm.precision_score(y, labels),
        "recall": skm.recall_score(y, labels),
        "f1": skm.f1_score(y, labels),
        "f1_macro": skm.f1_score(y, labels, average="macro"),
        "precision_macro": skm.precision_score(y, labels, average="macro", zero_division=0),
        "recall_macro": skm.recall_score(y, labels, average="macro"),
        "f1.0": skm.f1_score(y, labels, pos_label=0),
        "recall.1": skm.recall_score(y, labels),
        "roc_auc": skm.roc_auc_score(y, proba[:, 1]),
        "pr_auc": skm.average_precision_score(y, proba[:, 1]),
        "log_loss": skm.log_loss(y, proba),
        "ks": stats.ks_2samp(proba[positive, 1], proba[~positive, 1]).statistic,
    }
    for name, value in expected.items():
        assert result.metrics[name] == pytest.approx(value, rel=1e-9, abs=1e-12), name
    evaluation = result.evaluation
    assert evaluation["confusion_matrix"] == {"labels": ["0", "1"], "matrix": skm.confusion_matrix(y, labels).tolist()}
    (roc,) = evaluation["curves"]["roc"]
    assert roc["class"] == "1" and 2 < len(roc["fpr"]) <= 500
    (ks,) = evaluation["curves"]["ks"]
    assert ks["statistic"] == pytest.approx(result.metrics["ks"])
    importances = evaluation["feature_importances"]
    assert set(importances["by_input"]) == {*result.spec.features.columns}
    assert sum(importances["by_input"].values()) == pytest.approx(sum(importances["importances"]))
    loss = evaluation["training_loss"]
    assert loss["iterations"][-1] == 20 and len(loss["train"]) == len(loss["test"]) == 20
    assert loss["train"][-1] < loss["train"][0]


def test_multiclass_metrics_equal_scikit_learn(frames: dict[str, pl.DataFrame], make_spec: MakeSpec) -> None:
    result = train(make_spec("iris", "logistic_regression", "multiclass"), frames["iris"], dataset_version="i" * 16)
    y, labels, proba = result.test_target, result.native_labels, result.native_probabilities
    assert proba is not None and result.classes == ("setosa", "versicolor", "virginica")
    f1 = skm.f1_score(y, labels, average=None)
    expected = {
        "accuracy": skm.accuracy_score(y, labels),
        "f1_macro": skm.f1_score(y, labels, average="macro"),
        "f1.setosa": f1[0],
        "f1.virginica": f1[2],
        "roc_auc": skm.roc_auc_score(y, proba, multi_class="ovr", average="macro"),
        "pr_auc": np.mean([skm.average_precision_score(y == c, proba[:, c]) for c in range(3)]),
        "log_loss": skm.log_loss(y, proba),
    }
    for name, value in expected.items():
        assert result.metrics[name] == pytest.approx(value, rel=1e-9), name
    assert "precision" not in result.metrics  # binary only
    coefficients = result.evaluation["coefficients"]
    assert coefficients["rows"] == list(result.classes) and len(coefficients["values"][0]) == 4
    assert len(result.evaluation["curves"]["roc"]) == 3


def test_regression_metrics_equal_scikit_learn(frames: dict[str, pl.DataFrame], make_spec: MakeSpec) -> None:
    result = train(make_spec("diabetes", "ridge", "regression"), frames["diabetes"], dataset_version="d" * 16)
    y, predicted = result.test_target, result.native_labels
    assert result.metrics == pytest.approx(
        {
            "rmse": np.sqrt(skm.mean_squared_error(y, predicted)),
            "mae": skm.mean_absolute_error(y, predicted),
            "r2": skm.r2_score(y, predicted),
            "mape": skm.mean_absolute_percentage_error(y, predicted),
        },
        rel=1e-9,
    )
    assert result.native_probabilities is None and result.classes == ()
    assert len(result.evaluation["residuals"]["actual"]) == len(y)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_every_example_trains_as_shipped(path: Path) -> None:
    spec = load_spec(path)
    frame = bundled.load(spec.dataset.name)
    lines: list[str] = []
    result = train(spec, frame, dataset_version=content_version(frame), log=lines.append)
    assert result.parity.passed and result.metrics
    assert result.lineage.dataset_version == content_version(frame) and result.spec_text == path.read_text()
    assert result.packages["scikit-learn"] and "polars" in result.packages
    assert any(line.startswith("split: ") for line in lines)
    if spec.search is not None:
        trials = result.evaluation["search"]["trials"]
        assert len([t for t in trials if t["state"] in ("COMPLETE", "PRUNED")]) == spec.search.trials


def test_served_values_follow_cleaning(frames: dict[str, pl.DataFrame], make_spec: MakeSpec) -> None:
    extra = "[cleaning]\nclip = { income = [20000.0, 60000.0] }\ndrop_duplicates = true\n"
    result = train(
        make_spec("credit", "logistic_regression", "binary", extra=extra), frames["credit"], dataset_version="e" * 16
    )
    session = ort.InferenceSession(result.onnx, providers=["CPUExecutionProvider"])
    # Clipping is inside the graph: an income far above the bound answers like the bound itself; a missing
    # number (NaN) and a missing or unseen category ("", "oslo") are valid inputs.
    rows = {name: values[:1].repeat(4, axis=0) for name, values in result.test_inputs.items()}
    rows["income"] = np.array([[60000.0], [1e9], [np.nan], [60000.0]], dtype=np.float32)
    rows["city"] = np.array([["paris"], ["paris"], [""], ["oslo"]], dtype=object)
    probabilities = session.run(["probabilities"], rows)[0]
    np.testing.assert_allclose(probabilities[0], probabilities[1], atol=1e-6)
    assert np.isfinite(probabilities).all()


def test_a_parity_failure_is_not_returned_and_says_where(frames: dict[str, pl.DataFrame], make_spec: MakeSpec) -> None:
    spec = make_spec("wine", "logistic_regression", "multiclass")
    with pytest.raises(ParityError) as caught:
        train(spec, frames["wine"], dataset_version="w" * 16, parity_tolerance=0.0)
    report = caught.value.report
    assert isinstance(report, ParityReport) and not report.passed
    assert report.gap_count > 0 and report.max_gap > 0.0 and report.worst_column in ("0", "1", "2")
    assert report.worst_row in report.gap_rows or report.gap_count > len(report.gap_rows)
    assert f"max gap {report.max_gap:.3g} at row {report.worst_row}, column '{report.worst_column}'" in str(
        caught.value
    )


def test_a_mismatched_model_is_reported_row_by_row() -> None:
    from trainers._parity import compare_outputs

    native = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])
    served = native.copy()
    served[2] = [0.45, 0.5]
    report = compare_outputs(
        native,
        served,
        columns=["no", "yes"],
        tolerance=1e-4,
        native_labels=np.array([0, 1, 0]),
        served_labels=np.array([0, 1, 1]),
    )
    assert (report.label_mismatch_rows, report.gap_rows, report.worst_row) == ((2,), (2,), 2)
    assert report.max_gap == pytest.approx(0.15)
    assert report.describe() == (
        "ONNX does not match the native model: labels differ on 1 of 3 rows (rows 2); outputs differ by more than "
        "0.0001 on 1 of 3 rows (rows 2); max gap 0.15 at row 2, column 'no'"
    )
