"""The follower's artifact cache: downloads are kept only when their sha256 and size match, and leave nothing behind
when they do not; the repository links to verified artifacts; the last assignments survive a restart."""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest

from contract.entities import ArtifactRef, Assignment, PoolAssignments
from contract.errors import ConduitError, ErrorCode
from inference_server.follower import ArtifactCache
from inference_server.follower._cache import PRUNE_GRACE_S
from tests.conftest import identity_model

PAYLOAD = identity_model("FP32")


def ref_of(payload: bytes, version: int = 1) -> ArtifactRef:
    return ArtifactRef(version, hashlib.sha256(payload).hexdigest(), len(payload))


async def download(
    payload: bytes, header: ArtifactRef | None = None, chunk: int = 100
) -> AsyncIterator[ArtifactRef | bytes]:
    """The shape of a DownloadArtifact stream: the announced sha256 and size, then the bytes in chunks."""
    announced = header or ref_of(payload)
    yield ArtifactRef(announced.version, announced.sha256, announced.size_bytes)
    for start in range(0, len(payload), chunk):
        yield payload[start : start + chunk]


def files(directory: Path) -> Sequence[str]:
    return sorted(p.name for p in directory.iterdir())


async def test_verified_artifact_is_kept_and_linked(tmp_path: Path) -> None:
    cache = ArtifactCache(tmp_path / "cache")
    ref = ref_of(PAYLOAD)
    assert not cache.has(ref)
    path = await cache.store(ref, download(PAYLOAD))
    assert path.read_bytes() == PAYLOAD and cache.has(ref)
    assert files(cache.artifacts) == [ref.sha256]
    cache.install("m", ref)
    installed = cache.repository / "m" / "1" / "model.onnx"
    assert installed.samefile(path) and cache.installed("m") == {1}
    # Pruning the artifact keeps the installed version loadable: it is a link of its own.
    cache.prune(set())
    assert files(cache.artifacts) == [ref.sha256], "a fresh download outlives prunes during its grace period"
    downloaded_long_ago(path)
    cache.prune(set())
    assert files(cache.artifacts) == [] and installed.read_bytes() == PAYLOAD


async def test_prune_spares_recent_downloads_of_other_workers(tmp_path: Path) -> None:
    # Two workers share the artifacts; worker 1 has just downloaded what worker 0 does not know about yet.
    worker0 = ArtifactCache(tmp_path / "cache", tmp_path / "cache" / "repository")
    worker1 = ArtifactCache(tmp_path / "cache", tmp_path / "cache" / "repository-1")
    old, new = ref_of(b"old artifact"), ref_of(PAYLOAD, 2)
    downloaded_long_ago(await worker0.store(old, download(b"old artifact")))
    await worker1.store(new, download(PAYLOAD))
    worker0.prune({"0" * 64})
    assert files(worker0.artifacts) == [new.sha256]
    worker1.install("m", new)
    assert worker1.installed("m") == {2}


def downloaded_long_ago(path: Path) -> None:
    past = time.time() - PRUNE_GRACE_S - 60
    os.utime(path, (past, past))


@pytest.mark.parametrize(
    "case",
    ["corrupted", "truncated", "too long", "announced another sha256"],
)
async def test_mismatched_artifact_is_refused_and_leaves_no_file(tmp_path: Path, case: str) -> None:
    cache = ArtifactCache(tmp_path / "cache")
    ref = ref_of(PAYLOAD)
    corrupted = bytearray(PAYLOAD)
    corrupted[10] ^= 0xFF
    chunks = {
        "corrupted": download(bytes(corrupted), header=ref),
        "truncated": download(PAYLOAD[:-1], header=ref),
        "too long": download(PAYLOAD + b"x", header=ref),
        "announced another sha256": download(PAYLOAD, header=ref_of(b"other")),
    }[case]
    with pytest.raises(ConduitError) as raised:
        await cache.store(ref, chunks)
    assert raised.value.code is ErrorCode.INTERNAL
    assert files(cache.artifacts) == []
    assert not cache.has(ref)


async def test_failed_download_leaves_no_file(tmp_path: Path) -> None:
    cache = ArtifactCache(tmp_path / "cache")

    async def broken() -> AsyncIterator[ArtifactRef | bytes]:
        yield PAYLOAD[:50]
        raise ConduitError(ErrorCode.UNAVAILABLE, "control plane went away")

    with pytest.raises(ConduitError) as raised:
        await cache.store(ref_of(PAYLOAD), broken())
    assert raised.value.code is ErrorCode.UNAVAILABLE
    assert files(cache.artifacts) == []


def test_refuses_names_that_leave_the_repository(tmp_path: Path) -> None:
    cache = ArtifactCache(tmp_path / "cache")
    for name in ("../evil", ".hidden", "a/b", ""):
        with pytest.raises(ConduitError):
            cache.install(name, ref_of(PAYLOAD))
    with pytest.raises(ConduitError):
        cache.artifact(ArtifactRef(1, "../../etc/passwd", 1))


def test_state_round_trip(tmp_path: Path) -> None:
    cache = ArtifactCache(tmp_path / "cache")
    assert cache.load_state() is None
    state = PoolAssignments.of(
        "default",
        7,
        [Assignment("a", ref_of(b"1", 1)), Assignment("b", ref_of(b"2", 2), ref_of(b"3", 3), 12.5)],
    )
    cache.save_state(state)
    assert ArtifactCache(tmp_path / "cache").load_state() == state
    (tmp_path / "cache" / "assignments.json").write_text("{not json")
    assert cache.load_state() is None
    edited = state.to_json()
    edited["models"][0]["unseen_categories"] = "drop"
    (tmp_path / "cache" / "assignments.json").write_text(json.dumps(edited))
    assert cache.load_state() is None
