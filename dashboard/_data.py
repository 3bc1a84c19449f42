"""The data layer: each method makes the control plane calls one page needs, with the viewer's token, and returns
plain rows. Lists are read one page at a time; nothing here ever lists everything."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from control_plane.protocol import control_plane_pb2 as cp
from dashboard import _convert as convert
from dashboard._control_plane import ControlPlane
from dashboard._entities import (
    AlertEventRow,
    AlertRow,
    AlertRuleRow,
    AuditRow,
    DeploymentRow,
    JobRow,
    JobRunRow,
    ModelRow,
    Page,
    PredictionLogRow,
    ServerRow,
    VersionRow,
    Viewer,
)

__all__ = ["AlertsView", "AuditFilter", "DashboardData"]

_EPOCH = datetime.fromtimestamp(0, UTC)


@dataclass(frozen=True)
class AlertsView:
    """The alerts page: rules, the alerts currently firing or pending, the resolved ones, and recent history."""

    rules: list[AlertRuleRow]
    active: list[AlertRow]
    resolved: list[AlertRow]
    history: list[AlertEventRow]


@dataclass(frozen=True)
class AuditFilter:
    actor: str = ""
    action: str = ""
    target_prefix: str = ""


class DashboardData:
    """What the pages show, read from the control plane.

    Args:
        control_plane: The connection every call goes through.
        page_size: Rows per page of paginated lists.
    """

    def __init__(self, control_plane: ControlPlane, *, page_size: int) -> None:
        self._cp = control_plane
        self.page_size = page_size

    async def whoami(self, token: str) -> Viewer:
        return convert.viewer(await self._cp.call(token, "WhoAmI", cp.WhoAmIRequest()))

    async def models(self, token: str, page_token: str = "", *, include_archived: bool = False) -> Page[ModelRow]:
        request = cp.ListModelsRequest(
            include_archived=include_archived, page_size=self.page_size, page_token=page_token
        )
        answer = await self._cp.call(token, "ListModels", request)
        return Page([convert.model(m) for m in answer.models], answer.next_page_token)

    async def model(self, token: str, name: str) -> ModelRow:
        return convert.model(await self._cp.call(token, "GetModel", cp.GetModelRequest(name=name)))

    async def versions(self, token: str, model: str, page_token: str = "") -> Page[VersionRow]:
        request = cp.ListVersionsRequest(model=model, page_size=self.page_size, page_token=page_token)
        answer = await self._cp.call(token, "ListVersions", request)
        return Page([convert.version(v) for v in answer.versions], answer.next_page_token)

    async def version_message(self, token: str, model: str, version: int) -> cp.ModelVersion:
        ref = cp.VersionRef(model=model, version=version)
        message: cp.ModelVersion = await self._cp.call(token, "GetVersion", cp.GetVersionRequest(ref=ref))
        return message

    async def version(self, token: str, model: str, version: int) -> VersionRow:
        return convert.version(await self.version_message(token, model, version))

    async def attachment(self, token: str, model: str, version: int, name: str) -> tuple[str, bytes]:
        """The media type and content of one document stored with a version."""
        request = cp.GetAttachmentRequest(ref=cp.VersionRef(model=model, version=version), name=name)
        answer = await self._cp.call(token, "GetAttachment", request)
        return answer.attachment.media_type, bytes(answer.content)

    async def dataset(self, token: str, name: str, version: str) -> cp.DatasetVersion:
        message: cp.DatasetVersion = await self._cp.call(
            token, "GetDataset", cp.GetDatasetRequest(name=name, version=version)
        )
        return message

    async def deployments(self, token: str, page_token: str = "", *, history: bool = False) -> Page[DeploymentRow]:
        request = cp.ListDeploymentsRequest(history=history, page_size=self.page_size, page_token=page_token)
        answer = await self._cp.call(token, "ListDeployments", request)
        return Page([convert.deployment(d) for d in answer.deployments], answer.next_page_token)

    async def servers(self, token: str) -> list[ServerRow]:
        answer = await self._cp.call(token, "ListServers", cp.ListServersRequest())
        return sorted((convert.server(s) for s in answer.servers), key=lambda s: (s.pool, s.name))

    async def alerts(self, token: str, *, history_limit: int = 100) -> AlertsView:
        rules = await self._cp.call(token, "ListAlertRules", cp.ListAlertRulesRequest())
        alerts = await self._cp.call(token, "ListAlerts", cp.ListAlertsRequest())
        history = await self._cp.call(token, "ListAlertHistory", cp.ListAlertHistoryRequest(limit=history_limit))
        rows = [convert.alert(a) for a in alerts.alerts]
        return AlertsView(
            rules=[convert.alert_rule(r) for r in rules.rules],
            active=[a for a in rows if a.phase in ("firing", "pending")],
            resolved=[a for a in rows if a.phase == "resolved"],
            history=[convert.alert_event(e) for e in history.events],
        )

    async def jobs(self, token: str) -> list[JobRow]:
        answer = await self._cp.call(token, "ListJobs", cp.ListJobsRequest())
        return [convert.job(j) for j in answer.jobs]

    async def job_runs(self, token: str, job: str = "", *, limit: int = 50) -> list[JobRunRow]:
        answer = await self._cp.call(token, "ListJobRuns", cp.ListJobRunsRequest(job=job, limit=limit))
        return [convert.job_run(r) for r in answer.runs]

    async def recent_runs(self, token: str, job: str = "", *, limit: int = 50) -> list[JobRunRow]:
        """The newest runs of ``job``; without one, of each scheduled job (not the control plane's built-in
        evaluation, which runs every few seconds and would hide them; it is reached by its name, ``@evaluate``)."""
        if job:
            return await self.job_runs(token, job, limit=limit)
        runs = [run for j in await self.jobs(token) for run in await self.job_runs(token, j.name, limit=limit)]
        return sorted(runs, key=lambda r: r.started_at or r.tick or _EPOCH, reverse=True)[:limit]

    async def audit(self, token: str, page_token: str = "", where: AuditFilter | None = None) -> Page[AuditRow]:
        where = where or AuditFilter()
        request = cp.ListAuditRequest(
            actor=where.actor,
            action=where.action,
            target_prefix=where.target_prefix,
            page_size=self.page_size,
            page_token=page_token,
        )
        answer = await self._cp.call(token, "ListAudit", request)
        return Page([convert.audit_entry(e) for e in answer.entries], answer.next_page_token)

    async def prediction_logs(self, token: str, model: str, page_token: str = "") -> Page[PredictionLogRow]:
        """The prediction log files of every version of ``model``, newest first."""
        request = cp.ListPredictionLogsRequest(model=model, page_size=self.page_size, page_token=page_token)
        answer = await self._cp.call(token, "ListPredictionLogs", request)
        return Page([convert.prediction_log(p) for p in answer.logs], answer.next_page_token)

    async def monitoring(
        self, token: str, ref: cp.VersionRef, *, since_minutes: int, window_minutes: int
    ) -> cp.GetMonitoringResponse:
        request = cp.GetMonitoringRequest(ref=ref, window_minutes=window_minutes)
        request.since.GetCurrentTime()
        request.since.seconds -= since_minutes * 60
        answer: cp.GetMonitoringResponse = await self._cp.call(token, "GetMonitoring", request)
        return answer
