"""A model version's monitoring as the JSON its page draws and refreshes: traffic, errors and latency per window,
drift per feature per window against the training baseline, the drift over the whole period, and the baseline's
histograms from the training data set's profile; each feature's drift over the period comes with the cells it was
computed on, so the page can draw the period's values against the baseline's. The period is the chosen number of
minutes ending now, starting on a whole minute (the roll-ups' grain)."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from contract.client import ControlPlaneClient
from contract.entities import ColumnProfile, FeatureDrift, MonitoringReport, VersionRef
from contract.errors import ConduitError, ErrorCode

__all__ = ["PERIODS", "monitoring_json", "window_minutes"]

# Period shown (minutes) -> window length (minutes): about 15 to 100 points per chart.
PERIODS: dict[int, int] = {15: 1, 60: 1, 360: 5, 1440: 15, 10080: 120}


def window_minutes(since_minutes: int) -> int:
    """The window length charts of a period use."""
    if since_minutes not in PERIODS:
        raise ConduitError(ErrorCode.INVALID_ARGUMENT, f"period {since_minutes}: expected one of {sorted(PERIODS)}")
    return PERIODS[since_minutes]


def _start(now: datetime, since_minutes: int) -> datetime:
    """The first minute of the period of ``since_minutes`` ending at ``now``."""
    return (now - timedelta(minutes=since_minutes)).replace(second=0, microsecond=0)


def _whole_period(start: datetime) -> int:
    """The window length (minutes) of one window starting at ``start`` itself and holding everything after it.

    GetMonitoring's windows start at multiples of their length since the Unix epoch, so a window holding the
    period's start would begin up to a window earlier (a day-long one at midnight: drift over the whole day
    whatever period was chosen); one window as long as the time from the epoch to ``start`` begins exactly there.
    """
    return int(start.timestamp()) // 60


def _iso(moment: datetime) -> str:
    """RFC 3339 in UTC as protobuf's JSON writes a Timestamp: no fraction on a whole second, else 3 or 6 digits."""
    text = moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")
    micros = moment.microsecond
    if micros:
        text += f".{micros // 1000:03d}" if micros % 1000 == 0 else f".{micros:06d}"
    return text + "Z"


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else seconds * 1e3


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _shares(counts: Sequence[int]) -> list[float]:
    total = sum(counts) or 1
    return [c / total for c in counts]


def _feature(drift: FeatureDrift) -> dict[str, Any]:
    return {
        "feature": drift.feature,
        "kind": drift.kind,
        "count": drift.count,
        "psi": _finite(drift.psi),
        "js": _finite(drift.js),
        "ks": None if drift.ks is None else _finite(drift.ks),
        "chi2_p_value": _finite(drift.chi2_p_value),
        "drifted": drift.drifted,
        "too_few_rows": drift.too_few_rows,
        "verdict": drift.verdict,
        # Values the training data never had (categorical features whose profile lists every category): None when
        # the profile cannot tell.
        "unseen": drift.unseen,
        "unseen_rate": None if drift.unseen is None or not drift.count else drift.unseen / drift.count,
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


def _histogram(column: ColumnProfile) -> dict[str, Any] | None:
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


async def _baseline(api: ControlPlaneClient, series: MonitoringReport) -> list[dict[str, Any]]:
    if series.baseline is None:
        return []
    try:
        dataset = await api.get_dataset(series.baseline.name, series.baseline.version)
    except ConduitError as exc:
        if exc.code is ErrorCode.NOT_FOUND:
            return []
        raise
    monitored = {f.feature for w in series.windows for f in w.features}
    histograms = (_histogram(c) for c in dataset.profile.columns if not monitored or c.name in monitored)
    return [h for h in histograms if h is not None]


async def monitoring_json(
    api: ControlPlaneClient, ref: VersionRef, since_minutes: int, *, baseline: bool = True
) -> dict[str, Any]:
    """Everything the monitoring page shows of ``ref`` over the last ``since_minutes`` minutes (the baseline's
    histograms only with ``baseline``: they do not change, so a page fetches them once)."""
    window = window_minutes(since_minutes)
    now = datetime.now(UTC)
    start = _start(now, since_minutes)
    series = await api.get_monitoring(ref, since=start, until=now, window_minutes=window)
    summary = await api.get_monitoring(ref, since=start, until=now, window_minutes=_whole_period(start))
    seconds = window * 60
    times = [_iso(w.start) for w in series.windows]
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
        "baseline": None if series.baseline is None else f"{series.baseline.name}:{series.baseline.version}",
        "thresholds": {
            "psi": series.rule.psi_threshold,
            "chi2_p": series.rule.chi2_p_threshold,
            "drift_share": series.rule.drift_share,
            "min_rows": series.rule.min_rows,
        },
        "since_minutes": since_minutes,
        "window_minutes": window,
        # What the charts' time axes span, whichever windows hold traffic.
        "period": {"start": _iso(start), "end": _iso(now)},
        "totals": {"requests": sum(w.requests for w in series.windows), "errors": sum(errors)},
        "traffic": {
            "t": times,
            "request_rate": [(w.requests + e) / seconds for w, e in zip(series.windows, errors, strict=True)],
            "error_rate": [
                100.0 * e / (w.requests + e) if w.requests + e else 0.0
                for w, e in zip(series.windows, errors, strict=True)
            ],
            # A window's quantiles are p50, p90 and p99.
            "p50_ms": [_ms(w.p50) for w in series.windows],
            "p99_ms": [_ms(w.p99) for w in series.windows],
        },
        "drift": {"t": times, "psi": psi},
        "summary": None
        if latest is None
        else {
            "start": _iso(latest.start),
            "end": _iso(min(latest.end, now)),
            "dataset_drift": latest.dataset_drift,
            "drifted_share": latest.drifted_share,
            "too_few_rows": latest.too_few_rows,
            "features": [_feature(f) for f in latest.features],
        },
        "baseline_histograms": await _baseline(api, series) if baseline else None,
    }
