"""``conduit monitoring show`` and ``ControlPlaneClient.get_monitoring`` against a real control plane on loopback,
fed a profiled data set, a version trained on it, and one OTLP push of served traffic.

The CLI (and the blocking client that populates) block while the control plane runs on the test's event loop, so
they run in threads.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from opentelemetry.sdk.metrics.export import MetricExportResult

from clients._cli_monitoring import _window
from clients.cli import main
from clients.training import import_frame
from contract.client import ControlPlaneClient, SyncControlPlaneClient
from contract.entities import Lineage, VersionRef
from control_plane.app import ControlPlaneServer
from control_plane.settings import ControlPlaneSettings
from tests.conftest import TrainedModel
from tests.control_plane.monitoring.conftest import categorical_sketch, numeric_sketch
from tests.control_plane.service.conftest import Pusher

ADMIN_TOKEN = "cdt_cli-monitoring-admin-token-0123456789abcdefgh"
CITIES = ["paris", "lyon", "lille"]
VERSION = {"model": "fraud", "version": "1"}


@pytest.fixture
async def target(tmp_path: Path) -> AsyncIterator[str]:
    settings = ControlPlaneSettings(home=tmp_path / "home", grpc_port=0, admin_token=ADMIN_TOKEN)
    server = ControlPlaneServer(settings)
    await server.start()
    yield server.target
    await server.stop(grace=1.0)


def populate(target: str, model: Path, rng: np.random.Generator, *, rows: int = 120, unseen: int = 0) -> None:
    """Data set credit, fraud version 1 (alias production) trained on it, and a push of ``rows`` requests whose
    amounts drifted and whose cities did not (but for ``unseen`` of them, from a city the training data never had)."""
    frame = pl.DataFrame({"amount": rng.normal(100.0, 20.0, 3000), "city": rng.choice(CITIES, 3000)})
    with SyncControlPlaneClient.connect(target, token=ADMIN_TOKEN) as client:
        dataset, _ = import_frame(client, frame, "credit", source="test")
        lineage = Lineage(dataset="credit", dataset_version=dataset.version)
        client.run(client.api.register_version("fraud", model, lineage=lineage, aliases=["production"]))
    (amount,) = (c for c in dataset.profile.columns if c.name == "amount")
    pusher = Pusher(target, ADMIN_TOKEN)
    try:
        pusher.requests.add(rows, {**VERSION, "status": "OK"})
        for seconds in rng.lognormal(np.log(0.003), 0.5, rows):
            pusher.duration.record(float(seconds), {**VERSION, "status": "OK"})
        pusher.requests.add(2, {**VERSION, "status": "UNAVAILABLE"})
        pusher.sketch(VERSION, "amount", numeric_sketch(rng.normal(150.0, 20.0, rows), amount.bin_edges), numeric=True)
        cities = [str(c) for c in rng.choice(CITIES, rows - unseen)]
        sketch = categorical_sketch(cities, set(CITIES))
        if unseen:
            sketch["__unseen__"] = unseen  # as a server counts values outside a profile that lists every category
        pusher.sketch(VERSION, "city", sketch, numeric=False)
        assert pusher.push() == MetricExportResult.SUCCESS
    finally:
        pusher.close()


async def conduit(target: str, *args: str) -> int:
    return await asyncio.to_thread(main, [*args, "--control-plane", target, "--token", ADMIN_TOKEN])


async def test_show_prints_each_window_and_its_drift(
    target: str, classifier: TrainedModel, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = tmp_path / "model.onnx"
    model.write_bytes(classifier.onnx)
    await asyncio.to_thread(populate, target, model, np.random.default_rng(2))
    async with ControlPlaneClient.connect(target, token=ADMIN_TOKEN) as client:
        answer = await client.get_monitoring(VersionRef.parse("fraud@production"))
    assert answer.baseline is not None
    (window,) = answer.windows
    assert window.requests == 120 and dict(window.errors) == {"UNAVAILABLE": 2}

    assert await conduit(target, "monitoring", "show", "fraud@production", "--since", "15m") == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"fraud:1  drift against credit:{answer.baseline.version}"
    assert lines[1].split() == ["WINDOW", "(UTC)", "REQUESTS", "ERRORS", "P50", "MS", "P99", "MS", "DATA", "SET"]
    start = window.start.strftime("%Y-%m-%d %H:%M")
    p50_s, _, p99_s = window.quantiles
    assert p50_s is not None and p99_s is not None
    p50, p99 = f"{p50_s * 1e3:.2f}", f"{p99_s * 1e3:.2f}"
    assert lines[2].split() == [*start.split(), "120", "2", "UNAVAILABLE=2", p50, p99, "DRIFT", "1/2"]
    assert (
        lines[4].startswith(f"{start} to ")
        and ": drift, 50% of the input features with a verdict drifted (each: PSI >= 0.2" in lines[4]
        and "over at least 100 values" in lines[4]
    )
    rows = {line.split()[0]: line.split() for line in lines[6:]}
    assert rows["amount"][1] == "numeric" and rows["amount"][-1] == "yes"
    assert rows["city"][1] == "categorical" and rows["city"][6] == "-" and rows["city"][-1] == "no"
    # Every city of the training data is in its profile: none served was unseen; a number has no such count.
    assert rows["city"][3] == "0" and rows["amount"][3] == "-"
    (amount,) = (f for f in window.features if f.feature == "amount")
    assert rows["amount"][4:6] == [f"{amount.psi:.3g}", f"{amount.js:.3g}"]

    assert await conduit(target, "monitoring", "show", "fraud:1", "--window", "1h", "--json") == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["model"] == "fraud" and payload["windows"][0]["requests"] == "120"
    assert {f["feature"]: f["drifted"] for f in payload["windows"][0]["features"]} == {"amount": True, "city": False}
    # With the cells the statistics were computed on (int64 counts as JSON strings, as proto3's JSON mapping has it).
    shown = {f["feature"]: f for f in payload["windows"][0]["features"]}["amount"]
    assert shown["cells"] == list(amount.cells) and shown["cells"][-1] == "missing"
    assert [int(c) for c in shown["expected"]] == list(amount.expected)
    assert sum(int(c) for c in shown["observed"]) == int(shown["count"]) > 0
    assert shown.get("too_few_rows", False) is False and "unseen" not in shown
    city = {f["feature"]: f for f in payload["windows"][0]["features"]}["city"]
    assert city["unseen"] == "0"
    assert payload["thresholds"]["min_rows"] == "100"


async def test_a_window_of_one_small_request_has_too_few_rows(
    target: str, classifier: TrainedModel, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = tmp_path / "model.onnx"
    model.write_bytes(classifier.onnx)
    rng = np.random.default_rng(4)
    await asyncio.to_thread(populate, target, model, rng, rows=6, unseen=2)
    assert await conduit(target, "monitoring", "show", "fraud@production", "--since", "15m") == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[2].endswith("too few rows") and "DRIFT" not in lines[2]
    assert ": too few rows, no verdict (each:" in lines[4]
    rows = {line.split()[0]: line for line in lines[6:]}
    assert rows["amount"].endswith("too few rows") and rows["city"].endswith("too few rows")
    assert rows["city"].split()[3:5] == ["2", "(33.3%)"]

    assert await conduit(target, "monitoring", "show", "fraud:1", "--json") == 0
    (window,) = json.loads(capsys.readouterr().out)["windows"]
    assert window["too_few_rows"] is True and window.get("dataset_drift", False) is False
    features = {f["feature"]: f for f in window["features"]}
    assert all(f["too_few_rows"] is True and f.get("drifted", False) is False for f in features.values())
    assert features["amount"]["psi"] > 0.2  # what used to read as drift
    assert features["city"]["unseen"] == "2"


async def test_show_without_traffic_and_failures(
    target: str, classifier: TrainedModel, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = tmp_path / "model.onnx"
    model.write_bytes(classifier.onnx)
    assert await conduit(target, "models", "register", "plain", str(model)) == 0
    capsys.readouterr()
    assert await conduit(target, "monitoring", "show", "plain") == 0
    assert capsys.readouterr().out.splitlines() == [
        "plain:1  no drift baseline (the version's lineage names no data set version the control plane holds)",
        "no traffic reported in this span",
    ]
    assert await conduit(target, "monitoring", "show", "ghost") == 1
    assert "NOT_FOUND" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        await conduit(target, "monitoring", "show", "ghost", "--window", "90s")
    assert "whole minutes" in capsys.readouterr().err


def test_window_lengths() -> None:
    assert [_window(text) for text in ("1m", "5m", "1h", "2d", "7")] == [1, 5, 60, 2880, 7]
    for bad in ("0m", "1s", "m", "1.5h", "-1m"):
        with pytest.raises(argparse.ArgumentTypeError):
            _window(bad)
