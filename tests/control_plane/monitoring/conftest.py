"""Helpers of the monitoring tests: sketches of raw samples as inference servers count them (the binning rule of
``trainers.datasets`` profiles, written here with numpy), for comparison with the receiver's and the drift code's
results."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Collection, Iterable, Sequence

import numpy as np


def numeric_sketch(values: Iterable[float], edges: Sequence[float]) -> dict[str, int]:
    """Counts per profile bin (``[e0, e1]``, then ``(e[i], e[i+1]]``), ``below``, ``above`` and ``missing`` (NaN)."""
    sketch: Counter[str] = Counter()
    for value in values:
        if math.isnan(value):
            sketch["missing"] += 1
        elif value < edges[0]:
            sketch["below"] += 1
        elif value > edges[-1]:
            sketch["above"] += 1
        else:
            sketch[str(max(int(np.searchsorted(edges, value, side="left")) - 1, 0))] += 1
    return dict(sketch)


def categorical_sketch(values: Iterable[str | None], top: Collection[str]) -> dict[str, int]:
    """Counts of the profile's ``top`` categories, ``__other__`` for the rest and ``missing`` for None."""
    return dict(Counter("missing" if v is None else v if v in top else "__other__" for v in values))
