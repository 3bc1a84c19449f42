"""Artifacts in a local directory: ``<root>/sha256/<first two hex digits>/<digest>``."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from contract.errors import ConduitError, ErrorCode
from control_plane.artifacts._abstract import CHUNK_BYTES, ArtifactStore
from control_plane.artifacts._digest import check_digest, is_digest

__all__ = ["LocalArtifactStore"]

_TEMPORARY = ".partial-"


def _fsync_directory(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _chunks(file: BinaryIO, chunk_bytes: int) -> Iterator[bytes]:
    with file:
        while chunk := file.read(chunk_bytes):
            yield chunk


class LocalArtifactStore(ArtifactStore):
    """A directory of artifacts named by digest (fanned out by two hex digits so no directory grows huge).

    ``put`` writes a temporary file beside the final one, syncs it and renames it into place, so a crash leaves at
    worst a temporary file (ignored by ``digests``, removed by ``clean_temporary``), never a partial artifact.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self._base = root / "sha256"

    def _path(self, sha256: str) -> Path:
        check_digest(sha256)
        return self._base / sha256[:2] / sha256

    def put(self, sha256: str, source: Path) -> None:
        target = self._path(sha256)
        if target.is_file():
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        # Same directory as the target: os.replace is atomic only within one file system.
        descriptor, temporary = tempfile.mkstemp(dir=target.parent, prefix=_TEMPORARY)
        try:
            with os.fdopen(descriptor, "wb") as out, source.open("rb") as data:
                shutil.copyfileobj(data, out, CHUNK_BYTES)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        # The rename is durable only once the directory entry is on disk.
        _fsync_directory(target.parent)

    def exists(self, sha256: str) -> bool:
        return self._path(sha256).is_file()

    def read(self, sha256: str, chunk_bytes: int = CHUNK_BYTES) -> Iterator[bytes]:
        path = self._path(sha256)
        try:
            # Opened here, not in the generator, so that a missing artifact fails at the call.
            file = path.open("rb")
        except FileNotFoundError:
            raise ConduitError(ErrorCode.NOT_FOUND, f"artifact {sha256} is not stored") from None
        return _chunks(file, chunk_bytes)

    def delete(self, sha256: str) -> None:
        self._path(sha256).unlink(missing_ok=True)

    def digests(self) -> Iterator[str]:
        if not self._base.is_dir():
            return
        for fan in sorted(self._base.iterdir()):
            if not fan.is_dir():
                continue
            for entry in sorted(fan.iterdir()):
                if is_digest(entry.name) and entry.name[:2] == fan.name and entry.is_file():
                    yield entry.name

    def clean_temporary(self, min_age_s: float = 0.0) -> int:
        """Remove temporary files left by interrupted ``put`` calls; returns how many.

        Run it at start-up, before any ``put``; while other writers may be running, pass a ``min_age_s`` longer
        than any upload so that their files in progress are left alone.
        """
        if not self._base.is_dir():
            return 0
        cutoff = time.time() - min_age_s
        removed = 0
        for entry in self._base.glob(f"*/{_TEMPORARY}*"):
            try:
                if entry.stat().st_mtime <= cutoff:
                    entry.unlink()
                    removed += 1
            except FileNotFoundError:
                continue
        return removed

    def describe(self) -> str:
        return f"local directory {self.root}"
