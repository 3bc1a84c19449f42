"""Per-minute roll-ups from decoded data points, and the arithmetic that adds roll-ups together.

A point counts toward the minute (UTC) its interval ends in: with the one-minute-or-shorter export intervals of
servers pushing deltas, that is within a minute of when it happened, and it needs no guess about how the counts
spread over the interval.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime

from contract import metrics
from contract.entities import Rollup
from contract.errors import ConduitError, ErrorCode
from control_plane.monitoring.histograms import merge_histograms
from control_plane.monitoring.points import HistogramPoint, Point, SumPoint

__all__ = [
    "MAX_COUNT",
    "MAX_KEY",
    "MAX_SKETCH_KEYS",
    "check_counts",
    "fold",
    "merge_counts",
    "merge_rollups",
    "minute_of",
    "rollups_of",
]

NS_PER_MINUTE = 60 * 1_000_000_000
# Longest attribute values, as the roll-up tables store them.
_LIMITS = {"model": 128, "version": 64, "status": 64, "feature": 255}
MAX_KEY = 4096
"""Longest bin or category key (a profile's category values are at most this long)."""
MAX_SKETCH_KEYS = 2 * metrics.MAX_BINS
"""Most distinct keys one feature's sketch may have in one export: servers fold rare categories into ``__other__``."""
_SPECIAL_BINS = frozenset({metrics.BELOW, metrics.ABOVE, metrics.MISSING})
MAX_COUNT = 2**63 - 1
"""Largest count a roll-up holds: SQL's BIGINT (OTLP's histogram counts are unsigned 64-bit, and counts add up)."""


def _invalid(point: Point, message: str) -> ConduitError:
    return ConduitError(ErrorCode.INVALID_ARGUMENT, f"metric {point.metric}: {message}")


def minute_of(time_ns: int) -> datetime:
    """The first instant of the UTC minute holding ``time_ns``."""
    return datetime.fromtimestamp(time_ns // NS_PER_MINUTE * 60, UTC)


def _required(point: Point, key: str) -> str:
    value = point.attribute(key)
    if value is None or (key in _LIMITS and not value):
        raise _invalid(point, f"every point needs the attribute {key!r}")
    limit = _LIMITS.get(key, MAX_KEY)
    if len(value) > limit:
        raise _invalid(point, f"attribute {key!r} is longer than {limit} characters")
    return value


def _bin(point: Point) -> str:
    key = _required(point, "bin")
    if key in _SPECIAL_BINS or (key.isdigit() and str(int(key)) == key and int(key) < metrics.MAX_BINS):
        return key
    raise _invalid(
        point, f"bin {key[:32]!r} is neither a bin index below {metrics.MAX_BINS} nor below, above or missing"
    )


def _rollup(point: Point) -> Rollup | None:
    """The roll-up holding ``point`` alone (a delta), or None when it adds nothing the roll-ups keep."""
    model, version = _required(point, "model"), _required(point, "version")
    base = Rollup(model=model, version=version, minute=minute_of(point.time_ns))
    if isinstance(point, HistogramPoint):
        if point.metric != metrics.DURATION:
            raise _invalid(point, "must be a Sum, not a Histogram")
        if _required(point, "status") != metrics.OK or point.histogram.count == 0:
            return None
        return replace(base, latency=point.histogram)
    assert isinstance(point, SumPoint)
    if point.value == 0:
        return None
    if point.metric == metrics.REQUESTS:
        status = _required(point, "status")
        if status == metrics.OK:
            return replace(base, requests=point.value)
        return replace(base, errors={status: point.value})
    if point.metric in metrics.SKETCH_KINDS:
        feature = _required(point, "feature")
        key = _bin(point) if point.metric == metrics.SKETCH_BIN else _required(point, "category")
        return replace(base, sketches={(feature, metrics.SKETCH_KINDS[point.metric]): {key: point.value}})
    raise _invalid(point, "must be a Histogram, not a Sum")


def merge_counts(a: Mapping[str, int], b: Mapping[str, int]) -> dict[str, int]:
    """Counts of both, key by key."""
    merged = dict(a)
    for key, count in b.items():
        merged[key] = merged.get(key, 0) + count
    return merged


def merge_rollups(a: Rollup, b: Rollup) -> Rollup:
    """Everything ``a`` and ``b`` hold, under ``a``'s model, version and minute."""
    sketches = dict(a.sketches)
    for key, counts in b.sketches.items():
        sketches[key] = merge_counts(sketches.get(key, {}), counts)
    return replace(
        a,
        requests=a.requests + b.requests,
        errors=merge_counts(a.errors, b.errors),
        latency=merge_histograms(a.latency, b.latency),
        sketches=sketches,
    )


def fold(rollups: Iterable[Rollup]) -> list[Rollup]:
    """One roll-up per (model, version, minute), in that order."""
    merged: dict[tuple[str, str, datetime], Rollup] = {}
    for rollup in rollups:
        key = (rollup.model, rollup.version, rollup.minute)
        found = merged.get(key)
        merged[key] = rollup if found is None else merge_rollups(found, rollup)
    return [merged[key] for key in sorted(merged)]


def check_counts(rollup: Rollup) -> Rollup:
    """``rollup``, once every count it holds is at most ``MAX_COUNT`` and its latency sum is finite.

    Raises:
        ConduitError: INVALID_ARGUMENT otherwise (a count this large is no count of requests: a broken exporter).
    """
    counts = [rollup.requests, *rollup.errors.values()]
    counts += [count for sketch in rollup.sketches.values() for count in sketch.values()]
    latency = rollup.latency
    if latency is not None:
        counts += [latency.count, *latency.counts]
    if any(count > MAX_COUNT for count in counts) or (latency is not None and not math.isfinite(latency.sum)):
        raise ConduitError(
            ErrorCode.INVALID_ARGUMENT,
            f"model {rollup.model!r} version {rollup.version!r}: the counts of the minute "
            f"{rollup.minute:%Y-%m-%d %H:%M} would pass 2^63 - 1 (or its latency sum would not be finite)",
        )
    return rollup


def rollups_of(points: Sequence[Point]) -> list[Rollup]:
    """The roll-ups of delta points of the metric contract (``contract``), one per (model, version, minute).

    Raises:
        ConduitError: INVALID_ARGUMENT for a point without the attributes its metric needs, with an attribute too
            long to store, a bin that is no bin, a feature with more keys than any profile gives, or counts that
            add up past ``MAX_COUNT``.
    """
    rollups = fold(rollup for point in points if (rollup := _rollup(point)) is not None)
    for rollup in rollups:
        check_counts(rollup)
        for (feature, _), counts in rollup.sketches.items():
            if len(counts) > MAX_SKETCH_KEYS:
                raise ConduitError(
                    ErrorCode.INVALID_ARGUMENT,
                    f"feature {feature[:64]!r} of model {rollup.model!r} has {len(counts)} distinct bins or "
                    f"categories in one export; at most {MAX_SKETCH_KEYS}",
                )
    return rollups
