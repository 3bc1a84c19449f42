"""Data sketches for drift monitoring: served inputs and predictions counted against the training profile.

Per model version, a ``SketchPlan`` matches the model's inputs to the profile's columns. The batcher hands every
executed batch to a ``SketchObserver``, which joins the batch's binned values into one table and keeps it, with the
batch's other counted arrays by reference; the server's flusher then counts everything kept since the last flush at once
(one numba kernel call over all numeric features, one C-level ``Counter`` per categorical feature) and adds the
counts to a ``SumSet``. ``benchmarks/sketches/counting.py`` measured the choices on a 32-feature model: counting
every batch as it executes costs 0.6-1 ms a batch (adding hundreds of series to the sums dominates); keeping only
references and joining every feature's arrays at flush time, 1 + 39 us; joining at keep time, about 12 + 9 us.
Served at concurrency 16, sketches cost 3% of the server's CPU per inference (``benchmarks/sketches/results.md``).

Metrics (the control plane's receiver ingests exactly these):

- ``conduit.sketch.bin`` {model, version, feature, bin}: numeric features, ``bin`` = ``"0"`` … ``"k-1"`` (the
  profile's bins: ``[e0, e1]``, then ``(e[i], e[i+1]]``), ``"below"``, ``"above"`` (outside the edges) or
  ``"missing"`` (NaN).
- ``conduit.sketch.category`` {model, version, feature, category}: categorical and boolean features, ``category`` =
  a top category of the profile, ``"__other__"`` for any other value, ``"missing"`` for the empty string, and, when
  the profile lists every category of the training data (``ColumnProfile.known_categories``), ``"__unseen__"`` for
  the values it never had (``"__other__"`` then counts only the rarer categories it had).

Numeric values are binned as float32 whatever their datatype, as the trainers' profile binned them
(``trainers.datasets._profile``): a served value equal to a training value then lands in the bin it was counted in.
- feature ``@prediction``: classifiers count the predicted class index (``label``) as a category; regressors bin
  ``variable`` over the target column's edges.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from contract import metrics
from contract.entities import ColumnProfile
from inference_server.kernels import histogram_counts
from inference_server.profile import DataProfile
from inference_server.telemetry._sums import SumSet

if TYPE_CHECKING:
    from contract.entities import TensorSignature
    from inference_server.spec import ModelSpec

__all__ = [
    "SketchObserver",
    "SketchPlan",
    "VersionSketches",
]

log = logging.getLogger(__name__)

# Past this many rows kept for the next flush, the observer counts them at once: memory stays bounded even when
# the flusher is late.
MAX_PENDING_ROWS = 1 << 16
_NUMERIC = frozenset({"UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64", "FP16", "FP32", "FP64"})
_BOOLEAN_TEXT = {1.0: "true", 0.0: "false"}


@dataclass(frozen=True, slots=True)
class _Source:
    """Where a sketched value comes from: an input by name, or an output by position."""

    name: str
    output: int = -1
    flat: bool = False
    """Whether the tensor is ``[rows]`` rather than ``[rows, 1]``."""


@dataclass(frozen=True, slots=True)
class _Binned:
    feature: str
    source: _Source
    bins: int
    datatype: str


@dataclass(frozen=True, slots=True)
class _Categorized:
    feature: str
    source: _Source
    categories: tuple[str, ...]
    numeric: bool
    """A boolean column served as a number: 1 is "true", 0 "false", NaN missing."""
    known: frozenset[str] | None
    """Every category of the training data, when the profile lists them all: any other value is unseen."""


@dataclass(frozen=True, slots=True)
class _Classes:
    source: _Source
    classes: int
    """Class indices 0 … classes-1 are always reported; 0 when the graph does not say how many."""


def _one_per_row(spec: ModelSpec, tensor: TensorSignature) -> bool:
    return spec.batched and tensor.shape in ((), (1,))


class SketchPlan:
    """What to count for one loaded model version: its inputs that match a profile column, and its prediction."""

    def __init__(self, spec: ModelSpec, profile: DataProfile) -> None:
        self.model, self.version = spec.name, spec.version
        binned: list[tuple[_Binned, tuple[float, ...]]] = []
        self._categorized: list[_Categorized] = []
        self._classes: _Classes | None = None
        for tensor in spec.inputs:
            column = profile.columns.get(tensor.name)
            if column is None or not _one_per_row(spec, tensor):
                continue
            source = _Source(tensor.name, flat=tensor.shape == ())
            if tensor.datatype in _NUMERIC and column.kind == "numeric" and column.bin_edges:
                bins = len(column.bin_edges) - 1
                binned.append((_Binned(tensor.name, source, bins, tensor.datatype), column.bin_edges))
            elif column.kind == "boolean" and tensor.datatype in _NUMERIC:
                self._categorized.append(
                    _Categorized(tensor.name, source, column.categories, numeric=True, known=column.known_categories())
                )
            elif column.kind in ("categorical", "boolean") and tensor.datatype == "BYTES":
                self._categorized.append(
                    _Categorized(tensor.name, source, column.categories, numeric=False, known=column.known_categories())
                )
        outputs = spec.output_index
        if "label" in outputs and "probabilities" in outputs:
            label = spec.outputs[outputs["label"]]
            probabilities = spec.outputs[outputs["probabilities"]]
            if label.datatype in _NUMERIC and _one_per_row(spec, label):
                width = probabilities.shape[-1] if probabilities.shape else -1
                source = _Source("label", outputs["label"], flat=label.shape == ())
                self._classes = _Classes(source, max(width, 0))
        elif "variable" in outputs:
            variable = spec.outputs[outputs["variable"]]
            target: ColumnProfile | None = profile.columns.get(profile.target) if profile.target else None
            numeric = variable.datatype in _NUMERIC and _one_per_row(spec, variable)
            if target is not None and target.bin_edges and numeric:
                source = _Source("variable", outputs["variable"], flat=variable.shape == ())
                bins = len(target.bin_edges) - 1
                binned.append((_Binned(metrics.PREDICTION, source, bins, variable.datatype), target.bin_edges))
        self._binned = [b for b, _ in binned]
        # What is kept of a batch besides its binned table: the categorized inputs, then the predicted class.
        self._kept = tuple(c.source for c in self._categorized) + (
            (self._classes.source,) if self._classes is not None else ()
        )
        self._sources = tuple(b.source for b in self._binned)
        plain = all(s.output < 0 and not s.flat for s in self._sources)
        self._inputs_only = tuple(s.name for s in self._sources) if plain else None
        # Features with fewer bins repeat their top edge: the kernel then never counts into the padding bins.
        widest = max((len(edges) for _, edges in binned), default=0)
        self._edges = np.array([list(edges) + [edges[-1]] * (widest - len(edges)) for _, edges in binned]).reshape(
            len(binned), widest
        )
        # Every numeric feature is binned as float32, as the profile binned the training values (see above).
        self._dtype = np.float32

    @property
    def empty(self) -> bool:
        """Whether nothing of the model matches the profile."""
        return not self._binned and not self._categorized and self._classes is None

    @property
    def features(self) -> list[str]:
        """The sketched features, numeric first (``@prediction`` among them)."""
        return (
            [b.feature for b in self._binned]
            + [c.feature for c in self._categorized]
            + ([metrics.PREDICTION] if self._classes is not None else [])
        )

    def count(self, window: Window, sums: SumSet) -> None:
        """Count the batches kept in ``window`` (executed by this plan's model version) into ``sums``."""
        attributes = {"model": self.model, "version": self.version}
        if window.tables:
            self._count_bins(window.tables, sums, attributes)
        for categorized, parts in zip(self._categorized, window.columns, strict=False):
            labels, counts = _categories(categorized, _joined(parts))
            sums.add(
                metrics.SKETCH_CATEGORY, {**attributes, "feature": categorized.feature}, "category", labels, counts
            )
        if self._classes is not None:
            labels, counts = _classes(self._classes, _joined(window.columns[-1]))
            sums.add(metrics.SKETCH_CATEGORY, {**attributes, "feature": metrics.PREDICTION}, "category", labels, counts)

    def window(self) -> Window:
        """An empty window of batches for this plan."""
        return Window(self, [], [[] for _ in self._kept])

    def keep(self, window: Window, feeds: Mapping[str, np.ndarray], outputs: Sequence[np.ndarray]) -> None:
        """Add one executed batch to ``window``: its binned values as one table, its other counted arrays by
        reference. Only arrays are kept, no dict or list of the batch's: containers kept for a second get promoted
        through the garbage collector's generations and make its full collections run more often."""
        table = self.gather(feeds, outputs)
        if table is not None:
            window.tables.append(table)
        for source, parts in zip(self._kept, window.columns, strict=True):
            parts.append(outputs[source.output] if source.output >= 0 else feeds[source.name])

    def gather(self, feeds: Mapping[str, np.ndarray], outputs: Sequence[np.ndarray]) -> np.ndarray | None:
        """The binned values of one batch as one rows x features table (``None``: nothing is binned).

        Done as the batch is kept: one ``concatenate`` of a few microseconds, where joining every feature's arrays
        of a whole window at flush time cost several times more (one numpy call per feature and batch).
        """
        if not self._binned:
            return None
        if self._inputs_only is not None:  # the usual case: [rows, 1] inputs side by side
            return np.concatenate(
                [feeds[name] for name in self._inputs_only], axis=1, dtype=self._dtype, casting="unsafe"
            )
        columns = [
            (outputs[s.output] if s.output >= 0 else feeds[s.name]).reshape(-1, 1) if s.flat
            else (outputs[s.output] if s.output >= 0 else feeds[s.name])
            for s in self._sources
        ]  # fmt: skip
        return np.concatenate(columns, axis=1, dtype=self._dtype, casting="unsafe")

    def _count_bins(self, tables: list[np.ndarray], sums: SumSet, attributes: dict[str, str]) -> None:
        # One kernel call for the whole window.
        values = tables[0] if len(tables) == 1 else np.concatenate(tables)
        widest = self._edges.shape[1] - 1
        counts = np.zeros((len(self._binned), widest + 3), dtype=np.int64)
        histogram_counts(values, self._edges, counts)
        for index, binned in enumerate(self._binned):
            row = counts[index]
            sums.add(
                metrics.SKETCH_BIN,
                {**attributes, "feature": binned.feature},
                "bin",
                _bin_labels(binned.bins, (metrics.BELOW, metrics.ABOVE, metrics.MISSING)),
                np.concatenate([row[: binned.bins], row[widest:]]),
            )


@dataclass(slots=True)
class Window:
    """The batches of one plan kept since the last flush: binned tables and, per kept source, its arrays."""

    plan: SketchPlan
    tables: list[np.ndarray]
    columns: list[list[np.ndarray]]


def _joined(parts: list[np.ndarray]) -> np.ndarray:
    return (parts[0] if len(parts) == 1 else np.concatenate(parts)).reshape(-1)


@functools.cache
def _bin_labels(count: int, extra: tuple[str, ...] = ()) -> tuple[str, ...]:
    return (*(str(b) for b in range(count)), *extra)


def _categories(categorized: _Categorized, values: np.ndarray) -> tuple[tuple[str, ...], np.ndarray]:
    """Counts of the top categories, then of the other values, then of the missing ones."""
    categories = categorized.categories
    known = categorized.known
    unseen = 0
    if categorized.numeric:
        numbers = values.astype(np.float64, copy=False)
        found = Counter({_BOOLEAN_TEXT[v]: int(np.count_nonzero(numbers == v)) for v in (1.0, 0.0)})
        missing = int(np.count_nonzero(np.isnan(numbers)))
        other = len(numbers) - missing - found["true"] - found["false"]
        if known is not None and not known - {"true", "false"}:
            other, unseen = 0, other
    else:
        # Python strings (numba cannot read them): a C-level Counter, then a lookup per distinct value.
        found = Counter(values.tolist())
        missing = found.pop("", 0)
        other = 0
    counts = np.zeros(len(categories) + 2, dtype=np.int64)
    index = {category: i for i, category in enumerate(categories)}
    for value, count in found.items():
        at = index.get(value)
        if at is not None:
            counts[at] += count
        elif known is not None and value not in known:
            unseen += count
        else:
            other += count
    counts[-2], counts[-1] = other, missing
    labels = (*categories, metrics.OTHER, metrics.MISSING)
    if known is not None:  # only a profile listing every category tells an unseen value from a rare one
        labels = (*labels, metrics.UNSEEN)
        counts = np.append(counts, unseen)
    if (
        metrics.OTHER in categories or metrics.UNSEEN in categories or metrics.MISSING in categories
    ):  # a category named like a reserved label: add them up
        merged: dict[str, int] = {}
        for label, count in zip(labels, counts.tolist(), strict=True):
            merged[label] = merged.get(label, 0) + count
        return tuple(merged), np.array(list(merged.values()), dtype=np.int64)
    return labels, counts


def _classes(classes: _Classes, labels: np.ndarray) -> tuple[tuple[str, ...], np.ndarray]:
    """Counts of every class index 0 … classes-1, then of any other predicted value."""
    count = classes.classes
    labels = labels.astype(np.int64, copy=False)
    inside = (labels >= 0) & (labels < count)
    counts = np.bincount(labels[inside], minlength=count)
    names = _bin_labels(count)
    if inside.all():
        return names, counts
    values, extra = np.unique(labels[~inside], return_counts=True)
    return (*names, *(str(v) for v in values.tolist())), np.concatenate([counts, extra])


class VersionSketches:
    """The batches of one model version kept for the next flush, by the plan of the session that executed them."""

    def __init__(self, sums: SumSet) -> None:
        self._sums = sums
        self._lock = threading.Lock()
        self._windows: dict[int, Window] = {}
        self._rows = 0

    def keep(self, plan: SketchPlan, feeds: Mapping[str, np.ndarray], outputs: Sequence[np.ndarray]) -> None:
        """Keep one executed batch (its arrays by reference: neither the batcher nor the model changes them)."""
        rows = len(outputs[0]) if outputs else 0
        with self._lock:
            window = self._windows.get(id(plan))
            if window is None:
                window = self._windows[id(plan)] = plan.window()
            plan.keep(window, feeds, outputs)
            self._rows += rows
            full = self._rows > MAX_PENDING_ROWS
        if full:
            self.flush()

    def flush(self) -> None:
        """Count every kept batch into the sums."""
        with self._lock:
            windows, self._windows, self._rows = self._windows, {}, 0
        for window in windows.values():
            try:
                window.plan.count(window, self._sums)
            except Exception:  # monitoring must never take serving down; the next window counts again
                log.exception(
                    "model %s version %s: counting data sketches failed", window.plan.model, window.plan.version
                )


class SketchObserver:
    """The batcher's ``BatchObserver`` for one loaded model version: keeps each executed batch for the flusher."""

    def __init__(self, plan: SketchPlan, sketches: VersionSketches) -> None:
        self.plan = plan
        self._sketches = sketches

    def observe(self, feeds: dict[str, np.ndarray], outputs: list[np.ndarray]) -> None:
        self._sketches.keep(self.plan, feeds, outputs)
