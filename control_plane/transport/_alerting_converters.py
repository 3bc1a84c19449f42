"""The alerting engine's own values as the API's entities (``contract.wire`` makes their messages)."""

from __future__ import annotations

from contract.entities import AlertEvent, AlertStatus, JobRun
from control_plane.alerting import StoredEvent, TickRecord
from control_plane.service import Alert

__all__ = ["alert_event", "alert_status", "job_run"]


def alert_status(value: Alert) -> AlertStatus:
    state = value.state
    return AlertStatus(
        rule=value.key.rule,
        model=value.key.model,
        version=value.key.version,
        phase=state.phase.value,
        since=state.since,
        value=state.value,
        acknowledged=state.acknowledged_by is not None,
    )


def alert_event(value: StoredEvent) -> AlertEvent:
    event, delivery = value.event, value.delivery
    return AlertEvent(
        id=value.id,
        rule=value.key.rule,
        model=value.key.model,
        version=value.key.version,
        phase=event.phase.value,
        at=event.at,
        value=event.value,
        detail=event.detail,
        channel=value.channel,
        delivery="" if delivery is None else delivery.outcome.value,
        attempts=0 if delivery is None else delivery.attempts,
        error="" if delivery is None else delivery.error,
    )


def job_run(value: TickRecord) -> JobRun:
    return JobRun(
        job=value.job,
        tick=value.tick,
        holder=value.holder,
        started_at=value.acquired_at,
        finished_at=value.finished_at,
        outcome="" if value.outcome is None else value.outcome.value,
        log=value.log,
    )
