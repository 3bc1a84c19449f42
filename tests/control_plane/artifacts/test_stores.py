"""Both artifact stores against the same contract, then what is particular to each."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from contract.errors import ConduitError, ErrorCode
from control_plane.artifacts import (
    ArtifactStore,
    LocalArtifactStore,
    S3ArtifactStore,
    open_artifact_store,
)

Artifact = Callable[[bytes], tuple[str, Path]]


def _code(call: Callable[[], object]) -> ErrorCode:
    with pytest.raises(ConduitError) as failure:
        call()
    return failure.value.code


def test_put_exists_read_delete_and_list(artifact_store: ArtifactStore, artifact: Artifact) -> None:
    first, first_path = artifact(b"onnx bytes one")
    second, second_path = artifact(b"onnx bytes two")
    assert not artifact_store.exists(first)
    assert list(artifact_store.digests()) == []

    artifact_store.put(first, first_path)
    artifact_store.put(second, second_path)
    assert artifact_store.exists(first) and artifact_store.exists(second)
    assert b"".join(artifact_store.read(first)) == b"onnx bytes one"
    assert sorted(artifact_store.digests()) == sorted([first, second])

    artifact_store.delete(first)
    assert not artifact_store.exists(first)
    assert list(artifact_store.digests()) == [second]
    artifact_store.delete(first)  # absent: no error


def test_read_streams_in_chunks(artifact_store: ArtifactStore, artifact: Artifact) -> None:
    data = os.urandom(3 * 65536 + 100)
    digest, path = artifact(data)
    artifact_store.put(digest, path)
    chunks = list(artifact_store.read(digest, chunk_bytes=65536))
    assert b"".join(chunks) == data
    assert len(chunks) == 4 and all(len(chunk) <= 65536 for chunk in chunks)


def test_put_is_idempotent_and_never_replaces_stored_bytes(artifact_store: ArtifactStore, artifact: Artifact) -> None:
    digest, path = artifact(b"the real bytes")
    artifact_store.put(digest, path)
    artifact_store.put(digest, path)
    # Content addressing: what is stored under a digest is never overwritten.
    path.write_bytes(b"something else")
    artifact_store.put(digest, path)
    assert b"".join(artifact_store.read(digest)) == b"the real bytes"
    assert list(artifact_store.digests()) == [digest]


def test_missing_artifact_is_not_found_at_the_call(artifact_store: ArtifactStore) -> None:
    missing = hashlib.sha256(b"never stored").hexdigest()
    assert _code(lambda: artifact_store.read(missing)) is ErrorCode.NOT_FOUND


@pytest.mark.parametrize("bad", ["", "abc", "../" * 20 + "etc/passwd", "A" * 64, "g" * 64, "a" * 63 + "/"])
def test_malformed_digests_are_refused_by_every_method(
    artifact_store: ArtifactStore, artifact: Artifact, bad: str
) -> None:
    _, path = artifact(b"x")
    assert _code(lambda: artifact_store.put(bad, path)) is ErrorCode.INVALID_ARGUMENT
    assert _code(lambda: artifact_store.exists(bad)) is ErrorCode.INVALID_ARGUMENT
    assert _code(lambda: artifact_store.read(bad)) is ErrorCode.INVALID_ARGUMENT
    assert _code(lambda: artifact_store.delete(bad)) is ErrorCode.INVALID_ARGUMENT


def test_local_layout_and_leftovers_of_an_interrupted_put(tmp_path: Path, artifact: Artifact) -> None:
    store = LocalArtifactStore(tmp_path / "artifacts")
    digest, path = artifact(b"model")
    store.put(digest, path)
    stored = tmp_path / "artifacts" / "sha256" / digest[:2] / digest
    assert stored.read_bytes() == b"model"

    # What a crash between the temporary write and the rename leaves behind.
    leftover = stored.parent / ".partial-crashed"
    leftover.write_bytes(b"half a mod")
    assert list(store.digests()) == [digest]
    assert store.clean_temporary(min_age_s=3600) == 0 and leftover.exists()
    assert store.clean_temporary() == 1
    assert not leftover.exists() and stored.exists()
    assert sorted(p.name for p in stored.parent.iterdir()) == [digest]


def test_local_put_that_fails_leaves_no_file(tmp_path: Path) -> None:
    store = LocalArtifactStore(tmp_path / "artifacts")
    digest = hashlib.sha256(b"unreadable").hexdigest()
    with pytest.raises(OSError):
        store.put(digest, tmp_path / "does-not-exist.bin")
    assert list((tmp_path / "artifacts" / "sha256" / digest[:2]).iterdir()) == []
    assert not store.exists(digest)


def test_s3_keys_live_under_the_prefix(s3_client: Any, s3_bucket: str, artifact: Artifact) -> None:
    store = S3ArtifactStore(s3_bucket, "/team/models/", client=s3_client)
    other = S3ArtifactStore(s3_bucket, "elsewhere", client=s3_client)
    digest, path = artifact(b"model")
    store.put(digest, path)
    s3_client.put_object(Bucket=s3_bucket, Key="team/models/sha256/not-a-digest", Body=b"")
    keys = [item["Key"] for item in s3_client.list_objects_v2(Bucket=s3_bucket)["Contents"]]
    assert f"team/models/sha256/{digest}" in keys
    assert list(store.digests()) == [digest]
    assert list(other.digests()) == [] and not other.exists(digest)


def test_s3_digests_page_through_many_objects(s3_client: Any, s3_bucket: str, artifact: Artifact) -> None:
    store = S3ArtifactStore(s3_bucket, "p", client=s3_client, list_page_size=2)
    digests = {hashlib.sha256(str(i).encode()).hexdigest() for i in range(7)}
    for digest in digests:
        s3_client.put_object(Bucket=s3_bucket, Key=f"p/sha256/{digest}", Body=b"")
    assert set(store.digests()) == digests


def test_open_artifact_store_by_url(tmp_path: Path, s3_endpoint: str, s3_bucket: str, artifact: Artifact) -> None:
    local = open_artifact_store(str(tmp_path / "plain"))
    assert isinstance(local, LocalArtifactStore) and local.root == tmp_path / "plain"
    from_file_url = open_artifact_store(f"file://{tmp_path}/with%20space")
    assert isinstance(from_file_url, LocalArtifactStore) and from_file_url.root == tmp_path / "with space"

    remote = open_artifact_store(f"s3://{s3_bucket}/some/prefix", s3_endpoint_url=s3_endpoint)
    assert isinstance(remote, S3ArtifactStore) and (remote.bucket, remote.prefix) == (s3_bucket, "some/prefix")
    digest, path = artifact(b"through the environment's credentials")
    remote.put(digest, path)
    assert b"".join(remote.read(digest)) == b"through the environment's credentials"

    for bad in ["", "s3://", "http://example.com/x", "gs://bucket/x", "file://otherhost/x"]:
        assert _code(lambda bad=bad: open_artifact_store(bad)) is ErrorCode.INVALID_ARGUMENT
