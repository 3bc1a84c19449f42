"""A train job whose spec would read a file or fetch a URL through a derived expression fails before training,
with one line naming what was refused, and no run log a viewer reads holds anything of the file. The jobs are run
by the control plane's scheduler with the real trainer (`conduit train SPEC --register`)."""

from __future__ import annotations

import asyncio
import time

from control_plane.alerting import AlertingSettings
from control_plane.protocol import control_plane_pb2 as cp
from tests.conftest import SECRET_LINE, Bait

from .conftest import Api, StartApi

SPEC = """
[dataset]
name = "credit"
target = "default"
[features]
numeric = ["age"]
[cleaning]
derived = {{ r = "{expression}" }}
[model]
task = "binary"
estimator = "decision_tree"
[register]
name = "stolen"
"""


async def _finished_runs(api: Api, jobs: set[str], within: float) -> dict[str, cp.JobRun]:
    """The first finished run of each of ``jobs``, as a viewer lists them (the scheduler starts them on its own)."""
    viewer = await api.user("vic", cp.ROLE_VIEWER)
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        runs = await api.stub.ListJobRuns(cp.ListJobRunsRequest(), metadata=viewer)
        done = {run.job: run for run in reversed(runs.runs) if run.outcome and run.job in jobs}
        if set(done) == jobs:
            return done
        await asyncio.sleep(0.1)
    raise AssertionError(f"the runs of {sorted(jobs)} did not finish within {within}s")


async def test_a_spec_reaching_for_a_file_or_url_fails_before_training_and_no_log_shows_the_file(
    start_api: StartApi, sqlite_url: str, bait: Bait
) -> None:
    expressions = {
        "passwd": f"age IN (SELECT y FROM read_csv('{bait.file}'))",
        "cte": f"age IN (WITH t AS (SELECT * FROM scan_csv('{bait.file}')) SELECT y FROM t)",
        "fetch": f"read_parquet('{bait.url}')",
        "ndjson": f"age + (SELECT max(y) FROM read_ndjson('{bait.url}'))",
    }
    named = {"passwd": "read_csv()", "cte": "scan_csv()", "fetch": "read_parquet()", "ndjson": "read_ndjson()"}
    api = await start_api(sqlite_url, alerting=AlertingSettings(evaluate_interval_s=0.2))
    mia = await api.user("mia", cp.ROLE_MAINTAINER)
    for name, expression in expressions.items():
        spec = SPEC.format(expression=expression)
        await api.stub.CreateJob(
            cp.CreateJobRequest(name=name, cron="* * * * *", kind="train", spec=spec), metadata=mia
        )

    runs = await _finished_runs(api, set(expressions), within=120)
    for name, run in runs.items():
        assert run.outcome == "failed", run.log
        said = [line for line in run.log.splitlines() if line.startswith("conduit: ")]
        assert len(said) == 1, run.log
        assert "[cleaning] derived: derived column 'r': " in said[0] and named[name] in said[0]
        assert said[0].endswith(
            "is not allowed in an expression (columns, literals, operators and scalar functions only)"
        )
        assert run.log.endswith("\nexit status 1\n")
        assert "Traceback" not in run.log
    everything = await api.stub.ListJobRuns(cp.ListJobRunsRequest(), metadata=api.admin)
    assert SECRET_LINE not in str(everything) and "conduit-secret-line" not in str(everything)
    assert bait.requests() == []
    listing = await api.stub.ListModels(cp.ListModelsRequest(), metadata=api.admin)
    assert [model.name for model in listing.models] == []
