"""Alert rules and scheduled jobs as stored."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

__all__ = ["AlertRuleRecord", "JobRecord"]


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
