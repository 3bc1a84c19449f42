"""Data set versions and their profiles, the drift baseline of every feature trained on them.

A profile's JSON form (``DatasetProfile.to_json``) is the one every process reads and writes: the registry's
``dataset_versions.profile`` column, a model repository's ``profile.json`` (with a ``"target"`` key beside it) and
the trainers' output. JSON has no NaN or infinity, so non-finite floats are written as the text ``float()`` reads back
(``"nan"``, ``"inf"``, ``"-inf"``).

Binning rule, shared by the trainers and the monitoring code: ``bin_edges`` ``e0 < e1 < … < ek`` define ``k`` bins;
the first is closed on both sides, ``[e0, e1]``, every later one is ``(e[i], e[i+1]]``. A value ``v`` falls in bin
``max(searchsorted(edges, v, side="left") - 1, 0)`` when ``e0 <= v <= ek``; values outside the edges are outside every
bin. A column with a single distinct value has the edges ``(v, v)`` and one bin.

Profiles made before numeric edges were float32 and rarer categories were listed by name are *outdated*
(``DatasetProfile.outdated``): served FP32 values equal to a float64 edge fall one bin up, and an unseen category cannot
be told from a rare one. The rule reads the profile itself, so it holds for every stored profile without a format
number: an edge float32 cannot represent exactly, or categories beyond the top ones that are few enough to list
(``distinct`` tells how many) but are not listed.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

__all__ = [
    "LISTED_CATEGORIES",
    "TRAINING_PROFILE",
    "CategoryCount",
    "ColumnProfile",
    "DatasetProfile",
    "DatasetVersion",
    "NewDatasetVersion",
    "TrainingProfile",
]

TRAINING_PROFILE = "profile.json"
"""The name of a trained version's ``TrainingProfile`` attachment (the same file name and form as in a model
repository)."""


LISTED_CATEGORIES = 1000
"""The most categories beyond the top ones a profile lists by name in ``other_categories``."""


def _number(value: float) -> float | str:
    return value if math.isfinite(value) else str(value)


def _is_float32(value: float) -> bool:
    if not math.isfinite(value):
        return True  # an open outer bin or a column without values; float32 has them too
    try:
        return bool(struct.unpack("f", struct.pack("f", value))[0] == value)
    except OverflowError:  # beyond float32's range
        return False


@dataclass(frozen=True, slots=True)
class CategoryCount:
    """One category value (as text) and how many rows hold it."""

    value: str
    count: int


@dataclass(frozen=True, slots=True)
class ColumnProfile:
    """One column of a data set as the trainers profiled it: the drift baseline of its feature.

    Numeric columns fill the bins and moments; categorical and boolean ones the categories. Float statistics may be
    NaN (a column with no value) and bin edges infinite (open outer bins).
    """

    name: str
    dtype: str
    """polars dtype as text, e.g. ``Float64``."""
    kind: str
    """``numeric``, ``categorical``, ``boolean``, ``datetime`` or ``other``."""
    missing: int
    missing_rate: float
    bin_edges: tuple[float, ...] = ()
    """Non-decreasing; one more than ``bin_counts``."""
    bin_counts: tuple[int, ...] = ()
    min: float = 0.0
    max: float = 0.0
    mean: float = 0.0
    std: float = 0.0
    distinct: int = 0
    top_categories: tuple[CategoryCount, ...] = ()
    """Most frequent first."""
    other_count: int = 0
    other_categories: tuple[str, ...] = ()
    """The values ``other_count`` counts, sorted, when there are few enough to list (at most ``LISTED_CATEGORIES``);
    empty when there are none or more."""

    @property
    def outdated(self) -> bool:
        """Whether an older profiler made this column: an edge that is not a float32, or rarer categories that
        should be listed and are not (see the module's docstring)."""
        if not all(_is_float32(edge) for edge in self.bin_edges):
            return True
        unlisted = self.distinct - len(self.top_categories)
        return bool(self.top_categories) and 0 < unlisted <= LISTED_CATEGORIES and not self.other_categories

    @property
    def categories(self) -> tuple[str, ...]:
        """The values of ``top_categories``, most frequent first."""
        return tuple(category.value for category in self.top_categories)

    def known_categories(self) -> frozenset[str] | None:
        """Every category the training data had; None when the profile does not list them all (then a value
        outside them may be a rare one, not an unseen one)."""
        if not self.top_categories or (self.other_count and not self.other_categories):
            return None
        return frozenset((*self.categories, *self.other_categories))

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "dtype": self.dtype,
            "kind": self.kind,
            "missing": self.missing,
            "missing_rate": _number(self.missing_rate),
            "bin_edges": [_number(edge) for edge in self.bin_edges],
            "bin_counts": list(self.bin_counts),
            "min": _number(self.min),
            "max": _number(self.max),
            "mean": _number(self.mean),
            "std": _number(self.std),
            "distinct": self.distinct,
            "top_categories": [{"value": c.value, "count": c.count} for c in self.top_categories],
            "other_count": self.other_count,
            "other_categories": list(self.other_categories),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ColumnProfile:
        """Read the JSON form; only ``name`` and ``kind`` are required (a hand-written ``profile.json`` may give no
        more than a column's kind with its bin edges or categories).

        Raises:
            KeyError, TypeError, ValueError: not a column profile.
        """
        return cls(
            name=str(data["name"]),
            dtype=str(data.get("dtype", "")),
            kind=str(data["kind"]),
            missing=int(data.get("missing", 0)),
            missing_rate=float(data.get("missing_rate", 0.0)),
            bin_edges=tuple(float(edge) for edge in data.get("bin_edges", ())),
            bin_counts=tuple(int(count) for count in data.get("bin_counts", ())),
            min=float(data.get("min", 0.0)),
            max=float(data.get("max", 0.0)),
            mean=float(data.get("mean", 0.0)),
            std=float(data.get("std", 0.0)),
            distinct=int(data.get("distinct", 0)),
            top_categories=tuple(
                CategoryCount(str(c["value"]), int(c.get("count", 0))) for c in data.get("top_categories", ())
            ),
            other_count=int(data.get("other_count", 0)),
            other_categories=tuple(str(value) for value in data.get("other_categories", ())),
        )


@dataclass(frozen=True, slots=True)
class DatasetProfile:
    """Row count and one ``ColumnProfile`` per column, in the data set's column order."""

    rows: int = 0
    columns: tuple[ColumnProfile, ...] = ()

    @property
    def outdated(self) -> bool:
        """Whether an older profiler made this profile (any column ``outdated``): its data set's profile can be
        rebuilt from its rows."""
        return any(column.outdated for column in self.columns)

    def column(self, name: str) -> ColumnProfile:
        """The profile of column ``name``; ``KeyError`` when there is none."""
        for column in self.columns:
            if column.name == name:
                return column
        raise KeyError(name)

    def to_json(self) -> dict[str, Any]:
        return {"rows": self.rows, "columns": [column.to_json() for column in self.columns]}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> DatasetProfile:
        """Read the JSON form (extra keys, such as a ``profile.json``'s ``"target"``, are ignored).

        Raises:
            KeyError, TypeError, ValueError: not a profile.
        """
        return cls(
            rows=int(data.get("rows", 0)), columns=tuple(ColumnProfile.from_json(c) for c in data.get("columns", ()))
        )


@dataclass(frozen=True, slots=True)
class TrainingProfile:
    """The rows a model version was trained on, profiled: the columns its spec reads (derived ones included) and the
    target it predicts, which may differ from the target its data set was imported with.

    The drift baseline of the version's inputs and of its predictions (``@prediction``), preferred to the profile of
    its lineage's data set. JSON form: ``DatasetProfile.to_json()`` plus ``"target"``, as a model repository's
    ``profile.json``.
    """

    profile: DatasetProfile
    target: str

    def to_json(self) -> dict[str, Any]:
        return {**self.profile.to_json(), "target": self.target}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TrainingProfile:
        """Read the JSON form.

        Raises:
            KeyError, TypeError, ValueError: not a profile.
        """
        return cls(DatasetProfile.from_json(data), str(data.get("target") or ""))


@dataclass(frozen=True, slots=True)
class NewDatasetVersion:
    """A data set version to record; its Parquet file is already stored under ``sha256``."""

    name: str
    version: str
    """Content hash computed by the client: 16-64 lowercase hex digits."""
    sha256: str
    size_bytes: int
    profile: DatasetProfile = field(default_factory=DatasetProfile)
    source: str = ""
    """Where the data came from, e.g. ``file:credit.csv``; never a password."""
    target: str = ""
    description: str = ""


@dataclass(frozen=True, slots=True)
class DatasetVersion:
    name: str
    version: str
    sha256: str
    size_bytes: int
    profile: DatasetProfile
    source: str
    target: str
    description: str
    created_at: datetime
    created_by: str
