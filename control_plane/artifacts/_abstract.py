"""Content-addressed artifact storage: an artifact's name is the sha256 of its bytes.

``put`` is atomic: an artifact is either absent or complete under its digest, never partial, so a registry row
written after ``put`` returns can never point at a truncated file.
"""

from __future__ import annotations

import abc
from collections.abc import Iterator
from pathlib import Path

__all__ = ["CHUNK_BYTES", "ArtifactStore"]

CHUNK_BYTES = 1024 * 1024


class ArtifactStore(abc.ABC):
    """Where ONNX artifacts (and later data sets) live: a local directory or S3-compatible object storage."""

    @abc.abstractmethod
    def put(self, sha256: str, source: Path) -> None:
        """Store the file ``source`` (already verified to hash to ``sha256``) under its digest; idempotent."""

    @abc.abstractmethod
    def exists(self, sha256: str) -> bool:
        """Whether an artifact with this digest is stored."""

    @abc.abstractmethod
    def read(self, sha256: str, chunk_bytes: int = CHUNK_BYTES) -> Iterator[bytes]:
        """The artifact's bytes in chunks. Raises ConduitError NOT_FOUND when it is not stored."""

    @abc.abstractmethod
    def delete(self, sha256: str) -> None:
        """Remove an artifact; no error when it is absent."""

    @abc.abstractmethod
    def digests(self) -> Iterator[str]:
        """Every stored digest."""

    def describe(self) -> str:
        """Where the artifacts are, for logs."""
        return type(self).__name__
