"""Alert rules and jobs through the real API on SQLite and PostgreSQL: validation, listing, audit, runs on demand."""

from __future__ import annotations

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from control_plane.protocol import control_plane_pb2 as cp

from .conftest import Api


async def _code(call: object) -> grpc.StatusCode:
    with pytest.raises(grpc.aio.AioRpcError) as failure:
        await call  # type: ignore[misc]
    return failure.value.code()


async def test_alert_rules_are_validated_listed_silenced_and_removed(any_api: Api, model_bytes: bytes) -> None:
    stub, admin = any_api.stub, any_api.admin

    # A rule on a model or alias the registry does not have would watch nothing: refused, naming it.
    async def not_found(model: str) -> str:
        request = cp.CreateAlertRuleRequest(name="drifting", model=model, when="drift > 0.2", notify="log")
        with pytest.raises(grpc.aio.AioRpcError) as failure:
            await stub.CreateAlertRule(request, metadata=admin)
        assert failure.value.code() == grpc.StatusCode.NOT_FOUND
        return failure.value.details() or ""

    assert "model 'fraud'" in await not_found("fraud@production")
    await any_api.watched("fraud", model_bytes)
    assert "model 'frud'" in await not_found("frud")
    assert await not_found("fraud@prod") == "model 'fraud' has no alias 'prod' (its aliases: production)"
    rule = await stub.CreateAlertRule(
        cp.CreateAlertRuleRequest(
            name="drifting",
            model="fraud@production",
            when="drift>0.2",
            notify="webhook:https://hooks.example.com/T0/s3cret",
        ),
        metadata=admin,
    )
    # Canonical condition text; the listed channel hides the URL's path, where webhook secrets live.
    assert (rule.model, rule.alias, rule.condition, rule.window, rule.created_by) == (
        "fraud",
        "production",
        "drift > 0.2 over 10m",
        "10m",
        "admin",
    )
    assert "s3cret" not in rule.channel and not rule.HasField("silenced_until")
    bad = cp.CreateAlertRuleRequest(name="bad", model="fraud", when="drift >", notify="log")
    assert await _code(stub.CreateAlertRule(bad, metadata=admin)) == grpc.StatusCode.INVALID_ARGUMENT
    pinned = cp.CreateAlertRuleRequest(name="bad", model="fraud:3", when="drift > 0.2", notify="log")
    assert await _code(stub.CreateAlertRule(pinned, metadata=admin)) == grpc.StatusCode.INVALID_ARGUMENT
    again = cp.CreateAlertRuleRequest(name="drifting", model="fraud", when="drift > 0.3", notify="log")
    assert await _code(stub.CreateAlertRule(again, metadata=admin)) == grpc.StatusCode.ALREADY_EXISTS

    until = Timestamp(seconds=1_900_000_000)
    silenced = await stub.SilenceAlert(cp.SilenceAlertRequest(rule="drifting", until=until), metadata=admin)
    assert silenced.silenced_until == until
    listed = await stub.ListAlertRules(cp.ListAlertRulesRequest(), metadata=admin)
    assert [r.name for r in listed.rules] == ["drifting"] and listed.rules[0].silenced_until == until
    assert (await stub.ListAlerts(cp.ListAlertsRequest(), metadata=admin)).alerts == []
    assert (await stub.ListAlertHistory(cp.ListAlertHistoryRequest(), metadata=admin)).events == []
    ack = cp.AcknowledgeAlertRequest(rule="drifting", model="fraud")
    assert await _code(stub.AcknowledgeAlert(ack, metadata=admin)) == grpc.StatusCode.NOT_FOUND

    await stub.DeleteAlertRule(cp.DeleteAlertRuleRequest(name="drifting"), metadata=admin)
    gone = stub.DeleteAlertRule(cp.DeleteAlertRuleRequest(name="drifting"), metadata=admin)
    assert await _code(gone) == grpc.StatusCode.NOT_FOUND
    audit = await stub.ListAudit(cp.ListAuditRequest(target_prefix="alert/"), metadata=admin)
    assert [e.action for e in reversed(audit.entries)] == ["CreateAlertRule", "SilenceAlert", "DeleteAlertRule"]


async def test_jobs_are_validated_run_on_demand_and_their_runs_listed(any_api: Api) -> None:
    stub, admin = any_api.stub, any_api.admin
    job = await stub.CreateJob(cp.CreateJobRequest(name="sweep", cron="*/5 * * * *", kind="gc"), metadata=admin)
    assert (job.name, job.cron, job.kind, job.spec, job.created_by) == ("sweep", "*/5 * * * *", "gc", "", "admin")
    spec = "[model]\nname = 'fraud'\n"
    await stub.CreateJob(cp.CreateJobRequest(name="nightly", cron="0 3 * * *", kind="train", spec=spec), metadata=admin)
    for bad in (
        cp.CreateJobRequest(name="x", cron="every minute", kind="gc"),
        cp.CreateJobRequest(name="x", cron="0 3 * * *", kind="sweep"),
        cp.CreateJobRequest(name="x", cron="0 3 * * *", kind="train", spec="not = toml = at all"),
        cp.CreateJobRequest(name="x", cron="0 3 * * *", kind="gc", spec=spec),
    ):
        assert await _code(stub.CreateJob(bad, metadata=admin)) == grpc.StatusCode.INVALID_ARGUMENT
    dup = cp.CreateJobRequest(name="sweep", cron="0 3 * * *", kind="evaluate")
    assert await _code(stub.CreateJob(dup, metadata=admin)) == grpc.StatusCode.ALREADY_EXISTS
    listed = await stub.ListJobs(cp.ListJobsRequest(), metadata=admin)
    assert [(j.name, j.kind, j.spec) for j in listed.jobs] == [("nightly", "train", spec), ("sweep", "gc", "")]

    run = await stub.RunJob(cp.RunJobRequest(name="sweep"), metadata=admin, timeout=30)
    assert (run.job, run.outcome) == ("sweep", "succeeded") and "unreferenced artifact" in run.log
    runs = await stub.ListJobRuns(cp.ListJobRunsRequest(job="sweep"), metadata=admin)
    assert [(r.job, r.outcome, r.log) for r in runs.runs] == [("sweep", "succeeded", run.log)]
    missing = stub.RunJob(cp.RunJobRequest(name="ghost"), metadata=admin)
    assert await _code(missing) == grpc.StatusCode.NOT_FOUND

    await stub.DeleteJob(cp.DeleteJobRequest(name="sweep"), metadata=admin)
    assert [j.name for j in (await stub.ListJobs(cp.ListJobsRequest(), metadata=admin)).jobs] == ["nightly"]
    audit = await stub.ListAudit(cp.ListAuditRequest(target_prefix="job/"), metadata=admin)
    assert [(e.action, e.target) for e in reversed(audit.entries)] == [
        ("CreateJob", "job/sweep"),
        ("CreateJob", "job/nightly"),
        ("DeleteJob", "job/sweep"),
    ]


async def test_viewers_read_and_maintainers_change(api: Api) -> None:
    await api.stub.CreateModel(cp.CreateModelRequest(name="fraud"), metadata=api.admin)
    viewer = await api.user("vera", cp.ROLE_VIEWER)
    maintainer = await api.user("max", cp.ROLE_MAINTAINER)
    create = cp.CreateAlertRuleRequest(name="slow", model="fraud", when="p99_ms > 250 for 5m", notify="log")
    assert await _code(api.stub.CreateAlertRule(create, metadata=viewer)) == grpc.StatusCode.PERMISSION_DENIED
    await api.stub.CreateAlertRule(create, metadata=maintainer)
    listed = await api.stub.ListAlertRules(cp.ListAlertRulesRequest(), metadata=viewer)
    assert [(r.name, r.condition, r.window, r.created_by) for r in listed.rules] == [
        ("slow", "p99_ms > 250 for 5m", "5m", "max")
    ]
    job = cp.CreateJobRequest(name="check", cron="* * * * *", kind="evaluate")
    assert await _code(api.stub.CreateJob(job, metadata=viewer)) == grpc.StatusCode.PERMISSION_DENIED
    await api.stub.CreateJob(job, metadata=maintainer)
    assert [j.name for j in (await api.stub.ListJobs(cp.ListJobsRequest(), metadata=viewer)).jobs] == ["check"]
    run = api.stub.RunJob(cp.RunJobRequest(name="check"), metadata=viewer)
    assert await _code(run) == grpc.StatusCode.PERMISSION_DENIED
    ran = await api.stub.RunJob(cp.RunJobRequest(name="check"), metadata=maintainer, timeout=30)
    assert ran.outcome == "succeeded" and "evaluated 1 rule(s)" in ran.log
