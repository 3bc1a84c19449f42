"""Models, versions and aliases through the gRPC API, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import hashlib
import sqlite3
from typing import Any

import grpc
import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from control_plane.protocol import control_plane_pb2 as cp

from .conftest import Api, StartApi, files, read_all, upload_requests


async def test_register_get_list_download(any_api: Api, model_bytes: bytes) -> None:
    stub, admin = any_api.stub, any_api.admin
    lineage = cp.Lineage(dataset="credit", dataset_version="abc123", code_version="deadbeef")
    registered = await any_api.register(
        "fraud",
        model_bytes,
        metrics={"auc": 0.93},
        params={"C": "1.0"},
        tags={"team": "risk"},
        lineage=lineage,
        description="first",
        aliases=["staging"],
    )
    assert registered.version == 1
    assert registered.sha256 == hashlib.sha256(model_bytes).hexdigest()
    assert registered.size_bytes == len(model_bytes)
    assert registered.created_by == "admin"
    assert list(registered.aliases) == ["staging"]
    # The signature is read from the graph itself.
    assert [(t.name, t.datatype, list(t.shape)) for t in registered.inputs] == [("input", "FP32", [-1, 32])]
    assert {t.name: t.datatype for t in registered.outputs} == {"label": "INT64", "probabilities": "FP32"}

    got = await stub.GetVersion(cp.GetVersionRequest(ref=cp.VersionRef(model="fraud", version=1)), metadata=admin)
    assert got == registered
    staging = cp.VersionRef(model="fraud", alias="staging")
    by_alias = await stub.GetVersion(cp.GetVersionRequest(ref=staging), metadata=admin)
    assert by_alias.version == 1
    assert got.metrics["auc"] == pytest.approx(0.93)
    assert got.lineage == lineage

    model = await stub.GetModel(cp.GetModelRequest(name="fraud"), metadata=admin)
    assert (model.latest_version, dict(model.aliases)) == (1, {"staging": 1})

    chunks = await read_all(
        stub.DownloadArtifact(cp.DownloadArtifactRequest(ref=cp.VersionRef(model="fraud")), metadata=admin)
    )
    assert (chunks[0].sha256, chunks[0].size_bytes, chunks[0].version) == (registered.sha256, len(model_bytes), 1)
    data = b"".join(c.data for c in chunks)
    assert data == model_bytes
    assert hashlib.sha256(data).hexdigest() == registered.sha256


async def test_list_versions_by_tag_alias_and_page(any_api: Api, model_bytes: bytes) -> None:
    stub, admin = any_api.stub, any_api.admin
    for i in range(5):
        await any_api.register("fraud", model_bytes, tags={"parity": "even" if i % 2 == 0 else "odd"})
    await stub.SetAlias(cp.SetAliasRequest(model="fraud", alias="production", version=4), metadata=admin)

    even = await stub.ListVersions(cp.ListVersionsRequest(model="fraud", tags={"parity": "even"}), metadata=admin)
    assert [v.version for v in even.versions] == [5, 3, 1]
    aliased = await stub.ListVersions(cp.ListVersionsRequest(model="fraud", alias="production"), metadata=admin)
    assert [v.version for v in aliased.versions] == [4]

    seen: list[int] = []
    request = cp.ListVersionsRequest(model="fraud", page_size=2)
    pages = 0
    while True:
        page = await stub.ListVersions(request, metadata=admin)
        seen += [v.version for v in page.versions]
        pages += 1
        if not page.next_page_token:
            break
        request.page_token = page.next_page_token
    assert (seen, pages) == ([5, 4, 3, 2, 1], 3)


async def test_alias_set_move_delete(any_api: Api, model_bytes: bytes) -> None:
    stub, admin = any_api.stub, any_api.admin
    await any_api.register("fraud", model_bytes)
    await any_api.register("fraud", model_bytes)

    created = await stub.SetAlias(cp.SetAliasRequest(model="fraud", alias="production", version=1), metadata=admin)
    assert (created.version, created.previous_version) == (1, 0)
    moved = await stub.SetAlias(cp.SetAliasRequest(model="fraud", alias="production", version=2), metadata=admin)
    assert (moved.version, moved.previous_version) == (2, 1)
    assert dict((await stub.GetModel(cp.GetModelRequest(name="fraud"), metadata=admin)).aliases) == {"production": 2}

    deleted = await stub.DeleteAlias(cp.DeleteAliasRequest(model="fraud", alias="production"), metadata=admin)
    assert deleted.version == 2
    with pytest.raises(grpc.aio.AioRpcError) as missing:
        ref = cp.VersionRef(model="fraud", alias="production")
        await stub.GetVersion(cp.GetVersionRequest(ref=ref), metadata=admin)
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND


async def test_models_create_list_archive(api: Api, model_bytes: bytes) -> None:
    stub, admin = api.stub, api.admin
    created = await stub.CreateModel(cp.CreateModelRequest(name="churn", description="who leaves"), metadata=admin)
    assert (created.name, created.latest_version, created.created_by) == ("churn", 0, "admin")
    with pytest.raises(grpc.aio.AioRpcError) as again:
        await stub.CreateModel(cp.CreateModelRequest(name="churn"), metadata=admin)
    assert again.value.code() == grpc.StatusCode.ALREADY_EXISTS
    await api.register("fraud", model_bytes)

    archived = await stub.ArchiveModel(cp.ArchiveModelRequest(name="churn"), metadata=admin)
    assert archived.archived
    active = await stub.ListModels(cp.ListModelsRequest(), metadata=admin)
    assert [m.name for m in active.models] == ["fraud"]
    everything = await stub.ListModels(cp.ListModelsRequest(include_archived=True), metadata=admin)
    assert [m.name for m in everything.models] == ["churn", "fraud"]
    # An archived model takes no new version, and says so before the bytes are sent.
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await api.register("churn", model_bytes)
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_concurrent_registrations_get_consecutive_versions(any_api: Api, model_bytes: bytes) -> None:
    await any_api.stub.CreateModel(cp.CreateModelRequest(name="fraud"), metadata=any_api.admin)
    versions = await asyncio.gather(*(any_api.register("fraud", model_bytes, create_model=False) for _ in range(8)))
    assert sorted(v.version for v in versions) == list(range(1, 9))
    listing = await any_api.stub.ListVersions(cp.ListVersionsRequest(model="fraud"), metadata=any_api.admin)
    assert [v.version for v in listing.versions] == list(range(8, 0, -1))
    assert any_api.spool.exists() and not any(any_api.spool.iterdir())


def _large_model(megabytes: int) -> bytes:
    """A valid graph of about ``megabytes`` MiB: ``y = x + weights``."""
    count = megabytes * 1024 * 1024 // 4
    weights = numpy_helper.from_array(np.arange(count, dtype=np.float32), "weights")
    graph = helper.make_graph(
        [helper.make_node("Add", ["x", "weights"], ["y"])],
        "large",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [count])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [count])],
        initializer=[weights],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model.SerializeToString()


async def test_large_artifact_travels_in_1_mib_chunks(api: Api) -> None:
    payload = _large_model(3)
    registered = await api.register("large", payload)
    assert [(t.name, t.datatype) for t in registered.inputs] == [("x", "FP32")]
    chunks = await read_all(
        api.stub.DownloadArtifact(cp.DownloadArtifactRequest(ref=cp.VersionRef(model="large")), metadata=api.admin)
    )
    assert [len(c.data) for c in chunks[:-1]] == [1024 * 1024] * (len(chunks) - 1)
    assert len(chunks) == 4
    assert [c.sha256 for c in chunks[1:]] == [""] * 3
    assert b"".join(c.data for c in chunks) == payload


async def test_unexpected_failure_is_internal_without_details(api: Api, sqlite_url: str, model_bytes: bytes) -> None:
    await api.register("fraud", model_bytes)
    # A row no code path writes: reading it fails in a way no caller could have caused or fix.
    with sqlite3.connect(sqlite_url.removeprefix("sqlite:///")) as connection:
        connection.execute("UPDATE model_versions SET metrics = 'not json'")
    with pytest.raises(grpc.aio.AioRpcError) as failed:
        await api.stub.GetVersion(cp.GetVersionRequest(ref=cp.VersionRef(model="fraud")), metadata=api.admin)
    assert failed.value.code() == grpc.StatusCode.INTERNAL
    assert failed.value.details() == "internal error; the control plane's log has the details"


async def test_artifacts_in_s3_compatible_storage(
    start_api: StartApi, sqlite_url: str, s3_endpoint: str, s3_bucket: str, s3_client: Any, model_bytes: bytes
) -> None:
    api = await start_api(sqlite_url, artifacts=f"s3://{s3_bucket}/conduit", s3_endpoint_url=s3_endpoint)
    registered = await api.register("fraud", model_bytes)
    keys = [o["Key"] for o in s3_client.list_objects_v2(Bucket=s3_bucket).get("Contents", [])]
    assert keys == [f"conduit/sha256/{registered.sha256}"]
    assert files(api.artifacts) == []  # nothing landed in the local default

    chunks = await read_all(
        api.stub.DownloadArtifact(cp.DownloadArtifactRequest(ref=cp.VersionRef(model="fraud")), metadata=api.admin)
    )
    assert b"".join(c.data for c in chunks) == model_bytes
    # A refused upload leaves the bucket as it was.
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await api.stub.RegisterVersion(
            iter(upload_requests("fraud", model_bytes[:-1] + b"\x00")[:1] + upload_requests("fraud", model_bytes)[1:]),
            metadata=api.admin,
        )
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert len(s3_client.list_objects_v2(Bucket=s3_bucket).get("Contents", [])) == 1
