"""The control plane calls a following server makes, over one grpc.aio channel with the server's bearer token.

The only module of the follower that imports grpc: it converts messages to ``contract.entities`` values and failures to
``ConduitError`` through the one status table.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from contract.entities import ArtifactRef, Assignment, LoadedModel, PoolAssignments
from contract.status import error_from_rpc
from control_plane.protocol import control_plane_pb2 as cp
from control_plane.protocol import control_plane_pb2_grpc as cp_grpc

if TYPE_CHECKING:
    from inference_server.predictions import LogFile

__all__ = ["ArtifactHeader", "ControlPlaneClient"]

# The generated stub has no type hints.
_Stub: Any = cp_grpc.ControlPlaneStub

# Unary calls are small; a control plane that does not answer one within this many seconds counts as down.
CALL_TIMEOUT_S = 10.0
MAX_MESSAGE_BYTES = 16 * 1024 * 1024
# A prediction log holds sampled rows: small, but sent as a stream like any file, in chunks well below the limit.
UPLOAD_CHUNK_BYTES = 1024 * 1024
UPLOAD_TIMEOUT_S = 120.0
# The watch and downloads have no deadline: a control plane that vanishes without closing the connection (partition,
# paused VM) is noticed by HTTP/2 pings instead, which fail the open calls after about 15 s. Pings go out even when
# no call is open, so a partition is noticed before the next call has to time out. The control plane allows pings
# this often (its server options).
KEEPALIVE_OPTIONS = [
    ("grpc.keepalive_time_ms", 10_000),
    ("grpc.keepalive_timeout_ms", 5_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_pings_without_data", 0),
]


@dataclass(frozen=True, slots=True)
class ArtifactHeader:
    """What the first chunk of a download announces."""

    version: int
    sha256: str
    size_bytes: int


def _ref(message: Any) -> ArtifactRef:
    return ArtifactRef(int(message.version), str(message.sha256), int(message.size_bytes))


def _assignments(message: Any) -> PoolAssignments:
    models: list[Assignment] = []
    for item in message.models:
        canary = _ref(item.canary) if item.HasField("canary") and item.canary.version else None
        models.append(Assignment(item.model, _ref(item.primary), canary, float(item.canary_percent)))
    return PoolAssignments.of(str(message.pool), int(message.generation), models)


def _timestamp(moment: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(moment)
    return stamp


class _FileRequests:
    """The requests of an upload: ``first``, then the file at ``path`` in chunks (each made a message by ``wrap``).

    An async iterator that ``aclose`` ends from outside at any time: gRPC reads it from a task of its own and stops
    reading when the control plane answers early (a file it holds already, a refusal, a failure), leaving it
    suspended; ``aclose`` then waits for a read under way and closes the file, and a later read finds it ended.
    """

    def __init__(self, first: Any, path: Path, wrap: Callable[[bytes], Any]) -> None:
        self._first: Any | None = first
        self._path = path
        self._wrap = wrap
        self._file: IO[bytes] | None = None
        self._closed = False
        self._lock = asyncio.Lock()

    def __aiter__(self) -> _FileRequests:
        return self

    async def __anext__(self) -> Any:
        async with self._lock:
            if self._closed:
                raise StopAsyncIteration
            if self._first is not None:
                first, self._first = self._first, None
                return first
            if self._file is None:
                self._file = await asyncio.to_thread(self._path.open, "rb")
            chunk = await asyncio.to_thread(self._file.read, UPLOAD_CHUNK_BYTES)
            if not chunk:
                self._close()
                raise StopAsyncIteration
            return self._wrap(chunk)

    def _close(self) -> None:
        self._closed = True
        if self._file is not None:
            self._file.close()

    async def aclose(self) -> None:
        async with self._lock:
            self._close()


def _profile(dataset: Any) -> dict[str, Any]:
    columns = [
        {
            "name": column.name,
            "dtype": column.dtype,
            "kind": column.kind,
            "missing": int(column.missing),
            "missing_rate": column.missing_rate,
            "bin_edges": list(column.bin_edges),
            "bin_counts": [int(c) for c in column.bin_counts],
            "min": column.min,
            "max": column.max,
            "mean": column.mean,
            "std": column.std,
            "distinct": int(column.distinct),
            "top_categories": [{"value": c.value, "count": int(c.count)} for c in column.top_categories],
            "other_count": int(column.other_count),
        }
        for column in dataset.profile.columns
    ]
    return {"rows": int(dataset.profile.rows), "columns": columns, "target": dataset.target}


class ControlPlaneClient:
    """The follower's calls to the control plane. Create it on the running event loop; ``close`` it when done.

    Args:
        target: Control plane address (host:port).
        token: Bearer token of a ``server``-role user.
        root_certificates: PEM of the CA of the control plane's certificate; ``None``: plaintext.
    """

    def __init__(self, target: str, *, token: str, root_certificates: bytes | None = None) -> None:
        options = [
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            *KEEPALIVE_OPTIONS,
        ]
        if root_certificates is None:
            self._channel = grpc.aio.insecure_channel(target, options=options)
        else:
            credentials = grpc.ssl_channel_credentials(root_certificates=root_certificates)
            self._channel = grpc.aio.secure_channel(target, credentials, options=options)
        self._stub = _Stub(self._channel)
        self._metadata = (("authorization", f"Bearer {token}"),)

    async def close(self) -> None:
        await self._channel.close()

    async def register(self, pool: str, address: str, name: str) -> str:
        """Register this server in ``pool``; returns its server id (the same name gets the same id back)."""
        request = cp.RegisterServerRequest(pool=pool, address=address, name=name)
        try:
            server = await self._stub.RegisterServer(request, metadata=self._metadata, timeout=CALL_TIMEOUT_S)
        except grpc.RpcError as exc:
            raise error_from_rpc("control plane RegisterServer", exc) from None
        return str(server.id)

    async def heartbeat(self, server_id: str, models: Sequence[LoadedModel], generation: int) -> int:
        """Report the loaded models and the applied generation; returns the pool's current generation."""
        request = cp.HeartbeatRequest(
            server_id=server_id,
            generation=generation,
            models=[cp.LoadedModel(model=m.model, version=m.version, state=m.state, reason=m.reason) for m in models],
        )
        try:
            answer = await self._stub.Heartbeat(request, metadata=self._metadata, timeout=CALL_TIMEOUT_S)
        except grpc.RpcError as exc:
            raise error_from_rpc("control plane Heartbeat", exc) from None
        return int(answer.generation)

    async def watch(self, pool: str, server_id: str) -> AsyncGenerator[PoolAssignments, None]:
        """The pool's assignments now, then again on every change, until the stream breaks (raised)."""
        call = self._stub.WatchAssignments(
            cp.WatchAssignmentsRequest(pool=pool, server_id=server_id), metadata=self._metadata
        )
        try:
            async for message in call:
                yield _assignments(message)
        except grpc.RpcError as exc:
            raise error_from_rpc("control plane WatchAssignments", exc) from None
        finally:
            call.cancel()

    async def training_profile(self, model: str, version: int) -> dict[str, Any] | None:
        """The profile of the data set version that ``model`` version ``version`` was trained on, in the form of a
        repository's ``profile.json`` (with its ``target``); ``None`` when the version's lineage names no data set."""
        ref = cp.VersionRef(model=model, version=version)
        try:
            found = await self._stub.GetVersion(
                cp.GetVersionRequest(ref=ref), metadata=self._metadata, timeout=CALL_TIMEOUT_S
            )
            lineage = found.lineage
            if not lineage.dataset:
                return None
            dataset = await self._stub.GetDataset(
                cp.GetDatasetRequest(name=lineage.dataset, version=lineage.dataset_version),
                metadata=self._metadata,
                timeout=CALL_TIMEOUT_S,
            )
        except grpc.RpcError as exc:
            raise error_from_rpc("control plane GetVersion/GetDataset", exc) from None
        return _profile(dataset)

    async def download(self, model: str, version: int) -> AsyncIterator[ArtifactHeader | bytes]:
        """The artifact of ``model`` version ``version``: an ``ArtifactHeader``, then its bytes in chunks."""
        request = cp.DownloadArtifactRequest(ref=cp.VersionRef(model=model, version=version))
        call = self._stub.DownloadArtifact(request, metadata=self._metadata)
        first = True
        try:
            async for chunk in call:
                if first:
                    first = False
                    yield ArtifactHeader(int(chunk.version), str(chunk.sha256), int(chunk.size_bytes))
                if chunk.data:
                    yield bytes(chunk.data)
        except grpc.RpcError as exc:
            raise error_from_rpc("control plane DownloadArtifact", exc) from None
        finally:
            call.cancel()

    async def upload_prediction_log(self, log_file: LogFile, server: str) -> bool:
        """Upload one prediction log file; returns whether the control plane created it (false: it already held
        a file with this sha256)."""
        header = cp.PredictionLogHeader(
            model=log_file.model,
            version=int(log_file.version),
            first_at=_timestamp(log_file.first_at),
            last_at=_timestamp(log_file.last_at),
            rows=log_file.rows,
            sha256=log_file.sha256,
            size_bytes=log_file.size_bytes,
            server=server,
        )

        requests = _FileRequests(
            cp.UploadPredictionLogRequest(header=header),
            log_file.path,
            lambda chunk: cp.UploadPredictionLogRequest(chunk=chunk),
        )
        # Closed when the call ends, even when the control plane answered before the last chunk.
        async with contextlib.aclosing(requests):
            try:
                answer = await self._stub.UploadPredictionLog(
                    requests, metadata=self._metadata, timeout=UPLOAD_TIMEOUT_S
                )
            except grpc.RpcError as exc:
                raise error_from_rpc("control plane UploadPredictionLog", exc) from None
        return bool(answer.created)
