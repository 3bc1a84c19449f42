"""The alerting calls: alert rules, the alerts they raise with their history, and scheduled jobs."""

from __future__ import annotations

from contract import wire
from contract.wire import datetime_of
from control_plane.alerting import TickRecord
from control_plane.protocol import control_plane_pb2 as cp
from control_plane.transport import _alerting_converters as converters
from control_plane.transport._base import DomainServicer
from control_plane.transport._calls import Context

__all__ = ["AlertingServicer"]


class AlertingServicer(DomainServicer):
    """Alerts and jobs of ``conduit.control.v1.ControlPlane``."""

    # -- alerts -------------------------------------------------------------------------------------------------

    async def CreateAlertRule(self, request: cp.CreateAlertRuleRequest, context: Context) -> cp.AlertRule:
        async with self._call("CreateAlertRule", context) as user:
            created = await self._s.alerting.create_rule(
                request.name, model=request.model, when=request.when, notify=request.notify, actor=user.name
            )
            # Rules come from the store with their channel redacted: the full one never leaves it but to be sent to.
            return wire.alert_rule(created)

    async def ListAlertRules(self, request: cp.ListAlertRulesRequest, context: Context) -> cp.ListAlertRulesResponse:
        async with self._call("ListAlertRules", context):
            rules = await self._s.alerting.list_rules()
            return cp.ListAlertRulesResponse(rules=[wire.alert_rule(r) for r in rules])

    async def DeleteAlertRule(self, request: cp.DeleteAlertRuleRequest, context: Context) -> cp.AlertRule:
        async with self._call("DeleteAlertRule", context) as user:
            return wire.alert_rule(await self._s.alerting.delete_rule(request.name, actor=user.name))

    async def ListAlerts(self, request: cp.ListAlertsRequest, context: Context) -> cp.ListAlertsResponse:
        async with self._call("ListAlerts", context):
            alerts = await self._s.alerting.list_alerts(request.rule or None)
            return cp.ListAlertsResponse(alerts=[wire.alert(converters.alert_status(a)) for a in alerts])

    async def ListAlertHistory(
        self, request: cp.ListAlertHistoryRequest, context: Context
    ) -> cp.ListAlertHistoryResponse:
        async with self._call("ListAlertHistory", context):
            events = await self._s.alerting.history(request.rule or None, limit=request.limit)
            return cp.ListAlertHistoryResponse(events=[wire.alert_event(converters.alert_event(e)) for e in events])

    async def SilenceAlert(self, request: cp.SilenceAlertRequest, context: Context) -> cp.AlertRule:
        async with self._call("SilenceAlert", context) as user:
            until = datetime_of(request, "until")
            return wire.alert_rule(await self._s.alerting.silence(request.rule, until, actor=user.name))

    async def AcknowledgeAlert(self, request: cp.AcknowledgeAlertRequest, context: Context) -> cp.Alert:
        async with self._call("AcknowledgeAlert", context) as user:
            alerts = await self._s.alerting.acknowledge(
                request.rule, request.model, request.version or None, actor=user.name
            )
            return wire.alert(converters.alert_status(alerts[0]))

    # -- jobs ---------------------------------------------------------------------------------------------------

    async def CreateJob(self, request: cp.CreateJobRequest, context: Context) -> cp.Job:
        async with self._call("CreateJob", context) as user:
            created = await self._s.alerting.create_job(
                request.name, cron=request.cron, kind=request.kind, spec=request.spec, actor=user.name
            )
            return wire.job(created)

    async def ListJobs(self, request: cp.ListJobsRequest, context: Context) -> cp.ListJobsResponse:
        async with self._call("ListJobs", context):
            return cp.ListJobsResponse(jobs=[wire.job(j) for j in await self._s.alerting.list_jobs()])

    async def DeleteJob(self, request: cp.DeleteJobRequest, context: Context) -> cp.Job:
        async with self._call("DeleteJob", context) as user:
            return wire.job(await self._s.alerting.delete_job(request.name, actor=user.name))

    async def ListJobRuns(self, request: cp.ListJobRunsRequest, context: Context) -> cp.ListJobRunsResponse:
        async with self._call("ListJobRuns", context):
            runs = await self._s.alerting.list_runs(request.job or None, limit=request.limit)
            return cp.ListJobRunsResponse(runs=[wire.job_run(converters.job_run(r)) for r in runs])

    async def RunJob(self, request: cp.RunJobRequest, context: Context) -> cp.JobRun:
        async with self._call("RunJob", context):
            run = await self._s.alerting.run_job(request.name)
            tick = TickRecord(
                run.job, run.tick, run.holder, run.started_at, run.finished_at, run.finished_at, run.outcome, run.log
            )
            return wire.job_run(converters.job_run(tick))
