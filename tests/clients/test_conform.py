"""The client's casts to declared datatypes and its DataFrame mapping, without a server: what fits is cast, what does
not is refused with INVALID_ARGUMENT naming the input and the value."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import polars as pl
import pytest

from clients import ConduitError, ErrorCode
from clients._conform import conform_inputs
from contract.entities import TensorSignature
from trainers._pipeline import MISSING_CATEGORY

ROWS = TensorSignature("input", "FP32", (-1, 3))
COLUMNS = (
    TensorSignature("age", "FP32", (-1, 1)),
    TensorSignature("visits", "INT32", (-1, 1)),
    TensorSignature("city", "BYTES", (-1, 1)),
)


def one(datatype: str, values: Any, shape: tuple[int, ...] = (-1,)) -> np.ndarray:
    return conform_inputs("m", {"x": np.asarray(values)}, [TensorSignature("x", datatype, shape)])["x"]


def refused(datatype: str, values: Any) -> str:
    with pytest.raises(ConduitError) as caught:
        one(datatype, values)
    assert caught.value.code is ErrorCode.INVALID_ARGUMENT
    assert "'x'" in caught.value.message
    return caught.value.message


def test_float64_becomes_float32_rounded_with_nan_and_infinities_kept() -> None:
    values = np.array([0.1, -2.5, np.nan, np.inf, -np.inf, 3.4e38], dtype=np.float64)
    cast = one("FP32", values)
    assert cast.dtype == np.float32
    np.testing.assert_array_equal(cast, values.astype(np.float32))


def test_a_finite_float64_beyond_fp32_is_refused_not_made_infinite() -> None:
    assert "1e+39" in refused("FP32", [1.0, 1e39])
    assert "-1e+39" in refused("FP32", [-1e39, 1.0])
    assert "70000" in refused("FP16", [70000])


def test_integers_cast_within_range_and_refused_beyond() -> None:
    assert one("INT32", np.array([-(2**31), 2**31 - 1], dtype=np.int64)).dtype == np.int32
    assert str(2**31) in refused("INT32", np.array([1, 2**31], dtype=np.int64))
    assert "-1" in refused("UINT8", np.array([-1, 3]))
    assert str(2**63) in refused("INT64", np.array([2**63], dtype=np.uint64))
    np.testing.assert_array_equal(one("FP32", np.array([1, 2**40])), np.array([1, 2**40], dtype=np.float32))


def test_floats_become_integers_only_when_whole() -> None:
    np.testing.assert_array_equal(one("INT64", [1.0, -3.0]), np.array([1, -3]))
    assert "1.5" in refused("INT64", [1.0, 1.5])
    assert "NaN" in refused("INT32", [1.0, np.nan])
    assert "out of INT8" in refused("INT8", [300.0])


def test_bool_takes_zero_and_one_only() -> None:
    np.testing.assert_array_equal(one("BOOL", [0, 1, 1]), np.array([False, True, True]))
    assert "2" in refused("BOOL", [0, 2])


def test_text_and_numbers_do_not_mix() -> None:
    assert "BYTES" in refused("BYTES", [1.0, 2.0])
    assert "not numbers" in refused("FP32", ["1.0"])
    assert one("BYTES", ["a", "b"]).tolist() == ["a", "b"]


def test_an_array_of_the_declared_type_is_sent_as_it_is() -> None:
    values = np.zeros((2, 3), dtype=np.float32)
    assert conform_inputs("m", {"input": values}, [ROWS])["input"] is values
    # An input the model does not declare is left for the server to refuse by name.
    assert conform_inputs("m", {"other": values}, [ROWS])["other"] is values


@pytest.mark.parametrize("library", ["polars", "pandas"])
def test_a_frame_maps_one_column_per_input_by_name(library: str) -> None:
    data = {"city": ["paris", "oslo"], "age": [31.5, None], "visits": [3, 4]}
    frame = pl.DataFrame(data) if library == "polars" else pd.DataFrame(data)
    arrays = conform_inputs("m", frame, COLUMNS)
    assert list(arrays) == ["age", "visits", "city"]
    np.testing.assert_array_equal(arrays["age"], np.array([[31.5], [np.nan]], dtype=np.float32))
    assert arrays["visits"].dtype == np.int32 and arrays["visits"].tolist() == [[3], [4]]
    assert arrays["city"].tolist() == [["paris"], ["oslo"]]


def test_pandas_nullable_integers_with_missing_values_become_nan() -> None:
    frame = pd.DataFrame({"age": pd.array([30, None], dtype="Int64"), "visits": [1, 2], "city": ["a", "b"]})
    np.testing.assert_array_equal(conform_inputs("m", frame, COLUMNS)["age"], [[30.0], [np.nan]])
    frame["visits"] = pd.array([1, None], dtype="Int64")
    with pytest.raises(ConduitError, match="missing values"):
        conform_inputs("m", frame, COLUMNS)


@pytest.mark.parametrize("library", ["polars", "pandas"])
def test_a_frame_becomes_the_columns_of_a_single_two_dimensional_input(library: str) -> None:
    data = {"a": [1, 2], "b": [0.5, 1.5], "c": [True, False]}
    frame = pl.DataFrame(data) if library == "polars" else pd.DataFrame(data)
    arrays = conform_inputs("m", frame, [ROWS])
    np.testing.assert_array_equal(arrays["input"], np.array([[1, 0.5, 1], [2, 1.5, 0]], dtype=np.float32))
    with pytest.raises(ConduitError, match="of 3 columns; the DataFrame has 2") as caught:
        conform_inputs("m", frame.drop(columns=["c"]) if library == "pandas" else frame.drop("c"), [ROWS])
    assert caught.value.code is ErrorCode.INVALID_ARGUMENT


def test_missing_and_unknown_columns_are_named() -> None:
    with pytest.raises(ConduitError) as caught:
        conform_inputs("m", pl.DataFrame({"age": [1.0], "town": ["x"]}), COLUMNS)
    assert caught.value.code is ErrorCode.INVALID_ARGUMENT
    assert "missing ['visits', 'city']" in caught.value.message and "unknown ['town']" in caught.value.message
    with pytest.raises(ConduitError, match=r"\['extra'\] are not inputs"):
        conform_inputs("m", pl.DataFrame({"age": [1.0], "visits": [1], "city": ["x"], "extra": [0]}), COLUMNS)


def test_a_value_that_does_not_fit_names_its_column() -> None:
    frame = pl.DataFrame({"age": [1.0], "visits": [2**40], "city": ["x"]})
    with pytest.raises(ConduitError, match=f"column 'visits': {2**40} is out of INT32's range"):
        conform_inputs("m", frame, COLUMNS)


@pytest.mark.parametrize("library", ["polars", "pandas"])
def test_missing_text_is_the_trainers_missing_category(library: str) -> None:
    data = {"age": [1.0, 2.0, 3.0], "visits": [1, 2, 3], "city": ["paris", None, "oslo"]}
    frame = pl.DataFrame(data) if library == "polars" else pd.DataFrame(data)
    if library == "pandas":
        frame["city"] = frame["city"].astype("string")  # missing as pd.NA
    assert conform_inputs("m", frame, COLUMNS)["city"].tolist() == [["paris"], [MISSING_CATEGORY], ["oslo"]]


def test_anything_else_is_refused() -> None:
    with pytest.raises(ConduitError, match="mapping of arrays"):
        conform_inputs("m", [np.zeros(3)], [ROWS])  # type: ignore[arg-type]
