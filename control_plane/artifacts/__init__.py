"""Content-addressed artifact storage (local directory or S3-compatible object storage)."""

from control_plane.artifacts._abstract import CHUNK_BYTES, ArtifactStore

__all__ = ["CHUNK_BYTES", "ArtifactStore"]
