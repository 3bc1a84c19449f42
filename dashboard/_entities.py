"""Plain data the pages draw: what the data layer makes of the control plane's messages, and nothing of gRPC."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from google.protobuf.message import Message

__all__ = [
    "AlertEventRow",
    "AlertRow",
    "AlertRuleRow",
    "AttachmentRow",
    "AuditRow",
    "DeploymentRow",
    "JobRow",
    "JobRunRow",
    "LoadedModelRow",
    "ModelRow",
    "Page",
    "PredictionLogRow",
    "ServerRow",
    "TensorRow",
    "VersionRow",
    "Viewer",
    "time_of",
]

T = TypeVar("T")


def time_of(message: Message, name: str) -> datetime | None:
    """The timestamp field ``name`` of ``message`` in UTC; ``None`` when it is unset."""
    if not message.HasField(name):
        return None
    value: datetime = getattr(message, name).ToDatetime(tzinfo=UTC)
    return value


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a list; ``next_token`` is empty on the last one."""

    items: list[T]
    next_token: str = ""


@dataclass(frozen=True)
class Viewer:
    """Who the session's token belongs to."""

    name: str
    role: str


@dataclass(frozen=True)
class ModelRow:
    name: str
    description: str
    archived: bool
    created_at: datetime | None
    created_by: str
    latest_version: int
    aliases: dict[str, int]


@dataclass(frozen=True)
class TensorRow:
    name: str
    datatype: str
    shape: list[int]


@dataclass(frozen=True)
class AttachmentRow:
    name: str
    media_type: str
    size_bytes: int
    sha256: str


@dataclass(frozen=True)
class VersionRow:
    model: str
    version: int
    created_at: datetime | None
    created_by: str
    description: str
    sha256: str
    size_bytes: int
    aliases: list[str]
    metrics: dict[str, float]
    params: dict[str, str]
    tags: dict[str, str]
    lineage: dict[str, Any]
    inputs: list[TensorRow] = field(default_factory=list)
    outputs: list[TensorRow] = field(default_factory=list)
    attachments: list[AttachmentRow] = field(default_factory=list)


@dataclass(frozen=True)
class DeploymentRow:
    id: int
    pool: str
    model: str
    target: str
    resolved_version: int
    canary_version: int
    canary_percent: float
    active: bool
    undeployed: bool
    created_at: datetime | None
    created_by: str


@dataclass(frozen=True)
class LoadedModelRow:
    model: str
    version: int
    state: str
    reason: str


@dataclass(frozen=True)
class ServerRow:
    id: str
    name: str
    pool: str
    address: str
    alive: bool
    registered_at: datetime | None
    last_heartbeat: datetime | None
    generation: int
    models: list[LoadedModelRow]


@dataclass(frozen=True)
class AlertRuleRow:
    name: str
    model: str
    alias: str
    condition: str
    channel: str
    created_at: datetime | None
    created_by: str
    silenced_until: datetime | None


@dataclass(frozen=True)
class AlertRow:
    rule: str
    model: str
    version: str
    phase: str
    since: datetime | None
    value: float | None
    acknowledged: bool
    detail: str


@dataclass(frozen=True)
class AlertEventRow:
    id: int
    rule: str
    model: str
    version: str
    phase: str
    at: datetime | None
    value: float | None
    detail: str
    channel: str
    delivery: str
    attempts: int
    error: str


@dataclass(frozen=True)
class JobRow:
    name: str
    cron: str
    kind: str
    created_at: datetime | None
    created_by: str


@dataclass(frozen=True)
class JobRunRow:
    job: str
    tick: datetime | None
    holder: str
    started_at: datetime | None
    finished_at: datetime | None
    outcome: str
    log: str


@dataclass(frozen=True)
class AuditRow:
    id: int
    at: datetime | None
    actor: str
    action: str
    target: str
    before_json: str
    after_json: str


@dataclass(frozen=True)
class PredictionLogRow:
    model: str
    version: int
    first_at: datetime | None
    last_at: datetime | None
    rows: int
    size_bytes: int
    sha256: str
    server: str
    created_at: datetime | None
