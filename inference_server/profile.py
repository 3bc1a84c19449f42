"""A model version's training data profile: the baseline its served inputs and predictions are sketched against.

In a model repository it is ``profile.json`` in the version's directory or, for every version, beside the model's
``config.json``: the JSON of ``trainers.datasets.DatasetProfile.to_dict()`` plus a ``"target"`` key naming the label
column. A server following the control plane writes it there from the version's lineage. Only what the sketches need
is read: per column, its kind, bin edges and top category values.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from contract.errors import ConduitError, ErrorCode

__all__ = ["PROFILE_FILE", "ColumnBaseline", "DataProfile", "find_profile", "read_profile"]

PROFILE_FILE = "profile.json"


@dataclass(frozen=True, slots=True)
class ColumnBaseline:
    """One column of the training data: numeric columns have bin edges, categorical and boolean ones categories."""

    name: str
    kind: str
    bin_edges: tuple[float, ...] = ()
    categories: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class DataProfile:
    """The columns of a training data set by name, and which of them is the target (``""``: none)."""

    columns: Mapping[str, ColumnBaseline]
    target: str = ""

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> DataProfile:
        """Read the JSON form (``DatasetProfile.to_dict()`` plus ``"target"``).

        Raises:
            ValueError: a column lacks its name or kind, or its bin edges are not non-decreasing numbers.
        """
        columns: dict[str, ColumnBaseline] = {}
        for item in data.get("columns", []):
            name, kind = str(item["name"]), str(item["kind"])
            edges = tuple(float(e) for e in item.get("bin_edges", ()))
            if any(math.isnan(e) for e in edges) or any(b < a for a, b in itertools.pairwise(edges)):
                raise ValueError(f"column {name!r}: bin edges must be non-decreasing numbers, not {list(edges)}")
            if len(edges) == 1:
                raise ValueError(f"column {name!r}: one bin edge makes no bin")
            categories = tuple(str(c["value"]) for c in item.get("top_categories", ()))
            columns[name] = ColumnBaseline(name, kind, edges, categories)
        return cls(columns, str(data.get("target") or ""))


def find_profile(version_dir: Path) -> Path | None:
    """The profile of the version in ``version_dir``: its own ``profile.json``, else its model's; ``None``: none."""
    for candidate in (version_dir / PROFILE_FILE, version_dir.parent / PROFILE_FILE):
        if candidate.is_file():
            return candidate
    return None


def read_profile(path: Path) -> DataProfile:
    """Read a ``profile.json``.

    Raises:
        ConduitError: FAILED_PRECONDITION when it is not valid JSON or not a profile.
    """
    try:
        return DataProfile.from_json(json.loads(path.read_text()))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConduitError(ErrorCode.FAILED_PRECONDITION, f"invalid {path}: {exc}") from None
