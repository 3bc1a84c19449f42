"""Data sets through the gRPC API: import, list, get and download, idempotent and concurrent imports, and imports that
must be refused with nothing stored."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
from collections.abc import AsyncIterator
from typing import Any

import grpc
import polars as pl
import pytest

from control_plane.protocol import control_plane_pb2 as cp

from .conftest import Api, Metadata, StartApi, files, read_all

CHUNK = 1024
PROFILE = cp.DatasetProfile(
    rows=200,
    columns=[
        cp.ColumnProfile(
            name="amount",
            dtype="Float64",
            kind="numeric",
            missing=2,
            missing_rate=0.01,
            bin_edges=[float("-inf"), 10.0, 20.5, float("inf")],
            bin_counts=[50, 100, 48],
            min=0.5,
            max=99.0,
            mean=21.0,
            std=4.5,
        ),
        cp.ColumnProfile(
            name="country",
            dtype="String",
            kind="categorical",
            distinct=3,
            top_categories=[cp.CategoryCount(value="FR", count=120), cp.CategoryCount(value="DE", count=60)],
            other_count=20,
        ),
    ],
)


def parquet(rows: int = 200, seed: int = 0) -> bytes:
    """A Parquet file of a few KiB, different for each seed."""
    frame = pl.DataFrame(
        {
            "amount": [float((i * 7 + seed) % 100) for i in range(rows)],
            "country": [("FR", "DE", "IT")[(i + seed) % 3] for i in range(rows)],
        }
    )
    buffer = io.BytesIO()
    frame.write_parquet(buffer, compression="uncompressed")
    return buffer.getvalue()


def version_of(payload: bytes) -> str:
    # The trainers hash the data itself; any hex string of 16-64 digits will do here.
    return hashlib.sha256(b"data:" + payload).hexdigest()[:32]


def import_requests(name: str, payload: bytes, **fields: Any) -> list[cp.ImportDatasetRequest]:
    values: dict[str, Any] = {
        "version": version_of(payload),
        "sha256": hashlib.sha256(payload).hexdigest(),
        "size_bytes": len(payload),
        "profile": PROFILE,
        "source": "file:credit.csv",
        "target": "fraud",
        **fields,
    }
    header = cp.ImportDatasetHeader(name=name, **values)
    chunks = [payload[i : i + CHUNK] for i in range(0, len(payload), CHUNK)]
    return [cp.ImportDatasetRequest(header=header), *(cp.ImportDatasetRequest(chunk=c) for c in chunks)]


async def import_(
    api: Api, name: str, payload: bytes, *, metadata: Metadata | None = None, **fields: Any
) -> cp.ImportDatasetResponse:
    requests = import_requests(name, payload, **fields)
    response: cp.ImportDatasetResponse = await api.stub.ImportDataset(
        iter(requests), metadata=metadata or api.admin, timeout=60
    )
    return response


async def datasets(api: Api) -> tuple[list[str], list[Any]]:
    """Every data set version the registry lists, and every artifact file."""
    listing = await api.stub.ListDatasets(cp.ListDatasetsRequest(), metadata=api.admin)
    versions = []
    for dataset in listing.datasets:
        page = await api.stub.ListDatasetVersions(cp.ListDatasetVersionsRequest(name=dataset.name), metadata=api.admin)
        versions += [f"{v.name}:{v.version}:{v.sha256}" for v in page.versions]
    return versions, files(api.artifacts)


async def test_import_get_list_download(any_api: Api) -> None:
    stub, admin = any_api.stub, any_api.admin
    payload = parquet()
    response = await import_(any_api, "credit", payload, description="card transactions")
    assert len(payload) > 2 * CHUNK and response.created
    dataset = response.dataset
    assert (dataset.name, dataset.version, dataset.sha256, dataset.size_bytes) == (
        "credit",
        version_of(payload),
        hashlib.sha256(payload).hexdigest(),
        len(payload),
    )
    assert (dataset.source, dataset.target, dataset.description, dataset.created_by) == (
        "file:credit.csv",
        "fraud",
        "card transactions",
        "admin",
    )
    assert dataset.profile == PROFILE
    assert (
        await stub.GetDataset(cp.GetDatasetRequest(name="credit", version=dataset.version), metadata=admin) == dataset
    )

    newer = (await import_(any_api, "credit", parquet(seed=1))).dataset
    other = (await import_(any_api, "churn", parquet(seed=2))).dataset
    assert await stub.GetDataset(cp.GetDatasetRequest(name="credit"), metadata=admin) == newer
    listing = await stub.ListDatasets(cp.ListDatasetsRequest(), metadata=admin)
    assert list(listing.datasets) == [other, newer]
    first_page = await stub.ListDatasetVersions(
        cp.ListDatasetVersionsRequest(name="credit", page_size=1), metadata=admin
    )
    assert list(first_page.versions) == [newer] and first_page.next_page_token
    request = cp.ListDatasetVersionsRequest(name="credit", page_size=1, page_token=first_page.next_page_token)
    last_page = await stub.ListDatasetVersions(request, metadata=admin)
    assert list(last_page.versions) == [dataset] and not last_page.next_page_token

    download = cp.GetDatasetRequest(name="credit", version=dataset.version)
    chunks = await read_all(stub.DownloadDataset(download, metadata=admin))
    assert (chunks[0].sha256, chunks[0].size_bytes, chunks[0].version) == (dataset.sha256, len(payload), 0)
    assert b"".join(c.data for c in chunks) == payload
    newest = await read_all(stub.DownloadDataset(cp.GetDatasetRequest(name="credit"), metadata=admin))
    assert newest[0].sha256 == newer.sha256

    audit = await stub.ListAudit(cp.ListAuditRequest(action="ImportDataset"), metadata=admin)
    assert [e.target for e in audit.entries] == [
        f"dataset/churn:{other.version}",
        f"dataset/credit:{newer.version}",
        f"dataset/credit:{dataset.version}",
    ]
    assert json.loads(audit.entries[-1].after_json)["sha256"] == dataset.sha256


async def test_importing_a_stored_version_again_answers_at_once(api: Api) -> None:
    payload = parquet()
    stored = (await import_(api, "credit", payload)).dataset
    never = asyncio.Event()

    async def header_only() -> AsyncIterator[cp.ImportDatasetRequest]:
        requests = import_requests("credit", payload, description="another description")
        yield requests[0]
        await never.wait()  # the bytes never come: the stored version is the answer
        for request in requests[1:]:
            yield request

    again = await api.stub.ImportDataset(header_only(), metadata=api.admin, timeout=30)
    assert (again.dataset, again.created) == (stored, False)
    # Sent in full, the same: the upload is not kept.
    assert await import_(api, "credit", payload) == cp.ImportDatasetResponse(dataset=stored, created=False)
    assert (await datasets(api))[0] == [f"credit:{stored.version}:{stored.sha256}"]
    audit = await api.stub.ListAudit(cp.ListAuditRequest(action="ImportDataset"), metadata=api.admin)
    assert len(audit.entries) == 1


async def test_concurrent_imports_of_one_version_all_succeed(any_api: Api) -> None:
    payload = parquet()
    responses = await asyncio.gather(*(import_(any_api, "credit", payload) for _ in range(6)))
    assert sum(r.created for r in responses) == 1
    assert len({r.dataset.SerializeToString() for r in responses}) == 1
    assert len((await datasets(any_api))[0]) == 1
    assert any_api.spool.exists() and not any(any_api.spool.iterdir())


def _wrong_profile(**fields: Any) -> cp.DatasetProfile:
    column = cp.ColumnProfile(name="amount", dtype="Float64", kind="numeric", **fields)
    return cp.DatasetProfile(rows=10, columns=[column])


@pytest.mark.parametrize(
    "fields",
    [
        {"sha256": hashlib.sha256(b"something else").hexdigest()},
        {"size_bytes": 1},
        {"version": "not-hex"},
        {"version": "abc"},
        {"name": "bad/name"},
        {"name": ""},
        {"source": "sql:postgresql://alice:secret@db.internal/credit"},
        {"profile": _wrong_profile(bin_edges=[2.0, 1.0], bin_counts=[3])},
        {"profile": _wrong_profile(bin_edges=[1.0, 2.0], bin_counts=[3, 4])},
        {"profile": _wrong_profile(missing_rate=2.0)},
        {"profile": cp.DatasetProfile(rows=1, columns=[cp.ColumnProfile(name="x", kind="text")])},
        {"profile": _wrong_profile(other_categories=[f"c{i}" for i in range(1001)])},
    ],
    ids=[
        "sha256-mismatch",
        "size-mismatch",
        "version-not-hex",
        "version-short",
        "name-slash",
        "name-empty",
        "password-in-source",
        "descending-edges",
        "edges-for-bins",
        "missing-rate",
        "kind",
        "other-categories",
    ],
)
async def test_malformed_imports_are_invalid_and_store_nothing(api: Api, fields: dict[str, Any]) -> None:
    requests = import_requests("credit", parquet(), **{k: v for k, v in fields.items() if k != "name"})
    if "name" in fields:
        requests[0].header.name = fields["name"]
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await api.stub.ImportDataset(iter(requests), metadata=api.admin, timeout=30)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert await datasets(api) == ([], [])
    assert files(api.spool) == []


async def test_other_refusals_store_nothing(start_api: StartApi, sqlite_url: str) -> None:
    payload = parquet()
    api = await start_api(sqlite_url, max_upload_bytes=len(payload) - 1)
    not_parquet = b"PAR1 is not enough: a Parquet file ends with it as well"
    cases = [
        (import_requests("credit", payload), grpc.StatusCode.RESOURCE_EXHAUSTED),
        (import_requests("credit", not_parquet), grpc.StatusCode.INVALID_ARGUMENT),
        (import_requests("credit", payload)[1:], grpc.StatusCode.INVALID_ARGUMENT),  # no header
        ([], grpc.StatusCode.INVALID_ARGUMENT),
    ]
    for requests, status in cases:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await api.stub.ImportDataset(iter(requests), metadata=api.admin, timeout=30)
        assert refused.value.code() == status
    assert await datasets(api) == ([], [])
    assert files(api.spool) == []


async def test_unknown_data_sets_and_versions_are_not_found(api: Api) -> None:
    stored = (await import_(api, "credit", parquet())).dataset
    stub, admin = api.stub, api.admin
    missing = "0" * 16
    calls = [
        stub.GetDataset(cp.GetDatasetRequest(name="ghost"), metadata=admin),
        stub.GetDataset(cp.GetDatasetRequest(name="credit", version=missing), metadata=admin),
        stub.ListDatasetVersions(cp.ListDatasetVersionsRequest(name="ghost"), metadata=admin),
        read_all(stub.DownloadDataset(cp.GetDatasetRequest(name="ghost"), metadata=admin)),
        read_all(stub.DownloadDataset(cp.GetDatasetRequest(name="credit", version=missing), metadata=admin)),
    ]
    for call in calls:
        with pytest.raises(grpc.aio.AioRpcError) as missing_error:
            await call
        assert missing_error.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.aio.AioRpcError) as malformed:
        await stub.GetDataset(cp.GetDatasetRequest(name="credit", version=stored.version.upper()), metadata=admin)
    assert malformed.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_viewers_read_profiles_but_neither_import_nor_download(api: Api) -> None:
    stored = (await import_(api, "credit", parquet())).dataset
    viewer = await api.user("dashboard", cp.ROLE_VIEWER)
    assert await api.stub.GetDataset(cp.GetDatasetRequest(name="credit"), metadata=viewer) == stored
    listing = await api.stub.ListDatasets(cp.ListDatasetsRequest(), metadata=viewer)
    assert list(listing.datasets) == [stored]
    for call in (
        import_(api, "credit", parquet(seed=1), metadata=viewer),
        read_all(api.stub.DownloadDataset(cp.GetDatasetRequest(name="credit"), metadata=viewer)),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as denied:
            await call
        assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED
    maintainer = await api.user("trainer", cp.ROLE_MAINTAINER)
    assert (await import_(api, "credit", parquet(seed=1), metadata=maintainer)).created
    assert len((await datasets(api))[0]) == 2
