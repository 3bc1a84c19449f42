"""The data sets' calls: import, list, read and download versioned data sets."""

from __future__ import annotations

from collections.abc import AsyncIterator

from contract import wire
from control_plane.protocol import control_plane_pb2 as cp
from control_plane.transport import _datasets_converters as converters
from control_plane.transport._base import DomainServicer
from control_plane.transport._calls import Context
from control_plane.transport._streams import download_chunks, upload_chunks, upload_header

__all__ = ["DatasetsServicer"]


class DatasetsServicer(DomainServicer):
    """Data sets of ``conduit.control.v1.ControlPlane``."""

    async def ImportDataset(
        self, request_iterator: AsyncIterator[cp.ImportDatasetRequest], context: Context
    ) -> cp.ImportDatasetResponse:
        async with self._call("ImportDataset", context) as user:
            new = converters.new_dataset_version((await upload_header(request_iterator)).header)
            chunks = self._live(context, upload_chunks(request_iterator))
            dataset, created = await self._s.datasets.import_dataset(new, chunks, actor=user.name)
            return cp.ImportDatasetResponse(dataset=wire.dataset_version(dataset), created=created)

    async def ListDatasets(self, request: cp.ListDatasetsRequest, context: Context) -> cp.ListDatasetsResponse:
        async with self._call("ListDatasets", context):
            page = await self._s.datasets.list_datasets(page_size=request.page_size, page_token=request.page_token)
            return cp.ListDatasetsResponse(
                datasets=[wire.dataset_version(d) for d in page.items], next_page_token=page.next_token
            )

    async def ListDatasetVersions(
        self, request: cp.ListDatasetVersionsRequest, context: Context
    ) -> cp.ListDatasetVersionsResponse:
        async with self._call("ListDatasetVersions", context):
            page = await self._s.datasets.list_versions(
                request.name, page_size=request.page_size, page_token=request.page_token
            )
            return cp.ListDatasetVersionsResponse(
                versions=[wire.dataset_version(d) for d in page.items], next_page_token=page.next_token
            )

    async def GetDataset(self, request: cp.GetDatasetRequest, context: Context) -> cp.DatasetVersion:
        async with self._call("GetDataset", context):
            return wire.dataset_version(await self._s.datasets.get(request.name, request.version or None))

    async def DownloadDataset(self, request: cp.GetDatasetRequest, context: Context) -> AsyncIterator[cp.ArtifactChunk]:
        async with self._call("DownloadDataset", context):
            download = await self._s.datasets.download(request.name, request.version or None)
            async for chunk in self._live(context, download_chunks(download.chunks, download.dataset)):
                yield chunk
