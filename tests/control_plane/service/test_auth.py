"""Who may call what: every role against every call, through the real server."""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

import grpc
import pytest
from google.protobuf import message_factory
from google.protobuf.timestamp_pb2 import Timestamp
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest

from contract.entities import Role
from control_plane.auth import PERMISSIONS, TOKEN_PREFIX, hash_token, new_token
from control_plane.protocol import control_plane_pb2 as cp

from .conftest import Api, Metadata, bearer

SERVICE = cp.DESCRIPTOR.services_by_name["ControlPlane"]

# The contract as the proto states it, written out here rather than read from the table under test.
READ = {
    "ListModels",
    "GetModel",
    "ListVersions",
    "GetVersion",
    "GetAttachment",
    "ListDatasets",
    "ListDatasetVersions",
    "GetDataset",
    "ListDeployments",
    "ListServers",
    "ListAudit",
    "WhoAmI",
    "GetMonitoring",
    "ListAlertRules",
    "ListAlerts",
    "ListAlertHistory",
    "ListJobs",
    "ListJobRuns",
    "ListPredictionLogs",
}
MAINTAIN = READ | {
    "CreateModel",
    "ArchiveModel",
    "RegisterVersion",
    "SetAlias",
    "DeleteAlias",
    "Deploy",
    "Rollback",
    "DownloadArtifact",
    "ImportDataset",
    "DownloadDataset",
    "CreateAlertRule",
    "DeleteAlertRule",
    "SilenceAlert",
    "AcknowledgeAlert",
    "CreateJob",
    "DeleteJob",
    "RunJob",
    "DownloadPredictionLog",
}
SERVE = {
    "WatchAssignments",
    "DownloadArtifact",
    "RegisterServer",
    "Heartbeat",
    "WhoAmI",
    "ExportMetrics",
    "GetVersion",
    "GetAttachment",
    "GetDataset",
    "UploadPredictionLog",
    "ListCallers",
}
# ExportMetrics: the OTLP receiver served beside the ControlPlane service (MetricsService/Export).
EVERYTHING = {method.name for method in SERVICE.methods} | {"ExportMetrics"}
ALLOWED = {
    cp.ROLE_VIEWER: READ,
    cp.ROLE_MAINTAINER: MAINTAIN,
    cp.ROLE_SERVER: SERVE,
    cp.ROLE_ADMIN: EVERYTHING,
}
AUTH_FAILURES = {grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED}

_PAYLOAD = b"\x00" * 16
UNARY_REQUESTS: dict[str, Any] = {
    "CreateModel": cp.CreateModelRequest(name="created"),
    "ListModels": cp.ListModelsRequest(),
    "GetModel": cp.GetModelRequest(name="ghost"),
    "ArchiveModel": cp.ArchiveModelRequest(name="ghost"),
    "ListVersions": cp.ListVersionsRequest(model="ghost"),
    "GetVersion": cp.GetVersionRequest(ref=cp.VersionRef(model="ghost")),
    "GetAttachment": cp.GetAttachmentRequest(ref=cp.VersionRef(model="ghost"), name="evaluation.json"),
    "ListDatasets": cp.ListDatasetsRequest(),
    "ListDatasetVersions": cp.ListDatasetVersionsRequest(name="ghost"),
    "GetDataset": cp.GetDatasetRequest(name="ghost"),
    "SetAlias": cp.SetAliasRequest(model="ghost", alias="production", version=1),
    "DeleteAlias": cp.DeleteAliasRequest(model="ghost", alias="production"),
    "Deploy": cp.DeployRequest(pool="default", target=cp.VersionRef(model="ghost", alias="production")),
    "Rollback": cp.RollbackRequest(pool="default", model="ghost"),
    "ListDeployments": cp.ListDeploymentsRequest(),
    "RegisterServer": cp.RegisterServerRequest(pool="default", address="127.0.0.1:1", name="pod"),
    "Heartbeat": cp.HeartbeatRequest(server_id="ghost"),
    "ListServers": cp.ListServersRequest(),
    "CreateUser": cp.CreateUserRequest(name="created", role=cp.ROLE_VIEWER),
    "ListUsers": cp.ListUsersRequest(),
    "CreateToken": cp.CreateTokenRequest(user="ghost"),
    "DisableUser": cp.DisableUserRequest(name="ghost"),
    "WhoAmI": cp.WhoAmIRequest(),
    "ListCallers": cp.ListCallersRequest(),
    "ListAudit": cp.ListAuditRequest(),
    "GetMonitoring": cp.GetMonitoringRequest(ref=cp.VersionRef(model="ghost")),
    "CreateAlertRule": cp.CreateAlertRuleRequest(name="ghost", model="ghost", when="drift > 0.2", notify="log"),
    "ListAlertRules": cp.ListAlertRulesRequest(),
    "DeleteAlertRule": cp.DeleteAlertRuleRequest(name="ghost"),
    "ListAlerts": cp.ListAlertsRequest(),
    "ListAlertHistory": cp.ListAlertHistoryRequest(),
    "SilenceAlert": cp.SilenceAlertRequest(rule="ghost"),
    "AcknowledgeAlert": cp.AcknowledgeAlertRequest(rule="ghost", model="ghost"),
    "CreateJob": cp.CreateJobRequest(name="ghost", cron="0 3 * * *", kind="gc"),
    "ListJobs": cp.ListJobsRequest(),
    "DeleteJob": cp.DeleteJobRequest(name="ghost"),
    "ListJobRuns": cp.ListJobRunsRequest(),
    "RunJob": cp.RunJobRequest(name="ghost"),
    "ListPredictionLogs": cp.ListPredictionLogsRequest(model="ghost"),
}

DOWNLOADS: dict[str, Any] = {
    "DownloadArtifact": cp.DownloadArtifactRequest(ref=cp.VersionRef(model="ghost")),
    "DownloadDataset": cp.GetDatasetRequest(name="ghost"),
    "DownloadPredictionLog": cp.DownloadPredictionLogRequest(sha256="0" * 64),
}


class _Method:
    """One call of the service by name, on the channel: the table names every call, so it is made generically."""

    def __init__(self, api: Api, call: str) -> None:
        self._channel = api.channel
        self._path = f"/{SERVICE.full_name}/{call}"
        answer = message_factory.GetMessageClass(SERVICE.methods_by_name[call].output_type)
        self._decode = answer.FromString

    def unary_unary(self, request: Any, **options: Any) -> Any:
        call = self._channel.unary_unary(self._path, request_serializer=_encode, response_deserializer=self._decode)
        return call(request, **options)

    def unary_stream(self, request: Any, **options: Any) -> Any:
        call = self._channel.unary_stream(self._path, request_serializer=_encode, response_deserializer=self._decode)
        return call(request, **options)


def _encode(message: Any) -> bytes:
    encoded: bytes = message.SerializeToString()
    return encoded


async def _status(api: Api, call: str, metadata: Metadata) -> grpc.StatusCode:
    """The status ``call`` ends with (OK, or the first message of a watch)."""
    stub = api.stub
    try:
        if call == "ExportMetrics":
            await api.metrics.Export(ExportMetricsServiceRequest(), metadata=metadata, timeout=10)
        elif call == "RegisterVersion":
            header = cp.RegisterVersionHeader(
                model="ghost", sha256=hashlib.sha256(_PAYLOAD).hexdigest(), size_bytes=len(_PAYLOAD)
            )
            requests = [cp.RegisterVersionRequest(header=header), cp.RegisterVersionRequest(chunk=_PAYLOAD)]
            await stub.RegisterVersion(iter(requests), metadata=metadata, timeout=10)
        elif call == "ImportDataset":
            header = cp.ImportDatasetHeader(
                name="ghost",
                version="0123456789abcdef",
                sha256=hashlib.sha256(_PAYLOAD).hexdigest(),
                size_bytes=len(_PAYLOAD),
            )
            requests = [cp.ImportDatasetRequest(header=header), cp.ImportDatasetRequest(chunk=_PAYLOAD)]
            await stub.ImportDataset(iter(requests), metadata=metadata, timeout=10)
        elif call == "UploadPredictionLog":
            log_header = cp.PredictionLogHeader(
                model="ghost",
                version=1,
                first_at=Timestamp(seconds=1),
                last_at=Timestamp(seconds=2),
                rows=1,
                sha256=hashlib.sha256(_PAYLOAD).hexdigest(),
                size_bytes=len(_PAYLOAD),
                server="pod",
            )
            uploads = [cp.UploadPredictionLogRequest(header=log_header), cp.UploadPredictionLogRequest(chunk=_PAYLOAD)]
            await stub.UploadPredictionLog(iter(uploads), metadata=metadata, timeout=10)
        elif call in DOWNLOADS:
            async for _ in _Method(api, call).unary_stream(DOWNLOADS[call], metadata=metadata, timeout=10):
                pass
        elif call == "WatchAssignments":
            watch = stub.WatchAssignments(cp.WatchAssignmentsRequest(pool="default"), metadata=metadata, timeout=10)
            await watch.read()
            watch.cancel()
            return grpc.StatusCode.OK
        else:
            await _Method(api, call).unary_unary(UNARY_REQUESTS[call], metadata=metadata, timeout=10)
    except grpc.aio.AioRpcError as error:
        return error.code()
    return grpc.StatusCode.OK


def test_the_table_covers_every_call_of_the_service() -> None:
    assert set(PERMISSIONS) == EVERYTHING
    streams = {"RegisterVersion", "ImportDataset", "UploadPredictionLog", "WatchAssignments"}
    assert set(UNARY_REQUESTS) | set(DOWNLOADS) | streams | {"ExportMetrics"} == EVERYTHING
    entities = {cp.ROLE_VIEWER: Role.VIEWER, cp.ROLE_MAINTAINER: Role.MAINTAINER}
    entities |= {cp.ROLE_SERVER: Role.SERVER, cp.ROLE_ADMIN: Role.ADMIN}
    for role, calls in ALLOWED.items():
        assert {call for call, roles in PERMISSIONS.items() if entities[role] in roles} == calls


@pytest.mark.parametrize("role", [cp.ROLE_VIEWER, cp.ROLE_MAINTAINER, cp.ROLE_SERVER, cp.ROLE_ADMIN])
async def test_each_role_may_make_exactly_its_calls(api: Api, role: int) -> None:
    metadata = await api.user("caller", role)
    for call in sorted(EVERYTHING):
        status = await _status(api, call, metadata)
        if call in ALLOWED[role]:
            assert status not in AUTH_FAILURES, (call, status)
        else:
            assert status == grpc.StatusCode.PERMISSION_DENIED, (call, status)


@pytest.mark.parametrize(
    "metadata",
    [
        (),
        bearer("cdt_not-a-token-anyone-was-given"),
        (("authorization", "Basic YWRtaW46YWRtaW4="),),
        (("authorization", "Bearer"),),
    ],
    ids=["none", "unknown", "basic", "empty"],
)
async def test_no_valid_token_is_unauthenticated_for_every_call(api: Api, metadata: Metadata) -> None:
    statuses = await asyncio.gather(*(_status(api, call, metadata) for call in sorted(EVERYTHING)))
    assert set(statuses) == {grpc.StatusCode.UNAUTHENTICATED}


async def test_disabled_user_and_extra_tokens(api: Api) -> None:
    viewer = await api.user("ana", cp.ROLE_VIEWER)
    extra = await api.stub.CreateToken(cp.CreateTokenRequest(user="ana"), metadata=api.admin)
    assert extra.token.startswith(TOKEN_PREFIX) and extra.token != api.tokens["ana"]
    for metadata in (viewer, bearer(extra.token)):
        me = await api.stub.WhoAmI(cp.WhoAmIRequest(), metadata=metadata)
        assert (me.name, me.role) == ("ana", cp.ROLE_VIEWER)

    disabled = await api.stub.DisableUser(cp.DisableUserRequest(name="ana"), metadata=api.admin)
    assert disabled.disabled
    for metadata in (viewer, bearer(extra.token)):
        assert await _status(api, "WhoAmI", metadata) == grpc.StatusCode.UNAUTHENTICATED
    users = await api.stub.ListUsers(cp.ListUsersRequest(), metadata=api.admin)
    assert [(u.name, u.role, u.disabled) for u in users.users] == [
        ("admin", cp.ROLE_ADMIN, False),
        ("ana", cp.ROLE_VIEWER, True),
    ]


async def test_user_requests_are_checked(api: Api) -> None:
    for request, status in [
        (cp.CreateUserRequest(name="bob"), grpc.StatusCode.INVALID_ARGUMENT),
        (cp.CreateUserRequest(name="admin", role=cp.ROLE_VIEWER), grpc.StatusCode.ALREADY_EXISTS),
        (cp.CreateUserRequest(name="no/slash", role=cp.ROLE_VIEWER), grpc.StatusCode.INVALID_ARGUMENT),
    ]:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await api.stub.CreateUser(request, metadata=api.admin)
        assert refused.value.code() == status
    with pytest.raises(grpc.aio.AioRpcError) as itself:
        await api.stub.DisableUser(cp.DisableUserRequest(name="admin"), metadata=api.admin)
    assert itself.value.code() == grpc.StatusCode.FAILED_PRECONDITION


def test_tokens_are_random_and_stored_as_sha256() -> None:
    token = new_token()
    assert token.startswith("cdt_") and len(token) == len("cdt_") + 43
    assert token != new_token()
    assert hash_token(token) == hashlib.sha256(token.encode()).hexdigest()


async def test_list_callers_gives_servers_the_hashes_of_enabled_users_tokens(api: Api) -> None:
    server = await api.user("server-1", cp.ROLE_SERVER)
    await api.user("ana", cp.ROLE_VIEWER)
    extra = await api.stub.CreateToken(cp.CreateTokenRequest(user="ana"), metadata=api.admin)
    first = await api.stub.ListCallers(cp.ListCallersRequest(), metadata=server)
    by_hash = {c.token_sha256: (c.user, c.role) for c in first.callers}
    assert by_hash[hash_token(api.tokens["ana"])] == ("ana", cp.ROLE_VIEWER)
    assert by_hash[hash_token(extra.token)] == ("ana", cp.ROLE_VIEWER)
    assert by_hash[hash_token(api.tokens["server-1"])] == ("server-1", cp.ROLE_SERVER)
    assert not any(api.tokens["ana"] in str(c) for c in first.callers)  # hashes only, never a token
    assert not first.unchanged and first.digest

    again = await api.stub.ListCallers(cp.ListCallersRequest(digest=first.digest), metadata=server)
    assert again.unchanged and not again.callers and again.digest == first.digest

    await api.stub.DisableUser(cp.DisableUserRequest(name="ana"), metadata=api.admin)
    after = await api.stub.ListCallers(cp.ListCallersRequest(digest=first.digest), metadata=server)
    assert not after.unchanged and after.digest != first.digest
    assert {c.user for c in after.callers} == {"admin", "server-1"}
