"""What serves where: deployments, the assignments pools follow, and the servers that follow them."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, get_args

from contract.errors import ConduitError, ErrorCode

__all__ = [
    "UNSEEN_CATEGORIES",
    "ArtifactRef",
    "Assignment",
    "Deployment",
    "DeploymentSpec",
    "LoadedModel",
    "PoolAssignments",
    "ServerRecord",
    "ServerStatus",
    "UnseenCategories",
    "unseen_categories_of",
]

UnseenCategories = Literal["score", "refuse"]
"""What a served version answers to a categorical input value its training data never had: ``score`` answers it (the
data sketches count it as unseen), ``refuse`` answers INVALID_ARGUMENT naming the input and the value. A model
repository's ``config.json`` sets it per model; a deployment sets it for the model on its pool."""
UNSEEN_CATEGORIES: tuple[UnseenCategories, ...] = get_args(UnseenCategories)


def unseen_categories_of(value: str) -> UnseenCategories:
    """``value`` as an ``UnseenCategories`` (empty: ``score``, the default).

    Raises:
        ConduitError: INVALID_ARGUMENT for any other value.
    """
    for choice in UNSEEN_CATEGORIES:
        if value == choice:
            return choice
    if not value:
        return "score"
    raise ConduitError(
        ErrorCode.INVALID_ARGUMENT, f"unseen_categories must be one of {', '.join(UNSEEN_CATEGORIES)}, not {value!r}"
    )


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
    unseen_categories: UnseenCategories = "score"
    """What the pool's servers answer to a categorical value the version's training data never had."""


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
    unseen_categories: UnseenCategories = "score"


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
    owner: str | None = None
    """The user who registered it: only that user's tokens heartbeat, re-register or upload as it."""

    def last_heard(self) -> datetime:
        """When the control plane last heard from it: its latest heartbeat or registration (aware, UTC)."""
        heard = [self.registered_at] if self.last_heartbeat is None else [self.registered_at, self.last_heartbeat]
        # Naive datetimes are UTC, as the store writes them.
        return max(m if m.tzinfo is not None else m.replace(tzinfo=UTC) for m in heard)


@dataclass(frozen=True, slots=True)
class ServerStatus:
    """A registered server and whether the control plane heard from it within its liveness timeout."""

    record: ServerRecord
    alive: bool


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
    unseen_categories: UnseenCategories = "score"
    """What the primary and the canary answer to a categorical value their training data never had."""

    def artifacts(self) -> list[ArtifactRef]:
        """The primary, then the canary if there is one."""
        return [self.primary] if self.canary is None else [self.primary, self.canary]

    def to_json(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "primary": self.primary.to_json(),
            "canary": None if self.canary is None else self.canary.to_json(),
            "canary_percent": self.canary_percent,
            "unseen_categories": self.unseen_categories,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Assignment:
        canary = data.get("canary")
        return cls(
            str(data["model"]),
            ArtifactRef.from_json(data["primary"]),
            None if canary is None else ArtifactRef.from_json(canary),
            float(data.get("canary_percent", 0.0)),
            # Saved before deployments had the option: the default.
            unseen_categories_of(str(data.get("unseen_categories", ""))),
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
