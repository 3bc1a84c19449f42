"""The ControlPlane servicer: authenticate and authorize, convert, call the core, convert back. Nothing else."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager

from contract.entities import User
from control_plane.alerting import TickRecord
from control_plane.auth import Authenticator
from control_plane.protocol import control_plane_pb2 as cp
from control_plane.protocol import control_plane_pb2_grpc as cp_grpc
from control_plane.service import Services
from control_plane.transport import (
    _alerting_converters,
    _converters,
    _datasets_converters,
    _deployments_converters,
    _monitoring_converters,
    _registry_converters,
    _users_converters,
)
from control_plane.transport._calls import Context, guarded
from control_plane.transport._streams import download_chunks, upload_chunks, upload_header

__all__ = ["ControlPlaneServicer"]


class ControlPlaneServicer(cp_grpc.ControlPlaneServicer):
    """``conduit.control.v1.ControlPlane`` over gRPC."""

    def __init__(self, services: Services, authenticator: Authenticator) -> None:
        self._s = services
        self._auth = authenticator

    def _call(self, name: str, context: Context) -> AbstractAsyncContextManager[User]:
        """Every call runs inside this: it yields the authorized caller and answers any failure with its status."""
        return guarded(name, context, self._auth)

    # -- models -------------------------------------------------------------------------------------------------

    async def CreateModel(self, request: cp.CreateModelRequest, context: Context) -> cp.Model:
        async with self._call("CreateModel", context) as user:
            created = await self._s.registry.create_model(request.name, request.description, actor=user.name)
            return _registry_converters.model(created)

    async def ListModels(self, request: cp.ListModelsRequest, context: Context) -> cp.ListModelsResponse:
        async with self._call("ListModels", context):
            page = await self._s.registry.list_models(
                include_archived=request.include_archived, page_size=request.page_size, page_token=request.page_token
            )
            return cp.ListModelsResponse(
                models=[_registry_converters.model(m) for m in page.items], next_page_token=page.next_token
            )

    async def GetModel(self, request: cp.GetModelRequest, context: Context) -> cp.Model:
        async with self._call("GetModel", context):
            return _registry_converters.model(await self._s.registry.get_model(request.name))

    async def ArchiveModel(self, request: cp.ArchiveModelRequest, context: Context) -> cp.Model:
        async with self._call("ArchiveModel", context) as user:
            return _registry_converters.model(await self._s.registry.archive_model(request.name, actor=user.name))

    # -- versions -----------------------------------------------------------------------------------------------

    async def RegisterVersion(
        self, request_iterator: AsyncIterator[cp.RegisterVersionRequest], context: Context
    ) -> cp.ModelVersion:
        async with self._call("RegisterVersion", context) as user:
            header = _registry_converters.upload_header((await upload_header(request_iterator)).header)
            version = await self._s.uploads.register(header, upload_chunks(request_iterator), actor=user.name)
            return _registry_converters.model_version(version)

    async def ListVersions(self, request: cp.ListVersionsRequest, context: Context) -> cp.ListVersionsResponse:
        async with self._call("ListVersions", context):
            page = await self._s.registry.list_versions(
                request.model,
                tags=dict(request.tags),
                alias=request.alias or None,
                page_size=request.page_size,
                page_token=request.page_token,
            )
            return cp.ListVersionsResponse(
                versions=[_registry_converters.model_version(v) for v in page.items], next_page_token=page.next_token
            )

    async def GetVersion(self, request: cp.GetVersionRequest, context: Context) -> cp.ModelVersion:
        async with self._call("GetVersion", context):
            return _registry_converters.model_version(
                await self._s.registry.get_version(_converters.version_ref(request.ref))
            )

    async def DownloadArtifact(
        self, request: cp.DownloadArtifactRequest, context: Context
    ) -> AsyncIterator[cp.ArtifactChunk]:
        async with self._call("DownloadArtifact", context):
            download = await self._s.registry.download(_converters.version_ref(request.ref))
            async for chunk in download_chunks(download.chunks, download.version):
                yield chunk

    async def GetAttachment(self, request: cp.GetAttachmentRequest, context: Context) -> cp.AttachmentContent:
        async with self._call("GetAttachment", context):
            found = await self._s.registry.get_attachment(_converters.version_ref(request.ref), request.name)
            return _registry_converters.attachment_content(found)

    # -- data sets ----------------------------------------------------------------------------------------------

    async def ImportDataset(
        self, request_iterator: AsyncIterator[cp.ImportDatasetRequest], context: Context
    ) -> cp.ImportDatasetResponse:
        async with self._call("ImportDataset", context) as user:
            new = _datasets_converters.new_dataset_version((await upload_header(request_iterator)).header)
            dataset, created = await self._s.datasets.import_dataset(
                new, upload_chunks(request_iterator), actor=user.name
            )
            return cp.ImportDatasetResponse(dataset=_datasets_converters.dataset_version(dataset), created=created)

    async def ListDatasets(self, request: cp.ListDatasetsRequest, context: Context) -> cp.ListDatasetsResponse:
        async with self._call("ListDatasets", context):
            page = await self._s.datasets.list_datasets(page_size=request.page_size, page_token=request.page_token)
            return cp.ListDatasetsResponse(
                datasets=[_datasets_converters.dataset_version(d) for d in page.items], next_page_token=page.next_token
            )

    async def ListDatasetVersions(
        self, request: cp.ListDatasetVersionsRequest, context: Context
    ) -> cp.ListDatasetVersionsResponse:
        async with self._call("ListDatasetVersions", context):
            page = await self._s.datasets.list_versions(
                request.name, page_size=request.page_size, page_token=request.page_token
            )
            return cp.ListDatasetVersionsResponse(
                versions=[_datasets_converters.dataset_version(d) for d in page.items], next_page_token=page.next_token
            )

    async def GetDataset(self, request: cp.GetDatasetRequest, context: Context) -> cp.DatasetVersion:
        async with self._call("GetDataset", context):
            return _datasets_converters.dataset_version(
                await self._s.datasets.get(request.name, request.version or None)
            )

    async def DownloadDataset(self, request: cp.GetDatasetRequest, context: Context) -> AsyncIterator[cp.ArtifactChunk]:
        async with self._call("DownloadDataset", context):
            download = await self._s.datasets.download(request.name, request.version or None)
            async for chunk in download_chunks(download.chunks, download.dataset):
                yield chunk

    # -- aliases ------------------------------------------------------------------------------------------------

    async def SetAlias(self, request: cp.SetAliasRequest, context: Context) -> cp.Alias:
        async with self._call("SetAlias", context) as user:
            change = await self._s.registry.set_alias(request.model, request.alias, request.version, actor=user.name)
            return _registry_converters.alias(change)

    async def DeleteAlias(self, request: cp.DeleteAliasRequest, context: Context) -> cp.DeleteAliasResponse:
        async with self._call("DeleteAlias", context) as user:
            version = await self._s.registry.delete_alias(request.model, request.alias, actor=user.name)
            return cp.DeleteAliasResponse(version=version)

    # -- deployments --------------------------------------------------------------------------------------------

    async def Deploy(self, request: cp.DeployRequest, context: Context) -> cp.Deployment:
        async with self._call("Deploy", context) as user:
            deployed = await self._s.deployments.deploy(
                _deployments_converters.deployment_spec(request), actor=user.name
            )
            return _deployments_converters.deployment(deployed)

    async def Rollback(self, request: cp.RollbackRequest, context: Context) -> cp.Deployment:
        async with self._call("Rollback", context) as user:
            restored = await self._s.deployments.rollback(request.pool, request.model, actor=user.name)
            return _deployments_converters.deployment(restored)

    async def ListDeployments(self, request: cp.ListDeploymentsRequest, context: Context) -> cp.ListDeploymentsResponse:
        async with self._call("ListDeployments", context):
            page = await self._s.deployments.list_deployments(
                pool=request.pool or None,
                model=request.model or None,
                history=request.history,
                page_size=request.page_size,
                page_token=request.page_token,
            )
            return cp.ListDeploymentsResponse(
                deployments=[_deployments_converters.deployment(d) for d in page.items], next_page_token=page.next_token
            )

    # -- servers ------------------------------------------------------------------------------------------------

    async def RegisterServer(self, request: cp.RegisterServerRequest, context: Context) -> cp.Server:
        async with self._call("RegisterServer", context) as user:
            record = await self._s.servers.register(request.pool, request.address, request.name, actor=user.name)
            # It has just spoken to us.
            return _deployments_converters.server(record, alive=True)

    async def Heartbeat(self, request: cp.HeartbeatRequest, context: Context) -> cp.HeartbeatResponse:
        async with self._call("Heartbeat", context):
            models = [_deployments_converters.loaded_model_of(m) for m in request.models]
            generation = await self._s.servers.heartbeat(request.server_id, models, request.generation)
            return cp.HeartbeatResponse(generation=generation)

    async def ListServers(self, request: cp.ListServersRequest, context: Context) -> cp.ListServersResponse:
        async with self._call("ListServers", context):
            servers = await self._s.servers.list_servers(request.pool or None)
            return cp.ListServersResponse(
                servers=[_deployments_converters.server(s.record, alive=s.alive) for s in servers]
            )

    async def WatchAssignments(
        self, request: cp.WatchAssignmentsRequest, context: Context
    ) -> AsyncIterator[cp.Assignments]:
        async with self._call("WatchAssignments", context):
            async for current in self._s.watch.watch(request.pool):
                yield _deployments_converters.assignments(current)

    # -- users --------------------------------------------------------------------------------------------------

    async def CreateUser(self, request: cp.CreateUserRequest, context: Context) -> cp.CreateUserResponse:
        async with self._call("CreateUser", context) as user:
            role = _users_converters.role_of(request.role)
            created, token = await self._s.users.create_user(request.name, role, actor=user.name)
            return cp.CreateUserResponse(user=_users_converters.user(created), token=token)

    async def ListUsers(self, request: cp.ListUsersRequest, context: Context) -> cp.ListUsersResponse:
        async with self._call("ListUsers", context):
            return cp.ListUsersResponse(users=[_users_converters.user(u) for u in await self._s.users.list_users()])

    async def CreateToken(self, request: cp.CreateTokenRequest, context: Context) -> cp.CreateTokenResponse:
        async with self._call("CreateToken", context) as user:
            return cp.CreateTokenResponse(token=await self._s.users.create_token(request.user, actor=user.name))

    async def DisableUser(self, request: cp.DisableUserRequest, context: Context) -> cp.User:
        async with self._call("DisableUser", context) as user:
            return _users_converters.user(await self._s.users.disable_user(request.name, actor=user.name))

    async def WhoAmI(self, request: cp.WhoAmIRequest, context: Context) -> cp.User:
        async with self._call("WhoAmI", context) as user:
            return _users_converters.user(user)

    # -- audit --------------------------------------------------------------------------------------------------

    async def ListAudit(self, request: cp.ListAuditRequest, context: Context) -> cp.ListAuditResponse:
        async with self._call("ListAudit", context):
            page = await self._s.users.list_audit(
                since=_converters.datetime_of(request, "since"),
                actor=request.actor or None,
                action=request.action or None,
                target_prefix=request.target_prefix or None,
                page_size=request.page_size,
                page_token=request.page_token,
            )
            return cp.ListAuditResponse(
                entries=[_users_converters.audit_entry(e) for e in page.items], next_page_token=page.next_token
            )

    # -- monitoring ---------------------------------------------------------------------------------------------

    async def GetMonitoring(self, request: cp.GetMonitoringRequest, context: Context) -> cp.GetMonitoringResponse:
        async with self._call("GetMonitoring", context):
            report = await self._s.monitoring.report(
                _converters.version_ref(request.ref),
                since=_converters.datetime_of(request, "since"),
                until=_converters.datetime_of(request, "until"),
                minutes=request.window_minutes,
            )
            return _monitoring_converters.monitoring_response(report)

    # -- alerting -----------------------------------------------------------------------------------------------

    async def CreateAlertRule(self, request: cp.CreateAlertRuleRequest, context: Context) -> cp.AlertRule:
        async with self._call("CreateAlertRule", context) as user:
            created = await self._s.alerting.create_rule(
                request.name, model=request.model, when=request.when, notify=request.notify, actor=user.name
            )
            return _alerting_converters.alert_rule(created)

    async def ListAlertRules(self, request: cp.ListAlertRulesRequest, context: Context) -> cp.ListAlertRulesResponse:
        async with self._call("ListAlertRules", context):
            rules = await self._s.alerting.list_rules()
            return cp.ListAlertRulesResponse(rules=[_alerting_converters.alert_rule(r) for r in rules])

    async def DeleteAlertRule(self, request: cp.DeleteAlertRuleRequest, context: Context) -> cp.AlertRule:
        async with self._call("DeleteAlertRule", context) as user:
            return _alerting_converters.alert_rule(await self._s.alerting.delete_rule(request.name, actor=user.name))

    async def ListAlerts(self, request: cp.ListAlertsRequest, context: Context) -> cp.ListAlertsResponse:
        async with self._call("ListAlerts", context):
            alerts = await self._s.alerting.list_alerts(request.rule or None)
            return cp.ListAlertsResponse(alerts=[_alerting_converters.alert(a) for a in alerts])

    async def ListAlertHistory(
        self, request: cp.ListAlertHistoryRequest, context: Context
    ) -> cp.ListAlertHistoryResponse:
        async with self._call("ListAlertHistory", context):
            events = await self._s.alerting.history(request.rule or None, limit=request.limit)
            return cp.ListAlertHistoryResponse(events=[_alerting_converters.alert_event(e) for e in events])

    async def SilenceAlert(self, request: cp.SilenceAlertRequest, context: Context) -> cp.AlertRule:
        async with self._call("SilenceAlert", context) as user:
            until = _converters.datetime_of(request, "until")
            return _alerting_converters.alert_rule(await self._s.alerting.silence(request.rule, until, actor=user.name))

    async def AcknowledgeAlert(self, request: cp.AcknowledgeAlertRequest, context: Context) -> cp.Alert:
        async with self._call("AcknowledgeAlert", context) as user:
            alerts = await self._s.alerting.acknowledge(
                request.rule, request.model, request.version or None, actor=user.name
            )
            return _alerting_converters.alert(alerts[0])

    # -- jobs ---------------------------------------------------------------------------------------------------

    async def CreateJob(self, request: cp.CreateJobRequest, context: Context) -> cp.Job:
        async with self._call("CreateJob", context) as user:
            created = await self._s.alerting.create_job(
                request.name, cron=request.cron, kind=request.kind, spec=request.spec, actor=user.name
            )
            return _alerting_converters.job(created)

    async def ListJobs(self, request: cp.ListJobsRequest, context: Context) -> cp.ListJobsResponse:
        async with self._call("ListJobs", context):
            return cp.ListJobsResponse(jobs=[_alerting_converters.job(j) for j in await self._s.alerting.list_jobs()])

    async def DeleteJob(self, request: cp.DeleteJobRequest, context: Context) -> cp.Job:
        async with self._call("DeleteJob", context) as user:
            return _alerting_converters.job(await self._s.alerting.delete_job(request.name, actor=user.name))

    async def ListJobRuns(self, request: cp.ListJobRunsRequest, context: Context) -> cp.ListJobRunsResponse:
        async with self._call("ListJobRuns", context):
            runs = await self._s.alerting.list_runs(request.job or None, limit=request.limit)
            return cp.ListJobRunsResponse(runs=[_alerting_converters.job_run(r) for r in runs])

    async def RunJob(self, request: cp.RunJobRequest, context: Context) -> cp.JobRun:
        async with self._call("RunJob", context):
            run = await self._s.alerting.run_job(request.name)
            return _alerting_converters.job_run(
                TickRecord(run.job, run.tick, run.holder, run.started_at, run.finished_at, run.finished_at,
                           run.outcome, run.log)
            )  # fmt: skip

    # -- prediction logs ----------------------------------------------------------------------------------------

    async def UploadPredictionLog(
        self, request_iterator: AsyncIterator[cp.UploadPredictionLogRequest], context: Context
    ) -> cp.UploadPredictionLogResponse:
        async with self._call("UploadPredictionLog", context) as user:
            new = _monitoring_converters.new_prediction_log((await upload_header(request_iterator)).header)
            stored, created = await self._s.predictions.upload(new, upload_chunks(request_iterator), actor=user.name)
            return cp.UploadPredictionLogResponse(log=_monitoring_converters.prediction_log(stored), created=created)

    async def ListPredictionLogs(
        self, request: cp.ListPredictionLogsRequest, context: Context
    ) -> cp.ListPredictionLogsResponse:
        async with self._call("ListPredictionLogs", context):
            page = await self._s.predictions.list_logs(
                request.model,
                version=request.version or None,
                alias=request.alias or None,
                since=_converters.datetime_of(request, "since"),
                until=_converters.datetime_of(request, "until"),
                page_size=request.page_size,
                page_token=request.page_token,
            )
            return cp.ListPredictionLogsResponse(
                logs=[_monitoring_converters.prediction_log(p) for p in page.items], next_page_token=page.next_token
            )

    async def DownloadPredictionLog(
        self, request: cp.DownloadPredictionLogRequest, context: Context
    ) -> AsyncIterator[cp.ArtifactChunk]:
        async with self._call("DownloadPredictionLog", context):
            download = await self._s.predictions.download(request.sha256)
            async for chunk in download_chunks(download.chunks, download.log):
                yield chunk
