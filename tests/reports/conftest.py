"""Fixtures of the report tests: models trained on bundled data, as the registry would hand them to a report."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Any

import polars as pl
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from contract import wire
from control_plane.protocol import control_plane_pb2 as cp
from reports import ReportInputs
from tests.trainers.conftest import spec_text
from trainers import TrainingResult, bundled, parse_spec, train
from trainers import datasets as ds

SVG = "{http://www.w3.org/2000/svg}"


@dataclass(frozen=True)
class Trained:
    """A training run and the report inputs of it registered as ``model:version``."""

    result: TrainingResult
    inputs: ReportInputs


def as_registered(
    result: TrainingResult, frame: pl.DataFrame, *, model: str, version: int = 1, aliases: tuple[str, ...] = ()
) -> ReportInputs:
    """The report inputs of ``result`` as ``clients.training.register_result`` stores it: read from the same
    messages and attachments a control plane answers with, and the data set version's profile."""
    lineage = result.lineage
    environment = {"packages": result.packages, "classes": list(result.classes)}
    attachments = {
        "evaluation.json": json.dumps(result.evaluation, allow_nan=False).encode(),
        "spec.toml": lineage.training_spec.encode(),
        "environment.json": json.dumps(environment).encode(),
        "training.log": b"split: rows\ntrained\n",
    }
    message = cp.ModelVersion(
        model=model,
        version=version,
        sha256="ab" * 32,
        size_bytes=len(result.onnx),
        metrics=result.metrics,
        params=result.params,
        tags={
            "task": result.spec.model.task,
            "estimator": result.spec.model.estimator,
            "dataset": lineage.dataset,
        },
        lineage=cp.Lineage(
            dataset=lineage.dataset,
            dataset_version=lineage.dataset_version,
            training_spec=lineage.training_spec,
            code_version=lineage.code_version,
        ),
        created_at=Timestamp(seconds=1_790_000_000),
        created_by="trainer",
        aliases=list(aliases),
        attachments=[cp.Attachment(name=name, size_bytes=len(content)) for name, content in attachments.items()],
    )
    dataset = cp.DatasetVersion(
        name=lineage.dataset,
        version=lineage.dataset_version,
        profile=wire.dataset_profile(ds.profile(frame)),
        source=f"bundled:{lineage.dataset}",
        created_at=Timestamp(seconds=1_790_000_000),
    )
    return ReportInputs.of(wire.model_version_of(message), attachments, wire.dataset_version_of(dataset))


def _train(name: str, estimator: str, task: str, params: dict[str, Any], **options: Any) -> Trained:
    frame = bundled.load(name)
    spec = parse_spec(spec_text(name, estimator, task, params, **options))
    result = train(spec, frame, dataset_version=ds.content_version(frame))
    return Trained(result, as_registered(result, frame, model=f"{name}-{estimator}"))


@pytest.fixture(scope="session")
def forest() -> Trained:
    """A random forest on the credit data (binary, numeric and one-hot features)."""
    return _train("credit", "random_forest", "binary", {"n_estimators": 12, "max_depth": 6})


@pytest.fixture(scope="session")
def sgd() -> Trained:
    """A linear model trained by SGD on the breast cancer data (binary)."""
    return _train("breast_cancer", "sgd", "binary", {})


@pytest.fixture(scope="session")
def mlp() -> Trained:
    """A network on iris (multiclass): loss per epoch and per-layer weights."""
    return _train("iris", "mlp", "multiclass", {"hidden_layer_sizes": [8], "max_iter": 80})


@pytest.fixture(scope="session")
def ridge() -> Trained:
    """A linear regressor on the diabetes data."""
    return _train("diabetes", "ridge", "regression", {"alpha": 1.0})


@pytest.fixture(scope="session")
def searched() -> Trained:
    """Gradient boosting tuned by an Optuna search on the credit data."""
    space = {"max_depth": [1, 6], "learning_rate": [0.01, 0.5]}
    return _train(
        "credit",
        "gradient_boosting",
        "binary",
        {"n_estimators": 15},
        search={"trials": 5, "metric": "roc_auc", "space": space},
    )


def figure_ids(html: str) -> list[str]:
    return re.findall(r'<figure id="([^"]+)"', html)


def figure_texts(html: str, figure_id: str) -> list[str]:
    """The text of every ``<text>`` element of one figure's SVG, in document order."""
    match = re.search(rf'<figure id="{figure_id}">(<svg.*?</svg>)', html, re.DOTALL)
    assert match, f"no figure {figure_id}"
    root = ET.fromstring(match[1])
    return ["".join(element.itertext()) for element in root.iter(f"{SVG}text")]
