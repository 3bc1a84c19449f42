"""Metric data points as the receiver decoded them from OTLP: plain values, free of protobuf."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from contract.entities import LatencyHistogram

__all__ = ["Attributes", "HistogramPoint", "Point", "SumPoint", "Temporality"]

Attributes = tuple[tuple[str, str], ...]
"""A point's attributes, sorted by key: hashable, so a series can be looked up by them."""


class Temporality(enum.Enum):
    """Whether a point counts what happened since the previous export (delta) or since ``start_ns`` (cumulative)."""

    DELTA = "delta"
    CUMULATIVE = "cumulative"


@dataclass(frozen=True, slots=True)
class Point:
    """What every data point carries: its series (metric, attributes, exporting process) and its interval."""

    metric: str
    attributes: Attributes
    instance: str
    """The exporting process (resource attribute ``service.instance.id``); empty when not sent."""
    temporality: Temporality
    start_ns: int
    time_ns: int

    def attribute(self, key: str) -> str | None:
        return next((value for name, value in self.attributes if name == key), None)


@dataclass(frozen=True, slots=True)
class SumPoint(Point):
    """One point of a monotonic counter."""

    value: int


@dataclass(frozen=True, slots=True)
class HistogramPoint(Point):
    """One point of an explicit-bucket histogram."""

    histogram: LatencyHistogram
