"""Models, versions, aliases, artifact downloads and attachments: the registry calls other than the upload."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass

from contract.entities import AliasChange, AttachmentContent, Model, ModelVersion, Page, VersionRef
from contract.errors import ConduitError, ErrorCode
from control_plane.artifacts import CHUNK_BYTES, ArtifactStore
from control_plane.service import _reads
from control_plane.service.changes import Changes
from control_plane.store import AbstractStore

__all__ = ["Download", "RegistryService"]


@dataclass(frozen=True, slots=True)
class Download:
    """An artifact on its way out: the version it belongs to, then its bytes."""

    version: ModelVersion
    chunks: AsyncIterator[bytes]


class RegistryService:
    """Reads and small writes of the registry; every write names its actor, and the store audits it."""

    def __init__(self, store: AbstractStore, artifacts: ArtifactStore, changes: Changes) -> None:
        self._store = store
        self._artifacts = artifacts
        self._changes = changes

    async def create_model(self, name: str, description: str, *, actor: str) -> Model:
        return await asyncio.to_thread(self._store.create_model, name, description, actor=actor)

    async def list_models(self, *, include_archived: bool, page_size: int, page_token: str) -> Page[Model]:
        return await asyncio.to_thread(
            self._store.list_models, include_archived=include_archived, page_size=page_size, page_token=page_token
        )

    async def get_model(self, name: str) -> Model:
        return await asyncio.to_thread(self._store.get_model, name)

    async def archive_model(self, name: str, *, actor: str) -> Model:
        model = await asyncio.to_thread(self._store.archive_model, name, actor=actor)
        self._changes.notify()
        return model

    async def get_version(self, ref: VersionRef) -> ModelVersion:
        return await asyncio.to_thread(self._store.get_version, ref.model, version=ref.version, alias=ref.alias)

    async def list_versions(
        self, model: str, *, tags: Mapping[str, str], alias: str | None, page_size: int, page_token: str
    ) -> Page[ModelVersion]:
        return await asyncio.to_thread(
            self._store.list_versions, model, tags=tags, alias=alias, page_size=page_size, page_token=page_token
        )

    async def set_alias(self, model: str, alias: str, version: int, *, actor: str) -> AliasChange:
        change = await asyncio.to_thread(self._store.set_alias, model, alias, version, actor=actor)
        self._changes.notify()
        return change

    async def delete_alias(self, model: str, alias: str, *, actor: str) -> int:
        version = await asyncio.to_thread(self._store.delete_alias, model, alias, actor=actor)
        self._changes.notify()
        return version

    async def download(self, ref: VersionRef, chunk_bytes: int = CHUNK_BYTES) -> Download:
        """The version ``ref`` names and its artifact's bytes.

        The first chunk is read here, so a missing artifact raises NOT_FOUND before anything is sent.
        """
        version = await self.get_version(ref)
        return Download(version, await _reads.stream(self._artifacts, version.sha256, chunk_bytes))

    async def get_attachment(self, ref: VersionRef, name: str) -> AttachmentContent:
        """The attachment ``name`` of the version ``ref`` names. Raises NOT_FOUND."""
        version = await self.get_version(ref)
        found = next((a for a in version.attachments if a.name == name), None)
        if found is None:
            raise ConduitError(
                ErrorCode.NOT_FOUND, f"model {version.model!r} version {version.version} has no attachment {name!r}"
            )
        return AttachmentContent(version.version, found, await _reads.read_whole(self._artifacts, found.sha256))
