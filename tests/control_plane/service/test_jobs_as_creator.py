"""Train jobs run as the user who created them, through the real control plane: a token of the creator made for
the run and dead after it, an environment without the control plane's secrets, and limits that end a run with one
line. The real trainer, run by the scheduler, registers a version the creator created and the audit names."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

import grpc
import pytest

from clients.training import import_frame
from contract.client import SyncControlPlaneClient
from control_plane.alerting import AlertingSettings
from control_plane.protocol import control_plane_pb2 as cp
from trainers import bundled

from .conftest import ADMIN_TOKEN, Api, StartApi, bearer

MIB = 1024 * 1024

# A stand-in for the trainer: what the run holds and who the control plane takes it for, written where the test
# reads it (argv[1]).
PROBE = """
import json, os, sys
import grpc
from control_plane.protocol import control_plane_pb2 as cp, control_plane_pb2_grpc as cp_grpc
token = os.environ["CONDUIT_TOKEN"]
with grpc.insecure_channel(os.environ["CONDUIT_CONTROL_PLANE"]) as channel:
    me = cp_grpc.ControlPlaneStub(channel).WhoAmI(cp.WhoAmIRequest(), metadata=(("authorization", "Bearer " + token),))
json.dump({"user": me.name, "role": me.role, "token": token, "env": dict(os.environ)}, open(sys.argv[1], "w"))
print("trained as", me.name)
"""

CREDIT_SPEC = """
[dataset]
name = "credit"
target = "default"
[features]
numeric = ["age", "income", "debt", "debt_ratio"]
categorical = ["city"]
[cleaning]
derived = { debt_ratio = "debt / income" }
[model]
task = "binary"
estimator = "decision_tree"
params = { max_depth = 3 }
[register]
name = "credit-default"
"""


async def _code(call: Any) -> grpc.StatusCode:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    code: grpc.StatusCode = caught.value.code()
    return code


async def _finished_run(api: Api, job: str, within: float) -> cp.JobRun:
    """The first run of ``job`` that the scheduler finished (it starts on its own: nothing to await but its record)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        runs = await api.stub.ListJobRuns(cp.ListJobRunsRequest(job=job), metadata=api.admin)
        done = [run for run in runs.runs if run.outcome]
        if done:
            return done[-1]
        await asyncio.sleep(0.1)
    raise AssertionError(f"no run of job {job!r} finished within {within}s")


def _last_line(log: str) -> str:
    return log.rstrip("\n").splitlines()[-1]


async def test_a_job_acts_with_a_token_of_its_creator_that_dies_with_the_run(
    start_api: StartApi, sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The control plane's own secrets, as an operator would set them: none may reach the run.
    monkeypatch.setenv("CONDUIT_ADMIN_TOKEN", ADMIN_TOKEN)
    monkeypatch.setenv("CONDUIT_CP_DB", sqlite_url)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "aws-secret-of-the-artifact-store")
    monkeypatch.setenv("LANG", "C.UTF-8")
    seen_file = tmp_path / "seen.json"
    api = await start_api(sqlite_url, train_command=[sys.executable, "-c", PROBE, str(seen_file), "{spec}"])
    stub = api.stub
    mia = await api.user("mia", cp.ROLE_MAINTAINER)
    job = cp.CreateJobRequest(name="nightly", cron="0 3 * * *", kind="train", spec="[register]\nname = 'x'\n")
    assert (await stub.CreateJob(job, metadata=mia)).created_by == "mia"

    run = await stub.RunJob(cp.RunJobRequest(name="nightly"), metadata=mia, timeout=60)
    assert run.outcome == "succeeded", run.log
    assert run.log.startswith("running as 'mia' (maintainer)\n") and "trained as mia\n" in run.log
    seen = json.loads(seen_file.read_text())
    assert (seen["user"], seen["role"]) == ("mia", cp.ROLE_MAINTAINER)
    assert seen["token"] != api.tokens["mia"]  # a token of its own, not one of the user's

    env: dict[str, str] = seen["env"]
    for secret in ("CONDUIT_ADMIN_TOKEN", "CONDUIT_CP_DB", "AWS_SECRET_ACCESS_KEY"):
        assert secret not in env
    assert not any(ADMIN_TOKEN in value or "aws-secret" in value for value in env.values())
    assert env["LANG"] == "C.UTF-8" and env["CONDUIT_CONTROL_PLANE"] == api.server.target

    # The run is over: its token opens nothing any more, and inference servers never listed it.
    assert await _code(stub.WhoAmI(cp.WhoAmIRequest(), metadata=bearer(seen["token"]))) == (
        grpc.StatusCode.UNAUTHENTICATED
    )
    callers = await stub.ListCallers(cp.ListCallersRequest(), metadata=api.admin)
    assert {caller.user for caller in callers.callers} == {"admin", "mia"} and len(callers.callers) == 2
    audit = await stub.ListAudit(cp.ListAuditRequest(action="CreateJobToken"), metadata=api.admin)
    assert [(entry.actor, entry.target) for entry in audit.entries] == [("mia", "job/nightly")]
    assert seen["token"] not in str(audit)


async def test_a_disabled_creators_job_fails_saying_so(start_api: StartApi, sqlite_url: str, tmp_path: Path) -> None:
    seen_file = tmp_path / "seen.json"
    api = await start_api(sqlite_url, train_command=[sys.executable, "-c", PROBE, str(seen_file), "{spec}"])
    mia = await api.user("mia", cp.ROLE_MAINTAINER)
    job = cp.CreateJobRequest(name="nightly", cron="0 3 * * *", kind="train", spec="[register]\nname = 'x'\n")
    await api.stub.CreateJob(job, metadata=mia)
    await api.stub.DisableUser(cp.DisableUserRequest(name="mia"), metadata=api.admin)

    run = await api.stub.RunJob(cp.RunJobRequest(name="nightly"), metadata=api.admin, timeout=60)
    assert run.outcome == "failed"
    assert run.log == (
        "job 'nightly' cannot run as its creator: its creator 'mia' is disabled; create the job again as an "
        "enabled user\n"
    )
    assert not seen_file.exists()


@pytest.mark.parametrize(
    ("limit", "code", "reason"),
    [
        (
            {"train_timeout_s": 1.5},
            "import time; print('started', flush=True); time.sleep(60)",
            "wall-clock limit of 1.5 s",
        ),
        ({"train_cpu_s": 1}, "print('started', flush=True)\nwhile True: pass", "CPU-time limit of 1 s"),
        (
            {"train_memory_bytes": 512 * MIB},
            "print('started', flush=True); bytearray(2 * 1024**3)",
            "memory limit of 512 MiB",
        ),
    ],
)
async def test_a_job_over_a_limit_fails_with_one_line_naming_it(
    start_api: StartApi, sqlite_url: str, limit: dict[str, Any], code: str, reason: str
) -> None:
    api = await start_api(
        sqlite_url, alerting=AlertingSettings(**limit), train_command=[sys.executable, "-c", code, "{spec}"]
    )
    mia = await api.user("mia", cp.ROLE_MAINTAINER)
    job = cp.CreateJobRequest(name="nightly", cron="0 3 * * *", kind="train", spec="[register]\nname = 'x'\n")
    await api.stub.CreateJob(job, metadata=mia)
    run = await api.stub.RunJob(cp.RunJobRequest(name="nightly"), metadata=mia, timeout=60)
    assert run.outcome == "failed" and "started\n" in run.log
    assert _last_line(run.log).endswith(f"the run went over its {reason}")


async def test_a_maintainers_scheduled_train_job_registers_a_version_the_maintainer_created(
    start_api: StartApi, sqlite_url: str
) -> None:
    # The real trainer (`conduit train SPEC --register`), started by the scheduler at the job's first tick.
    api = await start_api(sqlite_url, alerting=AlertingSettings(evaluate_interval_s=0.2))
    stub = api.stub
    with SyncControlPlaneClient.connect(api.server.target, token=ADMIN_TOKEN) as client:
        await asyncio.to_thread(import_frame, client, bundled.load("credit"), "credit", source="bundled:credit")
    mia = await api.user("mia", cp.ROLE_MAINTAINER)
    job = cp.CreateJobRequest(name="nightly", cron="* * * * *", kind="train", spec=CREDIT_SPEC)
    await stub.CreateJob(job, metadata=mia)

    run = await _finished_run(api, "nightly", within=240)
    assert run.outcome == "succeeded", run.log
    assert "registered credit-default version 1" in run.log
    version = await stub.GetVersion(
        cp.GetVersionRequest(ref=cp.VersionRef(model="credit-default", version=1)), metadata=mia
    )
    assert version.created_by == "mia"
    audit = await stub.ListAudit(cp.ListAuditRequest(target_prefix="model/credit-default"), metadata=api.admin)
    assert audit.entries and {entry.actor for entry in audit.entries} == {"mia"}
    assert "RegisterVersion" in {entry.action for entry in audit.entries}
