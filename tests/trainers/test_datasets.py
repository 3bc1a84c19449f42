"""trainers.datasets: reading files and SQL, content versions, profiles, and the errors of bad data."""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections import Counter
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from contract.entities import DatasetProfile
from trainers import DatasetError, bundled
from trainers.datasets import (
    canonical,
    content_version,
    profile,
    read_file,
    read_parquet,
    read_sql,
    redact_url,
    split_null_values,
    write_parquet,
)


def _sqlite_table(path: Path, frame: pl.DataFrame, table: str = "loans") -> str:
    with sqlite3.connect(path) as connection:
        columns = ", ".join(f'"{c}"' for c in frame.columns)
        connection.execute(f"CREATE TABLE {table} ({columns})")
        marks = ", ".join("?" for _ in frame.columns)
        connection.executemany(f"INSERT INTO {table} VALUES ({marks})", frame.rows())
    return f"sqlite:///{path}"


def test_same_data_from_every_source_has_one_version(tmp_path: Path) -> None:
    # SQLite has no boolean type: the flag is an integer in every source here.
    frame = bundled.load("credit").with_columns(pl.col("has_mortgage").cast(pl.Int64))
    frame.write_csv(tmp_path / "credit.csv")
    frame.write_parquet(tmp_path / "credit.parquet")
    frame.write_ndjson(tmp_path / "credit.ndjson")
    frame.write_json(tmp_path / "credit.json")
    versions = {
        name: content_version(read_file(tmp_path / f"credit.{name}")) for name in ("csv", "parquet", "ndjson", "json")
    }
    versions["sqlite"] = content_version(read_sql("SELECT * FROM loans", _sqlite_table(tmp_path / "credit.db", frame)))
    assert len(set(versions.values())) == 1, versions
    version = versions["sqlite"]
    assert len(version) >= 16 and int(version, 16) >= 0
    assert content_version(frame) == version
    # Stored as Parquet and read back: still the same version.
    stored = write_parquet(read_file(tmp_path / "credit.csv"), tmp_path / "store" / "v.parquet")
    assert content_version(read_parquet(stored)) == version


def test_a_changed_cell_changes_the_version(tmp_path: Path) -> None:
    frame = bundled.load("credit")
    base = content_version(frame)
    changed = frame.with_columns(
        pl.when(pl.int_range(pl.len()) == 7).then(pl.lit("oslo")).otherwise(pl.col("city")).alias("city")
    )
    assert content_version(changed) != base
    assert content_version(frame.with_columns(pl.col("income").fill_null(0.0))) != base
    assert content_version(frame.rename({"debt": "debts"})) != base
    # Text boundaries count: ["ab", "c"] is not ["a", "bc"].
    assert content_version(pl.DataFrame({"s": ["ab", "c"]})) != content_version(pl.DataFrame({"s": ["a", "bc"]}))
    assert content_version(frame) == base


def test_narrow_dtypes_have_the_version_of_their_canonical_form() -> None:
    wide = pl.DataFrame({"n": [1, 2, None], "x": [0.5, None, 2.0], "c": ["a", "b", None]})
    narrow = wide.with_columns(
        pl.col("n").cast(pl.Int32), pl.col("x").cast(pl.Float32), pl.col("c").cast(pl.Categorical)
    )
    assert content_version(narrow) == content_version(wide)


def test_read_sql_reads_a_query_from_a_sqlite_file(tmp_path: Path) -> None:
    credit = bundled.load("credit")
    url = _sqlite_table(tmp_path / "credit.db", credit)
    frame = read_sql("SELECT city, COUNT(*) AS n, MAX(income) AS top FROM loans GROUP BY city ORDER BY n DESC", url)
    assert frame.schema == pl.Schema({"city": pl.String, "n": pl.Int64, "top": pl.Float64})
    expected = credit.group_by("city").agg(pl.len().cast(pl.Int64).alias("n"), pl.col("income").max().alias("top"))
    assert frame.sort("city").equals(expected.sort("city"))


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("missing.csv", None, "no such file"),
        ("data.xlsx", b"PK", "unsupported file type '.xlsx'"),
        ("zero.csv", b"", "cannot read as CSV"),
        ("header.csv", b"a,b\n", "no rows (columns a, b)"),
        ("corrupt.parquet", b"PAR1 not really", "cannot read as Parquet"),
        ("mixed.ndjson", b'{"a": 1, "b": "x"}\n{"a": true, "b": "y"}\n', "column 'a' mixes number and boolean values"),
        ("nested.ndjson", b'{"a": 1}\n{"a": {"b": 2}}\n', "column 'a' mixes number and object values"),
        ("list.json", b'[{"a": [1]}, {"a": 2}]', "column 'a' mixes list and number values"),
        ("empty.ndjson", b"", "cannot read as NDJSON"),
    ],
)
def test_bad_files_give_clear_errors(tmp_path: Path, name: str, content: bytes | None, message: str) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(DatasetError, match=None) as caught:
        read_file(path)
    assert message in str(caught.value)
    assert str(path) in str(caught.value)


def test_numbers_mixed_with_text_make_a_text_column(tmp_path: Path) -> None:
    # A CSV has no types to contradict: the column is text, read in full (a late value is not an error).
    path = tmp_path / "late.csv"
    path.write_text("zip\n" + "75001\n" * 300 + "2A004\n")
    assert read_file(path).schema == pl.Schema({"zip": pl.String})


def test_bad_sql_gives_clear_errors(tmp_path: Path) -> None:
    url = _sqlite_table(tmp_path / "credit.db", bundled.load("credit").head(5))
    cases = {
        ("SELECT * FROM nowhere", url): "no such table: nowhere",
        ("SELECT * FROM loans WHERE 0", url): "no rows",
        ("SELECT 1", f"sqlite:///{tmp_path / 'absent.db'}"): "no such SQLite database file",
        ("SELECT 1", "not a url"): "not a database URL",
    }
    for (query, where), message in cases.items():
        with pytest.raises(DatasetError) as caught:
            read_sql(query, where)
        assert message in str(caught.value), caught.value
    with pytest.raises(DatasetError) as caught:
        read_sql("SELECT 1", "postgresql+psycopg://reader:s3cret@127.0.0.1:1/nothing")
    assert "s3cret" not in str(caught.value) and "reader@127.0.0.1" in str(caught.value)


def test_redact_url_drops_passwords() -> None:
    assert redact_url("postgresql+psycopg://u:pw@db:5432/x?sslmode=require&password=pw") == (
        "postgresql+psycopg://u@db:5432/x?sslmode=require"
    )
    assert redact_url("sqlite:////data/registry.db") == "sqlite:////data/registry.db"


def _bins_by_rule(values: np.ndarray, edges: np.ndarray) -> list[int]:
    counts = [0] * (len(edges) - 1)
    for v in values:
        for i in range(len(edges) - 1):
            if (edges[i] <= v if i == 0 else edges[i] < v) and v <= edges[i + 1]:
                counts[i] += 1
                break
    return counts


def test_profile_numbers_match_numpy() -> None:
    rng = np.random.default_rng(5)
    values = rng.gamma(2.0, 3.0, 1000)
    values[rng.random(1000) < 0.05] = np.nan
    nulls = rng.random(1000) < 0.03
    cities = rng.choice(["paris", "lyon", "nice"] + [f"town{i}" for i in range(30)], 1000)
    frame = pl.DataFrame(
        {
            "x": pl.Series(values).set(pl.Series(nulls), None),
            "steps": rng.integers(0, 5, 1000),
            "city": pl.Series(cities).set(pl.Series(nulls), None),
            "flag": rng.random(1000) < 0.3,
        }
    )
    result = profile(frame)
    assert result.rows == 1000
    x = result.column("x")
    present = frame["x"].drop_nulls().drop_nans().to_numpy()
    assert x.kind == "numeric" and x.dtype == "Float64"
    assert x.missing == int(nulls.sum() + np.isnan(values[~nulls]).sum())
    assert x.missing_rate == pytest.approx(x.missing / 1000)
    # Binned as float32, as served (trainers.datasets._profile says why): float32 quantiles of the float32 values.
    single = present.astype(np.float32).astype(np.float64)
    edges = np.unique(np.quantile(single, np.linspace(0, 1, 11)).astype(np.float32)).astype(np.float64)
    assert x.bin_edges == tuple(edges)
    assert list(x.bin_counts) == _bins_by_rule(single, edges)
    assert sum(x.bin_counts) == len(present)
    assert (x.min, x.max) == (present.min(), present.max())
    assert x.mean == pytest.approx(present.mean()) and x.std == pytest.approx(present.std(ddof=1))
    assert x.distinct == len(np.unique(present))

    steps = result.column("steps")  # five integers: quantile edges collapse, the rule still holds
    np.testing.assert_allclose(
        steps.bin_edges, np.unique(np.quantile(frame["steps"].to_numpy(), np.linspace(0, 1, 11)))
    )
    assert list(steps.bin_counts) == _bins_by_rule(frame["steps"].to_numpy(), np.asarray(steps.bin_edges))
    # Few whole numbers: each value is also counted exactly, as a category would be.
    assert {c.value: c.count for c in steps.top_categories} == {
        str(v): n for v, n in Counter(frame["steps"].to_list()).items()
    }
    assert steps.other_count == 0
    assert x.top_categories == ()  # fractional values: bins only

    city = result.column("city")
    counted = Counter(c for c, hole in zip(cities, nulls, strict=True) if not hole)
    expected = sorted(counted.items(), key=lambda item: (-item[1], item[0]))[:20]
    assert [(c.value, c.count) for c in city.top_categories] == expected
    assert city.other_count == sum(counted.values()) - sum(n for _, n in expected)
    # The 13 rarer cities by name: with the top ones, every city the data had.
    assert city.other_categories == tuple(sorted(set(counted) - {c for c, _ in expected}))
    assert city.known_categories() == set(counted)
    assert (city.kind, city.missing, city.distinct, city.bin_edges) == (
        "categorical",
        int(nulls.sum()),
        len(counted),
        (),
    )

    flag = result.column("flag")
    assert flag.kind == "boolean"
    assert {c.value: c.count for c in flag.top_categories} == {
        "true": int(frame["flag"].sum()),
        "false": int((~frame["flag"]).sum()),
    }
    assert DatasetProfile.from_json(result.to_json()) == result


def test_whole_floats_are_counted_but_many_or_fractional_values_are_not() -> None:
    frame = pl.DataFrame(
        {
            "label": [0.0, 1.0, 1.0, None, float("nan")],
            "ids": [float(i) for i in range(4)] + [None],
            "half": [0.5, 1.0, 1.0, 2.0, None],
        }
    )
    wide = pl.DataFrame({"many": list(range(21))})
    result = profile(frame)
    assert [(c.value, c.count) for c in result.column("label").top_categories] == [("1", 2), ("0", 1)]
    assert result.column("label").missing == 2
    assert len(result.column("ids").top_categories) == 4
    assert result.column("half").top_categories == ()
    assert profile(wide).column("many").top_categories == ()


def test_past_a_thousand_rarer_categories_none_is_listed() -> None:
    names = [f"v{i}" for i in range(1100)]
    column = profile(pl.DataFrame({"c": [*names, "v0"]})).column("c")
    assert len(column.top_categories) == 20 and column.other_count == 1080 and column.other_categories == ()
    assert column.known_categories() is None  # a value outside the top ones may be a rare one: unknown
    listed = profile(pl.DataFrame({"c": names[:1020]})).column("c")
    assert len(listed.other_categories) == 1000 and listed.known_categories() == set(names[:1020])


def test_a_constant_column_has_one_bin() -> None:
    column = profile(pl.DataFrame({"k": [4.0] * 9 + [None]})).column("k")
    assert (column.bin_edges, column.bin_counts, column.missing) == ((4.0, 4.0), (9,), 1)


def _mixed_frame(rows: int = 500) -> pl.DataFrame:
    """Every kind of column a real table has, with gaps, and names as people write them."""
    rng = np.random.default_rng(11)
    start = dt.datetime(2024, 1, 1, 8, 30)
    holes = rng.random(rows) < 0.1
    frame = pl.DataFrame(
        {
            "Sample Number": np.arange(rows),
            "Culmen Length (mm)": np.round(rng.normal(44.0, 5.0, rows), 1),
            "Body Mass (g)": rng.integers(2700, 6300, rows),
            "Island": rng.choice(["Biscoe", "Dream", "Torgersen"], rows),
            "Recorded At": [
                start + dt.timedelta(minutes=int(m), microseconds=int(u))
                for m, u in enumerate(rng.integers(0, 999_999, rows))
            ],
            "Date Egg": [dt.date(2007, 11, 1) + dt.timedelta(days=int(d)) for d in rng.integers(0, 700, rows)],
            "Seen (UTC)": [start + dt.timedelta(hours=int(h)) for h in range(rows)],
            "Ratio": rng.random(rows),
        }
    ).with_columns(pl.col("Seen (UTC)").dt.replace_time_zone("UTC"))
    # Gaps in every column but the first.
    return frame.with_columns(
        pl.when(pl.Series(holes)).then(None).otherwise(pl.col(name)).alias(name) for name in frame.columns[1:]
    )


def test_the_same_rows_as_csv_parquet_ndjson_and_json_have_one_version(tmp_path: Path) -> None:
    frame = _mixed_frame()
    # Parquet keeps what a writer chose: nanoseconds, a zone other than UTC, narrow integers and floats.
    frame.with_columns(
        pl.col("Recorded At").cast(pl.Datetime("ns")),
        pl.col("Seen (UTC)").dt.convert_time_zone("Europe/Oslo"),
        pl.col("Body Mass (g)").cast(pl.Int32),
    ).write_parquet(tmp_path / "penguins.parquet")
    frame.write_csv(tmp_path / "penguins.csv")
    frame.write_ndjson(tmp_path / "penguins.ndjson")
    frame.write_json(tmp_path / "penguins.json")
    read = {suffix: read_file(tmp_path / f"penguins.{suffix}") for suffix in ("csv", "parquet", "ndjson", "json")}
    for suffix, got in read.items():
        # Dates and times are temporal whatever the format, and the names are the file's, spaces and all.
        assert got.schema == pl.Schema(
            {
                "Sample Number": pl.Int64,
                "Culmen Length (mm)": pl.Float64,
                "Body Mass (g)": pl.Int64,
                "Island": pl.String,
                "Recorded At": pl.Datetime("us"),
                "Date Egg": pl.Date,
                "Seen (UTC)": pl.Datetime("us", "UTC"),
                "Ratio": pl.Float64,
            }
        ), suffix
    versions = {suffix: content_version(got) for suffix, got in read.items()}
    assert len(set(versions.values())) == 1, versions
    assert content_version(frame) == versions["csv"]
    # A timestamp read as text would be another version: the text form is not the data set.
    assert content_version(frame.with_columns(pl.col("Recorded At").dt.to_string())) == versions["csv"]
    assert content_version(frame.with_columns(pl.col("Recorded At").dt.offset_by("1us"))) != versions["csv"]


def test_text_that_is_not_entirely_iso_dates_stays_text() -> None:
    texts = {
        "invalid day": ["2024-02-30", "2024-03-01"],
        "mixed with words": ["2024-02-01", "soon"],
        "another format": ["01/02/2024", "03/02/2024"],
        "compact": ["20240201", "20240301"],
    }
    assert canonical(pl.DataFrame(texts)).schema == pl.Schema(dict.fromkeys(texts, pl.String))


def test_r_style_na_is_missing_by_default_and_the_list_can_change(tmp_path: Path) -> None:
    path = tmp_path / "penguins.csv"
    path.write_text(
        "species,Culmen Length (mm),Sex,Comment\n"
        "Adelie,39.1,MALE,NA\n"
        "Adelie,NA,NA,Nest never observed\n"
        "Gentoo,N/A,FEMALE,\n"
        "Gentoo,46.5,NULL,n.a.\n"
    )
    frame = read_file(path)
    assert frame.schema["Culmen Length (mm)"] == pl.Float64
    assert frame["Culmen Length (mm)"].to_list() == [39.1, None, None, 46.5]
    assert frame["Sex"].to_list() == ["MALE", None, "FEMALE", None]
    assert frame["Comment"].to_list() == [None, "Nest never observed", None, "n.a."]
    assert profile(frame).column("Culmen Length (mm)").missing == 2

    # Only the markers given count; an empty field is always missing.
    custom = read_file(path, null_values=split_null_values(["NA,n.a."]))
    assert custom.schema["Culmen Length (mm)"] == pl.String
    assert custom["Comment"].to_list() == [None, "Nest never observed", None, None]
    assert custom["Sex"].to_list() == ["MALE", None, "FEMALE", "NULL"]
    assert read_file(path, null_values=split_null_values([""]))["Sex"].to_list() == ["MALE", "NA", "FEMALE", "NULL"]


def test_null_values_apply_to_every_source(tmp_path: Path) -> None:
    frame = pl.DataFrame({"island": ["Dream", "NA", None], "sex": ["MALE", "null", "FEMALE"]})
    frame.write_parquet(tmp_path / "p.parquet")
    frame.write_ndjson(tmp_path / "p.ndjson")
    url = _sqlite_table(tmp_path / "p.db", frame)
    expected = pl.DataFrame({"island": ["Dream", None, None], "sex": ["MALE", None, "FEMALE"]})
    assert read_file(tmp_path / "p.parquet").equals(expected)
    assert read_file(tmp_path / "p.ndjson").equals(expected)
    assert read_sql("SELECT * FROM loans", url).equals(expected)
    assert read_sql("SELECT * FROM loans", url, null_values=()).equals(frame)
