"""Uploads that must be refused: each with its exact status, and nothing changed in the registry or artifacts."""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from collections.abc import AsyncIterator

import grpc
import onnx
import pytest

from control_plane.protocol import control_plane_pb2 as cp

from .conftest import Api, StartApi, eventually, files, header_request, upload_requests


async def _refused(api: Api, requests: list[cp.RegisterVersionRequest]) -> grpc.StatusCode:
    before = await api.snapshot()
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await api.stub.RegisterVersion(iter(requests), metadata=api.admin, timeout=30)
    assert await api.snapshot() == before
    assert files(api.spool) == []
    return refused.value.code()


@pytest.fixture
async def registered(api: Api, model_bytes: bytes) -> Api:
    """The api with ``fraud`` version 1 (alias ``production``) registered."""
    await api.register("fraud", model_bytes, aliases=["production"])
    return api


async def test_unknown_model_without_create_model(registered: Api, model_bytes: bytes) -> None:
    requests = upload_requests("ghost", model_bytes, create_model=False)
    assert await _refused(registered, requests) == grpc.StatusCode.NOT_FOUND


async def test_unknown_model_is_refused_before_the_bytes_arrive(registered: Api, model_bytes: bytes) -> None:
    never = asyncio.Event()

    async def requests() -> AsyncIterator[cp.RegisterVersionRequest]:
        yield header_request("ghost", model_bytes)
        await never.wait()  # the bytes never come: only the header can have been judged
        yield cp.RegisterVersionRequest(chunk=model_bytes)

    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await registered.stub.RegisterVersion(requests(), metadata=registered.admin, timeout=30)
    assert refused.value.code() == grpc.StatusCode.NOT_FOUND


async def test_malformed_onnx(registered: Api) -> None:
    garbage = b"this is not an ONNX model" * 100
    assert await _refused(registered, upload_requests("fraud", garbage)) == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await registered.stub.RegisterVersion(iter(upload_requests("fraud", garbage)), metadata=registered.admin)
    # The message names the problem, not where the control plane spooled the upload.
    assert str(registered.spool) not in (refused.value.details() or "")


async def test_hash_mismatch(registered: Api, model_bytes: bytes) -> None:
    requests = upload_requests("fraud", model_bytes)
    requests[0].header.sha256 = hashlib.sha256(b"something else").hexdigest()
    assert await _refused(registered, requests) == grpc.StatusCode.INVALID_ARGUMENT


async def test_size_mismatch(registered: Api, model_bytes: bytes) -> None:
    short = upload_requests("fraud", model_bytes)
    short[0].header.size_bytes = len(model_bytes) + 1
    assert await _refused(registered, short) == grpc.StatusCode.INVALID_ARGUMENT
    long = upload_requests("fraud", model_bytes)
    long[0].header.size_bytes = len(model_bytes) - 1
    assert await _refused(registered, long) == grpc.StatusCode.INVALID_ARGUMENT


async def test_malformed_header(registered: Api, model_bytes: bytes) -> None:
    for change in ({"sha256": "not-hex"}, {"size_bytes": 0}, {"model": ""}, {"model": "bad/name"}):
        requests = upload_requests("fraud", model_bytes)
        for name, value in change.items():
            setattr(requests[0].header, name, value)
        assert await _refused(registered, requests) == grpc.StatusCode.INVALID_ARGUMENT, change


async def test_bad_alias_in_header(registered: Api, model_bytes: bytes) -> None:
    requests = upload_requests("fraud", model_bytes, aliases=["12"])
    assert await _refused(registered, requests) == grpc.StatusCode.INVALID_ARGUMENT


async def test_chunk_before_header(registered: Api, model_bytes: bytes) -> None:
    requests = upload_requests("fraud", model_bytes)
    assert await _refused(registered, requests[1:] + requests[:1]) == grpc.StatusCode.INVALID_ARGUMENT
    assert await _refused(registered, []) == grpc.StatusCode.INVALID_ARGUMENT


async def test_second_header(registered: Api, model_bytes: bytes) -> None:
    requests = upload_requests("fraud", model_bytes)
    assert await _refused(registered, [*requests, requests[0]]) == grpc.StatusCode.INVALID_ARGUMENT


async def test_oversized_upload(start_api: StartApi, sqlite_url: str, model_bytes: bytes) -> None:
    api = await start_api(sqlite_url, max_upload_bytes=len(model_bytes) - 1)
    assert await _refused(api, upload_requests("fraud", model_bytes)) == grpc.StatusCode.RESOURCE_EXHAUSTED


async def test_wrong_alias_and_version(registered: Api) -> None:
    stub, admin = registered.stub, registered.admin
    before = await registered.snapshot()
    calls = [
        stub.GetVersion(cp.GetVersionRequest(ref=cp.VersionRef(model="fraud", alias="nope")), metadata=admin),
        stub.GetVersion(cp.GetVersionRequest(ref=cp.VersionRef(model="fraud", version=9)), metadata=admin),
        stub.SetAlias(cp.SetAliasRequest(model="fraud", alias="production", version=9), metadata=admin),
        stub.DeleteAlias(cp.DeleteAliasRequest(model="fraud", alias="nope"), metadata=admin),
        stub.GetModel(cp.GetModelRequest(name="ghost"), metadata=admin),
        stub.ListVersions(cp.ListVersionsRequest(model="ghost"), metadata=admin),
    ]
    for call in calls:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await call
        assert refused.value.code() == grpc.StatusCode.NOT_FOUND
    download = stub.DownloadArtifact(
        cp.DownloadArtifactRequest(ref=cp.VersionRef(model="fraud", alias="nope")), metadata=admin
    )
    with pytest.raises(grpc.aio.AioRpcError) as missing:
        await download.read()
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND
    assert await registered.snapshot() == before
    model = await stub.GetModel(cp.GetModelRequest(name="fraud"), metadata=admin)
    assert dict(model.aliases) == {"production": 1}


async def test_cancelled_upload_leaves_nothing(api: Api, model_bytes: bytes) -> None:
    before = await api.snapshot()
    payload = model_bytes * 8
    requests = upload_requests("fresh", payload, chunk=len(payload) // 4, create_model=True)
    never = asyncio.Event()

    async def stream() -> AsyncIterator[cp.RegisterVersionRequest]:
        for request in requests[:3]:  # the header and half the bytes
            yield request
        await never.wait()

    call = api.stub.RegisterVersion(stream(), metadata=api.admin)
    await eventually(lambda: len(files(api.spool)) == 1, "the upload is being spooled")
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    await eventually(lambda: files(api.spool) == [], "the spool file is removed")
    assert await api.snapshot() == before
    with pytest.raises(grpc.aio.AioRpcError) as missing:
        await api.stub.GetModel(cp.GetModelRequest(name="fresh"), metadata=api.admin)
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND


async def test_stale_spool_files_are_cleared_at_start(start_api: StartApi, sqlite_url: str) -> None:
    api = await start_api(sqlite_url)
    home = api.home
    await api.server.stop(grace=1.0)
    (home / "tmp" / "upload-left-by-a-crash.onnx").write_bytes(b"partial")
    # A copy into the artifact store cut short an hour ago, and one another replica is writing right now.
    shard = home / "artifacts" / "sha256" / "ab"
    shard.mkdir(parents=True)
    stale, fresh = shard / ".partial-crashed", shard / ".partial-in-progress"
    stale.write_bytes(b"partial")
    fresh.write_bytes(b"partial")
    os.utime(stale, (time.time() - 3600, time.time() - 3600))
    restarted = await start_api(sqlite_url, home=home)
    assert files(restarted.spool) == []
    assert files(restarted.artifacts) == [fresh]


@pytest.mark.parametrize(
    "fields",
    [
        {"metrics": {"auc": float("nan")}},
        {"metrics": {"auc": float("inf")}},
        {"tags": {"": "x"}},
        {"params": {"C": "1" * 5000}},
        {"description": "d" * 70000},
    ],
    ids=["nan-metric", "inf-metric", "empty-tag-key", "long-param", "long-description"],
)
async def test_bad_metadata_is_refused_before_anything_is_stored(
    registered: Api, model_bytes: bytes, fields: dict[str, object]
) -> None:
    # A graph never stored before, so a stray artifact would show in the snapshot.
    graph = onnx.load_from_string(model_bytes)
    graph.doc_string = "another version"
    requests = upload_requests("fraud", graph.SerializeToString(), **fields)
    assert await _refused(registered, requests) == grpc.StatusCode.INVALID_ARGUMENT
