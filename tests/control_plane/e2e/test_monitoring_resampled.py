"""Drift verdicts end to end on a real trained model served by `conduit serve --control-plane`: rows resampled
(with replacement) from the training data show no drifting feature in any window, the same rows shifted (+1.5
standard deviations of income, cities re-weighted) drift, and a window of one small request has too few rows."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import numpy as np
import polars as pl
import pytest

from clients import InferenceClient
from clients.training import fetch_dataset, import_frame, register_result
from contract.client import SyncControlPlaneClient
from trainers import bundled, parse_spec, train

from .conftest import ADMIN_TOKEN, CALLER, CREDIT_SPEC, Cluster, eventually

NUMERIC = ["age", "income", "debt", "months_at_address"]
CATEGORICAL = ["city", "employment"]
INPUTS = {*NUMERIC, *CATEGORICAL}
ROWS_PER_REQUEST = 50


def served(frame: pl.DataFrame) -> dict[str, np.ndarray]:
    """The rows as a client sends them to the model: FP32 numbers (NaN missing) and strings ("" missing)."""
    inputs = {n: frame[n].cast(pl.Float32).fill_null(float("nan")).to_numpy().reshape(-1, 1) for n in NUMERIC}
    for name in CATEGORICAL:
        inputs[name] = np.array(frame[name].cast(pl.String).fill_null("").to_list(), dtype=object).reshape(-1, 1)
    return inputs


def send(client: InferenceClient, model: str, inputs: dict[str, np.ndarray], per_request: int) -> int:
    rows = len(inputs["age"])
    for start in range(0, rows, per_request):
        client.infer(model, {k: v[start : start + per_request] for k, v in inputs.items()})
    return -(-rows // per_request)


def test_resampled_rows_do_not_drift_shifted_ones_do_and_one_request_has_too_few_rows(
    start_cluster: Callable[[str], Cluster], monkeypatch: pytest.MonkeyPatch
) -> None:
    cluster = start_cluster("")
    data = bundled.load("credit")
    with SyncControlPlaneClient.connect(cluster.control_plane.address, token=ADMIN_TOKEN) as client:
        import_frame(client, data, "credit", source="bundled:credit", target="default")
        frame, stored = fetch_dataset(client, "credit", "")
        result = train(parse_spec(CREDIT_SPEC), frame, dataset_version=stored.version)
        # One model per kind of traffic, all trained on the same data set, so each one's windows hold only its own.
        for model in ("resampled", "shifted", "single"):
            register_result(client, result, model=model, aliases=["production"])
            client.run(client.api.deploy("default", model, alias="production"))

    rng = np.random.default_rng(11)
    resampled = frame[rng.integers(0, frame.height, 1500)]
    # Shifted: incomes 1.5 standard deviations up, and rows of the rarest city drawn five times as often.
    rarest = frame["city"].drop_nulls().value_counts(sort=True)["city"][-1]
    weights = np.where(frame["city"].fill_null("").to_numpy() == rarest, 5.0, 1.0)
    shifted = frame[rng.choice(frame.height, 800, p=weights / weights.sum())]
    shifted = shifted.with_columns(pl.col("income") + 1.5 * frame["income"].std())

    monkeypatch.setenv("CONDUIT_OTLP_INTERVAL", "0.5")
    server = cluster.serve()
    sent: dict[str, int] = {}
    with InferenceClient(server.address, metadata=CALLER) as inference:
        for model in ("resampled", "shifted", "single"):
            eventually(lambda m=model: inference.model_ready(m), timeout=60, what=f"{model} loaded")  # type: ignore[misc]
        sent["resampled"] = send(inference, "resampled", served(resampled), ROWS_PER_REQUEST)
        sent["shifted"] = send(inference, "shifted", served(shifted), ROWS_PER_REQUEST)
        sent["single"] = send(inference, "single", served(frame[rng.integers(0, frame.height, 6)]), 6)

    def shown(model: str, window: str) -> dict[str, Any]:
        done = cluster.cli("monitoring", "show", model, "--since", "15m", "--window", window, "--json")
        payload: dict[str, Any] = json.loads(done.stdout)
        return payload

    def counted(model: str, rows: int) -> bool:
        windows = shown(model, "1d")["windows"]
        return sum(int(w.get("requests", 0)) for w in windows) == sent[model] and {
            f["count"] for w in windows for f in w.get("features", ()) if f["feature"] in INPUTS
        } == {str(rows)}

    for model, rows in (("resampled", 1500), ("shifted", 800), ("single", 6)):
        eventually(lambda m=model, r=rows: counted(m, r), timeout=30, what=f"{model}: every row counted")  # type: ignore[misc]

    # Resampled training rows: no input drifts over the whole period, nor in any minute (a minute holding fewer than
    # the minimum has too few rows instead of a verdict).
    (whole,) = (w for w in shown("resampled", "1d")["windows"] if w.get("features"))
    features = {f["feature"]: f for f in whole["features"]}
    assert set(features) >= INPUTS
    assert not [name for name in INPUTS if features[name].get("drifted") or features[name].get("too_few_rows")]
    assert min(features[name]["chi2_p_value"] for name in INPUTS) > 1e-3
    assert whole.get("dataset_drift", False) is False
    for window in shown("resampled", "1m")["windows"]:
        drifted = [f["feature"] for f in window.get("features", ()) if f.get("drifted")]
        assert not drifted, (window["start"], drifted)

    # Shifted rows: income and city drift; the window's data set verdict counts them.
    (whole,) = (w for w in shown("shifted", "1d")["windows"] if w.get("features"))
    features = {f["feature"]: f for f in whole["features"]}
    assert features["income"].get("drifted") is True and features["city"].get("drifted") is True
    assert features["city"]["unseen"] == "0"  # re-weighted, not new: every city was in the training data

    # One request of 6 rows: too few rows, never drift, in the JSON and in the table.
    (whole,) = (w for w in shown("single", "1d")["windows"] if w.get("features"))
    assert whole["too_few_rows"] is True and whole.get("dataset_drift", False) is False
    assert all(f["too_few_rows"] is True and not f.get("drifted") for f in whole["features"])
    table = cluster.cli("monitoring", "show", "single", "--since", "15m", "--window", "1d").stdout
    assert "too few rows" in table and "DRIFT " not in table
