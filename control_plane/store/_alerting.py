"""Alert rules and scheduled jobs: their definitions, each change audited. Their states, events and runs are kept
by ``control_plane.alerting`` in tables of the same database."""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from contract.entities import AlertRuleRecord, JobRecord
from contract.errors import ConduitError, ErrorCode
from control_plane.store._audit import record
from control_plane.store._schema import AlertRuleRow, AlertSecretRow, JobRow, utcnow

__all__ = [
    "alert_rule_channels",
    "create_alert_rule",
    "create_job",
    "delete_alert_rule",
    "delete_job",
    "fingerprint",
    "list_alert_rules",
    "list_jobs",
    "silence_alert_rule",
]


def _rule(row: AlertRuleRow) -> AlertRuleRecord:
    return AlertRuleRecord(
        row.name, row.model, row.alias, row.condition, row.channel, row.created_at, row.created_by,
        row.silenced_until, row.enabled,
    )  # fmt: skip


def fingerprint(secret: str) -> str:
    """What the audit log shows of a secret: the first 12 hex digits of its sha256, so that a change is seen and the
    secret is not (a webhook token has far more entropy than 48 bits could help guess)."""
    return hashlib.sha256(secret.encode()).hexdigest()[:12]


def _secret(session: Session, row: AlertRuleRow) -> AlertSecretRow | None:
    return session.get(AlertSecretRow, row.id)


def _rule_state(row: AlertRuleRow, secret: AlertSecretRow | None) -> dict[str, Any]:
    # The channel as listed (redacted) and its fingerprint: never the channel in full, which viewers would read.
    return {
        "model": row.model,
        "alias": row.alias,
        "condition": row.condition,
        "channel": row.channel,
        "channel_fingerprint": None if secret is None else secret.fingerprint,
        "silenced_until": None if row.silenced_until is None else row.silenced_until.isoformat(),
    }


def _job(row: JobRow) -> JobRecord:
    return JobRecord(row.name, row.cron, row.kind, row.spec, row.created_at, row.created_by)


def _job_state(row: JobRow) -> dict[str, Any]:
    return {"cron": row.cron, "kind": row.kind, "spec": row.spec}


def _rule_row(session: Session, name: str, *, lock: bool = False) -> AlertRuleRow:
    query = select(AlertRuleRow).where(AlertRuleRow.name == name)
    row = session.scalars(query.with_for_update() if lock else query).one_or_none()
    if row is None:
        raise ConduitError(ErrorCode.NOT_FOUND, f"alert rule {name!r} does not exist")
    return row


def _job_row(session: Session, name: str) -> JobRow:
    row = session.scalars(select(JobRow).where(JobRow.name == name).with_for_update()).one_or_none()
    if row is None:
        raise ConduitError(ErrorCode.NOT_FOUND, f"job {name!r} does not exist")
    return row


def create_alert_rule(session: Session, rule: AlertRuleRecord, *, channel: str, actor: str) -> AlertRuleRecord:
    if session.scalars(select(AlertRuleRow.id).where(AlertRuleRow.name == rule.name)).first() is not None:
        raise ConduitError(ErrorCode.ALREADY_EXISTS, f"alert rule {rule.name!r} already exists")
    row = AlertRuleRow(
        name=rule.name, model=rule.model, alias=rule.alias, condition=rule.condition, channel=rule.channel,
        created_at=utcnow(), created_by=actor, silenced_until=None, enabled=True,
    )  # fmt: skip
    session.add(row)
    session.flush()
    secret = AlertSecretRow(rule_id=row.id, channel=channel, fingerprint=fingerprint(channel))
    session.add(secret)
    session.flush()
    record(session, actor, "CreateAlertRule", f"alert/{rule.name}", before=None, after=_rule_state(row, secret))
    return _rule(row)


def list_alert_rules(session: Session) -> list[AlertRuleRecord]:
    return [_rule(row) for row in session.scalars(select(AlertRuleRow).order_by(AlertRuleRow.name))]


def alert_rule_channels(session: Session) -> dict[str, str]:
    query = select(AlertRuleRow.name, AlertSecretRow.channel).join(
        AlertSecretRow, AlertSecretRow.rule_id == AlertRuleRow.id
    )
    return {name: channel for name, channel in session.execute(query)}


def delete_alert_rule(session: Session, name: str, *, actor: str) -> AlertRuleRecord:
    row = _rule_row(session, name, lock=True)
    deleted = _rule(row)
    secret = _secret(session, row)
    record(session, actor, "DeleteAlertRule", f"alert/{name}", before=_rule_state(row, secret), after=None)
    if secret is not None:
        session.delete(secret)
        session.flush()  # before the rule it refers to
    session.delete(row)
    return deleted


def silence_alert_rule(session: Session, name: str, until: datetime | None, *, actor: str) -> AlertRuleRecord:
    if until is not None and until.tzinfo is None:
        raise ConduitError(ErrorCode.INVALID_ARGUMENT, "the end of a silence must be timezone-aware")
    row = _rule_row(session, name, lock=True)
    secret = _secret(session, row)
    before = _rule_state(row, secret)
    row.silenced_until = until
    session.flush()
    record(session, actor, "SilenceAlert", f"alert/{name}", before=before, after=_rule_state(row, secret))
    return _rule(row)


def create_job(session: Session, job: JobRecord, *, actor: str) -> JobRecord:
    if session.scalars(select(JobRow.id).where(JobRow.name == job.name)).first() is not None:
        raise ConduitError(ErrorCode.ALREADY_EXISTS, f"job {job.name!r} already exists")
    row = JobRow(name=job.name, cron=job.cron, kind=job.kind, spec=job.spec, created_at=utcnow(), created_by=actor)
    session.add(row)
    session.flush()
    record(session, actor, "CreateJob", f"job/{job.name}", before=None, after=_job_state(row))
    return _job(row)


def list_jobs(session: Session) -> list[JobRecord]:
    return [_job(row) for row in session.scalars(select(JobRow).order_by(JobRow.name))]


def delete_job(session: Session, name: str, *, actor: str) -> JobRecord:
    row = _job_row(session, name)
    deleted = _job(row)
    record(session, actor, "DeleteJob", f"job/{name}", before=_job_state(row), after=None)
    session.delete(row)
    return deleted
