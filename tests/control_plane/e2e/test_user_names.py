"""A user's own table end to end, as the CLI runs it: column names with spaces, parentheses and units, a spec in the
user's git repository predicting another column than the import's target, with a derived feature. `conduit train
--register` records the user's commit, `conduit models show` the class names, a following server answers under the
column names, and monitoring counts the derived input and the predictions against the spec's target."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

from clients import InferenceClient

from .conftest import CALLER, Cluster, eventually

SPEC = """
[dataset]
name = "penguins"
target = "Species"
[features]
numeric = ["Culmen Length (mm)", "Body Mass (g)", "Mass per Length (g/mm)"]
categorical = ["Island Name"]
[cleaning]
derived = { "Mass per Length (g/mm)" = '"Body Mass (g)" / "Culmen Length (mm)"' }
[split]
method = "stratified"
seed = 3
[model]
task = "multiclass"
estimator = "logistic_regression"
params = { max_iter = 500 }
[register]
name = "penguins"
alias = "production"
"""


def _penguins(rows: int = 300) -> pl.DataFrame:
    rng = np.random.default_rng(11)
    species = rng.choice(["Adelie", "Chinstrap", "Gentoo"], rows)
    culmen = np.select([species == "Adelie", species == "Gentoo"], [39.0, 47.0], 49.0) + rng.normal(0, 2, rows)
    mass = np.where(species == "Gentoo", 5000.0, 3700.0) + rng.normal(0, 250, rows)
    island = np.where(species == "Gentoo", "Biscoe", rng.choice(["Dream", "Torgersen"], rows))
    return pl.DataFrame(
        {
            "Sample Number": np.arange(rows),
            "Culmen Length (mm)": culmen,
            "Body Mass (g)": mass,
            "Island Name": island,
            "Species": species,
        }
    )


def _git(folder: Path, *args: str) -> str:
    identity = ["-c", "user.name=a", "-c", "user.email=a@b"]
    return subprocess.run(
        ["git", *identity, "-C", str(folder), *args], check=True, capture_output=True, text=True
    ).stdout


def test_a_users_columns_spec_and_repository_from_training_to_monitoring(
    start_cluster: Callable[[str], Cluster], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cluster = start_cluster("")
    frame = _penguins()
    frame.write_csv(tmp_path / "penguins.csv")
    cluster.cli("datasets", "import", str(tmp_path / "penguins.csv"), "--name", "penguins", "--target", "Island Name")
    project = tmp_path / "project"
    project.mkdir()
    (project / "penguins.toml").write_text(SPEC)
    _git(project, "init", "-q")
    _git(project, "add", ".")
    _git(project, "commit", "-q", "-m", "spec")
    commit = _git(project, "rev-parse", "HEAD").strip()

    cluster.cli("train", str(project / "penguins.toml"), "--register")
    shown = cluster.cli("models", "show", "penguins:1").stdout
    assert f"code={commit} " in shown
    assert "classes      0=Adelie, 1=Chinstrap, 2=Gentoo" in shown
    assert "input        'Mass per Length (g/mm)' FP32 [-1,1]" in shown
    assert "attachment   profile.json (application/json" in shown

    cluster.cli("deploy", "penguins@production", "--pool", "default")
    monkeypatch.setenv("CONDUIT_OTLP_INTERVAL", "0.5")
    server = cluster.serve()
    rows = frame.head(40)
    inputs = {
        name: rows[name].cast(pl.Float32).to_numpy().reshape(-1, 1) for name in ("Culmen Length (mm)", "Body Mass (g)")
    }
    # Derived columns are computed before the graph: the caller sends them, under their names.
    inputs["Mass per Length (g/mm)"] = inputs["Body Mass (g)"] / inputs["Culmen Length (mm)"]
    inputs["Island Name"] = rows["Island Name"].to_numpy().astype(object).reshape(-1, 1)
    with InferenceClient(server.address, metadata=CALLER) as inference:
        eventually(lambda: inference.model_ready("penguins"), timeout=60, what="penguins loaded")
        answer = inference.infer("penguins", inputs)
    classes = np.array(["Adelie", "Chinstrap", "Gentoo"])
    accuracy = float((classes[answer.outputs["label"]] == rows["Species"].to_numpy()).mean())
    assert accuracy > 0.8

    def features() -> dict[str, dict[str, Any]]:
        done = cluster.cli("monitoring", "show", "penguins:1", "--since", "15m", "--window", "1d", "--json")
        return {f["feature"]: f for w in json.loads(done.stdout)["windows"] for f in w["features"]}

    expected = {"Culmen Length (mm)", "Body Mass (g)", "Mass per Length (g/mm)", "Island Name", "@prediction"}
    eventually(lambda: set(features()) == expected, timeout=30, what="every input and the predictions counted")
    counted = features()
    assert {name: counted[name]["count"] for name in expected} == {name: "40" for name in expected}
    # Three classes against the Species column's three values; the import's target (Island Name) plays no part.
    assert counted["@prediction"]["cells"] == ["0", "1", "2", "__other__", "missing"]
