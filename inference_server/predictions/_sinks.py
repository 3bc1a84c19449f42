"""Where flushed prediction logs go: a local directory (a server on a model repository), or the control plane through
an outbox directory (a following server).

The outbox makes uploads safe to retry: a file is written there whole before any upload, named by its sha256, and
removed only once the control plane has answered for it. A failed upload leaves it for the next flush (and the next
process, after a restart); an upload whose answer was lost is repeated, and the control plane, which keys logs by
sha256, records it once. A file the control plane refuses as such (or that cannot be read), or that failed
``max_failures`` times in a row with the control plane answering (an outage does not count), is moved to
``rejected/`` beside it, kept for inspection, so that it never blocks the files behind it for long. The outbox and
its ``rejected/`` hold at most ``max_bytes``: beyond, the oldest files are deleted (and counted).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

import polars as pl

from contract.entities import NewPredictionLog, PredictionLog
from contract.errors import ConduitError, ErrorCode
from inference_server.predictions._parquet import PARTIAL_PREFIX, LogFile, describe, write_parquet

__all__ = ["LocalSink", "Sink", "UploadSink", "Uploader"]

log = logging.getLogger(__name__)

REJECTED = "rejected"
# Answers about the file itself: sending it again would be refused again.
_REFUSALS = frozenset({ErrorCode.INVALID_ARGUMENT, ErrorCode.RESOURCE_EXHAUSTED})
# No answer from the control plane: an outage, which no file is to blame for.
_AWAY = frozenset({ErrorCode.UNAVAILABLE, ErrorCode.DEADLINE_EXCEEDED})


class Sink(Protocol):
    async def write(self, table: pl.DataFrame) -> None:
        """Keep one model version's table of a flush."""

    async def retry(self) -> None:
        """Send on what an earlier flush could not (a no-op where nothing is sent)."""


class Uploader(Protocol):
    async def upload_prediction_log(self, path: Path, log: NewPredictionLog) -> tuple[PredictionLog, bool]:
        """Upload one file; returns it as stored and whether the control plane created it (false: it held it
        already)."""


def _stamp(frame: pl.DataFrame) -> str:
    first = frame["time"].min()
    moment = first if isinstance(first, datetime) else datetime.now(UTC)
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%S%fZ")


def _remove_partials(directory: Path, prefix: str, *, recursive: bool) -> None:
    """Remove the partial files named ``prefix…`` that a killed process left."""
    found = directory.rglob(f"{prefix}*") if recursive else directory.glob(f"{prefix}*")
    for stale in found:
        with contextlib.suppress(FileNotFoundError):
            stale.unlink()


class LocalSink:
    """Files under ``directory/<model>/<version>/<time of the first row>-<sha256>.parquet``.

    Args:
        worker: This process's worker number. The workers of one server share ``directory``, and each names its
            partial files with its own prefix: at start a worker removes only those its predecessor left, never a
            file another worker is writing.
    """

    def __init__(self, directory: Path, *, worker: int = 0) -> None:
        self.directory = directory
        self.partial_prefix = f"{PARTIAL_PREFIX}w{worker}-"
        if directory.exists():
            _remove_partials(directory, self.partial_prefix, recursive=True)

    def _write(self, table: pl.DataFrame) -> LogFile:
        model, version = str(table["model"][0]), str(table["version"][0])
        name = f"{_stamp(table)}-{{sha256}}.parquet"
        return write_parquet(table, self.directory / model / version, name, partial_prefix=self.partial_prefix)

    async def write(self, table: pl.DataFrame) -> None:
        written = await asyncio.to_thread(self._write, table)
        log.debug("wrote %d sampled predictions to %s", written.rows, written.path)

    async def store(self, tables: Sequence[pl.DataFrame]) -> None:
        """Write each of ``tables``."""
        for table in tables:
            await self.write(table)

    async def retry(self) -> None:
        return None


class UploadSink:
    """Files written to ``outbox`` as ``<sha256>.parquet``, uploaded with ``uploader()`` (``None`` while there is no
    connection to the control plane), and removed once uploaded.

    Args:
        server: This server's instance name, sent with every file.
        max_failures: Failed uploads in a row (the control plane answering) after which a file is rejected.
        max_bytes: Bytes the outbox (with ``rejected/``) holds at most; the oldest files beyond are deleted.
    """

    def __init__(
        self,
        outbox: Path,
        uploader: Callable[[], Uploader | None],
        *,
        server: str,
        max_failures: int = 5,
        max_bytes: int = 1024**3,
    ) -> None:
        self.outbox = outbox
        self._uploader = uploader
        self._server = server
        self._max_failures = max_failures
        self._max_bytes = max_bytes
        self._failures: dict[str, int] = {}
        self.rejected_files = 0
        """Files moved to ``rejected/``, since the start."""
        self.dropped_files = 0
        """Files deleted unsent because the outbox was full, since the start."""
        if outbox.exists():
            # Only its own: the outboxes of the other workers are directories inside the first one's.
            _remove_partials(outbox, PARTIAL_PREFIX, recursive=False)

    def _write(self, table: pl.DataFrame) -> None:
        write_parquet(table, self.outbox, "{sha256}.parquet")
        self._bound()

    def _bound(self) -> None:
        """Delete the oldest files (rejected ones among them) while the outbox holds more than ``max_bytes``."""
        found = [*self.waiting(), *sorted((self.outbox / REJECTED).glob("*.parquet"))]
        sized = sorted(((p.stat().st_mtime_ns, p.stat().st_size, p) for p in found), key=lambda t: t[0])
        total = sum(size for _, size, _ in sized)
        for _, size, path in sized:
            if total <= self._max_bytes:
                return
            path.unlink(missing_ok=True)
            self._failures.pop(path.name, None)
            total -= size
            self.dropped_files += 1
            log.error("prediction log outbox above %d bytes: deleted %s unsent", self._max_bytes, path.name)

    def _reject(self, path: Path) -> None:
        rejected = self.outbox / REJECTED
        rejected.mkdir(exist_ok=True)
        path.replace(rejected / path.name)
        self._failures.pop(path.name, None)
        self.rejected_files += 1

    def waiting(self) -> list[Path]:
        """The files not uploaded yet, oldest first."""
        if not self.outbox.exists():
            return []
        found = [p for p in self.outbox.glob("*.parquet") if not p.name.startswith(PARTIAL_PREFIX)]
        return sorted(found, key=lambda p: p.stat().st_mtime_ns)

    async def write(self, table: pl.DataFrame) -> None:
        """Put ``table`` in the outbox (``retry`` sends it)."""
        await asyncio.to_thread(self._write, table)

    async def store(self, tables: Sequence[pl.DataFrame]) -> None:
        """Put each of ``tables`` in the outbox, then send what waits there."""
        for table in tables:
            await self.write(table)
        await self.retry()

    async def retry(self) -> None:
        for path in await asyncio.to_thread(self.waiting):
            uploader = self._uploader()
            if uploader is None:
                return
            try:
                described = await asyncio.to_thread(describe, path)
                _, created = await uploader.upload_prediction_log(path, described.announced(self._server))
            except (ConduitError, ValueError, OSError, pl.exceptions.PolarsError) as exc:
                if isinstance(exc, ConduitError) and exc.code not in _REFUSALS:
                    failures = self._failures.get(path.name, 0) + (exc.code not in _AWAY)
                    self._failures[path.name] = failures
                    if failures < self._max_failures:
                        # The control plane is away, or failed for now: kept, tried again next flush.
                        log.warning("prediction log %s not uploaded, kept for the next flush: %s", path.name, exc)
                        return
                await asyncio.to_thread(self._reject, path)
                log.error("prediction log %s rejected, moved to %s/: %s", path.name, REJECTED, exc)
                continue
            self._failures.pop(path.name, None)
            path.unlink(missing_ok=True)
            log.debug("uploaded %d sampled predictions (%s, %s)", described.rows, path.name,
                      "new" if created else "already stored")  # fmt: skip
