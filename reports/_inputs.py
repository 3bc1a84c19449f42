"""What a report is built from: a model version as the registry stores it, as plain data."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from contract.entities import TRAINING_PROFILE, DatasetVersion, ModelVersion, TrainingProfile

__all__ = ["ATTACHMENTS", "ReportInputs"]

ATTACHMENTS = ("evaluation.json", "spec.toml", "environment.json", "training.log", TRAINING_PROFILE)
"""The attachments a report reads (``clients.training.register_result`` stores them)."""


@dataclass(frozen=True)
class ReportInputs:
    """One model version with its attachments and the profile of its data set.

    Attributes:
        evaluation: ``evaluation.json`` (metrics, curves, trees, losses, …); empty when the version has none.
        spec: the training spec's TOML (``spec.toml``, else the lineage's copy); empty when unknown.
        environment: ``environment.json`` (package versions, classes, tensors); empty when absent.
        dataset: the lineage's data set version with its profile; None when the lineage names none or the control
            plane does not hold it.
        training_profile: ``profile.json``: the rows trained on, profiled over the spec's features (derived ones
            included) and its target; None when the version has none.
        problems: attachments that were present but unreadable, one line each.
    """

    model: str
    version: int
    aliases: tuple[str, ...] = ()
    created_at: datetime | None = None
    created_by: str = ""
    description: str = ""
    sha256: str = ""
    size_bytes: int = 0
    metrics: Mapping[str, float] = field(default_factory=dict)
    params: Mapping[str, str] = field(default_factory=dict)
    tags: Mapping[str, str] = field(default_factory=dict)
    dataset_name: str = ""
    dataset_version: str = ""
    code_version: str = ""
    parent_version: int = 0
    evaluation: Mapping[str, Any] = field(default_factory=dict)
    spec: str = ""
    environment: Mapping[str, Any] = field(default_factory=dict)
    training_log: str = ""
    dataset: DatasetVersion | None = None
    training_profile: TrainingProfile | None = None
    problems: tuple[str, ...] = ()

    @property
    def target(self) -> str:
        """The column the model predicts: its spec's (which may differ from the one its data set was imported
        with); the data set's when the version's documents do not say."""
        named = self.evaluation.get("target")
        if isinstance(named, str) and named:
            return named
        if self.training_profile is not None and self.training_profile.target:
            return self.training_profile.target
        return self.dataset.target if self.dataset is not None else ""

    @property
    def ref(self) -> str:
        """``NAME:VERSION``."""
        return f"{self.model}:{self.version}"

    @classmethod
    def of(
        cls, version: ModelVersion, attachments: Mapping[str, bytes], dataset: DatasetVersion | None
    ) -> ReportInputs:
        """Build from the registered version, attachment contents by name (``get_attachment``), and the lineage's
        data set version (None when there is none)."""
        problems: list[str] = []
        evaluation = _json_object(attachments, "evaluation.json", problems)
        environment = _json_object(attachments, "environment.json", problems)
        lineage = version.lineage
        spec = _text(attachments, "spec.toml", problems) or lineage.training_spec
        return cls(
            model=version.model,
            version=version.version,
            aliases=tuple(version.aliases),
            created_at=version.created_at,
            created_by=version.created_by,
            description=version.description,
            sha256=version.sha256,
            size_bytes=version.size_bytes,
            metrics=dict(version.metrics),
            params=dict(version.params),
            tags=dict(version.tags),
            dataset_name=lineage.dataset,
            dataset_version=lineage.dataset_version,
            code_version=lineage.code_version,
            parent_version=lineage.parent_version,
            evaluation=evaluation,
            spec=spec,
            environment=environment,
            training_log=_text(attachments, "training.log", problems),
            dataset=dataset,
            training_profile=_training_profile(attachments, problems),
            problems=tuple(problems),
        )


def _text(attachments: Mapping[str, bytes], name: str, problems: list[str]) -> str:
    content = attachments.get(name)
    if content is None:
        return ""
    try:
        return content.decode("utf-8")
    except UnicodeDecodeError as exc:
        problems.append(f"{name} is not UTF-8 text ({exc.reason} at byte {exc.start})")
        return ""


def _json_object(attachments: Mapping[str, bytes], name: str, problems: list[str]) -> dict[str, Any]:
    text = _text(attachments, name, problems)
    if not text:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        problems.append(f"{name} is not valid JSON ({exc.msg} at line {exc.lineno})")
        return {}
    except RecursionError:
        problems.append(f"{name} is nested too deeply to read")
        return {}
    if not isinstance(value, dict):
        problems.append(f"{name} is not a JSON object")
        return {}
    return value


def _training_profile(attachments: Mapping[str, bytes], problems: list[str]) -> TrainingProfile | None:
    document = _json_object(attachments, TRAINING_PROFILE, problems)
    if not document:
        return None
    try:
        return TrainingProfile.from_json(document)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        problems.append(f"{TRAINING_PROFILE} is not a profile ({exc})")
        return None
