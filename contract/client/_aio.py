"""The typed asyncio client of the control plane API (``conduit.control.v1.ControlPlane``): entities in, entities out.

The CLI, the dashboard, the follower, reports and the trainers all call the control plane through it. Every failure
is a ``ConduitError`` with the code of the gRPC status (``contract.status``); every answer is an entity of
``contract.entities`` (``contract.wire`` converts).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import TypeVar

import grpc

from contract import wire
from contract.client._files import FileRequests, artifact_chunks, file_digest, write_verified
from contract.entities import (
    TRAINING_PROFILE,
    AlertEvent,
    AlertRuleRecord,
    AlertStatus,
    AliasChange,
    ArtifactRef,
    AttachmentContent,
    AuditEntry,
    Callers,
    DatasetProfile,
    DatasetVersion,
    Deployment,
    JobRecord,
    JobRun,
    Lineage,
    LoadedModel,
    Model,
    ModelVersion,
    MonitoringReport,
    NewPredictionLog,
    Page,
    PoolAssignments,
    PredictionLog,
    Role,
    ServerStatus,
    TrainingProfile,
    UnseenCategories,
    User,
    VersionRef,
)
from contract.errors import ConduitError, ErrorCode
from contract.status import error_from_rpc
from control_plane.protocol import control_plane_pb2 as cp
from control_plane.protocol import control_plane_pb2_grpc as cp_grpc

__all__ = ["MAX_MESSAGE_BYTES", "ControlPlaneClient", "collect"]

MAX_MESSAGE_BYTES = 16 * 1024 * 1024
"""The largest message either side sends: files travel in chunks, so only a version's inline attachments and long
listings come near it."""
PAGE_SIZE = 500
# Streams (watch, downloads) have no deadline: a control plane that vanishes without closing the connection
# (partition, paused VM) is noticed by HTTP/2 pings instead, which fail the open calls after about 15 s. Pings go out
# even when no call is open; the control plane allows pings this often (its server options).
KEEPALIVE_OPTIONS = (
    ("grpc.keepalive_time_ms", 10_000),
    ("grpc.keepalive_timeout_ms", 5_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_pings_without_data", 0),
)
UPLOAD_TIMEOUT_S = 120.0

T = TypeVar("T")
Request = TypeVar("Request")
Response = TypeVar("Response")


async def collect(listing: Callable[[str], Awaitable[Page[T]]], limit: int | None = None) -> list[T]:
    """Every item of a paginated listing (at most ``limit``): ``listing(page_token)`` fetches one page."""
    items: list[T] = []
    token = ""
    while limit is None or len(items) < limit:
        page = await listing(token)
        items.extend(page.items)
        token = page.next_token
        if not token:
            break
    return items if limit is None else items[:limit]


class ControlPlaneClient:
    """Every call of the control plane API, as one user (the token's). Open with ``connect`` on the running event
    loop (a grpc.aio channel binds to it); ``with_token`` makes another user's client on the same channel.

    Args:
        channel: The channel to the control plane.
        token: Bearer token sent with every call; ``None`` sends none (a process calling only for others, through
            ``with_token``).
        timeout: Deadline of unary calls in seconds; uploads get ``UPLOAD_TIMEOUT_S``, streams none.
    """

    def __init__(self, channel: grpc.aio.Channel, *, token: str | None, timeout: float | None = 30.0) -> None:
        self._channel = channel
        # Typed as ControlPlaneAsyncStub for an aio channel (the overloads of mypy-protobuf's stubs).
        self._stub = cp_grpc.ControlPlaneStub(channel)
        self._metadata = () if token is None else (("authorization", f"Bearer {token}"),)
        self._timeout = timeout

    @classmethod
    def connect(
        cls, target: str, *, token: str | None, root_certificates: bytes | None = None, timeout: float | None = 30.0
    ) -> ControlPlaneClient:
        """A client on a new channel to ``target`` (``host:port``); TLS when ``root_certificates`` (PEM) is given."""
        options = [
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            *KEEPALIVE_OPTIONS,
        ]
        if root_certificates is None:
            channel = grpc.aio.insecure_channel(target, options=options)
        else:
            credentials = grpc.ssl_channel_credentials(root_certificates=root_certificates)
            channel = grpc.aio.secure_channel(target, credentials, options=options)
        return cls(channel, token=token, timeout=timeout)

    def with_token(self, token: str) -> ControlPlaneClient:
        """A client for the owner of ``token`` on this client's channel (closing either closes both)."""
        return ControlPlaneClient(self._channel, token=token, timeout=self._timeout)

    async def close(self) -> None:
        """Close the channel."""
        await self._channel.close()

    async def __aenter__(self) -> ControlPlaneClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    # -- how calls are made -------------------------------------------------------------------------------------

    async def _unary(
        self, name: str, call: grpc.aio.UnaryUnaryMultiCallable[Request, Response], request: Request
    ) -> Response:
        try:
            return await call(request, timeout=self._timeout, metadata=self._metadata)
        except grpc.RpcError as error:
            raise error_from_rpc(name, error) from error

    async def _upload(
        self, name: str, call: grpc.aio.StreamUnaryMultiCallable[Request, Response], requests: FileRequests[Request]
    ) -> Response:
        # Closed when the call ends, even when the control plane answered before the last chunk.
        async with contextlib.aclosing(requests):
            try:
                return await call(requests, timeout=UPLOAD_TIMEOUT_S, metadata=self._metadata)
            except grpc.RpcError as error:
                raise error_from_rpc(name, error) from error

    async def _download(
        self, name: str, call: grpc.aio.UnaryStreamMultiCallable[Request, cp.ArtifactChunk], request: Request
    ) -> AsyncGenerator[ArtifactRef | bytes, None]:
        stream = call(request, metadata=self._metadata)
        try:
            async for item in artifact_chunks(aiter(stream)):
                yield item
        except grpc.RpcError as error:
            raise error_from_rpc(name, error) from error
        finally:
            stream.cancel()

    # -- models and versions ------------------------------------------------------------------------------------

    async def create_model(self, name: str, description: str = "") -> Model:
        """Create an empty model. Raises ConduitError: ALREADY_EXISTS."""
        request = cp.CreateModelRequest(name=name, description=description)
        return wire.model_of(await self._unary("CreateModel", self._stub.CreateModel, request))

    async def list_models(
        self, *, include_archived: bool = False, page_size: int = PAGE_SIZE, page_token: str = ""
    ) -> Page[Model]:
        """One page of models, by name."""
        request = cp.ListModelsRequest(include_archived=include_archived, page_size=page_size, page_token=page_token)
        answer = await self._unary("ListModels", self._stub.ListModels, request)
        return Page([wire.model_of(m) for m in answer.models], answer.next_page_token)

    async def get_model(self, name: str) -> Model:
        """One model with its aliases. Raises ConduitError: NOT_FOUND."""
        return wire.model_of(await self._unary("GetModel", self._stub.GetModel, cp.GetModelRequest(name=name)))

    async def archive_model(self, name: str) -> Model:
        """Archive a model: it keeps its versions and takes no new ones."""
        request = cp.ArchiveModelRequest(name=name)
        return wire.model_of(await self._unary("ArchiveModel", self._stub.ArchiveModel, request))

    async def register_version(
        self,
        model: str,
        path: Path,
        *,
        metrics: Mapping[str, float] | None = None,
        params: Mapping[str, str] | None = None,
        tags: Mapping[str, str] | None = None,
        lineage: Lineage | None = None,
        description: str = "",
        aliases: Sequence[str] = (),
        create_model: bool = True,
        attachments: Mapping[str, tuple[str, bytes]] | None = None,
    ) -> ModelVersion:
        """Upload ``path`` (an ONNX file) as the model's next version; its sha256 is checked by the server.

        Args:
            attachments: Documents stored with the version, name -> (media type, content), e.g.
                ``{"evaluation.json": ("application/json", data)}``; read back with ``get_attachment``.

        Raises:
            ConduitError: INVALID_ARGUMENT for a file that is not ONNX or a malformed attachment name, NOT_FOUND for
                an unknown model when ``create_model`` is false, RESOURCE_EXHAUSTED for a file above the server's
                upload limit or attachments above its attachment limit.
        """
        sha256, size = file_digest(path)
        header = cp.RegisterVersionHeader(
            model=model,
            create_model=create_model,
            sha256=sha256,
            size_bytes=size,
            metrics=dict(metrics or {}),
            params=dict(params or {}),
            tags=dict(tags or {}),
            lineage=wire.lineage(lineage or Lineage()),
            description=description,
            aliases=list(aliases),
            attachments=[
                cp.AttachmentUpload(name=name, media_type=media_type, content=content)
                for name, (media_type, content) in (attachments or {}).items()
            ],
        )
        requests = FileRequests(
            cp.RegisterVersionRequest(header=header), path, lambda chunk: cp.RegisterVersionRequest(chunk=chunk)
        )
        return wire.model_version_of(await self._upload("RegisterVersion", self._stub.RegisterVersion, requests))

    async def list_versions(
        self,
        model: str,
        *,
        tags: Mapping[str, str] | None = None,
        alias: str = "",
        page_size: int = PAGE_SIZE,
        page_token: str = "",
    ) -> Page[ModelVersion]:
        """One page of ``model``'s versions, newest first, optionally only those with all ``tags``."""
        request = cp.ListVersionsRequest(
            model=model, tags=dict(tags or {}), alias=alias, page_size=page_size, page_token=page_token
        )
        answer = await self._unary("ListVersions", self._stub.ListVersions, request)
        return Page([wire.model_version_of(v) for v in answer.versions], answer.next_page_token)

    async def get_version(self, ref: VersionRef) -> ModelVersion:
        """The version a reference names. Raises ConduitError: NOT_FOUND."""
        request = cp.GetVersionRequest(ref=wire.version_ref(ref))
        return wire.model_version_of(await self._unary("GetVersion", self._stub.GetVersion, request))

    def artifact(self, ref: VersionRef) -> AsyncGenerator[ArtifactRef | bytes, None]:
        """The version's ONNX artifact as it streams: its ``ArtifactRef`` (the version resolved), then its bytes."""
        request = cp.DownloadArtifactRequest(ref=wire.version_ref(ref))
        return self._download("DownloadArtifact", self._stub.DownloadArtifact, request)

    async def download(self, ref: VersionRef, destination: Path) -> ArtifactRef:
        """Write the version's ONNX artifact to ``destination`` (atomically, sha256 verified); what was written."""
        return await write_verified(self.artifact(ref), destination)

    async def get_attachment(self, ref: VersionRef, name: str) -> AttachmentContent:
        """A document stored with the version (e.g. ``evaluation.json``), its content and the version ``ref``
        resolved to. Raises NOT_FOUND."""
        request = cp.GetAttachmentRequest(ref=wire.version_ref(ref), name=name)
        return wire.attachment_content_of(await self._unary("GetAttachment", self._stub.GetAttachment, request))

    async def set_alias(self, model: str, alias: str, version: int) -> AliasChange:
        """Point ``alias`` at ``version`` (creating or moving it)."""
        request = cp.SetAliasRequest(model=model, alias=alias, version=version)
        return wire.alias_of(await self._unary("SetAlias", self._stub.SetAlias, request))

    async def delete_alias(self, model: str, alias: str) -> int:
        """Delete ``alias``; returns the version it pointed at."""
        request = cp.DeleteAliasRequest(model=model, alias=alias)
        return (await self._unary("DeleteAlias", self._stub.DeleteAlias, request)).version

    # -- data sets ----------------------------------------------------------------------------------------------

    async def import_dataset(
        self,
        name: str,
        path: Path,
        *,
        version: str,
        profile: DatasetProfile,
        source: str,
        target: str = "",
        description: str = "",
    ) -> tuple[DatasetVersion, bool]:
        """Upload ``path`` (a Parquet file) as version ``version`` of data set ``name``.

        Args:
            version: The data's content hash, 16-64 lowercase hex digits.
            source: Where the data came from, e.g. ``file:credit.csv``; a URL must carry no password.

        Returns:
            The version as stored, and whether this call created it: a version already stored is returned as it is
            (the server answers from the header, without waiting for the bytes).

        Raises:
            ConduitError: INVALID_ARGUMENT for a file that is not Parquet, a malformed name, version or profile;
                RESOURCE_EXHAUSTED for a file above the server's upload limit.
        """
        sha256, size = file_digest(path)
        header = cp.ImportDatasetHeader(
            name=name,
            version=version,
            sha256=sha256,
            size_bytes=size,
            profile=wire.dataset_profile(profile),
            source=source,
            target=target,
            description=description,
        )
        requests = FileRequests(
            cp.ImportDatasetRequest(header=header), path, lambda chunk: cp.ImportDatasetRequest(chunk=chunk)
        )
        answer = await self._upload("ImportDataset", self._stub.ImportDataset, requests)
        return wire.dataset_version_of(answer.dataset), answer.created

    async def list_datasets(self, *, page_size: int = PAGE_SIZE, page_token: str = "") -> Page[DatasetVersion]:
        """One page of data sets: the newest version of each, by name."""
        request = cp.ListDatasetsRequest(page_size=page_size, page_token=page_token)
        answer = await self._unary("ListDatasets", self._stub.ListDatasets, request)
        return Page([wire.dataset_version_of(d) for d in answer.datasets], answer.next_page_token)

    async def list_dataset_versions(
        self, name: str, *, page_size: int = PAGE_SIZE, page_token: str = ""
    ) -> Page[DatasetVersion]:
        """One page of data set ``name``'s versions, newest first."""
        request = cp.ListDatasetVersionsRequest(name=name, page_size=page_size, page_token=page_token)
        answer = await self._unary("ListDatasetVersions", self._stub.ListDatasetVersions, request)
        return Page([wire.dataset_version_of(d) for d in answer.versions], answer.next_page_token)

    async def get_dataset(self, name: str, version: str = "") -> DatasetVersion:
        """One version of a data set with its profile; ``version`` empty: the newest. Raises NOT_FOUND."""
        request = cp.GetDatasetRequest(name=name, version=version)
        return wire.dataset_version_of(await self._unary("GetDataset", self._stub.GetDataset, request))

    async def download_dataset(self, name: str, destination: Path, version: str = "") -> DatasetVersion:
        """Write a data set version's Parquet file to ``destination`` (atomically, sha256 verified); the version
        written (the newest when ``version`` is empty)."""
        # Resolved first, so that the file written is the version returned even when a newer one arrives meanwhile.
        dataset = await self.get_dataset(name, version)
        request = cp.GetDatasetRequest(name=name, version=dataset.version)
        written = await write_verified(
            self._download("DownloadDataset", self._stub.DownloadDataset, request), destination
        )
        if written.sha256 != dataset.sha256:
            raise ConduitError(ErrorCode.INTERNAL, "downloaded data set does not match its sha256")
        return dataset

    async def training_profile(self, ref: VersionRef) -> tuple[DatasetProfile, str] | None:
        """The profile and target column of the rows ``ref`` was trained on: its ``profile.json`` attachment (its
        spec's target and derived columns), else its lineage's data set version; ``None`` when it has neither.

        Raises:
            ConduitError: FAILED_PRECONDITION when the attachment is not a profile; the control plane's refusals.
        """
        version = await self.get_version(ref)
        if any(attachment.name == TRAINING_PROFILE for attachment in version.attachments):
            pinned = VersionRef(version.model, version=version.version)
            content = (await self.get_attachment(pinned, TRAINING_PROFILE)).content
            try:
                training = TrainingProfile.from_json(json.loads(content))
            except (ValueError, KeyError, TypeError, AttributeError) as exc:
                raise ConduitError(
                    ErrorCode.FAILED_PRECONDITION, f"{version.model}:{version.version}'s {TRAINING_PROFILE}: {exc}"
                ) from None
            return training.profile, training.target
        lineage = version.lineage
        if not lineage.dataset:
            return None
        dataset = await self.get_dataset(lineage.dataset, lineage.dataset_version)
        return dataset.profile, dataset.target

    # -- deployments and servers --------------------------------------------------------------------------------

    async def deploy(
        self,
        pool: str,
        model: str,
        *,
        alias: str = "",
        version: int = 0,
        canary_version: int = 0,
        canary_percent: float = 0.0,
        unseen_categories: UnseenCategories = "score",
    ) -> Deployment:
        """Serve ``model`` on ``pool``: following ``alias`` or pinned to ``version``, optionally with a canary;
        ``unseen_categories`` says what its servers answer to a categorical value the training data never had."""
        target = VersionRef(model, alias=alias) if alias else VersionRef(model, version=version)
        request = cp.DeployRequest(
            pool=pool,
            target=wire.version_ref(target),
            canary_version=canary_version,
            canary_percent=canary_percent,
            unseen_categories=unseen_categories,
        )
        return wire.deployment_of(await self._unary("Deploy", self._stub.Deploy, request))

    async def undeploy(self, pool: str, model: str) -> Deployment:
        """Stop serving ``model`` on ``pool``."""
        request = cp.DeployRequest(pool=pool, target=cp.VersionRef(model=model), undeploy=True)
        return wire.deployment_of(await self._unary("Deploy", self._stub.Deploy, request))

    async def rollback(self, pool: str, model: str) -> Deployment:
        """Bring back the deployment of ``model`` on ``pool`` that preceded the current one."""
        request = cp.RollbackRequest(pool=pool, model=model)
        return wire.deployment_of(await self._unary("Rollback", self._stub.Rollback, request))

    async def list_deployments(
        self,
        *,
        pool: str = "",
        model: str = "",
        history: bool = False,
        page_size: int = PAGE_SIZE,
        page_token: str = "",
    ) -> Page[Deployment]:
        """One page of active deployments, or with ``history`` of every one, newest first."""
        request = cp.ListDeploymentsRequest(
            pool=pool, model=model, history=history, page_size=page_size, page_token=page_token
        )
        answer = await self._unary("ListDeployments", self._stub.ListDeployments, request)
        return Page([wire.deployment_of(d) for d in answer.deployments], answer.next_page_token)

    async def register_server(self, pool: str, address: str, name: str) -> ServerStatus:
        """Register a server in ``pool``; the same name gets the same id back."""
        request = cp.RegisterServerRequest(pool=pool, address=address, name=name)
        return wire.server_of(await self._unary("RegisterServer", self._stub.RegisterServer, request))

    async def heartbeat(self, server_id: str, models: Sequence[LoadedModel], generation: int) -> int:
        """Report the loaded models and the applied generation; returns the pool's current generation."""
        request = cp.HeartbeatRequest(
            server_id=server_id, generation=generation, models=[wire.loaded_model(m) for m in models]
        )
        return (await self._unary("Heartbeat", self._stub.Heartbeat, request)).generation

    async def list_servers(self, pool: str = "") -> list[ServerStatus]:
        """Inference servers with their loaded models, of one pool or (empty) of all."""
        answer = await self._unary("ListServers", self._stub.ListServers, cp.ListServersRequest(pool=pool))
        return [wire.server_of(s) for s in answer.servers]

    async def watch_assignments(self, pool: str, server_id: str) -> AsyncGenerator[PoolAssignments, None]:
        """The pool's assignments now, then again on every change, until the stream breaks (raised)."""
        stream = self._stub.WatchAssignments(
            cp.WatchAssignmentsRequest(pool=pool, server_id=server_id), metadata=self._metadata
        )
        try:
            async for message in aiter(stream):
                yield wire.assignments_of(message)
        except grpc.RpcError as error:
            raise error_from_rpc("WatchAssignments", error) from error
        finally:
            stream.cancel()

    # -- users and audit ----------------------------------------------------------------------------------------

    async def create_user(self, name: str, role: Role) -> tuple[User, str]:
        """Create a user; returns it and its token, which is never shown again."""
        request = cp.CreateUserRequest(name=name, role=wire.role(role))
        answer = await self._unary("CreateUser", self._stub.CreateUser, request)
        return wire.user_of(answer.user), answer.token

    async def list_users(self) -> list[User]:
        """Every user."""
        answer = await self._unary("ListUsers", self._stub.ListUsers, cp.ListUsersRequest())
        return [wire.user_of(u) for u in answer.users]

    async def create_token(self, user: str) -> str:
        """A new token for ``user`` (shown once)."""
        request = cp.CreateTokenRequest(user=user)
        return (await self._unary("CreateToken", self._stub.CreateToken, request)).token

    async def disable_user(self, name: str) -> User:
        """Disable a user: its tokens stop working."""
        request = cp.DisableUserRequest(name=name)
        return wire.user_of(await self._unary("DisableUser", self._stub.DisableUser, request))

    async def whoami(self) -> User:
        """The user the token belongs to."""
        return wire.user_of(await self._unary("WhoAmI", self._stub.WhoAmI, cp.WhoAmIRequest()))

    async def list_callers(self, digest: str = "") -> Callers:
        """For inference servers: the hashes of every enabled user's tokens; ``unchanged`` when ``digest`` is
        current."""
        request = cp.ListCallersRequest(digest=digest)
        return wire.callers_of(await self._unary("ListCallers", self._stub.ListCallers, request))

    async def list_audit(
        self,
        *,
        since: datetime | None = None,
        actor: str = "",
        action: str = "",
        target_prefix: str = "",
        page_size: int = PAGE_SIZE,
        page_token: str = "",
    ) -> Page[AuditEntry]:
        """One page of audit entries, newest first."""
        request = cp.ListAuditRequest(
            actor=actor, action=action, target_prefix=target_prefix, page_size=page_size, page_token=page_token
        )
        if since is not None:
            request.since.CopyFrom(wire.timestamp(since))
        answer = await self._unary("ListAudit", self._stub.ListAudit, request)
        return Page([wire.audit_entry_of(e) for e in answer.entries], answer.next_page_token)

    # -- monitoring and prediction logs -------------------------------------------------------------------------

    async def get_monitoring(
        self,
        ref: VersionRef,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        window_minutes: int = 1,
    ) -> MonitoringReport:
        """A version's traffic, errors, latency and drift per window of ``window_minutes``.

        Args:
            since: Start of the span (its window may begin earlier: windows start at multiples of their length);
                default 15 minutes before ``until``.
            until: End of the span; default now.

        Raises:
            ConduitError: NOT_FOUND for an unknown model or version; INVALID_ARGUMENT for a span of more than 1440
                windows or one that ends before it starts.
        """
        request = cp.GetMonitoringRequest(ref=wire.version_ref(ref), window_minutes=window_minutes)
        if since is not None:
            request.since.CopyFrom(wire.timestamp(since))
        if until is not None:
            request.until.CopyFrom(wire.timestamp(until))
        return wire.monitoring_report_of(await self._unary("GetMonitoring", self._stub.GetMonitoring, request))

    async def upload_prediction_log(self, path: Path, log: NewPredictionLog) -> tuple[PredictionLog, bool]:
        """Upload the prediction log file at ``path`` that ``log`` describes; returns it as stored and whether this
        call created it (false: the control plane held a file with this sha256 already)."""
        requests = FileRequests(
            cp.UploadPredictionLogRequest(header=wire.prediction_log_header(log)),
            path,
            lambda chunk: cp.UploadPredictionLogRequest(chunk=chunk),
        )
        answer = await self._upload("UploadPredictionLog", self._stub.UploadPredictionLog, requests)
        return wire.prediction_log_of(answer.log), answer.created

    async def list_prediction_logs(
        self,
        ref: VersionRef,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        page_size: int = PAGE_SIZE,
        page_token: str = "",
    ) -> Page[PredictionLog]:
        """One page of the prediction logs of ``ref``'s model, newest first: of its version or alias, or (neither)
        of every version, with rows in ``[since, until)``.

        Raises:
            ConduitError: NOT_FOUND for an unknown alias; INVALID_ARGUMENT for a span that ends before it starts.
        """
        request = cp.ListPredictionLogsRequest(
            model=ref.model, version=ref.version or 0, alias=ref.alias or "", page_size=page_size, page_token=page_token
        )
        if since is not None:
            request.since.CopyFrom(wire.timestamp(since))
        if until is not None:
            request.until.CopyFrom(wire.timestamp(until))
        answer = await self._unary("ListPredictionLogs", self._stub.ListPredictionLogs, request)
        return Page([wire.prediction_log_of(p) for p in answer.logs], answer.next_page_token)

    async def download_prediction_log(self, sha256: str, destination: Path) -> ArtifactRef:
        """Write one prediction log's Parquet file to ``destination`` (atomically, sha256 verified); its header
        (sha256, size, model version)."""
        request = cp.DownloadPredictionLogRequest(sha256=sha256)
        chunks = self._download("DownloadPredictionLog", self._stub.DownloadPredictionLog, request)
        written = await write_verified(chunks, destination)
        if written.sha256 != sha256:
            raise ConduitError(ErrorCode.INTERNAL, "downloaded prediction log does not match its sha256")
        return written

    # -- alerting and jobs --------------------------------------------------------------------------------------

    async def create_alert_rule(self, name: str, *, model: str, when: str, notify: str) -> AlertRuleRecord:
        """A rule on ``model`` (``NAME`` or ``NAME@ALIAS``): when ``when`` holds, tell ``notify``.

        Raises:
            ConduitError: INVALID_ARGUMENT naming the argument at fault; ALREADY_EXISTS.
        """
        request = cp.CreateAlertRuleRequest(name=name, model=model, when=when, notify=notify)
        return wire.alert_rule_of(await self._unary("CreateAlertRule", self._stub.CreateAlertRule, request))

    async def list_alert_rules(self) -> list[AlertRuleRecord]:
        """Every rule, channels redacted."""
        answer = await self._unary("ListAlertRules", self._stub.ListAlertRules, cp.ListAlertRulesRequest())
        return [wire.alert_rule_of(r) for r in answer.rules]

    async def delete_alert_rule(self, name: str) -> AlertRuleRecord:
        """Raises ConduitError: NOT_FOUND."""
        request = cp.DeleteAlertRuleRequest(name=name)
        return wire.alert_rule_of(await self._unary("DeleteAlertRule", self._stub.DeleteAlertRule, request))

    async def list_alerts(self, rule: str = "") -> list[AlertStatus]:
        """The current state of each alert, of one rule or of all."""
        answer = await self._unary("ListAlerts", self._stub.ListAlerts, cp.ListAlertsRequest(rule=rule))
        return [wire.alert_of(a) for a in answer.alerts]

    async def alert_history(self, rule: str = "", *, limit: int = 0) -> list[AlertEvent]:
        """The latest firings and resolves, newest first, with how their notifications went."""
        request = cp.ListAlertHistoryRequest(rule=rule, limit=limit)
        answer = await self._unary("ListAlertHistory", self._stub.ListAlertHistory, request)
        return [wire.alert_event_of(e) for e in answer.events]

    async def silence_alert(self, rule: str, until: datetime | None) -> AlertRuleRecord:
        """Hold the rule's notifications until ``until`` (None: lift the silence). Raises ConduitError: NOT_FOUND."""
        request = cp.SilenceAlertRequest(rule=rule)
        if until is not None:
            request.until.CopyFrom(wire.timestamp(until))
        return wire.alert_rule_of(await self._unary("SilenceAlert", self._stub.SilenceAlert, request))

    async def acknowledge_alert(self, rule: str, model: str, version: str = "") -> AlertStatus:
        """Acknowledge a firing alert: no repeat notifications for this episode.

        Raises:
            ConduitError: NOT_FOUND when nothing fires there; FAILED_PRECONDITION for a version not firing.
        """
        request = cp.AcknowledgeAlertRequest(rule=rule, model=model, version=version)
        return wire.alert_of(await self._unary("AcknowledgeAlert", self._stub.AcknowledgeAlert, request))

    async def create_job(self, name: str, *, cron: str, kind: str, spec: str = "") -> JobRecord:
        """A job run on ``cron``: ``kind`` ``evaluate``, ``gc``, ``train`` with ``spec``, a training spec's TOML, or
        ``import`` with ``spec``, an ``ImportSpec``'s JSON (``ImportSpec.to_json``).

        Raises:
            ConduitError: INVALID_ARGUMENT naming the argument at fault; ALREADY_EXISTS.
        """
        request = cp.CreateJobRequest(name=name, cron=cron, kind=kind, spec=spec)
        return wire.job_of(await self._unary("CreateJob", self._stub.CreateJob, request))

    async def list_jobs(self) -> list[JobRecord]:
        """Every scheduled job."""
        answer = await self._unary("ListJobs", self._stub.ListJobs, cp.ListJobsRequest())
        return [wire.job_of(j) for j in answer.jobs]

    async def delete_job(self, name: str) -> JobRecord:
        """Raises ConduitError: NOT_FOUND."""
        return wire.job_of(await self._unary("DeleteJob", self._stub.DeleteJob, cp.DeleteJobRequest(name=name)))

    async def job_runs(self, job: str = "", *, limit: int = 0) -> list[JobRun]:
        """The latest runs, newest first, with their logs."""
        request = cp.ListJobRunsRequest(job=job, limit=limit)
        answer = await self._unary("ListJobRuns", self._stub.ListJobRuns, request)
        return [wire.job_run_of(r) for r in answer.runs]

    async def run_job(self, name: str) -> JobRun:
        """Run the job now and wait for it. Raises ConduitError: NOT_FOUND."""
        return wire.job_run_of(await self._unary("RunJob", self._stub.RunJob, cp.RunJobRequest(name=name)))
