"""trainers.spec: parsing, the messages of bad specs, and the checks of a spec against its data."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from contract.errors import ErrorCode
from tests.trainers.conftest import MakeSpec, spec_text
from trainers import SpecError, describe_estimators, load_spec, parse_spec, train
from trainers.spec import ESTIMATORS, SearchChoice, SearchRange

EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "examples").glob("*.toml"))

ISSUE_EXAMPLE = """
[dataset]
name = "credit"                # newest version unless version = "…" is given
target = "default"
[features]
numeric = ["age", "income"]
categorical = ["city"]
[split]
method = "stratified"          # random | stratified | time | group
test_size = 0.2
seed = 7
[model]
task = "binary"                # binary | multiclass | regression
estimator = "random_forest"
params = { n_estimators = 100, max_depth = 8 }
[search]                       # optional: Optuna
trials = 20
space = { n_estimators = [50, 300], max_depth = [3, 12] }
[register]
name = "credit-default"
alias = "staging"
"""


def test_the_issue_example_parses() -> None:
    spec = parse_spec(ISSUE_EXAMPLE)
    assert (spec.dataset.name, spec.dataset.version, spec.features.columns) == (
        "credit",
        None,
        ("age", "income", "city"),
    )
    assert spec.model.params == {"n_estimators": 100, "max_depth": 8}
    assert spec.search is not None and spec.search.space["n_estimators"] == SearchRange(low=50, high=300)
    assert spec.search.space["max_depth"].integer  # type: ignore[union-attr]
    assert spec.registration is not None and (spec.registration.name, spec.registration.alias) == (
        "credit-default",
        "staging",
    )
    assert spec.text == ISSUE_EXAMPLE
    assert spec.search_metric == "roc_auc"


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_every_example_parses(path: Path) -> None:
    spec = load_spec(path)
    assert spec.registration is not None
    header = path.read_text().split("\n[", 1)[0]
    assert f"conduit datasets import bundled:{spec.dataset.name} --name {spec.dataset.name}" in header


def test_search_space_forms() -> None:
    spec = parse_spec(
        spec_text(
            "credit",
            "hist_gradient_boosting",
            "binary",
            search={
                "trials": 3,
                "space": {
                    "learning_rate": {"low": 0.01, "high": 0.3, "log": True},
                    "max_iter": [20, 60],
                    "loss": ["log_loss"],
                    "l2_regularization": {"choices": [0.0, 1.0]},
                },
            },
        )
    )
    assert spec.search is not None
    space = spec.search.space
    assert space["learning_rate"] == SearchRange(low=0.01, high=0.3, log=True)
    assert not space["learning_rate"].integer  # type: ignore[union-attr]
    assert space["loss"] == SearchChoice(choices=("log_loss",))
    assert space["l2_regularization"] == SearchChoice(choices=(0.0, 1.0))


@pytest.mark.parametrize(
    ("replace", "by", "message"),
    [
        ('estimator = "random_forest"', 'estimator = "random_forrest"', "[model] unknown estimator 'random_forrest'"),
        ('task = "binary"', 'task = "regression"', "'stratified' needs a classification task"),
        ("max_depth = 8 }", "max_deep = 8 }", "[model] params: random_forest has no parameter 'max_deep'"),
        ("max_depth = [3, 12]", "depth = [3, 12]", "[search] space: random_forest has no parameter 'depth'"),
        (
            'alias = "staging"',
            'alias = "staging"\nowner = "me"',
            "[register] unknown key 'owner' (allowed: name, alias, description)",
        ),
        (
            "[split]",
            "[splits]",
            "spec unknown key 'splits' (allowed: dataset, features, cleaning, split, model, search, register)",
        ),
        ('target = "default"', "", "[dataset] missing key 'target'"),
        ("test_size = 0.2", "test_size = 1.5", "[split] test_size: Input should be less than 1"),
        ("trials = 20", 'trials = 20\nmetric = "rmse"', "metric 'rmse' is not a binary metric"),
        ('method = "stratified"', 'method = "time"', "[split] method 'time' needs time_column"),
        ("max_depth = [3, 12]", "max_depth = [12, 3]", "range [12, 3] must have low < high"),
        ('name = "credit-default"', 'name = "credit default"', "must be 1-128 letters"),
        ('categorical = ["city"]', 'categorical = ["city", "age"]', "feature 'age' is listed twice"),
        ('categorical = ["city"]', 'categorical = ["default"]', "the target 'default' cannot also be a feature"),
        ("[model]", "[model", "the spec is not valid TOML"),
    ],
)
def test_bad_specs_name_the_offending_item(replace: str, by: str, message: str) -> None:
    assert replace in ISSUE_EXAMPLE
    with pytest.raises(SpecError) as caught:
        parse_spec(ISSUE_EXAMPLE.replace(replace, by, 1))
    assert message in caught.value.message, caught.value.message
    assert caught.value.code is ErrorCode.INVALID_ARGUMENT


def test_an_estimator_without_the_task_is_refused() -> None:
    with pytest.raises(SpecError, match="'linear_regression' does not support task 'binary'"):
        parse_spec(
            ISSUE_EXAMPLE.replace("random_forest", "linear_regression").replace("[search]", "[x]").split("[x]")[0]
        )


def test_load_spec_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match=r"missing\.toml: cannot read the spec"):
        load_spec(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text(ISSUE_EXAMPLE.replace("seed = 7", "seed = 7\nshuffle = true"))
    with pytest.raises(SpecError, match=r"bad\.toml: \[split\] unknown key 'shuffle'"):
        load_spec(bad)


def test_describe_estimators_lists_every_name_and_task() -> None:
    text = describe_estimators()
    for name, info in ESTIMATORS.items():
        line = next(line for line in text.splitlines() if line.split()[:1] == [name])
        assert "/".join(info.tasks) in line
    assert all(name == name.lower() and " " not in name for name in ESTIMATORS)


@pytest.mark.parametrize(
    ("dataset", "task", "change", "message"),
    [
        (
            "credit",
            "binary",
            ("numeric = [", 'numeric = ["salary", '),
            "[features] numeric column 'salary' is not in the data set",
        ),
        (
            "credit",
            "binary",
            ('target = "default"', 'target = "defaulted"'),
            "[dataset] target column 'defaulted' is not in the data set",
        ),
        (
            "credit",
            "binary",
            ("numeric = [", 'numeric = ["applied_on", '),
            "numeric column 'applied_on' holds String values",
        ),
        ("iris", "regression", ("", ""), "task 'regression' needs a numeric target; 'species' holds String values"),
        ("wine", "binary", ("", ""), "task 'binary' needs exactly 2 classes; target 'cultivar' has 3"),
        ("credit", "multiclass", ("", ""), "task 'multiclass' needs 3 to 1000 classes; target 'default' has 2"),
        ("diabetes", "binary", ("", ""), "task 'binary' needs exactly 2 classes; target 'progression' has 214"),
    ],
)
def test_specs_that_do_not_fit_the_data_fail_before_training(
    frames: dict[str, pl.DataFrame], dataset: str, task: str, change: tuple[str, str], message: str
) -> None:
    split = {"method": "random"}
    text = spec_text(dataset, "decision_tree", task, split=split).replace(*change, 1)
    logged: list[str] = []
    with pytest.raises(SpecError) as caught:
        train(parse_spec(text), frames[dataset], dataset_version="0" * 16, log=logged.append)
    assert message in caught.value.message, caught.value.message
    assert not any(line.startswith("trained") for line in logged)


def test_cleaning_errors_name_the_column(frames: dict[str, pl.DataFrame], make_spec: MakeSpec) -> None:
    cases = {
        '[cleaning]\ncasts = { city = "Int64" }\n': "[cleaning] casts: cannot cast 'city' to Int64",
        '[cleaning]\ncasts = { town = "String" }\n': "[cleaning] casts: no column 'town'",
        '[cleaning]\nderived = { ratio = "debt / salary" }\n': "[cleaning] derived column 'ratio' (debt / salary)",
        "[cleaning]\nclip = { city = [0, 1] }\n": "[cleaning] clip: 'city' is not a numeric feature",
        '[cleaning]\ncasts = { city = "float" }\n': "1955 value(s) do not parse ('lyon', 'paris', 'toulouse')",
        '[cleaning]\ntry_casts = { town = "float" }\n': "[cleaning] try_casts: no column 'town'",
        '[cleaning]\nfilter = "salary > 10"\n': "[cleaning] filter 'salary > 10': no column 'salary'",
        '[cleaning]\nfilter = "income * 2"\n': "[cleaning] filter 'income * 2' gives Float64 values",
    }
    for extra, message in cases.items():
        with pytest.raises(SpecError) as caught:
            train(
                make_spec("credit", "decision_tree", "binary", extra=extra), frames["credit"], dataset_version="x" * 16
            )
        assert message in caught.value.message, caught.value.message
    with pytest.raises(SpecError, match="'Int128x' is not a type"):
        make_spec("credit", "decision_tree", "binary", extra='[cleaning]\ncasts = { age = "Int128x" }\n')
    with pytest.raises(SpecError, match="cannot parse"):
        make_spec("credit", "decision_tree", "binary", extra='[cleaning]\nderived = { r = "debt +* 2" }\n')
    refused = {
        'filter = "age IN (SELECT 1)"': "[cleaning] filter: a subquery is not allowed",
        "filter = \"read_csv('/etc/passwd') IS NULL\"": "[cleaning] filter: the function read_csv() is not allowed",
        'casts = { age = "float" }\ntry_casts = { age = "int" }': "column 'age' is in both casts and try_casts",
        'try_casts = { age = "Int128x" }': "'Int128x' is not a type",
    }
    for extra, message in refused.items():
        with pytest.raises(SpecError) as caught:
            make_spec("credit", "decision_tree", "binary", extra=f"[cleaning]\n{extra}\n")
        assert message in caught.value.message, caught.value.message


PENGUINS_SPEC = """
[dataset]
name = "penguins"
target = "species"
[features]
numeric = ["culmen", "mass"]
categorical = ["island"]
[cleaning]
try_casts = { "Body Mass (g)" = "float", "Culmen Length (mm)" = "float" }
derived = { culmen = '"Culmen Length (mm)"', mass = '"Body Mass (g)" / 1000' }
filter = "island <> 'Torgersen' AND mass IS NOT NULL"
[split]
method = "stratified"
test_size = 0.3
[model]
task = "binary"
estimator = "decision_tree"
params = { max_depth = 2 }
"""


def test_try_casts_and_a_filter_clean_a_real_looking_table_before_training() -> None:
    # As imported with --null-values '': the R markers are still text.
    rows = 120
    frame = pl.DataFrame(
        {
            "species": ["Adelie", "Gentoo"] * (rows // 2),
            "island": ["Biscoe", "Dream", "Torgersen", "Biscoe"] * (rows // 4),
            "Culmen Length (mm)": [("NA" if i % 17 == 0 else str(38.0 + (i % 2) * 8 + i % 5)) for i in range(rows)],
            "Body Mass (g)": [("NA" if i % 11 == 0 else str(3500 + (i % 2) * 1500)) for i in range(rows)],
        }
    )
    logged: list[str] = []
    result = train(parse_spec(PENGUINS_SPEC), frame, dataset_version="p" * 16, log=logged.append)
    lost = next(line for line in logged if line.startswith("cleaning: values that did not parse"))
    assert lost == (
        "cleaning: values that did not parse became missing: 11 in 'Body Mass (g)' (not float), "
        "8 in 'Culmen Length (mm)' (not float)"
    )
    torgersen = rows // 4
    mass_missing = sum(1 for i in range(rows) if i % 11 == 0 and i % 4 != 2)
    assert f"cleaning: the filter kept {rows - torgersen - mass_missing} of {rows} rows" in logged
    assert result.metrics["accuracy"] == 1.0
