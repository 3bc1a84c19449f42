"""Every estimator family, trained on bundled data, registered in a real control plane and served by a real
`conduit serve --control-plane`: the served predictions equal the native model's on the test split, and the metrics
the registry stores equal scikit-learn's on the same predictions."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from scipy import stats
from sklearn import metrics as skm

from clients import InferenceClient
from clients.training import fetch_dataset, import_frame, register_result
from contract.client import SyncControlPlaneClient
from contract.entities import ModelVersion, VersionRef
from trainers import TrainingResult, bundled, parse_spec, train

from .conftest import ADMIN_TOKEN, CALLER, Cluster, eventually

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
PARITY = 1e-4
MAX_BATCH = 64


def _inline(dataset: str, estimator: str, task: str, params: str, **features: list[str]) -> str:
    target = bundled.BUNDLED[dataset].target
    numeric = features.get("numeric") or [c for c in bundled.load(dataset).columns if c != target]
    categorical = features.get("categorical", [])
    return f"""
[dataset]
name = "{dataset}"
target = "{target}"
[features]
numeric = {numeric!r}
categorical = {categorical!r}
[split]
method = "{"random" if task == "regression" else "stratified"}"
test_size = 0.25
seed = 3
[model]
task = "{task}"
estimator = "{estimator}"
params = {params}
[register]
name = "family-{estimator.replace("_", "-")}"
""".replace("'", '"')


CREDIT = {"numeric": ["age", "income", "debt", "months_at_address"], "categorical": ["city", "employment"]}

# One spec per estimator family: the shipped examples as they are, and inline specs for the others.
FAMILIES: dict[str, Callable[[], str]] = {
    "logistic_regression": (EXAMPLES / "breast_cancer_logistic.toml").read_text,
    "linear_regression": lambda: _inline("diabetes", "linear_regression", "regression", "{}"),
    "ridge": (EXAMPLES / "diabetes_ridge.toml").read_text,
    "sgd": lambda: _inline("breast_cancer", "sgd", "binary", "{ max_iter = 200 }"),
    "decision_tree": (EXAMPLES / "iris_decision_tree.toml").read_text,
    "random_forest": (EXAMPLES / "credit_random_forest.toml").read_text,
    "extra_trees": lambda: _inline("wine", "extra_trees", "multiclass", "{ n_estimators = 20 }"),
    "gradient_boosting": lambda: _inline(
        "credit", "gradient_boosting", "binary", "{ n_estimators = 20, max_depth = 3 }", **CREDIT
    ),
    "hist_gradient_boosting": (EXAMPLES / "wine_hist_gradient_boosting.toml").read_text,
    "mlp": lambda: _inline("iris", "mlp", "multiclass", "{ hidden_layer_sizes = [8], max_iter = 500 }"),
    "lightgbm": (EXAMPLES / "credit_lightgbm_group.toml").read_text,
    "xgboost": (EXAMPLES / "credit_xgboost_time.toml").read_text,
}


@dataclass
class Trained:
    result: TrainingResult
    version: ModelVersion


def _served(client: InferenceClient, version: ModelVersion, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The test split through the server, in requests of at most MAX_BATCH rows (the server's default limit)."""
    rows = len(next(iter(inputs.values())))
    parts: dict[str, list[np.ndarray]] = {}
    for start in range(0, rows, MAX_BATCH):
        chunk = {name: values[start : start + MAX_BATCH] for name, values in inputs.items()}
        answer = client.infer(version.model, chunk, timeout=30)
        assert answer.model_version == str(version.version)
        for name, values in answer.outputs.items():
            parts.setdefault(name, []).append(values)
    return {name: np.concatenate(values) for name, values in parts.items()}


def _expected_metrics(result: TrainingResult) -> dict[str, float]:
    """The held-out metrics, computed here from the native predictions with scikit-learn and scipy alone."""
    truth, labels = result.test_target, result.native_labels
    if result.native_probabilities is None:
        return {
            "rmse": float(np.sqrt(skm.mean_squared_error(truth, labels))),
            "mae": skm.mean_absolute_error(truth, labels),
            "r2": skm.r2_score(truth, labels),
            "mape": skm.mean_absolute_percentage_error(truth, labels),
        }
    p = result.native_probabilities.astype(np.float64)
    p = p / p.sum(axis=1, keepdims=True)
    expected = {
        "accuracy": skm.accuracy_score(truth, labels),
        "f1_macro": skm.f1_score(truth, labels, average="macro", labels=range(p.shape[1]), zero_division=0),
        "precision_macro": skm.precision_score(
            truth, labels, average="macro", labels=range(p.shape[1]), zero_division=0
        ),
        "recall_macro": skm.recall_score(truth, labels, average="macro", labels=range(p.shape[1]), zero_division=0),
        "log_loss": skm.log_loss(truth, p, labels=range(p.shape[1])),
    }
    if p.shape[1] == 2:
        positive = truth == 1
        expected["roc_auc"] = skm.roc_auc_score(truth, p[:, 1])
        expected["pr_auc"] = skm.average_precision_score(truth, p[:, 1])
        expected["ks"] = stats.ks_2samp(p[positive, 1], p[~positive, 1]).statistic
        expected["f1"] = skm.f1_score(truth, labels, zero_division=0)
    elif len(np.unique(truth)) == p.shape[1]:
        expected["roc_auc"] = skm.roc_auc_score(truth, p, multi_class="ovr", average="macro")
    return {name: float(value) for name, value in expected.items()}


def test_every_family_served_by_conduit_serve_equals_the_native_model(
    start_cluster: Callable[[str], Cluster],
) -> None:
    cluster = start_cluster("")
    trained: dict[str, Trained] = {}
    with SyncControlPlaneClient.connect(cluster.control_plane.address, token=ADMIN_TOKEN) as client:
        for name in bundled.BUNDLED:
            import_frame(
                client, bundled.load(name), name, source=f"bundled:{name}", target=bundled.BUNDLED[name].target
            )
        for family, text in FAMILIES.items():
            spec = parse_spec(text())
            assert spec.model.estimator == family
            frame, stored = fetch_dataset(client, spec.dataset.name, spec.dataset.version or "")
            result = train(spec, frame, dataset_version=stored.version)
            assert spec.registration is not None
            version = register_result(client, result, model=spec.registration.name)
            client.run(client.api.deploy("default", spec.registration.name, version=version.version))
            trained[family] = Trained(result, version)

        for family, run in trained.items():
            stored_metrics = dict(client.run(client.api.get_version(VersionRef(run.version.model))).metrics)
            expected = _expected_metrics(run.result)
            for metric, value in expected.items():
                assert stored_metrics[metric] == pytest.approx(value, rel=1e-9, abs=1e-12), (family, metric)

    server = cluster.serve()
    with InferenceClient(server.address, metadata=CALLER) as inference:
        eventually(
            lambda: all(inference.model_ready(run.version.model) for run in trained.values()),
            timeout=120,
            what="every family loaded",
        )
        for family, run in trained.items():
            result = run.result
            answers = _served(inference, run.version, result.test_inputs)
            if result.native_probabilities is None:
                served = answers["variable"].reshape(-1).astype(np.float64)
                native = result.native_labels.astype(np.float64)
                gap = np.abs(served - native) / np.maximum(1.0, np.abs(native))
                assert gap.max() <= PARITY, family
            else:
                np.testing.assert_array_equal(answers["label"].reshape(-1), result.native_labels, family)
                np.testing.assert_allclose(
                    answers["probabilities"], result.native_probabilities, atol=PARITY, rtol=0, err_msg=family
                )
