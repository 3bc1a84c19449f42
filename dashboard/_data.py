"""What a page needs beyond a single call of the control plane client: the alerts page's parts, the servers in the
order the page lists them, the newest runs of the scheduled jobs, a monitoring span ending now. Each function reads
with the client it is given (the viewer's); nothing here ever lists everything."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from contract.client import ControlPlaneClient
from contract.entities import (
    AlertEvent,
    AlertRuleRecord,
    AlertStatus,
    JobRun,
    MonitoringReport,
    ServerStatus,
    VersionRef,
)

__all__ = ["AlertsView", "AuditFilter", "alerts", "monitoring", "recent_runs", "servers"]


@dataclass(frozen=True)
class AlertsView:
    """The alerts page: rules, the alerts currently firing or pending, the resolved ones, and recent history."""

    rules: list[AlertRuleRecord]
    active: list[AlertStatus]
    resolved: list[AlertStatus]
    history: list[AlertEvent]


@dataclass(frozen=True)
class AuditFilter:
    actor: str = ""
    action: str = ""
    target_prefix: str = ""


async def alerts(api: ControlPlaneClient, *, history_limit: int = 100) -> AlertsView:
    rules = await api.list_alert_rules()
    states = await api.list_alerts()
    history = await api.alert_history(limit=history_limit)
    return AlertsView(
        rules=rules,
        active=[a for a in states if a.phase in ("firing", "pending")],
        resolved=[a for a in states if a.phase == "resolved"],
        history=history,
    )


async def servers(api: ControlPlaneClient) -> list[ServerStatus]:
    """Every registered server, by pool then name."""
    return sorted(await api.list_servers(), key=lambda s: (s.record.pool, s.record.name))


async def recent_runs(api: ControlPlaneClient, job: str = "", *, limit: int = 50) -> list[JobRun]:
    """The newest runs of ``job``; without one, of each scheduled job (not the control plane's built-in
    evaluation, which runs every few seconds and would hide them; it is reached by its name, ``@evaluate``)."""
    if job:
        return await api.job_runs(job, limit=limit)
    runs = [run for j in await api.list_jobs() for run in await api.job_runs(j.name, limit=limit)]
    return sorted(runs, key=lambda r: r.started_at, reverse=True)[:limit]


async def monitoring(
    api: ControlPlaneClient, ref: VersionRef, *, since_minutes: int, window_minutes: int
) -> MonitoringReport:
    """``ref``'s monitoring over the last ``since_minutes`` minutes, in windows of ``window_minutes``."""
    since = datetime.now(UTC) - timedelta(minutes=since_minutes)
    return await api.get_monitoring(ref, since=since, window_minutes=window_minutes)
