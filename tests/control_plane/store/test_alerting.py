"""Alert rules and jobs as the store keeps them, audited, on SQLite and PostgreSQL; the alerting library's own
tables come from the same migrations."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

from contract.entities import AlertRuleRecord, JobRecord
from contract.errors import ErrorCode
from control_plane.alerting import AlertKey, AlertState, RunOutcome, SqlAlertStore, SqlLeaseStore
from control_plane.store import SqlStore
from tests.control_plane.store.conftest import ErrorOf

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


SHOWN = "webhook:https://hooks.example.com/…"
SECRET = "webhook:https://ops:pass-s3cret@hooks.example.com/T0/path-s3cret?token=query-s3cret"
FINGERPRINT = hashlib.sha256(SECRET.encode()).hexdigest()[:12]


def _rule(name: str, alias: str | None = "prod") -> AlertRuleRecord:
    return AlertRuleRecord(name, "fraud", alias, "drift > 0.2", SHOWN, EPOCH, "")


def test_alert_rules_are_created_listed_silenced_and_deleted_with_audit(store: SqlStore, error_code: ErrorOf) -> None:
    created = store.create_alert_rule(_rule("drifting"), channel=SECRET, actor="alice")
    assert (created.name, created.model, created.alias, created.created_by) == ("drifting", "fraud", "prod", "alice")
    assert created.created_at > EPOCH and created.silenced_until is None and created.enabled
    store.create_alert_rule(_rule("any-version", alias=None), channel="log", actor="alice")
    again = lambda: store.create_alert_rule(_rule("drifting"), channel=SECRET, actor="bob")  # noqa: E731
    assert error_code(again) is ErrorCode.ALREADY_EXISTS
    assert [(r.name, r.alias) for r in store.list_alert_rules()] == [("any-version", None), ("drifting", "prod")]
    # Listed as shown; in full only to be sent to.
    assert {r.channel for r in store.list_alert_rules()} == {SHOWN}
    assert store.alert_rule_channels() == {"drifting": SECRET, "any-version": "log"}

    until = datetime(2030, 1, 1, tzinfo=UTC)
    assert store.silence_alert_rule("drifting", until, actor="bob").silenced_until == until
    assert store.silence_alert_rule("drifting", None, actor="bob").silenced_until is None
    assert error_code(lambda: store.silence_alert_rule("nope", until, actor="bob")) is ErrorCode.NOT_FOUND

    assert store.delete_alert_rule("drifting", actor="bob").name == "drifting"
    assert error_code(lambda: store.delete_alert_rule("drifting", actor="bob")) is ErrorCode.NOT_FOUND
    assert [r.name for r in store.list_alert_rules()] == ["any-version"]
    audit = store.list_audit(
        since=None, actor=None, action=None, target_prefix="alert/drifting", page_size=0, page_token=""
    ).items
    assert [(e.action, e.actor) for e in reversed(audit)] == [
        ("CreateAlertRule", "alice"),
        ("SilenceAlert", "bob"),
        ("SilenceAlert", "bob"),
        ("DeleteAlertRule", "bob"),
    ]
    assert audit[-1].after is not None and audit[-1].after["condition"] == "drift > 0.2"
    assert audit[-1].after["channel"] == SHOWN and audit[-1].after["channel_fingerprint"] == FINGERPRINT
    assert "s3cret" not in repr(audit)
    assert store.alert_rule_channels() == {"any-version": "log"}


def test_jobs_are_created_listed_and_deleted_with_audit(store: SqlStore, error_code: ErrorOf) -> None:
    store.create_job(JobRecord("nightly", "0 3 * * *", "train", "[model]\nname = 'x'\n", EPOCH, ""), actor="alice")
    store.create_job(JobRecord("check", "* * * * *", "evaluate", None, EPOCH, ""), actor="alice")
    duplicate = JobRecord("check", "*/5 * * * *", "gc", None, EPOCH, "")
    assert error_code(lambda: store.create_job(duplicate, actor="bob")) is ErrorCode.ALREADY_EXISTS
    jobs = store.list_jobs()
    assert [(j.name, j.kind, j.cron) for j in jobs] == [
        ("check", "evaluate", "* * * * *"),
        ("nightly", "train", "0 3 * * *"),
    ]
    assert jobs[1].spec == "[model]\nname = 'x'\n" and jobs[1].created_by == "alice"
    assert store.delete_job("check", actor="bob").kind == "evaluate"
    assert error_code(lambda: store.delete_job("check", actor="bob")) is ErrorCode.NOT_FOUND
    audit = store.list_audit(since=None, actor=None, action=None, target_prefix="job/", page_size=0, page_token="")
    assert [(e.action, e.target) for e in reversed(audit.items)] == [
        ("CreateJob", "job/nightly"),
        ("CreateJob", "job/check"),
        ("DeleteJob", "job/check"),
    ]


def test_the_migrated_schema_holds_the_alerting_librarys_tables(store: SqlStore) -> None:
    leases = SqlLeaseStore(store.engine)
    tick = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
    assert leases.try_acquire("check", tick, "a", 60.0) and not leases.try_acquire("check", tick, "b", 60.0)
    assert leases.complete("check", tick, "a", RunOutcome.SUCCEEDED, "ran")
    [run] = leases.ticks("check")
    assert (run.holder, run.outcome, run.log, run.tick) == ("a", RunOutcome.SUCCEEDED, "ran", tick)
    alerts = SqlAlertStore(store.engine)
    key = AlertKey("drifting", "fraud", "1")
    alerts.save(key, AlertState())
    assert alerts.load(key) == AlertState()
