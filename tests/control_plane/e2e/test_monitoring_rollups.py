"""The control plane's roll-ups against the requests actually sent: `conduit serve --control-plane` answers N requests
and refuses E, a client times each one, and GetMonitoring must count exactly those and hold a latency histogram that
the client's own timings bound (the server times a request inside the client's call, so it sees less)."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from clients import ConduitError, ErrorCode, InferenceClient
from contract.client import SyncControlPlaneClient
from contract.entities import LatencyHistogram, MonitoringWindow, VersionRef

from .conftest import ADMIN_TOKEN, CALLER, MODEL, Cluster, eventually
from .test_alerts_latency import WIDTH, matmul_chain

SUCCEEDED = 60
REFUSED = 7
LATER_PUSHES = 3


def _fastest_run_s(model: bytes, row: np.ndarray, runs: int = 20) -> float:
    """The quickest of ``runs`` executions of ``model`` on one core, as the server configures onnxruntime."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    session.run(None, {"input": row})
    fastest = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        session.run(None, {"input": row})
        fastest = min(fastest, time.perf_counter() - start)
    return fastest


def test_stored_rollups_count_every_request_sent_and_bound_their_latency_by_the_clients_timings(
    start_cluster: Callable[[str], Cluster], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    cluster = start_cluster("")
    # About a millisecond of compute a request: a floor the server's latencies cannot go below.
    model = matmul_chain(copies=256, layers=4)
    path = tmp_path / "model.onnx"
    path.write_bytes(model)
    rows = np.random.default_rng(2).standard_normal((SUCCEEDED, WIDTH)).astype(np.float32)
    floor_s = _fastest_run_s(model, rows[:1])
    with SyncControlPlaneClient.connect(cluster.control_plane.address, token=ADMIN_TOKEN) as admin:
        admin.run(admin.api.register_version(MODEL, path, aliases=["production"]))
        admin.run(admin.api.deploy("default", MODEL, alias="production"))
    monkeypatch.setenv("CONDUIT_OTLP_INTERVAL", "0.5")
    server = cluster.serve()

    client_s: list[float] = []
    refused: Counter[ErrorCode] = Counter()
    with InferenceClient(server.address, timeout=30.0, metadata=CALLER) as inference:
        eventually(lambda: inference.model_ready(MODEL), timeout=60, what="the model loaded")
        for i in range(SUCCEEDED + REFUSED):
            if i % 9 == 4 and sum(refused.values()) < REFUSED:
                with pytest.raises(ConduitError) as refusal:
                    inference.infer(MODEL, {"input": rows[:1, : WIDTH - 1]})  # one feature short
                refused[refusal.value.code] += 1
                continue
            start = time.perf_counter()
            inference.infer(MODEL, {"input": rows[len(client_s) : len(client_s) + 1]})
            client_s.append(time.perf_counter() - start)
    assert len(client_s) == SUCCEEDED and refused == {ErrorCode.INVALID_ARGUMENT: REFUSED}

    def windows() -> list[MonitoringWindow]:
        with SyncControlPlaneClient.connect(cluster.control_plane.address, token=ADMIN_TOKEN) as client:
            ref = VersionRef(MODEL, alias="production")
            return list(client.run(client.api.get_monitoring(ref, window_minutes=1440)).windows)

    def counted() -> tuple[int, dict[str, int]]:
        found = windows()
        errors: Counter[str] = Counter()
        for window in found:
            errors.update(dict(window.errors))
        return sum(window.requests for window in found), dict(errors)

    expected = (SUCCEEDED, {"INVALID_ARGUMENT": REFUSED})
    eventually(lambda: counted() == expected, timeout=30, what=f"{SUCCEEDED} requests and {REFUSED} errors stored")
    # Several more pushes later, nothing was counted twice: one more request at a time, each counted exactly once
    # before the next is sent, takes at least one push after each (a push that counted anything again would overshoot).
    with InferenceClient(server.address, metadata=CALLER) as inference:
        for n in range(1, LATER_PUSHES + 1):
            start = time.perf_counter()
            inference.infer(MODEL, {"input": rows[n - 1 : n]})
            client_s.append(time.perf_counter() - start)
            later = (SUCCEEDED + n, {"INVALID_ARGUMENT": REFUSED})
            eventually(lambda later=later: counted() == later, timeout=30, what=f"request {SUCCEEDED + n} stored once")
    assert counted() == (len(client_s), {"INVALID_ARGUMENT": REFUSED})

    histograms: list[LatencyHistogram] = [window.latency for window in windows() if window.latency is not None]
    bounds = list(histograms[0].bounds)
    assert all(list(h.bounds) == bounds for h in histograms)
    counts = np.sum([list(h.counts) for h in histograms], axis=0)
    assert sum(h.count for h in histograms) == counts.sum() == len(client_s)
    # Bucket i holds (bounds[i-1], bounds[i]]: at every bound, at least as many server latencies as client ones.
    timed = np.array(client_s)
    server_at_or_below = np.cumsum(counts)[:-1]
    client_at_or_below = np.array([(timed <= bound).sum() for bound in bounds])
    assert (server_at_or_below >= client_at_or_below).all(), list(
        zip(bounds, server_at_or_below, client_at_or_below, strict=True)
    )
    total_s = sum(h.sum for h in histograms)
    assert 0 < total_s <= timed.sum()
    assert min(h.min for h in histograms) >= floor_s / 2
    assert max(h.max for h in histograms) <= timed.max()
