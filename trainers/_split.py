"""Splits of row positions: random, stratified by class, by time (newest rows held out) or by group."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
from sklearn.model_selection import GroupShuffleSplit, train_test_split

from trainers._errors import SpecError
from trainers.spec import SplitSection

__all__ = ["split_rows"]


def split_rows(
    split: SplitSection, frame: pl.DataFrame, target: np.ndarray | None, size: float, *, what: str = "test"
) -> tuple[np.ndarray, np.ndarray]:
    """Positions of (kept, held-out) rows of ``frame``; ``size`` is the held-out share (of groups, for ``group``).

    ``target`` holds class indices for a stratified split (None otherwise).

    Raises:
        SpecError: the rows cannot be split that way (a class with one row, a single group, too few rows).
    """
    rows = np.arange(frame.height)
    held_out = math.ceil(frame.height * size)
    if held_out < 1 or held_out >= frame.height:
        raise SpecError(f"[split] {frame.height} rows cannot give a {what} share of {size:g}")
    try:
        if split.method == "time":
            assert split.time_column is not None
            # Stable: rows with the same time keep their order, so the split is deterministic.
            order = frame.select(pl.int_range(pl.len()).sort_by(split.time_column, maintain_order=True)).to_series()
            ordered = order.to_numpy()
            return np.sort(ordered[:-held_out]), np.sort(ordered[-held_out:])
        if split.method == "group":
            assert split.group_column is not None
            groups = frame[split.group_column].cast(pl.String).fill_null("").to_numpy()
            splitter = GroupShuffleSplit(n_splits=1, test_size=size, random_state=split.seed)
            kept, out = next(splitter.split(rows, groups=groups))
            return np.sort(kept), np.sort(out)
        stratify = target if split.method == "stratified" else None
        kept, out = train_test_split(rows, test_size=held_out, random_state=split.seed, stratify=stratify)
        return np.sort(kept), np.sort(out)
    except ValueError as error:
        raise SpecError(f"[split] cannot make a {split.method} {what} split: {error}") from None
