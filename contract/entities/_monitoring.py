"""What the servers report (per-minute roll-ups of their metrics and sketches, sampled prediction logs) and what the
control plane makes of it: monitoring reports, window by window, with the drift of every sketched feature."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

__all__ = [
    "DatasetRef",
    "DriftRule",
    "FeatureDrift",
    "LatencyHistogram",
    "MonitoringReport",
    "MonitoringWindow",
    "NewPredictionLog",
    "PredictionLog",
    "Rollup",
]


@dataclass(frozen=True, slots=True)
class LatencyHistogram:
    """Request durations in seconds as OpenTelemetry exports them: ``counts[i]`` holds the values in
    ``(bounds[i-1], bounds[i]]``, the last count those above ``bounds[-1]``."""

    bounds: tuple[float, ...]
    counts: tuple[int, ...]
    """One more than ``bounds``."""
    count: int
    sum: float
    min: float | None = None
    """None when no exporter reported it."""
    max: float | None = None


@dataclass(frozen=True, slots=True)
class Rollup:
    """What the inference servers reported about one model version during one minute (UTC), or what is added to it.

    ``version`` is the text the servers send, so that a server outside the registry is recorded too.
    """

    model: str
    version: str
    minute: datetime
    """The minute's first instant, timezone-aware."""
    requests: int = 0
    """Requests answered OK."""
    errors: Mapping[str, int] = field(default_factory=dict)
    """Failed requests by status name (``INVALID_ARGUMENT``…)."""
    latency: LatencyHistogram | None = None
    """Durations of the OK requests; None: none reported."""
    sketches: Mapping[tuple[str, str], Mapping[str, int]] = field(default_factory=dict)
    """(feature, ``numeric`` or ``categorical``) -> count per bin or category, as the servers send them."""


@dataclass(frozen=True, slots=True)
class NewPredictionLog:
    """A Parquet file of sampled predictions of one model version, as an inference server announces it; its bytes
    are already stored under ``sha256``."""

    model: str
    version: int
    first_at: datetime
    """Time of its earliest row, timezone-aware."""
    last_at: datetime
    """Time of its latest row."""
    rows: int
    sha256: str
    size_bytes: int
    server: str
    """Instance name of the server that sampled it."""


@dataclass(frozen=True, slots=True)
class PredictionLog:
    """A stored prediction log; ``sha256`` is its key in the artifact store."""

    id: int
    model: str
    version: int
    first_at: datetime
    last_at: datetime
    rows: int
    sha256: str
    size_bytes: int
    server: str
    created_at: datetime
    created_by: str


@dataclass(frozen=True, slots=True)
class DriftRule:
    """The thresholds of the drift verdicts: a feature drifted when its PSI is at least ``psi_threshold`` and its
    chi-squared p-value below ``chi2_p_threshold``; a window's data set drifted when at least ``drift_share`` of its
    input features did. A feature with fewer than ``min_rows`` values in a window, or whose chi-squared test has
    too few rows to meet ``min_expected`` (see ``control_plane.monitoring.drift``), has "too few rows" instead of a
    verdict."""

    psi_threshold: float = 0.2
    chi2_p_threshold: float = 0.01
    drift_share: float = 0.5
    min_rows: int = 100
    """Fewest values (missing ones included) a feature needs in a window for a verdict."""
    min_expected: float = 5.0
    """Fewest rows the chi-squared test expects in each cell it tests (Cochran's rule); cells expecting fewer are
    pooled first."""


@dataclass(frozen=True, slots=True)
class FeatureDrift:
    """One feature in one window against its training profile."""

    feature: str
    kind: str
    """``numeric`` or ``categorical``."""
    count: int
    """Values the window holds, missing ones included."""
    psi: float
    js: float
    chi2: float
    chi2_p_value: float
    drifted: bool
    ks: float | None = None
    """Numeric features only."""
    ks_p_value: float | None = None
    cells: tuple[str, ...] = ()
    """The cells compared, in order: ``[e0, e1]``, ``(e1, e2]``… then ``missing`` (numeric), or the top categories,
    ``__other__``, then ``missing`` (categorical)."""
    observed: tuple[int, ...] = ()
    """The window's counts per cell: the very counts every statistic above was computed on."""
    expected: tuple[int, ...] = ()
    """The profile's counts per cell."""
    too_few_rows: bool = False
    """The window holds too few of its values for a verdict (``DriftRule.min_rows``, ``min_expected``): ``drifted``
    is then False, whatever the statistics say."""
    unseen: int | None = None
    """Categorical features: values the training data set never had; None when its profile does not list all of its
    categories (numeric features, or more than the profile's top categories)."""

    @property
    def verdict(self) -> str:
        """``drift``, ``no drift`` or ``too few rows``."""
        return "too few rows" if self.too_few_rows else "drift" if self.drifted else "no drift"


@dataclass(frozen=True, slots=True)
class MonitoringWindow:
    """What one window of a model version's traffic held."""

    start: datetime
    end: datetime
    """Exclusive."""
    requests: int
    errors: Mapping[str, int]
    latency: LatencyHistogram | None
    quantiles: tuple[float | None, ...]
    """Latency at p50, p90 and p99 in seconds; None without OK requests."""
    features: tuple[FeatureDrift, ...]
    dataset_drift: bool
    drifted_share: float
    """Drifted input features / input features with a verdict (0 when none had one)."""
    too_few_rows: bool = False
    """Input features were compared but none had enough rows for a verdict."""

    @property
    def p50(self) -> float | None:
        return self.quantiles[0]

    @property
    def p90(self) -> float | None:
        return self.quantiles[1]

    @property
    def p99(self) -> float | None:
        return self.quantiles[2]


@dataclass(frozen=True, slots=True)
class DatasetRef:
    """A data set version by name and version."""

    name: str
    version: str


@dataclass(frozen=True, slots=True)
class MonitoringReport:
    """A model version's traffic window by window, and the data set version its drift is measured against."""

    model: str
    version: int
    baseline: DatasetRef | None
    """None: the version's lineage names no data set the control plane has."""
    rule: DriftRule
    windows: tuple[MonitoringWindow, ...]
