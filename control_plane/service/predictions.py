"""Prediction logs: uploads from inference servers (spooled, verified and stored like data sets, then recorded once
per sha256), listings by model version and time, downloads."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from contract.entities import NewPredictionLog, Page, PredictionLog
from contract.errors import ConduitError, ErrorCode
from control_plane.artifacts import CHUNK_BYTES, ArtifactStore
from control_plane.service import _reads
from control_plane.service._parquet import ParquetLimits, check_parquet
from control_plane.service._skew import check_reported_time
from control_plane.service.spool import Spool
from control_plane.store import AbstractStore, check_new_prediction_log

__all__ = ["PredictionLogDownload", "PredictionLogService"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class PredictionLogDownload:
    """A prediction log's Parquet file on its way out: the log, then its bytes."""

    log: PredictionLog
    chunks: AsyncIterator[bytes]


class PredictionLogService:
    """A file is named by its sha256, so a server retrying an upload whose answer it lost stores nothing twice.

    Args:
        retention: Logs whose latest row is older than this are deleted by ``prune``, with their files.
        clock: The current time (aware, UTC).
        parquet: What an uploaded file's Parquet metadata may declare (rows, decoded size).
    """

    def __init__(
        self,
        store: AbstractStore,
        artifacts: ArtifactStore,
        *,
        spool: Spool,
        retention: timedelta = timedelta(days=30),
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        parquet: ParquetLimits | None = None,
    ) -> None:
        self._store = store
        self._artifacts = artifacts
        self._spool = spool
        self._retention = retention
        self._clock = clock
        self._parquet = parquet or ParquetLimits()

    async def upload(
        self, new: NewPredictionLog, chunks: AsyncIterator[bytes], *, actor: str
    ) -> tuple[PredictionLog, bool]:
        """Receive ``chunks``, verify them against ``new``, store the Parquet file, record the log.

        Returns:
            The log and whether this call created it. A sha256 already recorded is answered at once, before any
            byte is received.

        Raises:
            ConduitError: INVALID_ARGUMENT for a malformed header, times before 2000 or more than a day ahead, a
                size or sha256 that does not match, bytes that are not a Parquet file, or one holding other rows
                than announced or more rows or decoded bytes than the limits; RESOURCE_EXHAUSTED above the upload
                limit or beside too many uploads at once.
        """
        check_new_prediction_log(new)
        now = self._clock()
        check_reported_time("first_at", new.first_at, now)
        check_reported_time("last_at", new.last_at, now)
        self._spool.check_announced("prediction log", new.sha256, new.size_bytes)
        try:
            return await asyncio.to_thread(self._store.get_prediction_log, new.sha256), False
        except ConduitError as exc:
            if exc.code is not ErrorCode.NOT_FOUND:
                raise
        async with self._spool.receive("prediction log", new.sha256, new.size_bytes, chunks, suffix=".parquet") as f:
            rows = await asyncio.to_thread(check_parquet, f, "prediction log", self._parquet)
            if rows != new.rows:
                raise ConduitError(
                    ErrorCode.INVALID_ARGUMENT, f"the prediction log holds {rows} rows; its header announced {new.rows}"
                )
            await asyncio.to_thread(self._artifacts.put, new.sha256, f)
        # The file is complete; the row commits whole or not at all. A concurrent upload of the same file may have
        # committed first: the store then returns that one, and created is false.
        stored, created = await asyncio.to_thread(self._store.create_prediction_log, new, actor=actor)
        if created:
            log.debug("prediction log of %s:%d, %d rows (%s) from %s", new.model, new.version, new.rows,
                      new.sha256[:12], new.server)  # fmt: skip
        return stored, created

    async def list_logs(
        self,
        model: str,
        *,
        version: int | None,
        alias: str | None,
        since: datetime | None,
        until: datetime | None,
        page_size: int,
        page_token: str,
    ) -> Page[PredictionLog]:
        """The model's logs (one version, the alias's current version, or every version) overlapping
        ``[since, until)``, newest first.

        Raises:
            ConduitError: NOT_FOUND for an unknown alias; INVALID_ARGUMENT for both version and alias, or a span
                that ends before it starts.
        """
        if version is not None and alias is not None:
            raise ConduitError(ErrorCode.INVALID_ARGUMENT, "name a version or an alias, not both")
        if since is not None and until is not None and until < since:
            raise ConduitError(ErrorCode.INVALID_ARGUMENT, "until is before since")
        if alias is not None:
            version = (await asyncio.to_thread(self._store.get_version, model, alias=alias)).version
        return await asyncio.to_thread(
            self._store.list_prediction_logs,
            model,
            version=version,
            since=since,
            until=until,
            page_size=page_size,
            page_token=page_token,
        )

    async def download(self, sha256: str, chunk_bytes: int = CHUNK_BYTES) -> PredictionLogDownload:
        """The log and its Parquet file's bytes; NOT_FOUND (before anything is sent) for an unknown one."""
        found = await asyncio.to_thread(self._store.get_prediction_log, sha256)
        return PredictionLogDownload(found, await _reads.stream(self._artifacts, found.sha256, chunk_bytes))

    def _prune(self) -> tuple[int, int]:
        digests = self._store.prune_prediction_logs(self._clock() - self._retention)
        if not digests:
            return 0, 0
        # A file goes with its log at once, unless something else stores the same bytes (read once, after the
        # rows are gone). An upload of the same file racing this would carry the same old rows, pruned next time.
        referenced = self._store.artifact_digests()
        gone = [digest for digest in digests if digest not in referenced]
        for digest in gone:
            self._artifacts.delete(digest)
        return len(digests), len(gone)

    async def prune(self) -> tuple[int, int]:
        """Delete the logs whose latest row is older than the retention, and their files; returns how many logs
        and files went."""
        return await asyncio.to_thread(self._prune)

    async def run_pruner(self, interval_s: float) -> None:
        """``prune`` now and every ``interval_s`` until cancelled; a failure is logged and tried again next time."""
        while True:
            try:
                logs, files = await self.prune()
            except Exception:
                log.exception("deleting old prediction logs failed")
            else:
                if logs:
                    log.info("deleted %d prediction log(s) older than %s and %d file(s)", logs, self._retention, files)
            await asyncio.sleep(interval_s)
