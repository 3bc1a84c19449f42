"""trainers.datasets cleaning: casts strict and not, the row filter, and the one-line errors of each."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest

from trainers import DatasetError
from trainers.datasets import cast_columns, clean, dtype_named, filter_rows, profile

PENGUINS = pl.DataFrame(
    {
        "species": ["Adelie", "Adelie", "Gentoo", "Gentoo", "Chinstrap"],
        "Culmen Length (mm)": [39.1, None, 46.5, 50.0, 49.0],
        "Body Mass (g)": ["3750", ".", "4500", None, "3,800"],
        "Date Egg": ["2007-11-11", "2007-11-16", "unknown", None, "2008-11-02"],
    }
)


def test_a_strict_cast_refuses_values_that_do_not_parse_and_names_them() -> None:
    with pytest.raises(DatasetError) as caught:
        cast_columns(PENGUINS, {"Body Mass (g)": "float"}, strict=True)
    message = caught.value.message
    assert message == (
        "cannot cast 'Body Mass (g)' to float: 2 value(s) do not parse ('.', '3,800'); "
        "a try-cast makes them missing instead"
    )
    assert "\n" not in message


def test_a_try_cast_makes_unparsed_values_missing_and_counts_them() -> None:
    frame, lost = cast_columns(PENGUINS, {"Body Mass (g)": "float", "Date Egg": "date"}, strict=False)
    assert frame["Body Mass (g)"].to_list() == [3750.0, None, 4500.0, None, None]
    assert frame["Date Egg"].to_list() == [
        dt.date(2007, 11, 11),
        dt.date(2007, 11, 16),
        None,
        None,
        dt.date(2008, 11, 2),
    ]
    # Already missing values are not counted as lost.
    assert lost == {"Body Mass (g)": 2, "Date Egg": 1}
    assert profile(frame).column("Body Mass (g)").missing == 3
    logged: list[str] = []
    clean(PENGUINS, try_casts={"Body Mass (g)": "Float64"}, log=logged.append)
    assert logged == ["cleaning: values that did not parse became missing: 2 in 'Body Mass (g)' (not Float64)"]
    # Every value parsing logs nothing.
    logged.clear()
    clean(PENGUINS, try_casts={"Culmen Length (mm)": "float"}, log=logged.append)
    assert logged == []


def test_type_names_short_and_polars() -> None:
    assert dtype_named("float", "x") == pl.Float64
    assert dtype_named("INT", "x") == pl.Int64
    assert dtype_named("Float32", "x") == pl.Float32
    assert dtype_named("datetime", "x") == pl.Datetime("us")
    for bad in ("float64x", "List", "decimalish"):
        with pytest.raises(ValueError, match="is not a type"):
            dtype_named(bad, "x")


@pytest.mark.parametrize(
    ("condition", "kept"),
    [
        ('"Culmen Length (mm)" > 45', ["Gentoo", "Gentoo", "Chinstrap"]),
        ("species IN ('Adelie', 'Chinstrap') AND \"Culmen Length (mm)\" IS NOT NULL", ["Adelie", "Chinstrap"]),
        # Missing compares to nothing: the row goes, as with SQL's WHERE.
        ('NOT ("Culmen Length (mm)" > 45)', ["Adelie"]),
        ("lower(species) LIKE 'g%'", ["Gentoo", "Gentoo"]),
        ("true", ["Adelie", "Adelie", "Gentoo", "Gentoo", "Chinstrap"]),
    ],
)
def test_the_filter_keeps_the_rows_where_the_condition_is_true(condition: str, kept: list[str]) -> None:
    assert filter_rows(PENGUINS, condition)["species"].to_list() == kept


@pytest.mark.parametrize(
    ("condition", "message"),
    [
        ("mass > 4000", "filter 'mass > 4000': no column 'mass' in the data set (columns: species, Culmen"),
        ("species IN (SELECT * FROM read_csv('/etc/passwd'))", "a subquery reading the function read_csv()"),
        ("count(*) > 1", "the function count() is not allowed"),
        ("species; DROP TABLE x", "a second statement"),
        ('"Culmen Length (mm)" * 2', "gives Float64 values, not true/false"),
        ("species >", "cannot parse"),
    ],
)
def test_a_bad_filter_is_refused_with_one_line(condition: str, message: str) -> None:
    with pytest.raises(DatasetError) as caught:
        clean(PENGUINS, filter=condition)
    assert message in caught.value.message, caught.value.message
    assert caught.value.message.startswith("filter ") and "\n" not in caught.value.message


def test_clean_casts_before_it_filters_and_names_the_step_that_failed() -> None:
    logged: list[str] = []
    kept = clean(
        PENGUINS,
        try_casts={"Body Mass (g)": "float"},
        filter='"Body Mass (g)" >= 4000',
        log=logged.append,
    )
    assert kept["species"].to_list() == ["Gentoo"]
    assert logged[-1] == "cleaning: the filter kept 1 of 5 rows"
    with pytest.raises(DatasetError, match=r"^cast: no column 'mass' in the data set"):
        clean(PENGUINS, casts={"mass": "float"})
    with pytest.raises(DatasetError, match=r"^try-cast: cast of 'species': 'Number' is not a type"):
        clean(PENGUINS, try_casts={"species": "Number"})


def test_text_becomes_booleans_and_date_times_whatever_the_first_value() -> None:
    frame = pl.DataFrame({"flag": ["TRUE", "false", "maybe", None], "at": ["unknown", "2024-01-01 10:00:00", None, ""]})
    cast, lost = cast_columns(frame, {"flag": "bool", "at": "datetime"}, strict=False)
    assert cast["flag"].to_list() == [True, False, None, None]
    assert cast["at"].to_list() == [None, dt.datetime(2024, 1, 1, 10), None, None]
    assert lost == {"flag": 1, "at": 2}


def test_a_fraction_is_not_an_integer() -> None:
    frame = pl.DataFrame({"count": [1.0, 2.5, None, 4.0]})
    with pytest.raises(DatasetError, match=r"1 value\(s\) do not parse \(2.5\)"):
        cast_columns(frame, {"count": "int"}, strict=True)
    cast, lost = cast_columns(frame, {"count": "int"}, strict=False)
    assert cast["count"].to_list() == [1, None, None, 4] and cast["count"].dtype == pl.Int64
    assert lost == {"count": 1}
