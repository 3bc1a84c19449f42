"""``conduit bench`` against a running ``conduit serve``: counts that match the server's, and stalls that show."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from clients import InferenceClient
from tests.conftest import CONDUIT, StartServe, TrainedModel
from tests.control_plane.e2e.conftest import CREDIT_SPEC
from trainers import bundled, parse_spec, train
from trainers.onnx_export import write_model_version

from .conftest import RunBench


def _successes(target: str, model: str) -> int:
    with InferenceClient(target, timeout=10) as client:
        return sum(s.inference_stats.success.count for s in client.model_statistics(model))


def _sent(document: dict[str, object]) -> int:
    levels = document["levels"]
    assert isinstance(levels, list)
    return sum(level["requests"] + level["warmup_requests"] for level in levels)


def test_closed_loop_counts_match_server_statistics(
    start_serve: StartServe, repository: Path, run_bench: RunBench
) -> None:
    server = start_serve(repository)
    before = _successes(server.target, "classifier")
    document = run_bench(server.target, "classifier", "--concurrency", "1,4", "--duration", "1.5s", "--warmup", "0.5s")
    assert [level["level"] for level in document["levels"]] == ["c=1", "c=4"]
    for level in document["levels"]:
        assert level["errors"] == {}
        assert level["ok"] == level["requests"] > 100
        assert 0 < level["latency_us"]["p50"] <= level["latency_us"]["p99"] <= level["latency_us"]["max"]
        assert sum(second["ok"] for second in level["timeline"]) == level["ok"]
        assert level["warmup_requests"] > 0
    assert _successes(server.target, "classifier") - before == _sent(document)


def test_open_loop_and_streaming_counts_match_server_statistics(
    start_serve: StartServe, repository: Path, run_bench: RunBench
) -> None:
    server = start_serve(repository)
    before = _successes(server.target, "forest")
    open_loop = run_bench(
        server.target, "forest", "--rate", "150,300", "--arrival", "poisson", "--duration", "1.5s", "--warmup", "0.3s"
    )
    streaming = run_bench(
        server.target, "forest", "--concurrency", "3", "--streaming", "--duration", "1s", "--warmup", "0.2s"
    )
    for level in open_loop["levels"]:
        # A Poisson schedule of rate R over 1.5 s: within a generous band of R * 1.5 (the seed fixes the draw).
        assert 0.6 * level["rate"] * 1.5 < level["requests"] < 1.4 * level["rate"] * 1.5
        assert level["errors"] == {}
    assert open_loop["latency_measured_from"] == "intended send time"
    assert streaming["streaming"] is True and streaming["levels"][0]["ok"] > 50
    assert _successes(server.target, "forest") - before == _sent(open_loop) + _sent(streaming)


def test_rows_from_a_file_and_batches(
    start_serve: StartServe, repository: Path, classifier: TrainedModel, run_bench: RunBench, tmp_path: Path
) -> None:
    server = start_serve(repository)
    rows = tmp_path / "rows.npy"
    np.save(rows, classifier.rows[:40])
    before = _successes(server.target, "classifier")
    document = run_bench(
        server.target, "classifier", "--input-data", str(rows), "--batch", "8", "--duration", "1s", "--warmup", "0"
    )
    level = document["levels"][0]
    assert document["inputs"] == [{"name": "input", "datatype": "FP32", "shape": [-1, 32]}]
    assert level["infer_per_s"] == level["requests_per_s"] * 8
    # The server counts requests, not rows, as Triton does.
    assert _successes(server.target, "classifier") - before == level["requests"]


def test_open_loop_counts_the_time_requests_wait_behind_a_stalled_server(
    start_serve: StartServe, repository: Path, bench_command: Callable[..., tuple[list[str], Path]]
) -> None:
    """A one-second stall: every request scheduled during it waits, and the open loop says so; a closed loop sees one
    slow request (its single caller stops sending while the server stalls), which is coordinated omission."""
    server = start_serve(repository)
    results = {}
    for mode, load in (("open", ["--rate", "200"]), ("closed", ["--concurrency", "1"])):
        command, out = bench_command(server.target, "classifier", *load, "--duration", "5s", "--warmup", "0")
        before = _answered(server.target, "classifier")
        bench = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        _await_traffic(server.target, "classifier", beyond=before + 100)  # some normal traffic first
        server.process.send_signal(signal.SIGSTOP)
        time.sleep(1.0)
        server.process.send_signal(signal.SIGCONT)
        output, _ = bench.communicate(timeout=60)
        assert bench.returncode == 0, output.decode()
        results[mode] = json.loads(out.read_text())["levels"][0]
    stalled, omitted = results["open"], results["closed"]
    assert stalled["errors"] == {} and omitted["errors"] == {}
    # Both saw the stall at its full length...
    assert stalled["latency_us"]["max"] > 700_000 and omitted["latency_us"]["max"] > 700_000
    # ...but only the open loop counts the ~200 requests that were due while it lasted (about a sixth of the run).
    assert stalled["latency_us"]["p90"] > 250_000
    assert omitted["latency_us"]["p90"] < 50_000


def _answered(target: str, model: str) -> int:
    with InferenceClient(target) as client:
        return sum(s.inference_stats.success.count for s in client.model_statistics(model))


def _await_traffic(target: str, model: str, *, beyond: int, timeout_s: float = 60.0) -> None:
    """Return once the server has answered more than ``beyond`` requests for ``model`` (a bench is under way); a
    loaded machine may take seconds to start one, so waiting a fixed time would race it."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if _answered(target, model) > beyond:
            return
        time.sleep(0.02)
    raise AssertionError(f"no traffic reached {model} within {timeout_s}s")


def test_errors_are_counted_by_status(
    start_serve: StartServe, repository: Path, bench_command: Callable[..., tuple[list[str], Path]]
) -> None:
    server = start_serve(repository)
    command, out = bench_command(server.target, "classifier", "--concurrency", "2", "--duration", "3s", "--warmup", "0")
    bench = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    # Once the bench has traffic going, the server goes away: the rest of the run fails, and says how.
    _await_traffic(server.target, "classifier", beyond=50)
    server.process.kill()
    output, _ = bench.communicate(timeout=60)
    assert bench.returncode == 0, output.decode()
    level = json.loads(out.read_text())["levels"][0]
    assert level["ok"] > 0
    assert level["errors"].get("UNAVAILABLE", 0) > 0
    assert level["requests"] == level["ok"] + sum(level["errors"].values())


def test_unknown_model_and_bad_flags_exit_with_a_message(start_serve: StartServe, repository: Path) -> None:
    server = start_serve(repository)
    cases = {
        ("--model", "nope"): (1, "NOT_FOUND"),
        ("--model", "classifier", "--rate", "0"): (2, "rate must be above 0"),
        ("--model", "classifier", "--duration", "soon"): (2, "not a duration"),
        ("--model", "classifier", "--shape", "input:7"): (1, "does not fit"),
        ("--model", "classifier", "--input-data", "/nonexistent.json"): (2, "no such file"),
    }
    for flags, (code, message) in cases.items():
        done = subprocess.run(
            [CONDUIT, "bench", "--target", server.target, *flags, "--duration", "1s", "--quiet"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == code, (flags, done.stderr)
        assert message in done.stderr, (flags, done.stderr)
        assert "Traceback" not in done.stderr


def test_a_data_sets_columns_feed_a_model_trained_on_it(
    start_serve: StartServe, run_bench: RunBench, tmp_path: Path
) -> None:
    # A model as Conduit trains it: one input per feature column, numbers as FP32 and categories as BYTES.
    frame = bundled.load("credit")
    result = train(parse_spec(CREDIT_SPEC), frame, dataset_version="test")
    repository = tmp_path / "models"
    write_model_version(repository, "credit", 1, result.onnx)
    rows = tmp_path / "rows.csv"
    frame.select(["age", "income", "debt", "months_at_address", "city", "employment"]).head(64).write_csv(rows)
    server = start_serve(repository)
    document = run_bench(server.target, "credit", "--input-data", str(rows), "--batch", "4", "--duration", "1s",
                         "--warmup", "0")  # fmt: skip
    assert {i["name"]: i["datatype"] for i in document["inputs"]} == {
        "age": "FP32", "income": "FP32", "debt": "FP32", "months_at_address": "FP32", "city": "BYTES",
        "employment": "BYTES",
    }  # fmt: skip
    level = document["levels"][0]
    assert level["ok"] > 0 and level["errors"] == {}
    # A column the model does not take is one line, before any request.
    frame.select(["age", "income", "debt", "months_at_address", "city", "employment", "default"]).write_csv(rows)
    done = subprocess.run(
        [CONDUIT, "bench", "--target", server.target, "--model", "credit", "--input-data", str(rows), "--quiet"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 1
    assert done.stderr == (
        "conduit bench: rows.csv: column 'default' matches no input of the model "
        "(its inputs: age, income, debt, months_at_address, city, employment)\n"
    )
