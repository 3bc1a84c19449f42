"""Import jobs through the real control plane and its scheduler: a maintainer's `* * * * *` import runs at its first
tick as that maintainer, reads its bearer token from the control plane's environment, and stores only the
reference."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
from collections.abc import Iterator

import grpc
import pytest

from contract.entities import ImportSpec
from control_plane.alerting import AlertingSettings
from control_plane.protocol import control_plane_pb2 as cp
from tests.http_api import ApiServer, pages, serve_api

from .conftest import StartApi

TOKEN = "tok_job-secret-987654321"
RECORDS = [{"id": i, "kind": {"name": "a" if i % 2 else "b"}} for i in range(5)]


@pytest.fixture
def api_server() -> Iterator[ApiServer]:
    yield from serve_api()


async def test_a_scheduled_import_runs_at_its_tick_as_its_creator(
    start_api: StartApi, sqlite_url: str, api_server: ApiServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    for path, answer in pages(RECORDS, size=2, base=api_server.url).items():
        api_server.route(path, answer)
        api_server.require(path, "X-Api-Key", TOKEN)
    monkeypatch.setenv("FEED_KEY", TOKEN)
    monkeypatch.setenv("CONDUIT_IMPORT_ALLOW", "127.0.0.1/32")
    monkeypatch.setenv("CONDUIT_IMPORT_ENV", "FEED_KEY")
    api = await start_api(sqlite_url, alerting=AlertingSettings(evaluate_interval_s=0.2))
    mia = await api.user("mia", cp.ROLE_MAINTAINER)
    viewer = await api.user("vic", cp.ROLE_VIEWER)
    spec = ImportSpec(
        f"{api_server.url}/items?page=1", records="data.items", next="links.next",
        headers=(("X-Api-Key", "env:FEED_KEY"),), name="feed",
    )  # fmt: skip
    job = cp.CreateJobRequest(name="feed-sync", cron="* * * * *", kind="import", spec=spec.to_json())
    with pytest.raises(grpc.aio.AioRpcError) as denied:
        await api.stub.CreateJob(job, metadata=viewer)
    assert denied.value.code() is grpc.StatusCode.PERMISSION_DENIED
    await api.stub.CreateJob(job, metadata=mia)

    deadline = time.monotonic() + 240
    done: list[cp.JobRun] = []
    while not done and time.monotonic() < deadline:
        runs = await api.stub.ListJobRuns(cp.ListJobRunsRequest(job="feed-sync"), metadata=api.admin)
        done = [run for run in runs.runs if run.outcome]
        await asyncio.sleep(0.2)
    assert done, "the scheduler ran no tick of the import job"
    assert done[0].outcome == "succeeded", done[0].log
    assert "running as 'mia' (maintainer)" in done[0].log and "imported feed:" in done[0].log

    stored = await api.stub.GetDataset(cp.GetDatasetRequest(name="feed"), metadata=viewer)
    assert stored.created_by == "mia" and stored.profile.rows == 5
    assert [c.name for c in stored.profile.columns] == ["id", "kind.name"]
    audit = await api.stub.ListAudit(cp.ListAuditRequest(target_prefix="dataset/feed"), metadata=api.admin)
    assert {entry.actor for entry in audit.entries} == {"mia"}
    listed = await api.stub.ListJobs(cp.ListJobsRequest(), metadata=viewer)
    assert "env:FEED_KEY" in listed.jobs[0].spec
    everything = str(listed) + str(audit) + str(done[0]) + str(stored)
    assert TOKEN not in everything


async def test_an_import_job_reaches_no_loopback_address_unless_allowed(
    start_api: StartApi, sqlite_url: str, api_server: ApiServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A name, so that creating the job cannot settle it: the run resolves it and refuses what it resolves to.
    # The test machines list their own name in /etc/hosts (a loopback or private address): anything else is a
    # failure of the premise, never a skip.
    host = socket.gethostname()
    address = ipaddress.ip_address(socket.gethostbyname(host))
    assert address.is_loopback or address.is_private, f"{host} resolves to {address}, neither loopback nor private"
    monkeypatch.delenv("CONDUIT_IMPORT_ALLOW", raising=False)
    api_server.route("/items", *pages(RECORDS, size=10, base=api_server.url).values())
    api = await start_api(sqlite_url)
    port = api_server.url.rsplit(":", 1)[1]
    spec = ImportSpec(f"http://{host}:{port}/items", records="data.items", name="feed")
    job = cp.CreateJobRequest(name="j", cron="0 3 * * *", kind="import", spec=spec.to_json())
    await api.stub.CreateJob(job, metadata=api.admin)
    run = await api.stub.RunJob(cp.RunJobRequest(name="j"), metadata=api.admin, timeout=120)
    assert run.outcome == "failed"
    assert "destination refused by the outbound policy (not allowed or not resolvable)" in run.log, run.log
    assert api_server.requests == []
