"""What the registry holds, as plain immutable values.

Stores return these, never ORM rows: an entity is complete when the session that read it closes, so nothing outside
the store can trigger a lazy load or write through a stale row.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar

__all__ = [
    "AlertRuleRecord",
    "AliasChange",
    "ArtifactRef",
    "Assignment",
    "Attachment",
    "AuditEntry",
    "CategoryCount",
    "ColumnProfile",
    "DatasetProfile",
    "DatasetVersion",
    "Deployment",
    "DeploymentSpec",
    "JobRecord",
    "LatencyHistogram",
    "Lineage",
    "LoadedModel",
    "Model",
    "ModelVersion",
    "NewDatasetVersion",
    "NewPredictionLog",
    "NewVersion",
    "Page",
    "PoolAssignments",
    "PredictionLog",
    "Role",
    "Rollup",
    "ServerRecord",
    "TensorSignature",
    "User",
]

T = TypeVar("T")


class Role(enum.Enum):
    """What a user may do. Admin includes every other role; maintainer includes viewer."""

    VIEWER = "viewer"
    MAINTAINER = "maintainer"
    SERVER = "server"
    ADMIN = "admin"


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of a listing; ``next_token`` is empty on the last page."""

    items: list[T]
    next_token: str = ""


@dataclass(frozen=True, slots=True)
class Model:
    name: str
    description: str
    archived: bool
    created_at: datetime
    created_by: str
    latest_version: int
    """0 while the model has no version."""
    aliases: Mapping[str, int] = field(default_factory=dict)
    """alias -> version"""


@dataclass(frozen=True, slots=True)
class TensorSignature:
    """One input or output of an ONNX graph, in Open Inference Protocol terms (-1: variable dimension)."""

    name: str
    datatype: str
    shape: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Lineage:
    """Where a version came from."""

    dataset: str = ""
    dataset_version: str = ""
    training_spec: str = ""
    code_version: str = ""
    parent_version: int = 0


@dataclass(frozen=True, slots=True)
class Attachment:
    """A document stored with a version (evaluation data, training spec, log); its content is an artifact."""

    name: str
    media_type: str
    sha256: str
    size_bytes: int


@dataclass(frozen=True, slots=True)
class NewVersion:
    """A version to register; its artifact (and its attachments' contents) are already stored under their digests."""

    model: str
    sha256: str
    size_bytes: int
    inputs: tuple[TensorSignature, ...]
    outputs: tuple[TensorSignature, ...]
    metrics: Mapping[str, float] = field(default_factory=dict)
    params: Mapping[str, str] = field(default_factory=dict)
    tags: Mapping[str, str] = field(default_factory=dict)
    lineage: Lineage = field(default_factory=Lineage)
    description: str = ""
    attachments: tuple[Attachment, ...] = ()


@dataclass(frozen=True, slots=True)
class ModelVersion:
    model: str
    version: int
    sha256: str
    size_bytes: int
    inputs: tuple[TensorSignature, ...]
    outputs: tuple[TensorSignature, ...]
    metrics: Mapping[str, float]
    params: Mapping[str, str]
    tags: Mapping[str, str]
    lineage: Lineage
    description: str
    created_at: datetime
    created_by: str
    aliases: tuple[str, ...] = ()
    attachments: tuple[Attachment, ...] = ()
    """By name."""


@dataclass(frozen=True, slots=True)
class AliasChange:
    model: str
    alias: str
    version: int
    previous_version: int | None
    """None: the alias is new."""


@dataclass(frozen=True, slots=True)
class CategoryCount:
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


@dataclass(frozen=True, slots=True)
class DatasetProfile:
    rows: int = 0
    columns: tuple[ColumnProfile, ...] = ()


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


@dataclass(frozen=True, slots=True)
class DeploymentSpec:
    """What to put on a pool: exactly one of ``alias`` (followed as it moves) and ``version`` (pinned)."""

    pool: str
    model: str
    alias: str | None = None
    version: int | None = None
    canary_version: int | None = None
    canary_percent: float = 0.0
    undeploy: bool = False
    """Remove the model from the pool instead; alias, version and canary are then unset."""


@dataclass(frozen=True, slots=True)
class Deployment:
    id: int
    pool: str
    model: str
    alias: str | None
    version: int | None
    canary_version: int | None
    canary_percent: float
    active: bool
    created_at: datetime
    created_by: str
    resolved_version: int | None
    """The version served now: the pinned version, or where the alias points (None: the alias is gone)."""
    undeployed: bool = False


@dataclass(frozen=True, slots=True)
class LoadedModel:
    """A model version as an inference server reports it."""

    model: str
    version: int
    state: str
    reason: str = ""


@dataclass(frozen=True, slots=True)
class ServerRecord:
    id: str
    pool: str
    address: str
    name: str
    registered_at: datetime
    last_heartbeat: datetime | None
    models: tuple[LoadedModel, ...]
    generation: int


@dataclass(frozen=True, slots=True)
class ArtifactRef:
    """One model version's ONNX artifact: content-addressed by its sha256."""

    version: int
    sha256: str
    size_bytes: int

    def to_json(self) -> dict[str, Any]:
        return {"version": self.version, "sha256": self.sha256, "size_bytes": self.size_bytes}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ArtifactRef:
        return cls(int(data["version"]), str(data["sha256"]), int(data["size_bytes"]))


@dataclass(frozen=True, slots=True)
class Assignment:
    """What a pool serves for one model: the primary version and an optional canary taking a share of traffic."""

    model: str
    primary: ArtifactRef
    canary: ArtifactRef | None = None
    canary_percent: float = 0.0

    def artifacts(self) -> list[ArtifactRef]:
        """The primary, then the canary if there is one."""
        return [self.primary] if self.canary is None else [self.primary, self.canary]

    def to_json(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "primary": self.primary.to_json(),
            "canary": None if self.canary is None else self.canary.to_json(),
            "canary_percent": self.canary_percent,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Assignment:
        canary = data.get("canary")
        return cls(
            str(data["model"]),
            ArtifactRef.from_json(data["primary"]),
            None if canary is None else ArtifactRef.from_json(canary),
            float(data.get("canary_percent", 0.0)),
        )


@dataclass(frozen=True, slots=True)
class PoolAssignments:
    """Everything a pool serves at one generation of its assignments, one ``Assignment`` per model by name."""

    pool: str
    generation: int
    """Grows with every change of what the pool serves."""
    models: tuple[Assignment, ...] = ()
    """Ordered by model name."""

    @classmethod
    def of(cls, pool: str, generation: int, models: Iterable[Assignment]) -> PoolAssignments:
        """The assignments of ``models`` in the canonical order (by model name)."""
        return cls(pool, generation, tuple(sorted(models, key=lambda assignment: assignment.model)))

    def by_model(self) -> dict[str, Assignment]:
        """The assignments by model name."""
        return {assignment.model: assignment for assignment in self.models}

    def to_json(self) -> dict[str, Any]:
        return {"pool": self.pool, "generation": self.generation, "models": [a.to_json() for a in self.models]}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PoolAssignments:
        return cls.of(
            str(data["pool"]), int(data["generation"]), (Assignment.from_json(a) for a in data.get("models", []))
        )


@dataclass(frozen=True, slots=True)
class User:
    name: str
    role: Role
    disabled: bool
    created_at: datetime


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: int
    at: datetime
    actor: str
    action: str
    target: str
    before: Mapping[str, Any] | None
    after: Mapping[str, Any] | None


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
class AlertRuleRecord:
    """An alert rule as stored: condition and channel in their canonical text (``control_plane.alerting`` parses
    them); ``alias`` None watches every version of the model."""

    name: str
    model: str
    alias: str | None
    condition: str
    channel: str
    created_at: datetime
    created_by: str
    silenced_until: datetime | None = None
    enabled: bool = True


@dataclass(frozen=True, slots=True)
class JobRecord:
    """A scheduled job as stored: ``kind`` is ``evaluate``, ``train`` or ``gc``; ``spec`` a train job's TOML text."""

    name: str
    cron: str
    kind: str
    spec: str | None
    created_at: datetime
    created_by: str


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
