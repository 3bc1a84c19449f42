"""What the control plane assigns to a pool, as plain values (no protobuf), with the JSON form the cache persists."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["ArtifactRef", "Assignment", "AssignmentSet", "ModelReport"]


@dataclass(frozen=True, slots=True)
class ArtifactRef:
    """One model version's ONNX artifact: content-addressed by its sha256."""

    version: int
    sha256: str
    size_bytes: int

    def to_json(self) -> dict[str, Any]:
        return {"version": self.version, "sha256": self.sha256, "size_bytes": self.size_bytes}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ArtifactRef:
        return cls(int(data["version"]), str(data["sha256"]), int(data["size_bytes"]))


@dataclass(frozen=True, slots=True)
class Assignment:
    """What one model serves: a primary version and, optionally, a canary taking ``canary_percent`` of requests."""

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
    def from_json(cls, data: dict[str, Any]) -> Assignment:
        canary = data.get("canary")
        return cls(
            str(data["model"]),
            ArtifactRef.from_json(data["primary"]),
            None if canary is None else ArtifactRef.from_json(canary),
            float(data.get("canary_percent", 0.0)),
        )


@dataclass(frozen=True, slots=True)
class AssignmentSet:
    """Everything a pool serves at one generation of its assignments."""

    pool: str
    generation: int
    models: dict[str, Assignment] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "pool": self.pool,
            "generation": self.generation,
            "models": [self.models[name].to_json() for name in sorted(self.models)],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AssignmentSet:
        models = [Assignment.from_json(item) for item in data.get("models", [])]
        return cls(str(data["pool"]), int(data["generation"]), {m.model: m for m in models})


@dataclass(frozen=True, slots=True)
class ModelReport:
    """One model version as a heartbeat reports it."""

    model: str
    version: int
    state: str
    reason: str = ""
