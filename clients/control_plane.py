"""Blocking client of Conduit's control plane (``conduit.control.v1.ControlPlane``).

Example:
    >>> from clients.control_plane import ControlPlaneClient
    >>> with ControlPlaneClient("localhost:8100", token=os.environ["CONDUIT_TOKEN"]) as cp:
    ...     version = cp.register_version(
    ...         "fraud",
    ...         Path("model.onnx"),
    ...         metrics={"auc": 0.93},
    ...         aliases=["staging"],
    ...         attachments={"evaluation.json": ("application/json", evaluation)},
    ...     )
    ...     cp.deploy("default", "fraud", alias="production")

Calls answer protobuf messages of ``control_plane.protocol.control_plane_pb2``; failures raise ``ConduitError``
with the code of the gRPC status.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any

import grpc

from clients._channel import channel_options, error_from_rpc
from contract.errors import ConduitError, ErrorCode
from control_plane.protocol import control_plane_pb2 as cp
from control_plane.protocol import control_plane_pb2_grpc as cp_grpc

__all__ = ["ControlPlaneClient", "parse_ref"]

# The generated stub has no type hints (see clients._channel).
Stub: Any = cp_grpc.ControlPlaneStub

CHUNK_BYTES = 1024 * 1024
MAX_MESSAGE_BYTES = 16 * 1024 * 1024
_REF = re.compile(r"^(?P<model>[^@:]+)(?:@(?P<alias>[^@:]+)|:(?P<version>\d+))?$")


def parse_ref(text: str) -> cp.VersionRef:
    """``NAME`` (latest version), ``NAME@ALIAS`` or ``NAME:VERSION`` as a ``VersionRef``.

    Raises:
        ConduitError: INVALID_ARGUMENT for anything else.
    """
    match = _REF.match(text)
    if match is None:
        raise ConduitError(ErrorCode.INVALID_ARGUMENT, f"{text!r}: expected NAME, NAME@ALIAS or NAME:VERSION")
    if match["alias"]:
        return cp.VersionRef(model=match["model"], alias=match["alias"])
    if match["version"]:
        return cp.VersionRef(model=match["model"], version=int(match["version"]))
    return cp.VersionRef(model=match["model"])


def _sha256(path: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    try:
        with path.open("rb") as file:
            while chunk := file.read(CHUNK_BYTES):
                digest.update(chunk)
                size += len(chunk)
    except OSError as exc:
        raise ConduitError(ErrorCode.INVALID_ARGUMENT, f"cannot read {path}: {exc.strerror}") from None
    return digest.hexdigest(), size


def _chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as file:
        while chunk := file.read(CHUNK_BYTES):
            yield chunk


class ControlPlaneClient:
    """Every call of the control plane API, blocking. Safe to share between threads.

    Args:
        target: Control plane address, e.g. ``"localhost:8100"``.
        token: Bearer token sent with every call.
        timeout: Deadline of unary calls in seconds (uploads and downloads get no deadline).
        root_certificates: PEM of the CA that signed the control plane's certificate; ``None``: plaintext.
    """

    def __init__(
        self,
        target: str,
        *,
        token: str,
        timeout: float | None = 30.0,
        root_certificates: bytes | None = None,
    ) -> None:
        options = channel_options(MAX_MESSAGE_BYTES, ())
        if root_certificates is None:
            self._channel = grpc.insecure_channel(target, options=options)
        else:
            credentials = grpc.ssl_channel_credentials(root_certificates=root_certificates)
            self._channel = grpc.secure_channel(target, credentials, options=options)
        self._stub = Stub(self._channel)
        self._timeout = timeout
        self._metadata = (("authorization", f"Bearer {token}"),)

    def __enter__(self) -> ControlPlaneClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the channel."""
        self._channel.close()

    def _call(self, method: str, request: Any) -> Any:
        try:
            return getattr(self._stub, method)(request, timeout=self._timeout, metadata=self._metadata)
        except grpc.RpcError as error:
            raise error_from_rpc(method, error) from error

    def _upload(self, method: str, header: Any, path: Path) -> Any:
        """Send ``header`` (a request message holding the upload's header), then ``path``'s bytes in messages of the
        same type. No deadline: an upload takes as long as its bytes take."""

        def requests() -> Iterator[Any]:
            yield header
            for chunk in _chunks(path):
                yield type(header)(chunk=chunk)

        try:
            return getattr(self._stub, method)(requests(), metadata=self._metadata)
        except grpc.RpcError as error:
            raise error_from_rpc(method, error) from error

    def _download(self, method: str, request: Any, destination: Path) -> cp.ArtifactChunk:
        """Write a server-streamed file to ``destination`` (atomically, sha256 verified); returns the first chunk's
        header fields, its data cleared."""
        partial = destination.with_name(destination.name + ".partial")
        digest = hashlib.sha256()
        first: cp.ArtifactChunk | None = None
        try:
            with partial.open("wb") as file:
                for chunk in getattr(self._stub, method)(request, metadata=self._metadata):
                    if first is None:
                        first = cp.ArtifactChunk(
                            sha256=chunk.sha256, size_bytes=chunk.size_bytes, version=chunk.version
                        )
                    digest.update(chunk.data)
                    file.write(chunk.data)
            if first is None or digest.hexdigest() != first.sha256:
                raise ConduitError(ErrorCode.INTERNAL, "downloaded file does not match its sha256")
            partial.replace(destination)
        except grpc.RpcError as error:
            raise error_from_rpc(method, error) from error
        finally:
            partial.unlink(missing_ok=True)
        return first

    def _pages(self, method: str, request: Any, field: str, limit: int | None = None) -> Iterator[Any]:
        """Every item of a paginated listing, fetching pages as they are consumed."""
        seen = 0
        while limit is None or seen < limit:
            response = self._call(method, request)
            for item in getattr(response, field):
                if limit is not None and seen >= limit:
                    return
                yield item
                seen += 1
            if not response.next_page_token:
                return
            request.page_token = response.next_page_token

    # -- models -------------------------------------------------------------------------------------------------

    def create_model(self, name: str, description: str = "") -> cp.Model:
        """Create an empty model."""
        result: cp.Model = self._call("CreateModel", cp.CreateModelRequest(name=name, description=description))
        return result

    def list_models(self, *, include_archived: bool = False) -> list[cp.Model]:
        """Every model, by name."""
        request = cp.ListModelsRequest(include_archived=include_archived, page_size=500)
        return list(self._pages("ListModels", request, "models"))

    def get_model(self, name: str) -> cp.Model:
        """One model with its aliases."""
        result: cp.Model = self._call("GetModel", cp.GetModelRequest(name=name))
        return result

    def archive_model(self, name: str) -> cp.Model:
        """Archive a model: it keeps its versions and takes no new ones."""
        result: cp.Model = self._call("ArchiveModel", cp.ArchiveModelRequest(name=name))
        return result

    # -- versions -----------------------------------------------------------------------------------------------

    def register_version(
        self,
        model: str,
        path: Path,
        *,
        metrics: Mapping[str, float] | None = None,
        params: Mapping[str, str] | None = None,
        tags: Mapping[str, str] | None = None,
        lineage: cp.Lineage | None = None,
        description: str = "",
        aliases: Sequence[str] = (),
        create_model: bool = True,
        attachments: Mapping[str, tuple[str, bytes]] | None = None,
    ) -> cp.ModelVersion:
        """Upload ``path`` (an ONNX file) as the model's next version; its sha256 is checked by the server.

        Args:
            attachments: Documents stored with the version, name -> (media type, content), e.g.
                ``{"evaluation.json": ("application/json", data)}``; read back with ``get_attachment``.

        Raises:
            ConduitError: INVALID_ARGUMENT for a file that is not ONNX or a malformed attachment name, NOT_FOUND for
                an unknown model when ``create_model`` is false, RESOURCE_EXHAUSTED for a file above the server's
                upload limit or attachments above its attachment limit.
        """
        sha256, size = _sha256(path)
        header = cp.RegisterVersionHeader(
            model=model,
            create_model=create_model,
            sha256=sha256,
            size_bytes=size,
            metrics=dict(metrics or {}),
            params=dict(params or {}),
            tags=dict(tags or {}),
            lineage=lineage,
            description=description,
            aliases=list(aliases),
            attachments=[
                cp.AttachmentUpload(name=name, media_type=media_type, content=content)
                for name, (media_type, content) in (attachments or {}).items()
            ],
        )
        result: cp.ModelVersion = self._upload("RegisterVersion", cp.RegisterVersionRequest(header=header), path)
        return result

    def list_versions(
        self, model: str, *, tags: Mapping[str, str] | None = None, alias: str = "", limit: int | None = None
    ) -> list[cp.ModelVersion]:
        """Versions of ``model``, newest first, optionally only those with all ``tags``."""
        request = cp.ListVersionsRequest(model=model, tags=dict(tags or {}), alias=alias, page_size=500)
        return list(self._pages("ListVersions", request, "versions", limit))

    def get_version(self, ref: cp.VersionRef) -> cp.ModelVersion:
        """The version a reference names (see ``parse_ref``)."""
        result: cp.ModelVersion = self._call("GetVersion", cp.GetVersionRequest(ref=ref))
        return result

    def download(self, ref: cp.VersionRef, destination: Path) -> cp.ArtifactChunk:
        """Write the version's ONNX artifact to ``destination`` (atomically, sha256 verified).

        Returns:
            The first chunk's header fields (sha256, size, resolved version); its data is cleared.
        """
        return self._download("DownloadArtifact", cp.DownloadArtifactRequest(ref=ref), destination)

    def get_attachment(self, ref: cp.VersionRef, name: str) -> cp.AttachmentContent:
        """A document stored with the version (e.g. ``evaluation.json``), with its content. Raises NOT_FOUND."""
        result: cp.AttachmentContent = self._call("GetAttachment", cp.GetAttachmentRequest(ref=ref, name=name))
        return result

    # -- data sets ----------------------------------------------------------------------------------------------

    def import_dataset(
        self,
        name: str,
        path: Path,
        *,
        version: str,
        profile: cp.DatasetProfile,
        source: str,
        target: str = "",
        description: str = "",
    ) -> tuple[cp.DatasetVersion, bool]:
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
        sha256, size = _sha256(path)
        header = cp.ImportDatasetHeader(
            name=name,
            version=version,
            sha256=sha256,
            size_bytes=size,
            profile=profile,
            source=source,
            target=target,
            description=description,
        )
        response: cp.ImportDatasetResponse = self._upload("ImportDataset", cp.ImportDatasetRequest(header=header), path)
        return response.dataset, response.created

    def list_datasets(self, limit: int | None = None) -> list[cp.DatasetVersion]:
        """The newest version of each data set, by name."""
        return list(self._pages("ListDatasets", cp.ListDatasetsRequest(page_size=500), "datasets", limit))

    def list_dataset_versions(self, name: str, limit: int | None = None) -> list[cp.DatasetVersion]:
        """Versions of data set ``name``, newest first."""
        request = cp.ListDatasetVersionsRequest(name=name, page_size=500)
        return list(self._pages("ListDatasetVersions", request, "versions", limit))

    def get_dataset(self, name: str, version: str = "") -> cp.DatasetVersion:
        """One version of a data set with its profile; ``version`` empty: the newest."""
        result: cp.DatasetVersion = self._call("GetDataset", cp.GetDatasetRequest(name=name, version=version))
        return result

    def download_dataset(self, name: str, destination: Path, version: str = "") -> cp.DatasetVersion:
        """Write a data set version's Parquet file to ``destination`` (atomically, sha256 verified).

        Returns:
            The version written (the newest when ``version`` is empty).
        """
        # Resolved first, so that the file written is the version returned even when a newer one arrives meanwhile.
        dataset = self.get_dataset(name, version)
        first = self._download("DownloadDataset", cp.GetDatasetRequest(name=name, version=dataset.version), destination)
        if first.sha256 != dataset.sha256:
            raise ConduitError(ErrorCode.INTERNAL, "downloaded data set does not match its sha256")
        return dataset

    # -- aliases ------------------------------------------------------------------------------------------------

    def set_alias(self, model: str, alias: str, version: int) -> cp.Alias:
        """Point ``alias`` at ``version`` (creating or moving it)."""
        result: cp.Alias = self._call("SetAlias", cp.SetAliasRequest(model=model, alias=alias, version=version))
        return result

    def delete_alias(self, model: str, alias: str) -> int:
        """Delete ``alias``; returns the version it pointed at."""
        response: cp.DeleteAliasResponse = self._call("DeleteAlias", cp.DeleteAliasRequest(model=model, alias=alias))
        return response.version

    # -- deployments --------------------------------------------------------------------------------------------

    def deploy(
        self,
        pool: str,
        model: str,
        *,
        alias: str = "",
        version: int = 0,
        canary_version: int = 0,
        canary_percent: float = 0.0,
    ) -> cp.Deployment:
        """Serve ``model`` on ``pool``: following ``alias`` or pinned to ``version``, optionally with a canary."""
        target = cp.VersionRef(model=model, alias=alias) if alias else cp.VersionRef(model=model, version=version)
        request = cp.DeployRequest(
            pool=pool, target=target, canary_version=canary_version, canary_percent=canary_percent
        )
        result: cp.Deployment = self._call("Deploy", request)
        return result

    def undeploy(self, pool: str, model: str) -> cp.Deployment:
        """Stop serving ``model`` on ``pool``."""
        request = cp.DeployRequest(pool=pool, target=cp.VersionRef(model=model), undeploy=True)
        result: cp.Deployment = self._call("Deploy", request)
        return result

    def rollback(self, pool: str, model: str) -> cp.Deployment:
        """Bring back the deployment of ``model`` on ``pool`` that preceded the current one."""
        result: cp.Deployment = self._call("Rollback", cp.RollbackRequest(pool=pool, model=model))
        return result

    def list_deployments(
        self, *, pool: str = "", model: str = "", history: bool = False, limit: int | None = None
    ) -> list[cp.Deployment]:
        """Active deployments, or with ``history`` every one, newest first."""
        request = cp.ListDeploymentsRequest(pool=pool, model=model, history=history, page_size=500)
        return list(self._pages("ListDeployments", request, "deployments", limit))

    def list_servers(self, *, pool: str = "") -> list[cp.Server]:
        """Inference servers with their loaded models."""
        response: cp.ListServersResponse = self._call("ListServers", cp.ListServersRequest(pool=pool))
        return list(response.servers)

    # -- users --------------------------------------------------------------------------------------------------

    def create_user(self, name: str, role: int) -> cp.CreateUserResponse:
        """Create a user; the response holds its token, which is never shown again."""
        request = cp.CreateUserRequest(name=name, role=role)  # type: ignore[arg-type]
        result: cp.CreateUserResponse = self._call("CreateUser", request)
        return result

    def list_users(self) -> list[cp.User]:
        """Every user."""
        response: cp.ListUsersResponse = self._call("ListUsers", cp.ListUsersRequest())
        return list(response.users)

    def create_token(self, user: str) -> str:
        """A new token for ``user`` (shown once)."""
        response: cp.CreateTokenResponse = self._call("CreateToken", cp.CreateTokenRequest(user=user))
        return response.token

    def disable_user(self, name: str) -> cp.User:
        """Disable a user: its tokens stop working."""
        result: cp.User = self._call("DisableUser", cp.DisableUserRequest(name=name))
        return result

    def whoami(self) -> cp.User:
        """The user the token belongs to."""
        result: cp.User = self._call("WhoAmI", cp.WhoAmIRequest())
        return result

    # -- audit --------------------------------------------------------------------------------------------------

    def list_audit(
        self,
        *,
        since: datetime | None = None,
        actor: str = "",
        action: str = "",
        target_prefix: str = "",
        limit: int | None = 100,
    ) -> list[cp.AuditEntry]:
        """Audit entries, newest first."""
        request = cp.ListAuditRequest(actor=actor, action=action, target_prefix=target_prefix, page_size=500)
        if since is not None:
            request.since.FromDatetime(since)
        return list(self._pages("ListAudit", request, "entries", limit))

    # -- monitoring ---------------------------------------------------------------------------------------------

    def get_monitoring(
        self,
        ref: cp.VersionRef,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        window_minutes: int = 1,
    ) -> cp.GetMonitoringResponse:
        """A version's traffic, errors, latency and drift per window of ``window_minutes``.

        Args:
            since: Start of the span (its window may begin earlier: windows start at multiples of their length);
                default 15 minutes before ``until``.
            until: End of the span; default now.

        Raises:
            ConduitError: NOT_FOUND for an unknown model or version; INVALID_ARGUMENT for a span of more than 1440
                windows or one that ends before it starts.
        """
        request = cp.GetMonitoringRequest(ref=ref, window_minutes=window_minutes)
        if since is not None:
            request.since.FromDatetime(since)
        if until is not None:
            request.until.FromDatetime(until)
        result: cp.GetMonitoringResponse = self._call("GetMonitoring", request)
        return result

    # -- alerting -----------------------------------------------------------------------------------------------

    def create_alert_rule(self, name: str, *, model: str, when: str, notify: str) -> cp.AlertRule:
        """A rule on ``model`` (``NAME`` or ``NAME@ALIAS``): when ``when`` holds, tell ``notify``.

        Raises:
            ConduitError: INVALID_ARGUMENT naming the argument at fault; ALREADY_EXISTS.
        """
        request = cp.CreateAlertRuleRequest(name=name, model=model, when=when, notify=notify)
        result: cp.AlertRule = self._call("CreateAlertRule", request)
        return result

    def list_alert_rules(self) -> list[cp.AlertRule]:
        return list(self._call("ListAlertRules", cp.ListAlertRulesRequest()).rules)

    def delete_alert_rule(self, name: str) -> cp.AlertRule:
        """Raises ConduitError: NOT_FOUND."""
        result: cp.AlertRule = self._call("DeleteAlertRule", cp.DeleteAlertRuleRequest(name=name))
        return result

    def list_alerts(self, rule: str = "") -> list[cp.Alert]:
        """The current state of each alert, of one rule or of all."""
        return list(self._call("ListAlerts", cp.ListAlertsRequest(rule=rule)).alerts)

    def alert_history(self, rule: str = "", *, limit: int = 0) -> list[cp.AlertEvent]:
        """The latest firings and resolves, newest first, with how their notifications went."""
        return list(self._call("ListAlertHistory", cp.ListAlertHistoryRequest(rule=rule, limit=limit)).events)

    def silence_alert(self, rule: str, until: datetime | None) -> cp.AlertRule:
        """Hold the rule's notifications until ``until`` (None: lift the silence). Raises ConduitError: NOT_FOUND."""
        request = cp.SilenceAlertRequest(rule=rule)
        if until is not None:
            request.until.FromDatetime(until)
        result: cp.AlertRule = self._call("SilenceAlert", request)
        return result

    def acknowledge_alert(self, rule: str, model: str, version: str = "") -> cp.Alert:
        """Acknowledge a firing alert: no repeat notifications for this episode.

        Raises:
            ConduitError: NOT_FOUND when nothing fires there; FAILED_PRECONDITION for a version not firing.
        """
        request = cp.AcknowledgeAlertRequest(rule=rule, model=model, version=version)
        result: cp.Alert = self._call("AcknowledgeAlert", request)
        return result

    # -- jobs ---------------------------------------------------------------------------------------------------

    def create_job(self, name: str, *, cron: str, kind: str, spec: str = "") -> cp.Job:
        """A job run on ``cron``: ``kind`` ``evaluate``, ``gc``, or ``train`` with ``spec``, a training spec's TOML.

        Raises:
            ConduitError: INVALID_ARGUMENT naming the argument at fault; ALREADY_EXISTS.
        """
        result: cp.Job = self._call("CreateJob", cp.CreateJobRequest(name=name, cron=cron, kind=kind, spec=spec))
        return result

    def list_jobs(self) -> list[cp.Job]:
        return list(self._call("ListJobs", cp.ListJobsRequest()).jobs)

    def delete_job(self, name: str) -> cp.Job:
        """Raises ConduitError: NOT_FOUND."""
        result: cp.Job = self._call("DeleteJob", cp.DeleteJobRequest(name=name))
        return result

    def job_runs(self, job: str = "", *, limit: int = 0) -> list[cp.JobRun]:
        """The latest runs, newest first, with their logs."""
        return list(self._call("ListJobRuns", cp.ListJobRunsRequest(job=job, limit=limit)).runs)

    def run_job(self, name: str) -> cp.JobRun:
        """Run the job now and wait for it. Raises ConduitError: NOT_FOUND."""
        result: cp.JobRun = self._call("RunJob", cp.RunJobRequest(name=name))
        return result

    # -- prediction logs ----------------------------------------------------------------------------------------

    def list_prediction_logs(
        self,
        ref: cp.VersionRef,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int | None = None,
    ) -> list[cp.PredictionLog]:
        """The prediction logs of ``ref``'s model, newest first: of its version or alias, or (neither) of every
        version, with rows in ``[since, until)``.

        Raises:
            ConduitError: NOT_FOUND for an unknown alias; INVALID_ARGUMENT for a span that ends before it starts.
        """
        request = cp.ListPredictionLogsRequest(model=ref.model, version=ref.version, alias=ref.alias, page_size=500)
        if since is not None:
            request.since.FromDatetime(since)
        if until is not None:
            request.until.FromDatetime(until)
        return list(self._pages("ListPredictionLogs", request, "logs", limit))

    def download_prediction_log(self, sha256: str, destination: Path) -> cp.ArtifactChunk:
        """Write one prediction log's Parquet file to ``destination`` (atomically, sha256 verified).

        Returns:
            The first chunk's header fields (sha256, size, model version); its data is cleared.
        """
        first = self._download("DownloadPredictionLog", cp.DownloadPredictionLogRequest(sha256=sha256), destination)
        if first.sha256 != sha256:
            raise ConduitError(ErrorCode.INTERNAL, "downloaded prediction log does not match its sha256")
        return first
