"""Content-addressed artifact storage (local directory or S3-compatible object storage)."""

from control_plane.artifacts._abstract import CHUNK_BYTES, ArtifactStore
from control_plane.artifacts._local import LocalArtifactStore
from control_plane.artifacts._open import open_artifact_store
from control_plane.artifacts._s3 import S3ArtifactStore

__all__ = ["CHUNK_BYTES", "ArtifactStore", "LocalArtifactStore", "S3ArtifactStore", "open_artifact_store"]
