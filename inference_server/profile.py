"""A model version's training data profile: the baseline its served inputs and predictions are sketched against.

In a model repository it is ``profile.json`` in the version's directory or, for every version, beside the model's
``config.json``: ``contract.entities.DatasetProfile.to_json()`` plus a ``"target"`` key naming the label column. A
server following the control plane writes it there from the version's lineage. Per column, the sketches read its
kind, bin edges and category values.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from contract.entities import ColumnProfile, DatasetProfile
from contract.errors import ConduitError, ErrorCode

__all__ = ["PROFILE_FILE", "DataProfile", "find_profile", "read_profile"]

PROFILE_FILE = "profile.json"


@dataclass(frozen=True, slots=True)
class DataProfile:
    """A training data set's column profiles by name, and which of them is the target (``""``: none)."""

    columns: Mapping[str, ColumnProfile]
    target: str = ""

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> DataProfile:
        """Read a ``profile.json`` (``DatasetProfile.to_json()`` plus ``"target"``).

        Raises:
            ValueError: a column lacks its name or kind, or its bin edges are not non-decreasing numbers.
        """
        columns: dict[str, ColumnProfile] = {}
        for column in DatasetProfile.from_json(data).columns:
            edges = column.bin_edges
            if any(math.isnan(e) for e in edges) or any(b < a for a, b in itertools.pairwise(edges)):
                raise ValueError(f"column {column.name!r}: bin edges must be non-decreasing numbers, not {list(edges)}")
            if len(edges) == 1:
                raise ValueError(f"column {column.name!r}: one bin edge makes no bin")
            columns[column.name] = column
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
