"""Parity between a native model and its ONNX graph: where they differ, and by how much."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from contract.errors import ConduitError, ErrorCode

__all__ = ["ParityError", "ParityReport", "compare_outputs"]

_SHOWN_ROWS = 20


@dataclass(frozen=True)
class ParityReport:
    """How the ONNX outputs compare with the native ones on the same rows.

    ``max_gap`` is the largest absolute difference of probabilities (classifiers) or the largest difference of
    predictions relative to ``max(1, |native|)`` (regressors: float32 arithmetic keeps ~7 significant digits);
    ``worst_row``/``worst_column`` locate it. Row lists hold the first 20 offending rows (test-split positions).
    """

    rows: int
    tolerance: float
    max_gap: float
    worst_row: int | None
    worst_column: str | None
    gap_rows: tuple[int, ...]
    gap_count: int
    label_mismatch_rows: tuple[int, ...]
    label_mismatches: int

    @property
    def passed(self) -> bool:
        return self.label_mismatches == 0 and self.gap_count == 0

    def describe(self) -> str:
        """One sentence a person can act on."""
        if self.passed:
            return f"ONNX matches the native model on {self.rows} rows (max gap {self.max_gap:.3g})"
        parts = []
        if self.label_mismatches:
            shown = ", ".join(str(r) for r in self.label_mismatch_rows)
            parts.append(f"labels differ on {self.label_mismatches} of {self.rows} rows (rows {shown})")
        if self.gap_count:
            shown = ", ".join(str(r) for r in self.gap_rows)
            parts.append(
                f"outputs differ by more than {self.tolerance:g} on {self.gap_count} of {self.rows} rows "
                f"(rows {shown}); max gap {self.max_gap:.3g} at row {self.worst_row}, column {self.worst_column!r}"
            )
        return "ONNX does not match the native model: " + "; ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.update(gap_rows=list(self.gap_rows), label_mismatch_rows=list(self.label_mismatch_rows))
        data["passed"] = self.passed
        return data


class ParityError(ConduitError, ValueError):
    """The exported graph does not answer like the native model; ``report`` says where, when known."""

    def __init__(self, message: str, report: ParityReport | None = None) -> None:
        super().__init__(ErrorCode.FAILED_PRECONDITION, message)
        self.report = report


def compare_outputs(
    native: np.ndarray,
    served: np.ndarray,
    *,
    columns: Sequence[str],
    tolerance: float,
    native_labels: np.ndarray | None = None,
    served_labels: np.ndarray | None = None,
    relative: bool = False,
) -> ParityReport:
    """Compare ``[rows, columns]`` outputs (and labels, for classifiers) of the native model and the graph."""
    native = np.asarray(native, dtype=np.float64).reshape(len(native), -1)
    served = np.asarray(served, dtype=np.float64).reshape(native.shape)
    gaps = np.abs(served - native)
    if relative:
        gaps = gaps / np.maximum(1.0, np.abs(native))
    gaps = np.where(np.isnan(gaps), np.inf, gaps)  # NaN on one side only is the worst gap there is
    gaps[np.isnan(native) & np.isnan(served)] = 0.0
    worst = np.unravel_index(int(np.argmax(gaps)), gaps.shape) if gaps.size else None
    offending = np.flatnonzero((gaps > tolerance).any(axis=1))
    mismatched = np.array([], dtype=np.int64)
    if native_labels is not None and served_labels is not None:
        mismatched = np.flatnonzero(np.asarray(native_labels).ravel() != np.asarray(served_labels).ravel())
    return ParityReport(
        rows=len(native),
        tolerance=tolerance,
        max_gap=float(gaps[worst]) if worst is not None else 0.0,
        worst_row=int(worst[0]) if worst is not None else None,
        worst_column=columns[int(worst[1])] if worst is not None else None,
        gap_rows=tuple(int(r) for r in offending[:_SHOWN_ROWS]),
        gap_count=len(offending),
        label_mismatch_rows=tuple(int(r) for r in mismatched[:_SHOWN_ROWS]),
        label_mismatches=len(mismatched),
    )
