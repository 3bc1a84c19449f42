"""A following server's prediction logs reach the control plane through its outbox: a file waits there while the
control plane is unreachable, is uploaded by a later flush, and is removed only once uploaded; uploading the same
file again (an answer lost) stores nothing twice; a file that can never be stored is set aside instead of blocking
the others."""

from __future__ import annotations

import contextlib
import os
import shutil
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from contract.client import CHUNK_BYTES, ControlPlaneClient
from contract.entities import TensorSignature
from contract.errors import ConduitError
from control_plane.protocol import control_plane_pb2 as cp
from inference_server.config import ModelConfig
from inference_server.predictions import PredictionSampler, Uploader, UploadSink, frames, write_parquet
from inference_server.spec import ModelSpec
from inference_server.types import Tensor
from tests.conftest import free_port

from .conftest import Api, StartApi

SPEC = ModelSpec(
    name="fraud",
    version="3",
    inputs=(TensorSignature("amount", "FP32", (1,)),),
    outputs=(TensorSignature("label", "INT64", (1,)),),
    config=ModelConfig(max_batch_size=8),
)


def sampled_tables(requests: int) -> list[pl.DataFrame]:
    sampler = PredictionSampler(1.0, max_rows=1000, flush_rows=1000)
    for i in range(requests):
        amount = np.array([[float(i)], [float(i) + 0.5]], dtype=np.float32)
        sampler.keep(SPEC, f"r{i}", [Tensor("amount", "FP32", amount)], [np.array([[i % 2], [1]], dtype=np.int64)])
    return frames(sampler.take())


async def test_a_log_waits_in_the_outbox_until_the_control_plane_takes_it(api: Api, tmp_path: Path) -> None:
    token = (await api.stub.CreateUser(cp.CreateUserRequest(name="pod", role=cp.ROLE_SERVER), metadata=api.admin)).token
    outbox = tmp_path / "outbox"
    uploader: Uploader | None = None
    sink = UploadSink(outbox, lambda: uploader, server="pod-7")

    await sink.store(sampled_tables(3))  # no connection yet
    waiting = sink.waiting()
    assert len(waiting) == 1
    kept = tmp_path / "kept.parquet"
    shutil.copy(waiting[0], kept)

    unreachable = ControlPlaneClient.connect(f"127.0.0.1:{free_port()}", token=token)
    uploader = unreachable
    await sink.retry()
    assert sink.waiting() == waiting
    await unreachable.close()

    reachable = ControlPlaneClient.connect(api.server.target, token=token)
    uploader = reachable
    try:
        await sink.retry()
        assert sink.waiting() == []
        listed = await api.stub.ListPredictionLogs(cp.ListPredictionLogsRequest(model="fraud"), metadata=api.admin)
        assert [(log.version, log.rows, log.server) for log in listed.logs] == [(3, 6, "pod-7")]

        # The same file once more, as after an upload whose answer was lost: recorded once.
        shutil.copy(kept, outbox / waiting[0].name)
        await sink.retry()
        assert sink.waiting() == []
        again = await api.stub.ListPredictionLogs(cp.ListPredictionLogsRequest(model="fraud"), metadata=api.admin)
        assert list(again.logs) == list(listed.logs)
    finally:
        await reachable.close()

    table = pl.read_parquet(kept)
    assert table["request_id"].to_list() == ["r0", "r0", "r1", "r1", "r2", "r2"]
    assert table["amount"].to_list() == [0.0, 0.5, 1.0, 1.5, 2.0, 2.5]
    assert table["label"].to_list() == [0, 1, 1, 1, 0, 1]


async def test_a_file_that_cannot_be_stored_is_set_aside_and_the_others_go_on(api: Api, tmp_path: Path) -> None:
    token = (await api.stub.CreateUser(cp.CreateUserRequest(name="pod", role=cp.ROLE_SERVER), metadata=api.admin)).token
    outbox = tmp_path / "outbox"
    outbox.mkdir()
    (outbox / "junk.parquet").write_bytes(b"not parquet")  # oldest: tried first
    client = ControlPlaneClient.connect(api.server.target, token=token)
    try:
        sink = UploadSink(outbox, lambda: client, server="pod-7")
        await sink.store(sampled_tables(2))
    finally:
        await client.close()
    assert sink.waiting() == []
    assert [p.name for p in (outbox / "rejected").iterdir()] == ["junk.parquet"]
    listed = await api.stub.ListPredictionLogs(cp.ListPredictionLogsRequest(model="fraud"), metadata=api.admin)
    assert [log.rows for log in listed.logs] == [4]


def _open(path: Path) -> bool:
    """Whether this process holds ``path`` open."""
    descriptors = Path("/proc/self/fd")
    for descriptor in descriptors.iterdir():
        with contextlib.suppress(OSError):
            if Path(os.readlink(descriptor)) == path.resolve():
                return True
    return False


async def test_an_upload_answered_before_its_last_byte_closes_the_file(api: Api, tmp_path: Path) -> None:
    token = (await api.stub.CreateUser(cp.CreateUserRequest(name="pod", role=cp.ROLE_SERVER), metadata=api.admin)).token
    viewer = (await api.stub.CreateUser(cp.CreateUserRequest(name="v", role=cp.ROLE_VIEWER), metadata=api.admin)).token
    rng = np.random.default_rng(3)
    rows = 1_000_000  # 8 MiB of random values: many chunks, which Parquet cannot compress away
    frame = pl.DataFrame({
        "time": pl.Series([datetime(2026, 11, 1, tzinfo=UTC)] * rows), "model": ["fraud"] * rows,
        "version": ["3"] * rows, "request_id": ["r"] * rows, "amount": rng.random(rows),
    })  # fmt: skip
    log_file = write_parquet(frame, tmp_path, "{sha256}.parquet")
    assert log_file.size_bytes > 4 * CHUNK_BYTES
    client = ControlPlaneClient.connect(api.server.target, token=token)
    refused = ControlPlaneClient.connect(api.server.target, token=viewer)
    try:
        assert (await client.upload_prediction_log(log_file.path, log_file.announced("pod-7")))[1]
        assert not _open(log_file.path)
        # Held already: the control plane answers after the header, before any chunk.
        assert not (await client.upload_prediction_log(log_file.path, log_file.announced("pod-7")))[1]
        assert not _open(log_file.path)
        # Refused before the stream is read. (Its code is not asserted here: a chunk gRPC writes after the refusal
        # arrived but before the client saw it can turn the status into INTERNAL, a race of gRPC's own.)
        with pytest.raises(ConduitError):
            await refused.upload_prediction_log(log_file.path, log_file.announced("pod-7"))
        assert not _open(log_file.path)
    finally:
        await client.close()
        await refused.close()


async def test_a_file_failing_with_the_control_plane_answering_is_rejected_after_max_failures(
    api: Api, tmp_path: Path
) -> None:
    viewer = (await api.stub.CreateUser(cp.CreateUserRequest(name="v", role=cp.ROLE_VIEWER), metadata=api.admin)).token
    outbox = tmp_path / "outbox"
    uploader: Uploader | None = None
    sink = UploadSink(outbox, lambda: uploader, server="pod-7", max_failures=3)
    await sink.store(sampled_tables(2))  # no connection yet
    first = sink.waiting()

    # An outage is no fault of the file: however often, it stays.
    unreachable = ControlPlaneClient.connect(f"127.0.0.1:{free_port()}", token=viewer)
    uploader = unreachable
    for _ in range(4):
        await sink.retry()
    await unreachable.close()
    assert (sink.waiting(), sink.rejected_files) == (first, 0)

    # A viewer may not upload (PERMISSION_DENIED): the third answer in a row sets the file aside.
    denied = ControlPlaneClient.connect(api.server.target, token=viewer)
    uploader = denied
    try:
        await sink.retry()
        await sink.retry()
        assert (sink.waiting(), sink.rejected_files) == (first, 0)
        # A later file, then the flush that sends: the first fails a third time and is set aside; the later one,
        # tried next in the same flush, has failed once.
        await sink.store(sampled_tables(3))
        assert [p.name for p in (outbox / "rejected").iterdir()] == [first[0].name]
        assert sink.rejected_files == 1
        second = sink.waiting()
        assert len(second) == 1 and second != first
        await sink.retry()
        assert (sink.waiting(), sink.rejected_files) == (second, 1)
    finally:
        await denied.close()


async def test_a_file_above_the_control_planes_upload_limit_is_rejected_at_once(
    start_api: StartApi, sqlite_url: str, tmp_path: Path
) -> None:
    small = await start_api(sqlite_url, max_upload_bytes=1024)
    token = (
        await small.stub.CreateUser(cp.CreateUserRequest(name="pod", role=cp.ROLE_SERVER), metadata=small.admin)
    ).token
    client = ControlPlaneClient.connect(small.server.target, token=token)
    try:
        sink = UploadSink(tmp_path / "outbox", lambda: client, server="pod-7")
        await sink.store(sampled_tables(400))
    finally:
        await client.close()
    assert sink.waiting() == [] and sink.rejected_files == 1
    assert len(list((tmp_path / "outbox" / "rejected").iterdir())) == 1


async def test_a_full_outbox_deletes_its_oldest_files_and_counts_them(tmp_path: Path) -> None:
    tables = [sampled_tables(requests) for requests in (50, 49, 48)]  # three files of about the same size
    sizes = [write_parquet(t[0], tmp_path / "measured", "{sha256}.parquet").size_bytes for t in tables]
    outbox = tmp_path / "outbox"
    sink = UploadSink(outbox, lambda: None, server="pod-7", max_bytes=sum(sizes) - 1)
    written = []
    for table in tables:
        await sink.store(table)
        written.append(sink.waiting()[-1].name)
    assert [p.name for p in sink.waiting()] == written[1:]
    assert sink.dropped_files == 1
