"""A model version's monitoring as the JSON its page draws and refreshes: traffic, errors and latency per window,
drift per feature per window against the training baseline, the drift over the whole period, and the baseline's
histograms from the training data set's profile; each feature's drift over the period comes with the cells it was
computed on, so the page can draw the period's values against the baseline's."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Any

from contract.errors import ConduitError, ErrorCode
from control_plane.protocol import control_plane_pb2 as cp
from dashboard._data import DashboardData

__all__ = ["PERIODS", "monitoring_json", "window_minutes"]

# Period shown (minutes) -> window length (minutes): about 15 to 100 points per chart.
PERIODS: dict[int, int] = {15: 1, 60: 1, 360: 5, 1440: 15, 10080: 120}
# One window spanning the period (GetMonitoring allows 1440 windows; one day is the largest that stays aligned).
_SUMMARY_WINDOW = 1440


def window_minutes(since_minutes: int) -> int:
    """The window length charts of a period use."""
    if since_minutes not in PERIODS:
        raise ConduitError(ErrorCode.INVALID_ARGUMENT, f"period {since_minutes}: expected one of {sorted(PERIODS)}")
    return PERIODS[since_minutes]


def _iso(window: cp.MonitoringWindow, name: str) -> str:
    return str(getattr(window, name).ToJsonString())


def _optional_ms(window: cp.MonitoringWindow, name: str) -> float | None:
    return getattr(window, name) * 1e3 if window.HasField(name) else None


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _shares(counts: Sequence[int]) -> list[float]:
    total = sum(counts) or 1
    return [c / total for c in counts]


def _feature(drift: cp.FeatureDrift) -> dict[str, Any]:
    return {
        "feature": drift.feature,
        "kind": drift.kind,
        "count": drift.count,
        "psi": _finite(drift.psi),
        "js": _finite(drift.js),
        "ks": _finite(drift.ks) if drift.HasField("ks") else None,
        "chi2_p_value": _finite(drift.chi2_p_value),
        "drifted": drift.drifted,
        # The cells the statistics were computed on, each side as shares of its own total (the baseline's from the
        # training counts, the window's from its own): what the "now against the baseline" charts draw.
        "cells": list(drift.cells),
        "observed": list(drift.observed),
        "expected": list(drift.expected),
        "observed_shares": _shares(drift.observed),
        "expected_shares": _shares(drift.expected),
    }


def _edge(value: float) -> str:
    if math.isinf(value):
        return "∞" if value > 0 else "-∞"
    return f"{value / 1000:.3g}k" if abs(value) >= 1000 else f"{value:.3g}"


def _histogram(column: cp.ColumnProfile) -> dict[str, Any] | None:
    """A column's training distribution as labelled shares; ``None`` for a kind without one."""
    if column.kind == "numeric" and column.bin_counts:
        edges = list(column.bin_edges)
        labels = [f"{_edge(lo)} – {_edge(hi)}" for lo, hi in itertools.pairwise(edges)]
        counts = list(column.bin_counts)
    elif column.kind in ("categorical", "boolean") and column.top_categories:
        labels = [c.value for c in column.top_categories]
        counts = [c.count for c in column.top_categories]
        if column.other_count:
            labels.append("(other)")
            counts.append(column.other_count)
    else:
        return None
    total = sum(counts) or 1
    return {"feature": column.name, "kind": column.kind, "labels": labels, "shares": [c / total for c in counts]}


async def _baseline(data: DashboardData, token: str, series: cp.GetMonitoringResponse) -> list[dict[str, Any]]:
    if not series.HasField("baseline"):
        return []
    try:
        dataset = await data.dataset(token, series.baseline.name, series.baseline.version)
    except ConduitError as exc:
        if exc.code is ErrorCode.NOT_FOUND:
            return []
        raise
    monitored = {f.feature for w in series.windows for f in w.features}
    histograms = (_histogram(c) for c in dataset.profile.columns if not monitored or c.name in monitored)
    return [h for h in histograms if h is not None]


async def monitoring_json(
    data: DashboardData, token: str, ref: cp.VersionRef, since_minutes: int, *, baseline: bool = True
) -> dict[str, Any]:
    """Everything the monitoring page shows of ``ref`` over the last ``since_minutes`` minutes (the baseline's
    histograms only with ``baseline``: they do not change, so a page fetches them once)."""
    window = window_minutes(since_minutes)
    series = await data.monitoring(token, ref, since_minutes=since_minutes, window_minutes=window)
    summary = await data.monitoring(token, ref, since_minutes=since_minutes, window_minutes=_SUMMARY_WINDOW)
    seconds = window * 60
    times = [_iso(w, "start") for w in series.windows]
    features = sorted({f.feature for w in series.windows for f in w.features})
    psi: dict[str, list[float | None]] = {name: [None] * len(series.windows) for name in features}
    for index, w in enumerate(series.windows):
        for f in w.features:
            psi[f.feature][index] = _finite(f.psi)
    errors = [sum(w.errors.values()) for w in series.windows]
    latest = next((w for w in reversed(summary.windows) if w.features), None)
    return {
        "model": series.model,
        "version": series.version,
        "baseline": f"{series.baseline.name}:{series.baseline.version}" if series.HasField("baseline") else None,
        "thresholds": {
            "psi": series.thresholds.psi_threshold,
            "chi2_p": series.thresholds.chi2_p_threshold,
            "drift_share": series.thresholds.drift_share,
        },
        "since_minutes": since_minutes,
        "window_minutes": window,
        "totals": {"requests": sum(w.requests for w in series.windows), "errors": sum(errors)},
        "traffic": {
            "t": times,
            "request_rate": [(w.requests + e) / seconds for w, e in zip(series.windows, errors, strict=True)],
            "error_rate": [
                100.0 * e / (w.requests + e) if w.requests + e else 0.0
                for w, e in zip(series.windows, errors, strict=True)
            ],
            "p50_ms": [_optional_ms(w, "latency_p50") for w in series.windows],
            "p99_ms": [_optional_ms(w, "latency_p99") for w in series.windows],
        },
        "drift": {"t": times, "psi": psi},
        "summary": None
        if latest is None
        else {
            "start": _iso(latest, "start"),
            "end": _iso(latest, "end"),
            "dataset_drift": latest.dataset_drift,
            "drifted_share": latest.drifted_share,
            "features": [_feature(f) for f in latest.features],
        },
        "baseline_histograms": await _baseline(data, token, series) if baseline else None,
    }
