"""`conduit datasets` and `conduit train` as users run them: a data set from a real PostgreSQL table, bad specs refused
with nothing registered, and two training workers sharing one Optuna study in the control plane's database."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import optuna
import polars as pl
import sqlalchemy as sa

from tests.conftest import CONDUIT
from tests.control_plane.conftest import PostgresServer
from trainers import bundled

from .conftest import ADMIN_TOKEN, Cluster

TRIALS = 6


def _spec(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


SPEC = """
[dataset]
name = "{dataset}"
target = "{target}"
[features]
numeric = {numeric}
categorical = {categorical}
[split]
method = "{method}"
test_size = 0.25
seed = 1
[model]
task = "{task}"
estimator = "{estimator}"
params = {{ n_estimators = 10, max_depth = 3 }}
[register]
name = "credit-cli"
"""


def _credit_spec(**overrides: str) -> str:
    fields = {
        "dataset": "credit",
        "target": "default",
        "numeric": '["age", "income", "debt"]',
        "categorical": '["city"]',
        "task": "binary",
        "estimator": "random_forest",
        "method": "stratified",
        **overrides,
    }
    return SPEC.format(**fields)


def _write_table(url: str, name: str, frame: pl.DataFrame) -> None:
    types = {pl.Int64: sa.BigInteger, pl.Float64: sa.Float, pl.String: sa.Text, pl.Boolean: sa.Boolean}
    table = sa.Table(
        name, sa.MetaData(), *(sa.Column(column, types[dtype]()) for column, dtype in frame.schema.items())
    )
    engine = sa.create_engine(url)
    try:
        with engine.begin() as connection:
            table.create(connection)
            connection.execute(table.insert(), frame.to_dicts())
    finally:
        engine.dispose()


def test_a_postgresql_table_imports_and_imports_again_as_the_same_version(
    start_cluster: Callable[[str], Cluster], postgres_server: PostgresServer, tmp_path: Path
) -> None:
    # Trust authentication ignores the password, which must still stay out of what is stored.
    database = postgres_server.create_database().replace("postgres@", "postgres:s3cret-pw@")
    credit = bundled.load("credit")
    _write_table(database, "applications", credit)
    cluster = start_cluster("")
    query = "SELECT * FROM applications ORDER BY customer_id, applied_on, age, income, debt"
    first = json.loads(
        cluster.cli("datasets", "import", "--sql", query, "--db", database, "--name", "credit", "--json").stdout
    )
    again = cluster.cli("datasets", "import", "--sql", query, "--db", database, "--name", "credit")
    assert again.stdout.startswith(f"unchanged credit:{first['version']}")
    assert first["profile"]["rows"] == str(credit.height)  # int64 is a string in protobuf's JSON mapping
    assert first["source"].startswith("sql:postgresql") and "s3cret-pw" not in first["source"]
    versions = json.loads(cluster.cli("datasets", "versions", "credit", "--json").stdout)
    assert [v["version"] for v in versions] == [first["version"]]

    # The stored data is the table's, row for row.
    cluster.cli("datasets", "download", "credit", "-o", str(tmp_path / "credit.parquet"))
    stored = pl.read_parquet(tmp_path / "credit.parquet")
    assert stored.height == credit.height and set(stored.columns) == set(credit.columns)


BAD_SPECS = {
    "unknown column": ({"numeric": '["age", "salary"]'}, "salary"),
    "missing target": ({"target": "defaulted"}, "defaulted"),
    "regression on text": (
        {"task": "regression", "target": "city", "categorical": "[]", "method": "random"},
        "regression",
    ),
    "binary on six classes": ({"task": "binary", "target": "city", "categorical": "[]"}, "binary"),
    "unknown estimator": ({"estimator": "random_jungle"}, "random_jungle"),
}


def test_bad_specs_fail_clearly_and_register_nothing(start_cluster: Callable[[str], Cluster], tmp_path: Path) -> None:
    cluster = start_cluster("")
    cluster.cli("datasets", "import", "bundled:credit", "--name", "credit", "--target", "default")
    for case, (overrides, message) in BAD_SPECS.items():
        spec = _spec(tmp_path, "bad.toml", _credit_spec(**overrides))
        done = cluster.cli("train", str(spec), "--register", check=False)
        assert done.returncode == 1, (case, done.stdout + done.stderr)
        error = done.stderr.strip().splitlines()[-1]
        assert error.startswith("conduit: ") and message in error, (case, error)
        assert "Traceback" not in done.stderr, case
    assert json.loads(cluster.cli("models", "list", "--json").stdout) == []


def test_an_unknown_data_set_and_an_unreadable_file_fail_clearly(
    start_cluster: Callable[[str], Cluster], tmp_path: Path
) -> None:
    cluster = start_cluster("")
    missing = cluster.cli("train", str(_spec(tmp_path, "spec.toml", _credit_spec())), check=False)
    assert missing.returncode == 1 and "credit" in missing.stderr and "Traceback" not in missing.stderr
    corrupt = tmp_path / "corrupt.parquet"
    corrupt.write_bytes(b"PAR1 this is not parquet")
    done = cluster.cli("datasets", "import", str(corrupt), "--name", "broken", check=False)
    assert done.returncode == 1 and "corrupt.parquet" in done.stderr and "Traceback" not in done.stderr
    assert json.loads(cluster.cli("datasets", "list", "--json").stdout) == []


def test_two_workers_share_one_study_in_the_control_planes_database(
    start_cluster: Callable[[str], Cluster], tmp_path: Path
) -> None:
    cluster = start_cluster("")
    cluster.cli("datasets", "import", "bundled:credit", "--name", "credit", "--target", "default")
    spec = _spec(
        tmp_path,
        "search.toml",
        _credit_spec()
        + f"""
[search]
trials = {TRIALS}
study = "shared-credit"
pruning = false
space = {{ n_estimators = [5, 20], max_depth = [2, 6] }}
""",
    )
    study_db = f"sqlite:///{cluster.home / 'registry.db'}"
    env = {**os.environ, "CONDUIT_CONTROL_PLANE": cluster.control_plane.address, "CONDUIT_TOKEN": ADMIN_TOKEN}
    command = [CONDUIT, "train", str(spec), "--study-db", study_db, "--json"]
    workers = [subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(2)]
    outputs = [worker.communicate(timeout=300) for worker in workers]
    for worker, (_, err) in zip(workers, outputs, strict=True):
        assert worker.returncode == 0, err.decode()

    study = optuna.load_study(study_name="shared-credit", storage=study_db)
    finished = [
        t for t in study.trials if t.state in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    ]
    assert len(finished) == TRIALS
    assert {json.loads(out)["params"]["n_estimators"] for out, _ in outputs} <= {
        str(t.params["n_estimators"]) for t in finished
    }
    # The control plane still runs on the same database, its own migrations untouched by Optuna's tables.
    assert json.loads(cluster.cli("datasets", "list", "--json").stdout)[0]["name"] == "credit"
