"""Requests built from a model's inputs: shapes, dynamic dimensions, files, raw contents, ids."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from clients.bench import BenchConfig, InputError, Level, parse_duration
from clients.bench._inputs import build_requests, with_id
from contract.entities import TensorSignature
from inference_server.protocol import grpc_service_pb2 as pb

FEATURES = TensorSignature("input", "FP32", (-1, 4))


def _decode(raw: bytes) -> pb.ModelInferRequest:
    return pb.ModelInferRequest.FromString(raw)


def test_random_requests_follow_the_metadata_with_the_batch_first() -> None:
    requests = build_requests("m", "2", [FEATURES], batch=3, shapes={}, input_data=None, seed=1)
    assert len(requests) == 256 and len(set(requests)) == 256
    request = _decode(requests[0])
    assert (request.model_name, request.model_version) == ("m", "2")
    assert list(request.inputs[0].shape) == [3, 4] and request.inputs[0].datatype == "FP32"
    values = np.frombuffer(request.raw_input_contents[0], dtype="<f4")
    assert values.shape == (12,) and np.isfinite(values).all()
    again = build_requests("m", "2", [FEATURES], batch=3, shapes={}, input_data=None, seed=1)
    assert again == requests


def test_dynamic_dimensions_need_a_size() -> None:
    ragged = TensorSignature("tokens", "INT64", (-1, -1))
    with pytest.raises(InputError, match="--shape tokens:"):
        build_requests("m", "", [ragged], batch=1, shapes={}, input_data=None, seed=0)
    request = _decode(build_requests("m", "", [ragged], batch=2, shapes={"tokens": (5,)}, input_data=None, seed=0)[0])
    assert list(request.inputs[0].shape) == [2, 5]
    assert len(request.raw_input_contents[0]) == 2 * 5 * 8
    with pytest.raises(InputError, match="does not fit"):
        build_requests("m", "", [FEATURES], batch=1, shapes={"input": (5,)}, input_data=None, seed=0)


def test_a_model_without_a_batch_dimension_takes_batch_one_only() -> None:
    fixed = TensorSignature("x", "FP64", (2, 2))
    request = _decode(build_requests("m", "", [fixed], batch=1, shapes={}, input_data=None, seed=0)[0])
    assert list(request.inputs[0].shape) == [2, 2]
    with pytest.raises(InputError, match="--batch must be 1"):
        build_requests("m", "", [fixed], batch=4, shapes={}, input_data=None, seed=0)


def test_perf_analyzer_json_rows_are_sent_in_order(tmp_path: Path) -> None:
    rows = [[float(i)] * 4 for i in range(5)]
    data = tmp_path / "rows.json"
    data.write_text(
        json.dumps({"data": [{"input": rows[0]}, *({"input": {"content": r, "shape": [4]}} for r in rows[1:])]})
    )
    requests = build_requests("m", "", [FEATURES], batch=2, shapes={}, input_data=data, seed=0)
    assert len(requests) == 5
    first, last = _decode(requests[0]), _decode(requests[4])
    assert np.frombuffer(first.raw_input_contents[0], "<f4").tolist() == [0.0] * 4 + [1.0] * 4
    # Request 4 takes rows 8 and 9, which wrap around to rows 3 and 4.
    assert np.frombuffer(last.raw_input_contents[0], "<f4").tolist() == [3.0] * 4 + [4.0] * 4


def test_unreadable_or_mismatched_files_are_input_errors(tmp_path: Path) -> None:
    cases = {
        "bad.json": '{"rows": []}',
        "missing.json": '{"data": [{"other": [1, 2, 3, 4]}]}',
        "short.json": '{"data": [{"input": [1, 2, 3]}]}',
        "broken.csv": "a,b\n1,2,3,4,5\n",
        "data.txt": "1 2 3 4",
    }
    for name, text in cases.items():
        path = tmp_path / name
        path.write_text(text)
        with pytest.raises(InputError):
            build_requests("m", "", [FEATURES], batch=1, shapes={}, input_data=path, seed=0)


def test_csv_rows_feed_a_one_input_model(tmp_path: Path) -> None:
    path = tmp_path / "rows.csv"
    path.write_text("a,b,c,d\n1,2,3,4\n5,6,7,8\n")
    requests = build_requests("m", "", [FEATURES], batch=1, shapes={}, input_data=path, seed=0)
    assert [np.frombuffer(_decode(r).raw_input_contents[0], "<f4").tolist() for r in requests] == [
        [1, 2, 3, 4],
        [5, 6, 7, 8],
    ]


def test_bytes_inputs_are_length_prefixed() -> None:
    request = _decode(
        build_requests("m", "", [TensorSignature("s", "BYTES", (-1,))], batch=3, shapes={}, input_data=None, seed=0)[0]
    )
    raw = request.raw_input_contents[0]
    assert len(raw) == 3 * (4 + 8)
    assert int.from_bytes(raw[:4], "little") == 8 and raw[4:12].isalpha()


def test_an_id_appended_to_serialized_bytes_is_the_request_id() -> None:
    raw = build_requests("m", "", [FEATURES], batch=1, shapes={}, input_data=None, seed=0)[0]
    assert _decode(with_id(raw, 12345)).id == "12345"
    assert _decode(with_id(raw, 7)).inputs == _decode(raw).inputs


def test_durations_and_levels() -> None:
    assert [parse_duration(t) for t in ("30s", "500ms", "2m", "1.5", "1h")] == [30, 0.5, 120, 1.5, 3600]
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration("5 minutes")
    with pytest.raises(ValueError, match="either a concurrency or a rate"):
        Level()
    with pytest.raises(ValueError, match="all concurrencies or all rates"):
        BenchConfig("h:1", "m", (Level(concurrency=1), Level(rate=5.0)))
    assert BenchConfig("h:1", "m", (Level(rate=5.0),)).open_loop


COLUMNS = [TensorSignature("age", "FP32", (-1, 1)), TensorSignature("city", "BYTES", (-1, 1))]


@pytest.mark.parametrize("suffix", ["csv", "parquet"])
def test_each_column_feeds_the_input_of_its_name(tmp_path: Path, suffix: str) -> None:
    frame = pl.DataFrame({"city": ["paris", "oslo", "lima"], "age": [31, 47, 22]})
    path = tmp_path / f"rows.{suffix}"
    if suffix == "csv":
        frame.write_csv(path)
    else:
        frame.write_parquet(path)
    requests = [_decode(r) for r in build_requests("m", "", COLUMNS, batch=2, shapes={}, input_data=path, seed=0)]
    assert len(requests) == 3
    first = requests[0]
    assert [(t.name, t.datatype, list(t.shape)) for t in first.inputs] == [
        ("age", "FP32", [2, 1]),
        ("city", "BYTES", [2, 1]),
    ]
    # The integer column is cast to the input's FP32; the text one is length-prefixed BYTES.
    assert np.frombuffer(first.raw_input_contents[0], "<f4").tolist() == [31.0, 47.0]
    assert first.raw_input_contents[1] == b"\x05\x00\x00\x00paris\x04\x00\x00\x00oslo"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "age,city,income\n31,paris,10\n",
            "rows.csv: column 'income' matches no input of the model (its inputs: age, city)",
        ),
        ("age\n31\n", "rows.csv: no column for the model's input 'city' (the file has age)"),
        ("age,city\nold,paris\n", "rows.csv: column 'age' holds String; input 'age' takes FP32"),
        ("age,city\n", "rows.csv holds no rows"),
    ],
)
def test_a_table_that_does_not_fit_the_inputs_is_one_line(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "rows.csv"
    path.write_text(text)
    with pytest.raises(InputError) as caught:
        build_requests("m", "", COLUMNS, batch=1, shapes={}, input_data=path, seed=0)
    assert str(caught.value) == message


def test_a_single_column_named_after_a_one_input_model_feeds_it(tmp_path: Path) -> None:
    path = tmp_path / "rows.csv"
    path.write_text("x\n1.5\n2.5\n")
    requests = build_requests(
        "m", "", [TensorSignature("x", "FP64", (-1,))], batch=2, shapes={}, input_data=path, seed=0
    )
    assert np.frombuffer(_decode(requests[0]).raw_input_contents[0], "<f8").tolist() == [1.5, 2.5]


def test_a_missing_number_is_nan_a_missing_text_empty_and_a_missing_integer_an_error(tmp_path: Path) -> None:
    path = tmp_path / "rows.csv"
    path.write_text("age,city\n,paris\n31,\n")
    request = _decode(build_requests("m", "", COLUMNS, batch=2, shapes={}, input_data=path, seed=0)[0])
    ages = np.frombuffer(request.raw_input_contents[0], "<f4")
    assert np.isnan(ages[0]) and ages[1] == 31.0
    assert request.raw_input_contents[1] == b"\x05\x00\x00\x00paris\x00\x00\x00\x00"
    counts = [TensorSignature("age", "INT64", (-1, 1))]
    path.write_text("age\n3\n\n4\n")
    with pytest.raises(InputError) as caught:
        build_requests("m", "", counts, batch=1, shapes={}, input_data=path, seed=0)
    assert str(caught.value) == "rows.csv: column 'age' has 1 missing values, which input 'age' (INT64) cannot hold"
