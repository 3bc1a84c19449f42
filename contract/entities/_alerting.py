"""Alert rules and scheduled jobs as stored, and what the API shows of their state: alerts, their events, job runs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

__all__ = ["AlertEvent", "AlertRuleRecord", "AlertStatus", "JobRecord", "JobRun"]


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
    window: str = ""
    """The monitoring data each evaluation judges (``5m``, ``latest``), as the control plane derives it from the
    condition; empty where nobody derived it (the store does not keep it)."""


@dataclass(frozen=True, slots=True)
class JobRecord:
    """A scheduled job as stored: ``kind`` is ``evaluate``, ``train``, ``import`` or ``gc``; ``spec`` a train job's
    TOML text or an import job's ``ImportSpec`` JSON."""

    name: str
    cron: str
    kind: str
    spec: str | None
    created_at: datetime
    created_by: str


@dataclass(frozen=True, slots=True)
class AlertStatus:
    """Where one rule stands for one model version."""

    rule: str
    model: str
    version: str
    phase: str
    """``inactive``, ``pending``, ``firing`` or ``resolved``."""
    since: datetime | None
    """None: never active."""
    value: float | None
    """The value last evaluated; None when there was none (no traffic, nothing to compare)."""
    acknowledged: bool
    detail: str = ""


@dataclass(frozen=True, slots=True)
class AlertEvent:
    """An alert firing or resolving, and how its notification went."""

    id: int
    rule: str
    model: str
    version: str
    phase: str
    """``firing`` or ``resolved``."""
    at: datetime
    value: float | None
    detail: str
    channel: str
    """Redacted: a webhook URL's path and query may carry its secret."""
    delivery: str
    """``delivered``, ``failed`` or ``suppressed``; empty: not sent yet."""
    attempts: int
    error: str


@dataclass(frozen=True, slots=True)
class JobRun:
    """One run of a scheduled job: the tick it ran for, who held its lease, and how it ended."""

    job: str
    tick: datetime
    holder: str
    started_at: datetime
    finished_at: datetime | None
    """None: still running (or its holder died; the lease then expires)."""
    outcome: str
    """Empty while running."""
    log: str
