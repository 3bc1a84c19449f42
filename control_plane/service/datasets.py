"""Data sets: imports (spooled, verified and stored like model artifacts, then recorded), listings and downloads."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

from contract.entities import DatasetVersion, NewDatasetVersion, Page
from contract.errors import ConduitError, ErrorCode
from control_plane.artifacts import CHUNK_BYTES, ArtifactStore
from control_plane.service import _reads
from control_plane.service._parquet import ParquetLimits, check_parquet
from control_plane.service.spool import Spool
from control_plane.store import AbstractStore, check_new_dataset

__all__ = ["DatasetDownload", "DatasetService"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class DatasetDownload:
    """A data set's Parquet file on its way out: the version it belongs to, then its bytes."""

    dataset: DatasetVersion
    chunks: AsyncIterator[bytes]


class DatasetService:
    """Data set versions are immutable and named by their content hash, so importing one twice is harmless.

    Args:
        parquet: What an imported file's Parquet metadata may declare (rows, decoded size).
    """

    def __init__(
        self, store: AbstractStore, artifacts: ArtifactStore, *, spool: Spool, parquet: ParquetLimits | None = None
    ) -> None:
        self._store = store
        self._artifacts = artifacts
        self._spool = spool
        self._parquet = parquet or ParquetLimits()

    async def import_dataset(
        self, new: NewDatasetVersion, chunks: AsyncIterator[bytes], *, actor: str
    ) -> tuple[DatasetVersion, bool]:
        """Receive ``chunks``, verify them against ``new``, store the Parquet file, record the version.

        Returns:
            The version and whether this call created it. A version already recorded is returned at once, before
            any byte is received: the client computed its name from the data, so the data is already here. When
            its stored profile is ``outdated`` and ``new``'s is not, ``new``'s replaces it first (the upgrade path
            of versions imported before the current profile; the caller sees it in the profile returned).

        Raises:
            ConduitError: INVALID_ARGUMENT for a malformed header or profile, a size or sha256 that does not match,
                bytes that are not a Parquet file, or one declaring more rows or decoded bytes than the limits;
                RESOURCE_EXHAUSTED above the upload limit or beside too many uploads at once.
        """
        check_new_dataset(new)
        self._spool.check_announced("data set", new.sha256, new.size_bytes)
        try:
            stored = await asyncio.to_thread(self._store.get_dataset, new.name, new.version)
        except ConduitError as exc:
            if exc.code is not ErrorCode.NOT_FOUND:
                raise
        else:
            if stored.profile.outdated and not new.profile.outdated:
                stored, rebuilt = await asyncio.to_thread(self._store.rebuild_dataset_profile, new, actor=actor)
                if rebuilt:
                    log.info("rebuilt the profile of data set %s version %s by %s", new.name, new.version, actor)
            return stored, False
        async with self._spool.receive("data set", new.sha256, new.size_bytes, chunks, suffix=".parquet") as spool:
            # Before it is stored: a train job must never be the first to find a decompression bomb.
            await asyncio.to_thread(check_parquet, spool, "data set", self._parquet)
            await asyncio.to_thread(self._artifacts.put, new.sha256, spool)
        # The file is complete; the row commits whole or not at all. A concurrent import of the same version may
        # have committed first: the store then returns that one, and created is false.
        dataset, created = await asyncio.to_thread(self._store.create_dataset_version, new, actor=actor)
        if created:
            log.info("imported data set %s version %s (%s) by %s", new.name, new.version, new.sha256[:12], actor)
        return dataset, created

    async def list_datasets(self, *, page_size: int, page_token: str) -> Page[DatasetVersion]:
        return await asyncio.to_thread(self._store.list_datasets, page_size=page_size, page_token=page_token)

    async def list_versions(self, name: str, *, page_size: int, page_token: str) -> Page[DatasetVersion]:
        return await asyncio.to_thread(
            self._store.list_dataset_versions, name, page_size=page_size, page_token=page_token
        )

    async def get(self, name: str, version: str | None) -> DatasetVersion:
        """The version, or (None) the newest. Raises NOT_FOUND."""
        return await asyncio.to_thread(self._store.get_dataset, name, version)

    async def download(self, name: str, version: str | None, chunk_bytes: int = CHUNK_BYTES) -> DatasetDownload:
        """The version and its Parquet file's bytes; a missing file raises NOT_FOUND before anything is sent."""
        dataset = await self.get(name, version)
        return DatasetDownload(dataset, await _reads.stream(self._artifacts, dataset.sha256, chunk_bytes))
