"""Alert rules, alerts, their events, jobs and job runs to and from their messages."""

from __future__ import annotations

from contract.entities import AlertEvent, AlertRuleRecord, AlertStatus, JobRecord, JobRun
from contract.wire._fields import optional_double
from contract.wire._time import datetime_of, required_datetime_of, timestamp
from control_plane.protocol import control_plane_pb2 as cp

__all__ = [
    "alert",
    "alert_event",
    "alert_event_of",
    "alert_of",
    "alert_rule",
    "alert_rule_of",
    "job",
    "job_of",
    "job_run",
    "job_run_of",
]


def alert_rule(value: AlertRuleRecord) -> cp.AlertRule:
    """The rule's message; the caller redacts its channel first when the reader may not see secrets."""
    message = cp.AlertRule(
        name=value.name,
        model=value.model,
        alias=value.alias or "",
        condition=value.condition,
        channel=value.channel,
        created_at=timestamp(value.created_at),
        created_by=value.created_by,
        window=value.window,
    )
    if value.silenced_until is not None:
        message.silenced_until.CopyFrom(timestamp(value.silenced_until))
    return message


def alert_rule_of(message: cp.AlertRule) -> AlertRuleRecord:
    return AlertRuleRecord(
        name=message.name,
        model=message.model,
        alias=message.alias or None,
        condition=message.condition,
        channel=message.channel,
        created_at=required_datetime_of(message, "created_at"),
        created_by=message.created_by,
        silenced_until=datetime_of(message, "silenced_until"),
        window=message.window,
    )


def alert(value: AlertStatus) -> cp.Alert:
    message = cp.Alert(
        rule=value.rule,
        model=value.model,
        version=value.version,
        phase=value.phase,
        acknowledged=value.acknowledged,
        detail=value.detail,
    )
    if value.since is not None:
        message.since.CopyFrom(timestamp(value.since))
    if value.value is not None:
        message.value = value.value
    return message


def alert_of(message: cp.Alert) -> AlertStatus:
    return AlertStatus(
        rule=message.rule,
        model=message.model,
        version=message.version,
        phase=message.phase,
        since=datetime_of(message, "since"),
        value=optional_double(message, "value"),
        acknowledged=message.acknowledged,
        detail=message.detail,
    )


def alert_event(value: AlertEvent) -> cp.AlertEvent:
    message = cp.AlertEvent(
        id=value.id,
        rule=value.rule,
        model=value.model,
        version=value.version,
        phase=value.phase,
        at=timestamp(value.at),
        detail=value.detail,
        channel=value.channel,
        delivery=value.delivery,
        attempts=value.attempts,
        error=value.error,
    )
    if value.value is not None:
        message.value = value.value
    return message


def alert_event_of(message: cp.AlertEvent) -> AlertEvent:
    return AlertEvent(
        id=message.id,
        rule=message.rule,
        model=message.model,
        version=message.version,
        phase=message.phase,
        at=required_datetime_of(message, "at"),
        value=optional_double(message, "value"),
        detail=message.detail,
        channel=message.channel,
        delivery=message.delivery,
        attempts=message.attempts,
        error=message.error,
    )


def job(value: JobRecord) -> cp.Job:
    return cp.Job(
        name=value.name,
        cron=value.cron,
        kind=value.kind,
        spec=value.spec or "",
        created_at=timestamp(value.created_at),
        created_by=value.created_by,
    )


def job_of(message: cp.Job) -> JobRecord:
    return JobRecord(
        name=message.name,
        cron=message.cron,
        kind=message.kind,
        spec=message.spec or None,
        created_at=required_datetime_of(message, "created_at"),
        created_by=message.created_by,
    )


def job_run(value: JobRun) -> cp.JobRun:
    message = cp.JobRun(
        job=value.job,
        tick=timestamp(value.tick),
        holder=value.holder,
        started_at=timestamp(value.started_at),
        outcome=value.outcome,
        log=value.log,
    )
    if value.finished_at is not None:
        message.finished_at.CopyFrom(timestamp(value.finished_at))
    return message


def job_run_of(message: cp.JobRun) -> JobRun:
    return JobRun(
        job=message.job,
        tick=required_datetime_of(message, "tick"),
        holder=message.holder,
        started_at=required_datetime_of(message, "started_at"),
        finished_at=datetime_of(message, "finished_at"),
        outcome=message.outcome,
        log=message.log,
    )
