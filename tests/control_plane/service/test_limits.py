"""Limits through the real API: uploads spooled at once are bounded in total, Parquet uploads are judged by their
metadata (a decompression bomb never reaches the store), reported times outside the stated skew are refused, and an
error echoing a 10,000-character name still arrives as its own status with a bounded message."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from contract.status import MAX_DETAILS_BYTES
from control_plane.protocol import control_plane_pb2 as cp

from .conftest import Api, StartApi, eventually, files
from .test_datasets import datasets, import_requests, parquet
from .test_prediction_logs import _ts
from .test_prediction_logs import upload_requests as log_upload_requests

WAIT_S = 10
BOMB_ROWS = 10_000_000  # 80 MB of int64 once decoded; a few KiB on disk


async def refused(call: Any) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    return caught.value


def _table_bytes(table: pa.Table, **options: Any) -> bytes:
    buffer = io.BytesIO()
    pq.write_table(table, buffer, compression="zstd", **options)
    return buffer.getvalue()


def rle_bomb() -> bytes:
    """Ten million zeros: dictionary and run-length encoded, their pages are tiny even before compression."""
    return _table_bytes(pa.table({"x": np.zeros(BOMB_ROWS, dtype=np.int64)}))


def codec_bomb() -> bytes:
    """The same zeros plainly encoded: 80 MB of pages that zstd shrinks a thousandfold."""
    table = pa.table({"x": np.zeros(BOMB_ROWS, dtype=np.int64)})
    return _table_bytes(table, use_dictionary=False, column_encoding={"x": "PLAIN"})


# -- the spool ------------------------------------------------------------------------------------------------------


async def test_uploads_beyond_the_spool_bound_are_refused_at_once_and_leave_nothing(
    start_api: StartApi, sqlite_url: str, model_bytes: bytes
) -> None:
    kept, other = parquet(rows=200, seed=1), parquet(rows=200, seed=2)
    assert len(model_bytes) < len(other) <= len(kept)
    # Room for one data set and one model at once, never for two data sets.
    api = await start_api(sqlite_url, max_upload_bytes=len(kept), max_spool_bytes=len(kept) + len(model_bytes))
    held = asyncio.Event()
    requests = import_requests("kept", kept)

    async def held_open() -> AsyncIterator[cp.ImportDatasetRequest]:
        yield requests[0]
        yield requests[1]
        await held.wait()
        for request in requests[2:]:
            yield request

    first = api.stub.ImportDataset(held_open(), metadata=api.admin, timeout=60)
    await eventually(lambda: len(files(api.spool)) == 1, "the first upload is spooling")

    # A second data set does not fit beside it: refused before its bytes, whatever it would have sent.
    second = await refused(
        api.stub.ImportDataset(iter(import_requests("other", other)), metadata=api.admin, timeout=WAIT_S)
    )
    assert second.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "at once" in (second.details() or "")
    # What does fit still goes through meanwhile.
    assert (await api.register("fraud", model_bytes)).version == 1
    assert len(files(api.spool)) == 1

    held.set()
    assert (await first).created
    assert files(api.spool) == []
    stored, _ = await datasets(api)
    assert [entry.split(":")[0] for entry in stored] == ["kept"]
    # The bound is released with the uploads: the refused one fits now.
    assert (await api.stub.ImportDataset(iter(import_requests("other", other)), metadata=api.admin)).created
    assert files(api.spool) == []


# -- Parquet metadata -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("bomb", [rle_bomb, codec_bomb], ids=["rle", "codec"])
async def test_a_decompression_bomb_data_set_is_refused_before_it_is_stored(api: Api, bomb: Any) -> None:
    payload = bomb()
    assert len(payload) < 64 * 1024  # small on the wire, 80 MB once read
    failure = await refused(api.stub.ImportDataset(iter(import_requests("credit", payload)), metadata=api.admin))
    assert failure.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "decodes to" in (failure.details() or "")
    # Nothing a train job could read: no version, no file, no spool leftover.
    assert await datasets(api) == ([], [])
    assert files(api.spool) == []


async def test_a_decompression_bomb_prediction_log_is_refused(api: Api) -> None:
    server = await api.user("pod", cp.ROLE_SERVER)
    payload = rle_bomb()
    failure = await refused(
        api.stub.UploadPredictionLog(
            iter(log_upload_requests(payload, rows=BOMB_ROWS, chunk=4096)), metadata=server, timeout=WAIT_S
        )
    )
    assert failure.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "decodes to" in (failure.details() or "")
    assert (files(api.artifacts), files(api.spool)) == ([], [])


async def test_rows_are_bounded_and_must_be_what_a_log_announced(start_api: StartApi, sqlite_url: str) -> None:
    api = await start_api(sqlite_url, max_parquet_rows=100)
    too_many = await refused(
        api.stub.ImportDataset(iter(import_requests("credit", parquet(rows=101))), metadata=api.admin)
    )
    assert too_many.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "holds 101 rows" in (too_many.details() or "") and "at most 100" in (too_many.details() or "")
    at_most = import_requests("credit", parquet(rows=100))
    assert (await api.stub.ImportDataset(iter(at_most), metadata=api.admin)).created

    server = await api.user("pod", cp.ROLE_SERVER)
    payload = pq_rows(3)
    lying = await refused(
        api.stub.UploadPredictionLog(iter(log_upload_requests(payload, rows=2)), metadata=server, timeout=WAIT_S)
    )
    assert lying.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "holds 3 rows" in (lying.details() or "")
    assert files(api.spool) == []


def pq_rows(rows: int) -> bytes:
    return _table_bytes(pa.table({"x": np.arange(rows, dtype=np.float64)}))


# -- reported times -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "first_at",
    [datetime(2200, 1, 1, tzinfo=UTC), datetime.now(UTC) + timedelta(days=2), datetime(1999, 12, 31, tzinfo=UTC)],
    ids=["2200", "two-days-ahead", "1999"],
)
async def test_a_prediction_log_from_outside_the_skew_is_refused(api: Api, first_at: datetime) -> None:
    server = await api.user("pod", cp.ROLE_SERVER)
    requests = log_upload_requests(pq_rows(3), at=first_at)
    requests[0].header.last_at.CopyFrom(_ts(first_at))
    failure = await refused(api.stub.UploadPredictionLog(iter(requests), metadata=server, timeout=WAIT_S))
    assert failure.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "first_at is before 2000 or more than 1 day ahead" in (failure.details() or "")
    listed = await api.stub.ListPredictionLogs(cp.ListPredictionLogsRequest(model="fraud"), metadata=api.admin)
    assert list(listed.logs) == []


# -- echoed names ---------------------------------------------------------------------------------------------------


def _bounded(error: grpc.aio.AioRpcError) -> str:
    details = error.details() or ""
    assert len(details.encode()) <= MAX_DETAILS_BYTES and "\n" not in details
    return details


async def test_a_10000_character_name_is_an_invalid_argument_with_a_bounded_message(
    api: Api, model_bytes: bytes
) -> None:
    name = "m" * 10_000
    created = await refused(api.stub.CreateModel(cp.CreateModelRequest(name=name), metadata=api.admin))
    assert created.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "must be 1-128 characters" in _bounded(created) and "…" in _bounded(created)
    uploaded = await refused(api.register(name, model_bytes))
    assert uploaded.code() == grpc.StatusCode.INVALID_ARGUMENT
    request = cp.GetVersionRequest(ref=cp.VersionRef(model=name))
    fetched = await refused(api.stub.GetVersion(request, metadata=api.admin))
    assert fetched.code() == grpc.StatusCode.INVALID_ARGUMENT
    _bounded(fetched)


async def test_every_echo_is_bounded_where_errors_become_statuses(api: Api) -> None:
    # Names no rule checks before they are echoed: the one mapping to a status bounds them all.
    for name in ("u" * 10_000, "é" * 10_000):
        missing = await refused(api.stub.DisableUser(cp.DisableUserRequest(name=name), metadata=api.admin))
        assert missing.code() == grpc.StatusCode.NOT_FOUND
        assert _bounded(missing).endswith("…")
    rule = cp.CreateAlertRuleRequest(name="r" * 10_000, model="fraud", when="drift > 0.2", notify="log")
    alert = await refused(api.stub.CreateAlertRule(rule, metadata=api.admin))
    assert alert.code() == grpc.StatusCode.INVALID_ARGUMENT
    _bounded(alert)
