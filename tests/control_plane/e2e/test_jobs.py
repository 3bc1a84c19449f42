"""Scheduled jobs end to end: two `conduit control-plane` processes on one PostgreSQL database both schedule a
`* * * * *` job, and each minute's tick is run by exactly one of them."""

from __future__ import annotations

import json
from collections.abc import Callable

from .conftest import Cluster, eventually


def test_two_control_planes_run_each_tick_of_a_job_once(
    start_cluster: Callable[[str], Cluster], postgres_url: str
) -> None:
    first = start_cluster(postgres_url)
    second = start_cluster(postgres_url)
    first.cli("jobs", "add", "check", "--cron", "* * * * *", "--evaluate")

    def runs() -> list[dict[str, str]]:
        done = second.cli("jobs", "history", "check", "--json")
        return [run for run in json.loads(done.stdout) if run.get("outcome")]

    # The second replica learns of the job at its next reload, within a second of the built-in evaluation's period.
    eventually(lambda: len(runs()) >= 1, timeout=130, what="a tick of the job run")
    # Both replicas log the ticks they run (both share one log file here): each tick appears once.
    log = (first.tmp / "control-plane.log").read_text()
    for run in runs():
        assert run["outcome"] == "succeeded" and "evaluated 0 rule(s)" in run["log"]
        tick = run["tick"].replace("Z", "+00:00")
        assert log.count(f"job check: running the tick of {tick}") == 1, log
