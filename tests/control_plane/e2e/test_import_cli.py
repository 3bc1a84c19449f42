"""`conduit datasets import` on a real-looking public table: R's NA gaps, names with spaces and parentheses, a
timestamp, casts that do not parse everywhere, a row filter, and the same rows as CSV and Parquet giving one version."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import polars as pl

from .conftest import Cluster

PENGUINS_CSV = """\
studyName,Sample Number,Species,Island,Culmen Length (mm),Body Mass (g),Sex,Date Egg,Logged At
PAL0708,1,Adelie,Torgersen,39.1,3750,MALE,2007-11-11,2007-11-11T09:12:00.000000
PAL0708,2,Adelie,Torgersen,39.5,3800,FEMALE,2007-11-11,2007-11-11T09:40:30.250000
PAL0708,3,Adelie,Torgersen,NA,NA,NA,2007-11-16,2007-11-16T10:05:00.000000
PAL0708,4,Adelie,Dream,36.7,.,FEMALE,2007-11-16,NA
PAL0809,5,Gentoo,Biscoe,46.1,4500,FEMALE,2008-11-13,2008-11-13T08:00:00.000000
PAL0809,6,Gentoo,Biscoe,50.0,5700,MALE,2008-11-13,2008-11-13T08:30:00.000000
PAL0910,7,Chinstrap,Dream,46.5,3500,,2009-11-09,2009-11-09T14:00:00.000000
"""


def _json(done: object) -> dict[str, object]:
    return json.loads(done.stdout)  # type: ignore[attr-defined, no-any-return]


def test_a_penguins_table_imports_with_its_gaps_names_and_dates(
    start_cluster: Callable[[str], Cluster], tmp_path: Path
) -> None:
    cluster = start_cluster("")
    csv = tmp_path / "penguins.csv"
    csv.write_text(PENGUINS_CSV)
    done = cluster.cli(
        "datasets",
        "import",
        str(csv),
        "--name",
        "penguins",
        "--target",
        "Species",
        "--try-cast",
        "Body Mass (g)=float",
        "--filter",
        '"Culmen Length (mm)" IS NOT NULL AND Island <> \'Torgersen\' OR "Sample Number" = 1',
        "--json",
    )
    assert done.stderr.splitlines() == [
        "cleaning: values that did not parse became missing: 1 in 'Body Mass (g)' (not float)",
        "cleaning: the filter kept 5 of 7 rows",
    ]
    stored = _json(done)
    columns = {c["name"]: c for c in stored["profile"]["columns"]}  # type: ignore[index]
    assert list(columns) == PENGUINS_CSV.splitlines()[0].split(",")
    assert columns["Culmen Length (mm)"]["dtype"] == "Float64"
    assert columns["Body Mass (g)"]["dtype"] == "Float64" and columns["Body Mass (g)"]["missing"] == "1"
    assert columns["Date Egg"]["dtype"] == "Date" and columns["Date Egg"]["kind"] == "datetime"
    assert columns["Logged At"]["kind"] == "datetime" and columns["Logged At"]["missing"] == "1"
    assert columns["Sex"]["missing"] == "1"
    cluster.cli("datasets", "download", "penguins", "-o", str(tmp_path / "stored.parquet"))
    stored_rows = pl.read_parquet(tmp_path / "stored.parquet")
    assert stored_rows["Sample Number"].to_list() == [1, 4, 5, 6, 7]

    # The same rows as Parquet, with real nulls and real timestamps, are the same version.
    parquet = tmp_path / "penguins.parquet"
    stored_rows.write_parquet(parquet)
    again = cluster.cli("datasets", "import", str(parquet), "--name", "penguins", "--target", "Species")
    assert again.stdout.startswith(f"unchanged penguins:{stored['version']}"), again.stdout


def test_without_null_markers_na_is_text_and_bad_cleaning_fails_with_one_line(
    start_cluster: Callable[[str], Cluster], tmp_path: Path
) -> None:
    cluster = start_cluster("")
    csv = tmp_path / "penguins.csv"
    csv.write_text(PENGUINS_CSV)
    plain = _json(cluster.cli("datasets", "import", str(csv), "--name", "raw", "--null-values", "", "--json"))
    columns = {c["name"]: c for c in plain["profile"]["columns"]}  # type: ignore[index]
    assert columns["Culmen Length (mm)"]["kind"] == "categorical"
    assert columns["Sex"]["missing"] == "1"  # the empty field

    failures = {
        ("--filter", "mass > 1"): "filter 'mass > 1': no column 'mass' in the data set",
        ("--filter", "Island IN (SELECT 1)"): "a subquery is not allowed in an expression",
        ("--cast", "Body Mass (g)=float"): "cast: cannot cast 'Body Mass (g)' to float: 1 value(s) do not parse ('.')",
        ("--cast", "Island=number"): "cast: cast of 'Island': 'number' is not a type",
    }
    for flags, message in failures.items():
        done = cluster.cli("datasets", "import", str(csv), "--name", "bad", *flags, check=False)
        assert done.returncode == 1, (flags, done.stderr)
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("conduit: ") and message in lines[0], (flags, lines)
    usage = cluster.cli("datasets", "import", str(csv), "--name", "bad", "--cast", "Island", check=False)
    assert usage.returncode == 2 and "'Island' is not COLUMN=TYPE" in usage.stderr
    assert [d["name"] for d in json.loads(cluster.cli("datasets", "list", "--json").stdout)] == ["raw"]
