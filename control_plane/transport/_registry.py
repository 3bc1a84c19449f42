"""The registry's calls: models, their versions with artifacts and attachments, and aliases."""

from __future__ import annotations

from collections.abc import AsyncIterator

from contract import wire
from control_plane.protocol import control_plane_pb2 as cp
from control_plane.transport import _registry_converters as converters
from control_plane.transport._base import DomainServicer
from control_plane.transport._calls import Context
from control_plane.transport._streams import download_chunks, upload_chunks, upload_header

__all__ = ["RegistryServicer"]


class RegistryServicer(DomainServicer):
    """Models, versions and aliases of ``conduit.control.v1.ControlPlane``."""

    # -- models -------------------------------------------------------------------------------------------------

    async def CreateModel(self, request: cp.CreateModelRequest, context: Context) -> cp.Model:
        async with self._call("CreateModel", context) as user:
            created = await self._s.registry.create_model(request.name, request.description, actor=user.name)
            return wire.model(created)

    async def ListModels(self, request: cp.ListModelsRequest, context: Context) -> cp.ListModelsResponse:
        async with self._call("ListModels", context):
            page = await self._s.registry.list_models(
                include_archived=request.include_archived, page_size=request.page_size, page_token=request.page_token
            )
            return cp.ListModelsResponse(models=[wire.model(m) for m in page.items], next_page_token=page.next_token)

    async def GetModel(self, request: cp.GetModelRequest, context: Context) -> cp.Model:
        async with self._call("GetModel", context):
            return wire.model(await self._s.registry.get_model(request.name))

    async def ArchiveModel(self, request: cp.ArchiveModelRequest, context: Context) -> cp.Model:
        async with self._call("ArchiveModel", context) as user:
            return wire.model(await self._s.registry.archive_model(request.name, actor=user.name))

    # -- versions -----------------------------------------------------------------------------------------------

    async def RegisterVersion(
        self, request_iterator: AsyncIterator[cp.RegisterVersionRequest], context: Context
    ) -> cp.ModelVersion:
        async with self._call("RegisterVersion", context) as user:
            header = converters.upload_header((await upload_header(request_iterator)).header)
            chunks = self._live(context, upload_chunks(request_iterator))
            version = await self._s.uploads.register(header, chunks, actor=user.name)
            return wire.model_version(version)

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
                versions=[wire.model_version(v) for v in page.items], next_page_token=page.next_token
            )

    async def GetVersion(self, request: cp.GetVersionRequest, context: Context) -> cp.ModelVersion:
        async with self._call("GetVersion", context):
            return wire.model_version(await self._s.registry.get_version(wire.version_ref_of(request.ref)))

    async def DownloadArtifact(
        self, request: cp.DownloadArtifactRequest, context: Context
    ) -> AsyncIterator[cp.ArtifactChunk]:
        async with self._call("DownloadArtifact", context):
            download = await self._s.registry.download(wire.version_ref_of(request.ref))
            async for chunk in self._live(context, download_chunks(download.chunks, download.version)):
                yield chunk

    async def GetAttachment(self, request: cp.GetAttachmentRequest, context: Context) -> cp.AttachmentContent:
        async with self._call("GetAttachment", context):
            found = await self._s.registry.get_attachment(wire.version_ref_of(request.ref), request.name)
            return wire.attachment_content(found)

    # -- aliases ------------------------------------------------------------------------------------------------

    async def SetAlias(self, request: cp.SetAliasRequest, context: Context) -> cp.Alias:
        async with self._call("SetAlias", context) as user:
            change = await self._s.registry.set_alias(request.model, request.alias, request.version, actor=user.name)
            return wire.alias(change)

    async def DeleteAlias(self, request: cp.DeleteAliasRequest, context: Context) -> cp.DeleteAliasResponse:
        async with self._call("DeleteAlias", context) as user:
            version = await self._s.registry.delete_alias(request.model, request.alias, actor=user.name)
            return cp.DeleteAliasResponse(version=version)
