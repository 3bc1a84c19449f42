"""Drift as alert evaluation reads it from the registry: a feature with too few rows in the period has no verdict,
so its PSI (however large) can never fire a drift alert; such a period is no data, which resolves one."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from contract.entities import (
    ColumnProfile,
    DatasetProfile,
    DriftRule,
    Lineage,
    NewDatasetVersion,
    NewVersion,
    Rollup,
    TensorSignature,
)
from control_plane.alerting import Evaluator, Outcome, parse_condition
from control_plane.artifacts import open_artifact_store
from control_plane.service._metrics_source import RegistryMetrics
from control_plane.store import SqlStore

NOW = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
BINS = 10


@pytest.fixture
def store(sqlite_url: str) -> Iterator[SqlStore]:
    opened = SqlStore(sqlite_url)
    column = ColumnProfile("x", "Float64", "numeric", 0, 0.0, tuple(float(e) for e in range(BINS + 1)), (100,) * BINS)
    dataset = NewDatasetVersion("train", "a" * 16, "b" * 64, 10, DatasetProfile(1000, (column,)))
    opened.create_dataset_version(dataset, actor="test")
    tensor = TensorSignature("x", "FP32", (1,))
    version = NewVersion("fraud", "c" * 64, 10, (tensor,), (tensor,), lineage=Lineage("train", "a" * 16))
    opened.create_version(version, actor="test", create_model=True)
    yield opened
    opened.close()


def add(store: SqlStore, minute: int, values: int) -> None:
    """``values`` of x, all in the first bin: a distribution nothing like the training data's."""
    at = NOW - timedelta(minutes=minute)
    store.add_rollups([Rollup("fraud", "1", at, requests=1, sketches={("x", "numeric"): {"0": values}})])


def test_a_feature_with_too_few_rows_fires_no_drift_alert(store: SqlStore, tmp_path: Path) -> None:
    artifacts = open_artifact_store(str(tmp_path / "artifacts"))  # holds no training profile: the data set's is used
    source = RegistryMetrics(store, artifacts, DriftRule())
    evaluator = Evaluator(source)
    condition = parse_condition("drift > 0.2")
    add(store, 5, 6)  # one request of 6 rows: PSI about 8
    assert source.drift("fraud", "1", NOW - timedelta(hours=1), NOW) is None
    # Too few rows is no data: a firing drift alert resolves, saying why.
    quiet = evaluator.evaluate(condition, "fraud", "1", NOW)
    assert quiet.outcome is Outcome.CLEAR and quiet.detail.startswith("no data: too few rows"), quiet
    add(store, 4, 200)  # enough rows, the same shift: now it is drift
    scores = source.drift("fraud", "1", NOW - timedelta(hours=1), NOW)
    assert scores is not None and scores.rows == 206 and scores.psi["x"] > 0.2
    assert evaluator.evaluate(condition, "fraud", "1", NOW).outcome is Outcome.HOLDS
    # The minimums are the rule's: with lower ones, the 6 rows alone have a verdict.
    lax = RegistryMetrics(store, artifacts, DriftRule(min_rows=1, min_expected=0.1))
    alone = lax.drift("fraud", "1", NOW - timedelta(minutes=5), NOW - timedelta(minutes=4, seconds=30))
    assert alone is not None and alone.rows == 6
