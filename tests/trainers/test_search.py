"""Optuna search: workers sharing one study through an SQL database finish with exactly the requested trials;
pruning stops weak trials of estimators that grow by warm start."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import optuna
import polars as pl
import pytest

from tests.trainers.conftest import MakeSpec, spec_text
from trainers import train
from trainers._search import study_name

WORKER = """
import json, sys
from trainers import bundled, parse_spec, train
spec = parse_spec(open(sys.argv[1]).read())
result = train(spec, bundled.load("credit"), dataset_version="5" * 16, study_storage=sys.argv[2])
print(json.dumps({"study": result.evaluation["search"]["study"], "params": result.params}))
"""


def test_two_workers_share_one_study_and_finish_exactly_the_trials(tmp_path: Path) -> None:
    search = {"trials": 6, "space": {"max_depth": [2, 8], "min_samples_leaf": [1, 20]}}
    spec_file = tmp_path / "spec.toml"
    spec_file.write_text(spec_text("credit", "decision_tree", "binary", search=search))
    url = f"sqlite:///{tmp_path / 'registry.db'}"
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, str(spec_file), url], stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        for _ in range(2)
    ]
    answers = []
    for worker in workers:
        out, err = worker.communicate(timeout=240)
        assert worker.returncode == 0, err.decode()
        answers.append(json.loads(out.decode().strip().splitlines()[-1]))
    assert answers[0]["study"] == answers[1]["study"]
    study = optuna.load_study(study_name=answers[0]["study"], storage=url)
    finished = study.get_trials(states=(optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED))
    assert len(finished) == 6
    assert not study.get_trials(states=(optuna.trial.TrialState.RUNNING,))


def test_pruning_stops_weak_trials(frames: dict[str, pl.DataFrame], make_spec: MakeSpec) -> None:
    search = {
        "trials": 10,
        "metric": "log_loss",
        "space": {
            "n_estimators": [8, 24],
            "max_depth": [1, 10],
            "learning_rate": {"low": 0.001, "high": 0.5, "log": True},
        },
    }
    spec = make_spec("credit", "gradient_boosting", "binary", search=search)
    lines: list[str] = []
    result = train(spec, frames["credit"], dataset_version="6" * 16, log=lines.append)
    record = result.evaluation["search"]
    states = [t["state"] for t in record["trials"]]
    assert len(states) == 10 and "PRUNED" in states and "FAIL" not in states
    assert record["direction"] == "minimize" and record["metric"] == "log_loss"
    # Intermediate values at the warm-start rungs, a quarter of the trees at a time.
    complete = [t for t in record["trials"] if t["state"] == "COMPLETE"]
    assert all(len(t["intermediate"]) >= 3 for t in complete)
    best = min(complete, key=lambda t: t["value"])
    assert record["best_params"] == best["params"]
    assert result.params["max_depth"] == str(best["params"]["max_depth"])
    assert any("pruned" in line for line in lines)


def test_estimators_without_warm_start_are_searched_without_pruning(
    frames: dict[str, pl.DataFrame], make_spec: MakeSpec
) -> None:
    search = {"trials": 3, "space": {"C": {"low": 0.01, "high": 10.0, "log": True}}}
    spec = make_spec("breast_cancer", "logistic_regression", "binary", search=search)
    result = train(spec, frames["breast_cancer"], dataset_version="7" * 16)
    trials = result.evaluation["search"]["trials"]
    assert [t["state"] for t in trials] == ["COMPLETE"] * 3 and all(not t["intermediate"] for t in trials)


def test_study_names_follow_the_spec_and_the_data(make_spec: MakeSpec) -> None:
    search = {"trials": 2, "space": {"max_depth": [2, 4]}}
    spec = make_spec("credit", "decision_tree", "binary", search=search)
    other = make_spec("credit", "decision_tree", "binary", search={**search, "trials": 3})
    name = study_name(spec, "a" * 16)
    assert name.startswith("conduit-credit-") and name == study_name(spec, "a" * 16)
    assert name != study_name(spec, "b" * 16) and name != study_name(other, "a" * 16)
    named = make_spec("credit", "decision_tree", "binary", search={**search, "study": "shared"})
    assert study_name(named, "a" * 16) == "shared"


@pytest.mark.parametrize("estimator", ["decision_tree", "hist_gradient_boosting", "lightgbm"])
def test_aligned_thresholds_change_no_native_prediction(
    frames: dict[str, pl.DataFrame], make_spec: MakeSpec, estimator: str
) -> None:
    import numpy as np

    from trainers._pipeline import build_pipeline, feature_frame
    from trainers._thresholds import align_thresholds

    spec = make_spec("wine", estimator, "multiclass")
    frame = frames["wine"]
    x = feature_frame(spec, frame)
    y = frame["cultivar"].to_numpy()
    pipeline = build_pipeline(spec, spec.estimator.build("multiclass", {}, 0)).fit(x, y)
    rng = np.random.default_rng(0)
    # Rows on and next to the training values, where a rounded threshold would flip a split.
    noisy = x.with_columns(
        pl.col(c) * pl.Series(rng.choice([1.0, 1.0 + 1e-7, 1.0 - 1e-7], x.height)).cast(pl.Float32) for c in x.columns
    )
    probe = pl.concat([x, noisy])
    before = pipeline.predict_proba(probe)
    align_thresholds(pipeline.named_steps["model"])
    np.testing.assert_array_equal(pipeline.predict_proba(probe), before)
