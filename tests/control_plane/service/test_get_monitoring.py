"""GetMonitoring on a control plane fed the way production feeds it: a data set imported and profiled by the
trainers' code, a version whose lineage names it, and an OTLP push of what a server saw. The answer holds the raw
samples' counts, a histogram whose quantiles sit with the samples', and the drift of each feature and prediction."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import grpc
import numpy as np
import polars as pl
import pytest
from opentelemetry.sdk.metrics.export import MetricExportResult

from clients.training import import_frame
from contract.client import SyncControlPlaneClient
from contract.entities import DatasetVersion, DriftRule
from control_plane.monitoring import compare
from control_plane.protocol import control_plane_pb2 as cp
from control_plane.store import SqlStore
from tests.control_plane.monitoring.conftest import categorical_sketch, numeric_sketch

from .conftest import ADMIN_TOKEN, LATENCY_BOUNDS, Api, Pusher, StartApi

CITIES = ["paris", "lyon", "lille", "nice"]
VERSION = {"model": "fraud", "version": "1"}


def training_frame(rng: np.random.Generator, rows: int = 4000) -> pl.DataFrame:
    amount = rng.normal(100.0, 20.0, rows)
    amount[rng.random(rows) < 0.02] = np.nan
    return pl.DataFrame(
        {
            "amount": amount,
            "city": rng.choice(CITIES, rows, p=[0.4, 0.3, 0.2, 0.1]),
            "label": rng.choice(["no", "yes"], rows, p=[0.8, 0.2]),
        }
    ).with_columns(pl.col("amount").fill_nan(None))


@dataclass
class Served:
    """What the server saw, raw."""

    durations: np.ndarray
    amounts: np.ndarray
    cities: list[str]
    classes: np.ndarray
    dataset: DatasetVersion


async def populate(api: Api, pusher: Pusher, model: bytes, rng: np.random.Generator) -> Served:
    """Import the training data, register version 1 of fraud trained on it, and push one export of served traffic."""
    with SyncControlPlaneClient.connect(api.server.target, token=ADMIN_TOKEN) as client:
        dataset, _ = await asyncio.to_thread(
            import_frame, client, training_frame(rng), "credit", source="test", target="label"
        )
    lineage = cp.Lineage(dataset="credit", dataset_version=dataset.version)
    await api.register("fraud", model, lineage=lineage, aliases=["production"])
    served = Served(
        durations=rng.lognormal(np.log(0.004), 0.7, 800),
        amounts=rng.normal(130.0, 20.0, 800),  # drifted
        cities=[str(c) for c in rng.choice(CITIES, 800, p=[0.4, 0.3, 0.2, 0.1])],  # not
        classes=rng.choice([0, 1], 800, p=[0.5, 0.5]),  # drifted: training had 80% "no"
        dataset=dataset,
    )
    ok = {**VERSION, "status": "OK"}
    pusher.requests.add(len(served.durations), ok)
    for seconds in served.durations:
        pusher.duration.record(float(seconds), ok)
    pusher.requests.add(3, {**VERSION, "status": "RESOURCE_EXHAUSTED"})
    (amount,) = (c for c in dataset.profile.columns if c.name == "amount")
    pusher.sketch(VERSION, "amount", numeric_sketch(served.amounts, amount.bin_edges), numeric=True)
    (city,) = (c for c in dataset.profile.columns if c.name == "city")
    top = {t.value for t in city.top_categories}
    pusher.sketch(VERSION, "city", categorical_sketch(served.cities, top), numeric=False)
    classes = categorical_sketch((str(c) for c in served.classes), {"0", "1"})
    pusher.sketch(VERSION, "@prediction", classes, numeric=False)
    # One export: every point has the same time, so they share a minute.
    assert await asyncio.to_thread(pusher.push) == MetricExportResult.SUCCESS
    return served


def bucket(value: float) -> int:
    return int(np.searchsorted(LATENCY_BOUNDS, value, side="left"))


async def test_a_version_s_traffic_latency_and_drift(
    any_api: Api, pushers: Callable[..., Pusher], model_bytes: bytes
) -> None:
    server = await any_api.user("server-1", cp.ROLE_SERVER)
    viewer = await any_api.user("viewer", cp.ROLE_VIEWER)
    pusher = pushers(any_api.server.target, any_api.tokens["server-1"])
    served = await populate(any_api, pusher, model_bytes, np.random.default_rng(5))
    request = cp.GetMonitoringRequest(ref=cp.VersionRef(model="fraud", alias="production"))
    answer = await any_api.stub.GetMonitoring(request, metadata=viewer)

    assert (answer.model, answer.version) == ("fraud", 1)
    assert (answer.baseline.name, answer.baseline.version) == ("credit", served.dataset.version)
    assert (answer.thresholds.psi_threshold, answer.thresholds.chi2_p_threshold) == (0.2, 0.01)
    (window,) = answer.windows
    assert window.end.ToDatetime() - window.start.ToDatetime() == timedelta(minutes=1)
    assert window.requests == 800 and dict(window.errors) == {"RESOURCE_EXHAUSTED": 3}

    counts = np.bincount([bucket(s) for s in served.durations], minlength=len(LATENCY_BOUNDS) + 1)
    assert list(window.latency.bounds) == list(LATENCY_BOUNDS) and list(window.latency.counts) == counts.tolist()
    assert window.latency.min == served.durations.min() and window.latency.max == served.durations.max()
    for field, q in (("latency_p50", 0.5), ("latency_p90", 0.9), ("latency_p99", 0.99)):
        estimate = getattr(window, field)
        true = float(np.quantile(served.durations, q, method="inverted_cdf"))
        assert bucket(estimate) == bucket(true) or estimate == LATENCY_BOUNDS[bucket(true) - 1], field
        assert abs(bucket(estimate) - bucket(float(np.quantile(served.durations, q)))) <= 1, field

    assert [f.feature for f in window.features] == ["amount", "city", "@prediction"]
    amount, city, prediction = window.features
    assert (amount.kind, amount.drifted, amount.HasField("ks")) == ("numeric", True, True)
    assert (city.kind, city.drifted, city.HasField("ks")) == ("categorical", False, False)
    assert (prediction.kind, prediction.drifted, prediction.count) == ("categorical", True, 800)
    assert (window.dataset_drift, window.drifted_share) == (True, 0.5)
    # The numbers are the drift library's on the stored profile.
    store = SqlStore(any_api.server.settings.db_url())
    profile = {c.name: c for c in store.get_dataset("credit", served.dataset.version).profile.columns}
    store.close()
    expected = compare(
        "amount", "numeric", profile["amount"], numeric_sketch(served.amounts, profile["amount"].bin_edges), DriftRule()
    )
    assert expected is not None
    assert (amount.psi, amount.js, amount.ks, amount.ks_p_value, amount.chi2, amount.chi2_p_value) == pytest.approx(
        (expected.psi, expected.js, expected.ks, expected.ks_p_value, expected.chi2, expected.chi2_p_value), rel=1e-12
    )
    # With the cells they were computed on: the profile's bins then missing, the served values counted in them.
    assert (list(amount.cells), list(amount.observed), list(amount.expected)) == (
        list(expected.cells),
        list(expected.observed),
        [*profile["amount"].bin_counts, profile["amount"].missing],
    )
    assert sum(amount.observed) == amount.count == 800 and amount.cells[-1] == "missing"
    assert list(city.cells) == [*(c.value for c in profile["city"].top_categories), "__other__", "missing"]
    top = profile["city"].top_categories
    assert list(city.observed[: len(top)]) == [served.cities.count(c.value) for c in top]
    assert list(prediction.cells) == ["0", "1", "__other__", "missing"]
    assert list(prediction.observed) == [int((served.classes == 0).sum()), int((served.classes == 1).sum()), 0, 0]

    # Server tokens push, they do not read.
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await any_api.stub.GetMonitoring(request, metadata=server)
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_windows_spans_and_versions_without_a_baseline(
    api: Api, pushers: Callable[..., Pusher], model_bytes: bytes
) -> None:
    await api.register("plain", model_bytes)
    pusher = pushers(api.server.target, ADMIN_TOKEN)
    pusher.requests.add(5, {"model": "plain", "version": "1", "status": "OK"})
    before = datetime.now(UTC)
    assert await asyncio.to_thread(pusher.push) == MetricExportResult.SUCCESS
    now = datetime.now(UTC)

    def request(**fields: object) -> cp.GetMonitoringRequest:
        message = cp.GetMonitoringRequest(ref=cp.VersionRef(model="plain", version=1), **fields)  # type: ignore[arg-type]
        return message

    answer = await api.stub.GetMonitoring(request(window_minutes=60), metadata=api.admin)
    (window,) = answer.windows
    # Hour-long windows start on the hour.
    hours = {moment.replace(minute=0, second=0, microsecond=0) for moment in (before, now)}
    assert window.start.ToDatetime(tzinfo=UTC) in hours
    assert window.requests == 5 and not window.HasField("latency") and not window.HasField("latency_p50")
    assert list(window.features) == [] and not answer.HasField("baseline")

    earlier = request()
    earlier.until.FromDatetime(now - timedelta(hours=1))
    assert (await api.stub.GetMonitoring(earlier, metadata=api.admin)).windows == []

    refusals = {
        grpc.StatusCode.NOT_FOUND: [cp.GetMonitoringRequest(ref=cp.VersionRef(model="plain", version=2))],
        grpc.StatusCode.INVALID_ARGUMENT: [request(window_minutes=-1)],
    }
    backwards = request()
    backwards.since.FromDatetime(now)
    backwards.until.FromDatetime(now - timedelta(minutes=1))
    too_many = request()
    too_many.since.FromDatetime(now - timedelta(days=2))
    refusals[grpc.StatusCode.INVALID_ARGUMENT] += [backwards, too_many]
    for status, requests in refusals.items():
        for message in requests:
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await api.stub.GetMonitoring(message, metadata=api.admin)
            assert refused.value.code() == status, message


async def test_the_drift_thresholds_are_the_settings(start_api: StartApi, sqlite_url: str, model_bytes: bytes) -> None:
    api = await start_api(sqlite_url, psi_threshold=0.5, chi2_p_threshold=0.05, drift_share=0.25)
    await api.register("plain", model_bytes)
    answer = await api.stub.GetMonitoring(cp.GetMonitoringRequest(ref=cp.VersionRef(model="plain")), metadata=api.admin)
    thresholds = answer.thresholds
    assert (thresholds.psi_threshold, thresholds.chi2_p_threshold, thresholds.drift_share) == (0.5, 0.05, 0.25)
