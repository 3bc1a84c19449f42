"""Alert rules, alerts, their events, jobs and job runs to their protobuf messages (one converter per message)."""

from __future__ import annotations

from contract.entities import AlertRuleRecord, JobRecord
from control_plane.alerting import StoredEvent, TickRecord, parse_channel
from control_plane.protocol import control_plane_pb2 as cp
from control_plane.service import Alert
from control_plane.transport._converters import timestamp

__all__ = ["alert", "alert_event", "alert_rule", "job", "job_run"]


def alert_rule(value: AlertRuleRecord) -> cp.AlertRule:
    # Listed channels are redacted: a webhook URL's path often carries its secret, and viewers may list rules.
    message = cp.AlertRule(
        name=value.name,
        model=value.model,
        alias=value.alias or "",
        condition=value.condition,
        channel=parse_channel(value.channel).redacted,
        created_at=timestamp(value.created_at),
        created_by=value.created_by,
    )
    if value.silenced_until is not None:
        message.silenced_until.CopyFrom(timestamp(value.silenced_until))
    return message


def alert(value: Alert) -> cp.Alert:
    state = value.state
    message = cp.Alert(
        rule=value.key.rule,
        model=value.key.model,
        version=value.key.version,
        phase=state.phase.value,
        acknowledged=state.acknowledged_by is not None,
    )
    if state.since is not None:
        message.since.CopyFrom(timestamp(state.since))
    if state.value is not None:
        message.value = state.value
    return message


def alert_event(value: StoredEvent) -> cp.AlertEvent:
    event = value.event
    message = cp.AlertEvent(
        id=value.id,
        rule=value.key.rule,
        model=value.key.model,
        version=value.key.version,
        phase=event.phase.value,
        at=timestamp(event.at),
        detail=event.detail,
        channel=value.channel,
    )
    if event.value is not None:
        message.value = event.value
    if value.delivery is not None:
        message.delivery = value.delivery.outcome.value
        message.attempts = value.delivery.attempts
        message.error = value.delivery.error
    return message


def job(value: JobRecord) -> cp.Job:
    return cp.Job(
        name=value.name,
        cron=value.cron,
        kind=value.kind,
        spec=value.spec or "",
        created_at=timestamp(value.created_at),
        created_by=value.created_by,
    )


def job_run(value: TickRecord) -> cp.JobRun:
    message = cp.JobRun(
        job=value.job,
        tick=timestamp(value.tick),
        holder=value.holder,
        started_at=timestamp(value.acquired_at),
        outcome="" if value.outcome is None else value.outcome.value,
        log=value.log,
    )
    if value.finished_at is not None:
        message.finished_at.CopyFrom(timestamp(value.finished_at))
    return message
