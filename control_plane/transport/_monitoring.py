"""The monitoring calls: a version's monitoring report, and the prediction logs servers upload."""

from __future__ import annotations

from collections.abc import AsyncIterator

from contract import wire
from contract.wire import datetime_of
from control_plane.protocol import control_plane_pb2 as cp
from control_plane.transport._base import DomainServicer
from control_plane.transport._calls import Context
from control_plane.transport._streams import download_chunks, upload_chunks, upload_header

__all__ = ["MonitoringServicer"]


class MonitoringServicer(DomainServicer):
    """Monitoring and prediction logs of ``conduit.control.v1.ControlPlane``."""

    # -- monitoring ---------------------------------------------------------------------------------------------

    async def GetMonitoring(self, request: cp.GetMonitoringRequest, context: Context) -> cp.GetMonitoringResponse:
        async with self._call("GetMonitoring", context):
            report = await self._s.monitoring.report(
                wire.version_ref_of(request.ref),
                since=datetime_of(request, "since"),
                until=datetime_of(request, "until"),
                minutes=request.window_minutes,
            )
            return wire.monitoring_report(report)

    # -- prediction logs ----------------------------------------------------------------------------------------

    async def UploadPredictionLog(
        self, request_iterator: AsyncIterator[cp.UploadPredictionLogRequest], context: Context
    ) -> cp.UploadPredictionLogResponse:
        async with self._call("UploadPredictionLog", context) as user:
            new = wire.new_prediction_log_of((await upload_header(request_iterator)).header)
            # A server uploads in its own name only: one another user registered is not its to use.
            await self._s.servers.check_name(new.server, actor=user.name)
            chunks = self._live(context, upload_chunks(request_iterator))
            stored, created = await self._s.predictions.upload(new, chunks, actor=user.name)
            return cp.UploadPredictionLogResponse(log=wire.prediction_log(stored), created=created)

    async def ListPredictionLogs(
        self, request: cp.ListPredictionLogsRequest, context: Context
    ) -> cp.ListPredictionLogsResponse:
        async with self._call("ListPredictionLogs", context):
            page = await self._s.predictions.list_logs(
                request.model,
                version=request.version or None,
                alias=request.alias or None,
                since=datetime_of(request, "since"),
                until=datetime_of(request, "until"),
                page_size=request.page_size,
                page_token=request.page_token,
            )
            return cp.ListPredictionLogsResponse(
                logs=[wire.prediction_log(p) for p in page.items], next_page_token=page.next_token
            )

    async def DownloadPredictionLog(
        self, request: cp.DownloadPredictionLogRequest, context: Context
    ) -> AsyncIterator[cp.ArtifactChunk]:
        async with self._call("DownloadPredictionLog", context):
            download = await self._s.predictions.download(request.sha256)
            async for chunk in self._live(context, download_chunks(download.chunks, download.log)):
                yield chunk
