"""trainers.bundled: offline data sets, deterministic, written in every format read_file reads."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from trainers import DatasetError, bundled
from trainers.datasets import content_version, read_file


@pytest.mark.parametrize("name", list(bundled.BUNDLED))
def test_bundled_sets_round_trip_through_files(tmp_path: Path, name: str) -> None:
    info = bundled.BUNDLED[name]
    frame = bundled.load(name)
    assert info.target in frame.columns and frame.height > 100
    for suffix in (".csv", ".parquet", ".ndjson"):
        path = bundled.write(name, tmp_path / f"{name}{suffix}")
        assert content_version(read_file(path)) == content_version(frame)


def test_credit_is_deterministic_and_has_what_the_examples_need() -> None:
    first, second = bundled.load("credit"), bundled.load("credit")
    assert first.equals(second, null_equal=True)
    assert first.schema["city"] == first.schema["employment"] == pl.String
    assert first["income"].null_count() > 0 and first["city"].null_count() > 0
    assert set(first["default"].unique()) == {0, 1}
    assert first["customer_id"].n_unique() < first.height  # repeated customers for the group split


def test_unknown_names_and_formats_are_refused(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="no bundled data set 'titanic'"):
        bundled.load("titanic")
    with pytest.raises(DatasetError, match=r"unsupported file type '\.xlsx'"):
        bundled.write("iris", tmp_path / "iris.xlsx")
