"""Column names as users write them (spaces, parentheses, dots, slashes, unicode, leading digits) train, export,
pass the parity check and are served under those names; the few names a graph cannot take are refused at parse time."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from clients import InferenceClient
from tests.conftest import StartServe
from trainers import SpecError, parse_spec, train
from trainers.datasets import content_version
from trainers.onnx_export import write_model_version

NUMERIC = ["Culmen Length (mm)", "Body Mass (g)", "body.mass/kg", "Größe", "1st value", "Sample Number"]
CATEGORICAL = ["Island Name", "Individual ID"]
TARGET = "Species (short)"
ROWS = 64


def _penguins(rows: int = 400) -> pl.DataFrame:
    """A penguin-like table whose column names are the raw data's, with a target the features predict."""
    rng = np.random.default_rng(7)
    species = rng.choice(["Adelie", "Gentoo", "Chinstrap"], rows)
    culmen = np.where(species == "Gentoo", 47.0, np.where(species == "Adelie", 39.0, 49.0)) + rng.normal(0, 2, rows)
    mass = np.where(species == "Gentoo", 5000.0, 3700.0) + rng.normal(0, 250, rows)
    return pl.DataFrame(
        {
            "Culmen Length (mm)": culmen,
            "Body Mass (g)": mass,
            "body.mass/kg": mass / 1000.0,
            "Größe": rng.normal(1.0, 0.2, rows),
            "1st value": rng.normal(0.0, 1.0, rows),
            "Sample Number": np.arange(rows, dtype=np.int64),
            "Island Name": np.where(species == "Gentoo", "Biscoe", rng.choice(["Dream", "Torgersen"], rows)),
            "Individual ID": [f"N{i % 40}A{i % 2 + 1}" for i in range(rows)],
            TARGET: species,
        }
    )


def _spec(numeric: list[str], categorical: list[str], *, task: str = "multiclass", estimator: str = "") -> str:
    return f"""
[dataset]
name = "penguins"
target = {json.dumps(TARGET)}
[features]
numeric = {json.dumps(numeric, ensure_ascii=False)}
categorical = {json.dumps(categorical, ensure_ascii=False)}
[split]
method = "random"
seed = 2
[model]
task = "{task}"
estimator = "{estimator or ("ridge" if task == "regression" else "logistic_regression")}"
"""


@pytest.mark.parametrize("estimator", ["logistic_regression", "random_forest", "lightgbm", "xgboost"])
def test_any_column_name_trains_and_the_graph_takes_it_as_written(estimator: str) -> None:
    frame = _penguins()
    spec = parse_spec(_spec(NUMERIC, CATEGORICAL, estimator=estimator))
    result = train(spec, frame, dataset_version=content_version(frame))
    assert [tensor.name for tensor in result.inputs] == NUMERIC + CATEGORICAL
    assert [tensor.name for tensor in result.outputs] == ["label", "probabilities"]
    assert result.parity.passed and result.parity.rows == len(result.test_target)
    assert result.evaluation["target"] == TARGET


def test_a_name_skl2onnx_would_rewrite_next_to_its_rewritten_form_stays_apart() -> None:
    frame = _penguins().with_columns(pl.col("Culmen Length (mm)").alias("Culmen_Length__mm_") * 2)
    names = ["Culmen Length (mm)", "Culmen_Length__mm_", "Body Mass (g)"]
    result = train(parse_spec(_spec(names, [])), frame, dataset_version=content_version(frame))
    assert [tensor.name for tensor in result.inputs] == names


def test_the_server_answers_by_the_users_names(tmp_path: Path, start_serve: StartServe) -> None:
    frame = _penguins()
    result = train(parse_spec(_spec(NUMERIC, CATEGORICAL)), frame, dataset_version=content_version(frame))
    write_model_version(tmp_path / "repository", "penguins", 1, result.onnx)
    served = start_serve(tmp_path / "repository")
    with InferenceClient(served.target, timeout=30) as client:
        metadata = client.model_metadata("penguins")
        assert [tensor.name for tensor in metadata.inputs] == NUMERIC + CATEGORICAL
        # The first rows of the test split, as many as one request of the server's default batch limit holds.
        answer = client.infer("penguins", {name: values[:ROWS] for name, values in result.test_inputs.items()})
    np.testing.assert_array_equal(answer.outputs["label"], result.native_labels[:ROWS])
    assert result.native_probabilities is not None
    np.testing.assert_allclose(answer.outputs["probabilities"], result.native_probabilities[:ROWS], atol=1e-4)


@pytest.mark.parametrize(
    ("numeric", "task", "message"),
    [
        (["label"], "binary", "'label' is also the name of the model's output"),
        (["probabilities"], "multiclass", "'probabilities' is also the name of the model's output"),
        (["variable"], "regression", "'variable' is also the name of the model's output"),
        ([""], "binary", "a feature has an empty name"),
        (["a\0b"], "binary", "holds a NUL character"),
    ],
)
def test_a_name_no_graph_can_take_is_refused_when_the_spec_is_parsed(
    numeric: list[str], task: str, message: str
) -> None:
    with pytest.raises(SpecError, match=message) as refused:
        parse_spec(_spec(numeric, [], task=task))
    assert "\n" not in refused.value.message


def test_an_output_name_is_fine_for_a_task_without_that_output() -> None:
    frame = _penguins().with_columns(pl.col("Body Mass (g)").alias("variable"))
    result = train(parse_spec(_spec(["variable", "Culmen Length (mm)"], [])), frame, dataset_version="v")
    assert [tensor.name for tensor in result.inputs] == ["variable", "Culmen Length (mm)"]


def test_an_input_is_never_renamed_onto_a_value_the_graph_already_holds() -> None:
    from onnx import TensorProto, helper

    from trainers.onnx_export import _rename_values

    graph = helper.make_graph(
        [helper.make_node("Identity", ["x_y"], ["x y"])],
        "g",
        [helper.make_tensor_value_info("x_y", TensorProto.FLOAT, [None, 1])],
        [helper.make_tensor_value_info("x y", TensorProto.FLOAT, [None, 1])],
    )
    with pytest.raises(ValueError, match="already holds a value named 'x y'"):
        _rename_values(graph, {"x_y": "x y"})
    _rename_values(graph, {"x_y": "x z"})
    assert [graph.input[0].name, graph.node[0].input[0]] == ["x z", "x z"]
