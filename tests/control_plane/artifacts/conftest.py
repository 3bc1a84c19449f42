"""``artifact_store``: every artifact-store implementation in turn (a local directory, then a bucket on moto's S3
server); ``artifact`` writes a file and returns its sha256 and path."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from control_plane.artifacts import ArtifactStore, LocalArtifactStore, S3ArtifactStore


@pytest.fixture(params=["local", "s3"])
def artifact_store(request: pytest.FixtureRequest, tmp_path: Path) -> ArtifactStore:
    if request.param == "local":
        return LocalArtifactStore(tmp_path / "artifacts")
    bucket: str = request.getfixturevalue("s3_bucket")
    client: Any = request.getfixturevalue("s3_client")
    return S3ArtifactStore(bucket, "registry/artifacts", client=client)


@pytest.fixture
def artifact(tmp_path: Path) -> Callable[[bytes], tuple[str, Path]]:
    count = 0

    def write(data: bytes) -> tuple[str, Path]:
        nonlocal count
        count += 1
        path = tmp_path / f"source-{count}.bin"
        path.write_bytes(data)
        return hashlib.sha256(data).hexdigest(), path

    return write
