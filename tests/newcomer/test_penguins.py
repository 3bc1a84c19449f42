"""A newcomer's first hour with Conduit on real public data: the raw Palmer penguins table as its package ships it
(column names with spaces and parentheses, "NA" for what was not measured, an egg-laying date) imported with the
CLI, two models trained from spec files (the species, the import's target, and the sex, another target, split by
date), deployed and served by `conduit serve` following the control plane, then asked what a user asks: does
traffic like the training data drift (no), does shifted traffic (yes, on the shifted columns), does a request
larger than the server's batch limit come back whole, and does a polars DataFrame go through the Python client.

What each part needs from Conduit is kept in the small helpers under "Interfaces", so a change of flag or
signature is made in one place."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

from clients import InferenceClient, InferResult
from tests.control_plane.e2e.conftest import CALLER, Cluster, Process, eventually

from .conftest import PENGUINS_RAW, serve

DATASET = "penguins"
IMPORT_TARGET = "Species"
NUMERIC = ["Culmen Length (mm)", "Culmen Depth (mm)", "Flipper Length (mm)", "Body Mass (g)"]
ISOTOPES = ["Delta 15 N (o/oo)", "Delta 13 C (o/oo)"]
SPECIES = "penguin-species"
SEX = "penguin-sex"
# The server's batch limit for a model whose config.json does not set one.
MAX_BATCH = 64
SEED = 20260
ROWS = 400

# The import's target, stratified split, a linear model.
SPECIES_SPEC = f"""
[dataset]
name = "{DATASET}"
target = "Species"
[features]
numeric = {json.dumps(NUMERIC)}
categorical = ["Island", "Clutch Completion"]
[cleaning]
impute = "median"
[split]
method = "stratified"
test_size = 0.25
seed = 1
[model]
task = "multiclass"
estimator = "logistic_regression"
params = {{ max_iter = 1000 }}
[register]
name = "{SPECIES}"
alias = "production"
"""

# Another target than the import's (with "NA" where the sex was not determined), the newest fifth of the nests by
# "Date Egg" held out, a small forest.
SEX_SPEC = f"""
[dataset]
name = "{DATASET}"
target = "Sex"
[features]
numeric = {json.dumps(NUMERIC + ISOTOPES)}
categorical = ["Species", "Island"]
[cleaning]
impute = "median"
[split]
method = "time"
time_column = "Date Egg"
test_size = 0.2
seed = 1
[model]
task = "binary"
estimator = "random_forest"
params = {{ n_estimators = 20, max_depth = 4 }}
[register]
name = "{SEX}"
alias = "production"
"""
SEX_FEATURES = (NUMERIC + ISOTOPES, ["Species", "Island"])
SPECIES_FEATURES = (NUMERIC, ["Island", "Clutch Completion"])
# Heavier penguins with longer flippers than any season measured.
SHIFTED = {"Body Mass (g)": 1500.0, "Flipper Length (mm)": 30.0}


# Interfaces: each Conduit feature this test leans on, in one place.


def import_raw(cluster: Cluster, path: Path) -> dict[str, Any]:
    """`conduit datasets import` of the raw CSV as a user types it: R's "NA" is among the default null markers
    (``--null-values``), so the measurements with gaps import as numbers."""
    done = cluster.cli("datasets", "import", str(path), "--name", DATASET, "--target", IMPORT_TARGET, "--json")
    stored: dict[str, Any] = json.loads(done.stdout)
    return stored


def train(cluster: Cluster, spec: Path) -> dict[str, Any]:
    """`conduit train SPEC --register`: the spec's column names as written (spaces, parentheses, slashes)."""
    done = cluster.cli("train", str(spec), "--register", "--json")
    trained: dict[str, Any] = json.loads(done.stdout)
    return trained


def input_name(column: str) -> str:
    """The served input of a feature column: the column's own name."""
    return column


def infer_frame(client: InferenceClient, model: str, frame: pl.DataFrame) -> InferResult:
    """A polars DataFrame through the Python client: columns map to inputs by name, float64 cast to the model's
    FP32."""
    return client.infer(model, frame)  # type: ignore[arg-type]


def infer_rows(client: InferenceClient, model: str, inputs: dict[str, np.ndarray]) -> InferResult:
    """One request however many rows: the server splits what exceeds its batch limit."""
    return client.infer(model, inputs, timeout=30)


# Data as a user handles it.


def _na_counts(path: Path) -> dict[str, int]:
    """Per column, the cells the raw file writes as "NA", counted with the csv module alone."""
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    return {column: sum(row[column] == "NA" for row in rows) for column in rows[0]}


def _resample(frame: pl.DataFrame, features: tuple[list[str], list[str]], rows: int, seed: int) -> pl.DataFrame:
    """``rows`` rows drawn with replacement from ``frame``'s, gaps in the measurements included (the training data
    has them: a sample without any would drift on its missing share alone)."""
    numeric, categorical = features
    picks = np.random.default_rng(seed).integers(0, frame.height, rows)
    return frame[picks].select([*numeric, *categorical])


def _arrays(frame: pl.DataFrame, features: tuple[list[str], list[str]]) -> dict[str, np.ndarray]:
    """The rows as the server takes them: one [rows, 1] input per feature, FP32 numbers or strings."""
    numeric, categorical = features
    inputs = {input_name(c): frame[c].cast(pl.Float32).to_numpy().reshape(-1, 1) for c in numeric}
    for column in categorical:
        inputs[input_name(column)] = np.array(frame[column].to_list(), dtype=object).reshape(-1, 1)
    return inputs


def _send(client: InferenceClient, model: str, inputs: dict[str, np.ndarray], per_request: int = 16) -> int:
    rows = len(next(iter(inputs.values())))
    for start in range(0, rows, per_request):
        client.infer(model, {k: v[start : start + per_request] for k, v in inputs.items()})
    return rows


@dataclass(frozen=True)
class Imported:
    stored: dict[str, Any]
    """What `conduit datasets import --json` answers: the version and its profile."""
    data: pl.DataFrame
    """The data set version as the control plane stores it (downloaded back)."""


@pytest.fixture(scope="package")
def imported(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Imported:
    tmp = tmp_path_factory.mktemp("penguins")
    stored = import_raw(cluster, PENGUINS_RAW)
    cluster.cli("datasets", "download", DATASET, "-o", str(tmp / "penguins.parquet"))
    return Imported(stored, pl.read_parquet(tmp / "penguins.parquet"))


@pytest.fixture(scope="package")
def trained(
    cluster: Cluster, imported: Imported, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, dict[str, Any]]:
    """Model -> what `conduit train --register --json` answered for it."""
    tmp = tmp_path_factory.mktemp("specs")
    answers = {}
    for model, text in ((SPECIES, SPECIES_SPEC), (SEX, SEX_SPEC)):
        spec = tmp / f"{model}.toml"
        spec.write_text(text)
        answers[model] = train(cluster, spec)
    return answers


@pytest.fixture(scope="package")
def server(cluster: Cluster, trained: dict[str, dict[str, Any]]) -> Iterator[Process]:
    for model in trained:
        cluster.cli("deploy", f"{model}@production", "--pool", "default")
    process = serve(cluster)
    with InferenceClient(process.address, metadata=CALLER) as client:
        eventually(lambda: client.model_ready(SPECIES) and client.model_ready(SEX), timeout=60, what="both loaded")
    yield process


def _monitored(cluster: Cluster, model: str, rows: int) -> dict[str, dict[str, Any]]:
    """Feature -> its drift over the last day once the monitoring has counted ``rows`` values of every feature."""

    def window() -> dict[str, Any]:
        done = cluster.cli("monitoring", "show", f"{model}@production", "--since", "15m", "--window", "1d", "--json")
        windows = [w for w in json.loads(done.stdout)["windows"] if w["features"]]
        return windows[-1] if windows else {"features": []}

    eventually(
        lambda: {int(f["count"]) for f in window()["features"]} == {rows},
        timeout=30,
        what=f"{rows} values of every feature of {model} counted",
    )
    return {f["feature"]: f for f in window()["features"]}


def test_the_raw_csv_imports_with_na_as_missing(imported: Imported) -> None:
    profile = {c["name"]: c for c in imported.stored["profile"]["columns"]}
    na = _na_counts(PENGUINS_RAW)
    assert int(imported.stored["profile"]["rows"]) == 344 == imported.data.height
    assert list(profile) == list(na)  # every column, named as the file names it
    for column in ["Sample Number", *NUMERIC, *ISOTOPES]:
        assert profile[column]["kind"] == "numeric", column
        assert imported.data[column].dtype.is_numeric(), column
    for column, count in na.items():
        assert imported.data[column].null_count() == count, column
        assert int(profile[column].get("missing", 0)) == count, column
    # The gaps are real: measurements, sexes and most comments.
    assert na["Culmen Length (mm)"] == 2 and na["Sex"] == 11 and na["Comments"] > 250


def test_two_targets_train_on_the_columns_as_named(
    cluster: Cluster, imported: Imported, trained: dict[str, dict[str, Any]], server: Process
) -> None:
    for model, features, target in ((SPECIES, SPECIES_FEATURES, "Species"), (SEX, SEX_FEATURES, "Sex")):
        answer = trained[model]
        assert answer["registered"] == {"model": model, "version": 1, "aliases": ["production"]}
        assert answer["dataset"] == {"name": DATASET, "version": imported.stored["version"]}
        assert answer["metrics"]["accuracy"] > 0.7, model
        shown = json.loads(cluster.cli("models", "show", f"{model}@production", "--json").stdout)
        assert f'target = "{target}"' in shown["lineage"]["training_spec"]
        # The served inputs are the columns, named as the file names them.
        with InferenceClient(server.address, metadata=CALLER) as client:
            names = {i.name for i in client.model_metadata(model).inputs}
        assert names == {input_name(c) for c in [*features[0], *features[1]]}, model


def test_traffic_like_the_training_data_does_not_drift_and_shifted_traffic_does(
    cluster: Cluster, imported: Imported, server: Process
) -> None:
    # The species model was trained on a stratified three quarters of every season: any row is like its data.
    like = _arrays(_resample(imported.data, SPECIES_FEATURES, ROWS, SEED), SPECIES_FEATURES)
    # The sex model on the older four fifths of the nests whose sex is known: rows drawn from those, two columns
    # shifted.
    sexed = imported.data.filter(pl.col("Sex").is_not_null()).sort("Date Egg", maintain_order=True)
    shifted = _resample(sexed.head(int(sexed.height * 0.8)), SEX_FEATURES, ROWS, SEED + 1).with_columns(
        pl.col(column) + offset for column, offset in SHIFTED.items()
    )
    with InferenceClient(server.address, metadata=CALLER) as client:
        _send(client, SPECIES, like)
        _send(client, SEX, _arrays(shifted, SEX_FEATURES))

    inputs = {input_name(c) for c in [*SPECIES_FEATURES[0], *SPECIES_FEATURES[1]]}
    features = _monitored(cluster, SPECIES, ROWS)
    assert inputs <= set(features)
    assert {name for name in inputs if features[name]["drifted"]} == set()

    inputs = {input_name(c) for c in [*SEX_FEATURES[0], *SEX_FEATURES[1]]}
    features = _monitored(cluster, SEX, ROWS)
    assert inputs <= set(features)
    assert {name for name in inputs if features[name]["drifted"]} == {input_name(c) for c in SHIFTED}


def _outputs(answer: InferResult) -> dict[str, np.ndarray]:
    return {name: np.asarray(values) for name, values in answer.outputs.items()}


def _in_parts(client: InferenceClient, model: str, inputs: dict[str, np.ndarray], size: int) -> dict[str, np.ndarray]:
    parts: dict[str, list[np.ndarray]] = {}
    rows = len(next(iter(inputs.values())))
    for start in range(0, rows, size):
        answer = client.infer(model, {k: v[start : start + size] for k, v in inputs.items()})
        for name, values in _outputs(answer).items():
            parts.setdefault(name, []).append(values)
    return {name: np.concatenate(values) for name, values in parts.items()}


def _same(got: dict[str, np.ndarray], expected: dict[str, np.ndarray], outputs: Sequence[str]) -> None:
    assert set(got) == set(expected)
    for name in outputs:
        np.testing.assert_allclose(got[name].astype(np.float64), expected[name].astype(np.float64), atol=1e-6)


def test_a_request_of_256_rows_comes_back_whole_from_a_model_batching_64(server: Process, imported: Imported) -> None:
    inputs = _arrays(_resample(imported.data, SPECIES_FEATURES, 256, SEED + 2), SPECIES_FEATURES)
    with InferenceClient(server.address, metadata=CALLER) as client:
        assert client.model_config(SPECIES).max_batch_size == MAX_BATCH
        whole = _outputs(infer_rows(client, SPECIES, inputs))
        assert {len(values) for values in whole.values()} == {256}
        _same(whole, _in_parts(client, SPECIES, inputs, MAX_BATCH), ["label", "probabilities"])


def test_a_polars_frame_is_served_like_its_arrays(server: Process, imported: Imported) -> None:
    # Float64 numbers (all measured), columns in another order than the model's inputs.
    measured = imported.data.drop_nulls([*SEX_FEATURES[0], *SEX_FEATURES[1]])
    frame = _resample(measured, SEX_FEATURES, 50, SEED + 3).with_columns(pl.col(NUMERIC).cast(pl.Float64))
    frame = frame.select(list(reversed(frame.columns)))
    assert frame["Body Mass (g)"].dtype == pl.Float64
    with InferenceClient(server.address, metadata=CALLER) as client:
        from_frame = _outputs(infer_frame(client, SEX, frame))
        from_arrays = _outputs(client.infer(SEX, _arrays(frame, SEX_FEATURES)))
    assert len(from_frame["label"]) == 50
    _same(from_frame, from_arrays, ["label", "probabilities"])
