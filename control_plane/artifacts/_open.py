"""The artifact store a URL names."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlsplit

from contract.errors import ConduitError, ErrorCode
from control_plane.artifacts._abstract import ArtifactStore
from control_plane.artifacts._local import LocalArtifactStore
from control_plane.artifacts._s3 import S3ArtifactStore

__all__ = ["open_artifact_store"]


def open_artifact_store(url: str, *, s3_endpoint_url: str | None = None) -> ArtifactStore:
    """A directory (a plain path or ``file:///path``) or S3-compatible storage (``s3://bucket/prefix``).

    ``s3_endpoint_url`` points S3 at another implementation (MinIO, Ceph, ...); credentials come from the usual AWS
    environment variables and files.

    Raises:
        ConduitError: INVALID_ARGUMENT for any other URL.
    """
    parts = urlsplit(url)
    if parts.scheme == "s3":
        if not parts.netloc:
            raise ConduitError(ErrorCode.INVALID_ARGUMENT, f"no bucket in artifact store URL {url!r}")
        return S3ArtifactStore(parts.netloc, parts.path, endpoint_url=s3_endpoint_url)
    if parts.scheme == "file":
        if parts.netloc not in ("", "localhost") or not parts.path:
            raise ConduitError(ErrorCode.INVALID_ARGUMENT, f"artifact store URL {url!r} is not a local path")
        return LocalArtifactStore(Path(unquote(parts.path)))
    if parts.scheme == "" and url:
        return LocalArtifactStore(Path(url).expanduser())
    raise ConduitError(ErrorCode.INVALID_ARGUMENT, f"unsupported artifact store {url!r}: use a path, file:// or s3://")
