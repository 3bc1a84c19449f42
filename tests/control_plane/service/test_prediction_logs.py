"""Prediction logs through the real API on SQLite and PostgreSQL: servers upload Parquet files (verified, stored once
per sha256 however often they retry), viewers list them by model, version, alias and time span page by page,
maintainers download them, and the gc job deletes those past the retention with their files."""

from __future__ import annotations

import contextlib
import hashlib
import io
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import polars as pl
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from sqlalchemy import event
from sqlalchemy.engine import Engine

from control_plane.alerting import AlertingSettings
from control_plane.app import ControlPlaneServer
from control_plane.protocol import control_plane_pb2 as cp
from control_plane.protocol import control_plane_pb2_grpc as cp_grpc
from control_plane.settings import ControlPlaneSettings

from .conftest import ADMIN_TOKEN, Api, Metadata, bearer, eventually, files, read_all

# Yesterday, to the second: within the retention of the pruner every control plane runs at start, whenever the
# tests run (a fixed date falls out of it a month later, and the pruner then races the test for the log).
T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(days=1)


# The clock of a control plane whose gc job is under test: set back, so that the pruner it runs at start (which
# reads this clock, where the job reads the real time) leaves the expired logs to the job.
def _set_back() -> datetime:
    return datetime.now(UTC) - timedelta(days=10)


def parquet(rows: int, *, seed: int = 0) -> bytes:
    frame = pl.DataFrame({"x": [float(seed * 1000 + i) for i in range(rows)], "label": list(range(rows))})
    buffer = io.BytesIO()
    frame.write_parquet(buffer)
    return buffer.getvalue()


def _ts(moment: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(moment)
    return stamp


def upload_requests(
    payload: bytes, *, model: str = "fraud", version: int = 1, at: datetime = T0, chunk: int = 100, **fields: Any
) -> list[cp.UploadPredictionLogRequest]:
    values: dict[str, Any] = {
        "model": model,
        "version": version,
        "first_at": _ts(at),
        "last_at": _ts(at + timedelta(seconds=5)),
        "rows": 3,
        "sha256": hashlib.sha256(payload).hexdigest(),
        "size_bytes": len(payload),
        "server": "pod-a",
    }
    header = cp.PredictionLogHeader(**{**values, **fields})
    parts = [payload[i : i + chunk] for i in range(0, len(payload), chunk)]
    return [cp.UploadPredictionLogRequest(header=header), *(cp.UploadPredictionLogRequest(chunk=c) for c in parts)]


async def upload(api: Api, metadata: Metadata, payload: bytes, **fields: Any) -> cp.UploadPredictionLogResponse:
    answer: cp.UploadPredictionLogResponse = await api.stub.UploadPredictionLog(
        iter(upload_requests(payload, **fields)), metadata=metadata, timeout=30
    )
    return answer


async def test_a_server_uploads_a_log_once_however_often_it_retries(any_api: Api) -> None:
    server = await any_api.user("pod", cp.ROLE_SERVER)
    payload = parquet(3)
    first = await upload(any_api, server, payload)
    again = await upload(any_api, server, payload)
    assert (first.created, again.created) == (True, False)
    assert again.log == first.log
    log = first.log
    assert (log.model, log.version, log.rows, log.size_bytes, log.server) == ("fraud", 1, 3, len(payload), "pod-a")
    assert (log.sha256, log.first_at.ToDatetime(tzinfo=UTC)) == (hashlib.sha256(payload).hexdigest(), T0)
    assert [p.name for p in files(any_api.artifacts) if not p.name.startswith(".")] == [log.sha256]
    assert files(any_api.spool) == []

    viewer = await any_api.user("analyst", cp.ROLE_VIEWER)
    listed = await any_api.stub.ListPredictionLogs(cp.ListPredictionLogsRequest(model="fraud"), metadata=viewer)
    assert list(listed.logs) == [log]

    request = cp.DownloadPredictionLogRequest(sha256=log.sha256)
    chunks = await read_all(any_api.stub.DownloadPredictionLog(request, metadata=any_api.admin))
    assert (chunks[0].sha256, chunks[0].size_bytes, chunks[0].version) == (log.sha256, len(payload), 1)
    assert b"".join(c.data for c in chunks) == payload


@pytest.mark.parametrize(
    ("change", "code", "fragment"),
    [
        ({"sha256": "0" * 64}, grpc.StatusCode.INVALID_ARGUMENT, "sha256"),
        ({"size_bytes": 10**12}, grpc.StatusCode.RESOURCE_EXHAUSTED, "accepts at most"),
        ({"rows": 0}, grpc.StatusCode.INVALID_ARGUMENT, "row"),
        ({"model": "no spaces"}, grpc.StatusCode.INVALID_ARGUMENT, "model name"),
        ({"version": 0}, grpc.StatusCode.INVALID_ARGUMENT, "version"),
        ({"first_at": Timestamp(seconds=10**12)}, grpc.StatusCode.INVALID_ARGUMENT, "first_at out of range"),
        ({"last_at": Timestamp(seconds=0, nanos=-1)}, grpc.StatusCode.INVALID_ARGUMENT, "last_at out of range"),
    ],
)
async def test_a_bad_upload_is_refused_and_leaves_nothing(
    api: Api, change: dict[str, Any], code: grpc.StatusCode, fragment: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await upload(api, api.admin, parquet(3), **change)
    assert caught.value.code() == code
    assert fragment in (caught.value.details() or "")
    assert (files(api.artifacts), files(api.spool)) == ([], [])


async def test_bytes_that_are_not_parquet_are_refused(api: Api) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await upload(api, api.admin, b"not a parquet file at all")
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "not a Parquet file" in (caught.value.details() or "")
    header_only = upload_requests(parquet(3))[:1]
    header_only[0].header.ClearField("first_at")
    with pytest.raises(grpc.aio.AioRpcError) as missing:
        await api.stub.UploadPredictionLog(iter(header_only), metadata=api.admin)
    assert missing.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert files(api.artifacts) == []


@pytest.mark.parametrize("field", ["since", "until"])
async def test_a_listing_span_outside_the_years_timestamps_hold_is_invalid(api: Api, field: str) -> None:
    request = cp.ListPredictionLogsRequest(model="fraud", **{field: Timestamp(seconds=-(10**12))})
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await api.stub.ListPredictionLogs(request, metadata=api.admin)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert f"{field} out of range" in (caught.value.details() or "")


async def test_listing_by_version_alias_and_span_in_pages(any_api: Api, model_bytes: bytes) -> None:
    await any_api.register("fraud", model_bytes)
    await any_api.register("fraud", model_bytes, aliases=["production"])
    made = [
        (await upload(any_api, any_api.admin, parquet(3, seed=i), version=1 + i % 2, at=T0 + timedelta(minutes=i))).log
        for i in range(5)
    ]

    async def listed(**fields: Any) -> list[int]:
        request = cp.ListPredictionLogsRequest(model="fraud", page_size=2, **fields)
        ids: list[int] = []
        while True:
            page = await any_api.stub.ListPredictionLogs(request, metadata=any_api.admin)
            assert len(page.logs) <= 2
            ids += [log.id for log in page.logs]
            if not page.next_page_token:
                return ids
            request.page_token = page.next_page_token

    assert await listed() == [log.id for log in reversed(made)]
    assert await listed(version=1) == [made[i].id for i in (4, 2, 0)]
    assert await listed(alias="production") == [made[i].id for i in (3, 1)]
    since, until = _ts(T0 + timedelta(minutes=2)), _ts(T0 + timedelta(minutes=4))
    assert await listed(since=since, until=until) == [made[3].id, made[2].id]

    async def status(**fields: Any) -> grpc.StatusCode:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await any_api.stub.ListPredictionLogs(cp.ListPredictionLogsRequest(**fields), metadata=any_api.admin)
        return caught.value.code()

    assert await status(model="fraud", alias="staging") == grpc.StatusCode.NOT_FOUND
    assert await status(model="fraud", version=1, alias="production") == grpc.StatusCode.INVALID_ARGUMENT
    assert await status(model="fraud", since=until, until=since) == grpc.StatusCode.INVALID_ARGUMENT
    assert await status(model="fraud", page_token="%%%") == grpc.StatusCode.INVALID_ARGUMENT


async def test_viewers_list_logs_but_only_maintainers_download_them(api: Api) -> None:
    log = (await upload(api, api.admin, parquet(3))).log
    request = cp.DownloadPredictionLogRequest(sha256=log.sha256)
    viewer = await api.user("analyst", cp.ROLE_VIEWER)
    with pytest.raises(grpc.aio.AioRpcError) as denied:
        await read_all(api.stub.DownloadPredictionLog(request, metadata=viewer))
    assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED
    maintainer = await api.user("scientist", cp.ROLE_MAINTAINER)
    chunks = await read_all(api.stub.DownloadPredictionLog(request, metadata=maintainer))
    assert b"".join(c.data for c in chunks) == parquet(3)
    with pytest.raises(grpc.aio.AioRpcError) as forbidden:
        await upload(api, maintainer, parquet(4))
    assert forbidden.value.code() == grpc.StatusCode.PERMISSION_DENIED
    missing = cp.DownloadPredictionLogRequest(sha256="1" * 64)
    with pytest.raises(grpc.aio.AioRpcError) as unknown:
        await read_all(api.stub.DownloadPredictionLog(missing, metadata=maintainer))
    assert unknown.value.code() == grpc.StatusCode.NOT_FOUND


async def test_the_gc_job_deletes_logs_past_the_retention_with_their_files(sqlite_url: str, tmp_path: Path) -> None:
    settings = ControlPlaneSettings(
        home=tmp_path / "home", db=sqlite_url, grpc_port=0, admin_token=ADMIN_TOKEN, prediction_log_retention=30
    )
    server = ControlPlaneServer(settings, alerting=AlertingSettings(gc_grace_s=0), clock=_set_back)
    await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{server.port}")
    try:
        api = Api(server, channel, cp_grpc.ControlPlaneStub(channel), tmp_path / "home")  # type: ignore[no-untyped-call]
        now = datetime.now(UTC)
        olds = [
            (await upload(api, bearer(ADMIN_TOKEN), parquet(3, seed=seed), at=now - timedelta(days=31))).log
            for seed in range(1, 6)
        ]
        recent = (await upload(api, bearer(ADMIN_TOKEN), parquet(3, seed=9), at=now - timedelta(days=29))).log
        await api.stub.CreateJob(cp.CreateJobRequest(name="sweep", cron="0 3 * * *", kind="gc"), metadata=api.admin)
        with digest_queries() as queries:
            run = await api.stub.RunJob(cp.RunJobRequest(name="sweep"), metadata=api.admin)
        assert "deleted 5 prediction log(s)" in run.log and "deleted 5 unreferenced artifact(s)" in run.log
        # The referenced digests are read once to find the unreferenced files and once more before deleting them,
        # however many there are.
        assert len(queries) == 2
        listed = await api.stub.ListPredictionLogs(cp.ListPredictionLogsRequest(model="fraud"), metadata=api.admin)
        assert [log.sha256 for log in listed.logs] == [recent.sha256]
        assert [p.name for p in files(api.artifacts) if not p.name.startswith(".")] == [recent.sha256]
        assert recent.sha256 not in {old.sha256 for old in olds}
    finally:
        await channel.close()
        await server.stop(grace=1.0)


@contextlib.contextmanager
def digest_queries() -> Iterator[list[str]]:
    """The statements that read every referenced artifact digest (a union over the tables that hold them), run by
    any engine of this process meanwhile."""
    found: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if "UNION" in statement and "prediction_logs" in statement:
            found.append(statement)

    event.listen(Engine, "before_cursor_execute", seen)
    try:
        yield found
    finally:
        event.remove(Engine, "before_cursor_execute", seen)


async def test_logs_past_the_retention_go_with_their_files_without_a_gc_job(sqlite_url: str, tmp_path: Path) -> None:
    settings = ControlPlaneSettings(
        home=tmp_path / "home", db=sqlite_url, grpc_port=0, admin_token=ADMIN_TOKEN, prediction_log_retention=30,
        monitoring_prune_interval=0.05,
    )  # fmt: skip
    server = ControlPlaneServer(settings)
    await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{server.port}")
    try:
        api = Api(server, channel, cp_grpc.ControlPlaneStub(channel), tmp_path / "home")  # type: ignore[no-untyped-call]
        now = datetime.now(UTC)
        recent = (await upload(api, bearer(ADMIN_TOKEN), parquet(3, seed=2), at=now - timedelta(days=29))).log
        old = (await upload(api, bearer(ADMIN_TOKEN), parquet(3, seed=1), at=now - timedelta(days=31))).log

        def stored() -> list[str]:
            return [p.name for p in files(api.artifacts) if not p.name.startswith(".")]

        # The file goes after its row: once it is gone, so is the row.
        await eventually(lambda: old.sha256 not in stored(), "the old log's file deleted", within=30)
        assert stored() == [recent.sha256]
        listed = await api.stub.ListPredictionLogs(cp.ListPredictionLogsRequest(model="fraud"), metadata=api.admin)
        assert [log.sha256 for log in listed.logs] == [recent.sha256]
        jobs = await api.stub.ListJobs(cp.ListJobsRequest(), metadata=api.admin)
        assert [job.name for job in jobs.jobs if job.kind == "gc"] == []
    finally:
        await channel.close()
        await server.stop(grace=1.0)
