"""The scheduler and its leases: each tick of each job runs once across replicas, on SQLite and PostgreSQL."""

from __future__ import annotations

import sys
import threading
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine

from control_plane.alerting import (
    Job,
    JobKind,
    Runner,
    RunOutcome,
    RunResult,
    Scheduler,
    SqlLeaseStore,
    TrainRunner,
)

from .conftest import START, ManualClock, open_engine

TICKS = 12


class Executions:
    """Runners that record which replica ran which tick of which job."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.runs: list[tuple[str, datetime, str]] = []

    def runner(self, holder: str) -> Runner:
        def run(job: Job, tick: datetime) -> RunResult:
            with self.lock:
                self.runs.append((job.name, tick, holder))
            return RunResult(ok=True, log=f"{job.name} by {holder}")

        return run


def jobs(spec: Path) -> list[Job]:
    return [
        Job.parse("alerts", cron="* * * * *", evaluate=True),
        Job.parse("gc", cron="*/2 * * * *", gc=True),
        Job.parse("retrain", cron="*/3 * * * *", train=spec),
    ]


def test_two_replicas_run_each_tick_of_each_job_exactly_once(alerting_url: str, tmp_path: Path) -> None:
    spec = tmp_path / "fraud.toml"
    spec.write_text("[register]\nname = 'fraud'\n")
    executions = Executions()
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def replica(holder: str) -> None:
        # A replica of its own: its own engine (connection pool), store, clock and scheduler.
        engine = open_engine(alerting_url)
        clock = ManualClock()
        record = executions.runner(holder)
        train = TrainRunner([sys.executable, "-c", "import sys; print('trained', sys.argv[1])", "{spec}"])

        def train_and_record(job: Job, tick: datetime) -> RunResult:
            result = train(job, tick)
            record(job, tick)
            return result

        runners = {JobKind.EVALUATE: record, JobKind.GC: record, JobKind.TRAIN: train_and_record}
        scheduler = Scheduler(jobs(spec), SqlLeaseStore(engine, clock=clock), runners, holder=holder, clock=clock)
        try:
            for minute in range(TICKS):
                clock.set(START + timedelta(minutes=minute, seconds=2))
                barrier.wait(timeout=60)
                scheduler.run_due()
        except BaseException as exc:
            errors.append(exc)
            barrier.abort()
        finally:
            engine.dispose()

    threads = [threading.Thread(target=replica, args=(f"replica-{i}",)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []

    ran = Counter((job, tick) for job, tick, _ in executions.runs)
    assert set(ran.values()) == {1}
    expected = {
        "alerts": TICKS,
        "gc": len(range(0, TICKS, 2)),
        "retrain": len(range(0, TICKS, 3)),
    }
    assert Counter(job for job, _ in ran) == expected

    engine = open_engine(alerting_url)
    try:
        ticks = SqlLeaseStore(engine).ticks(limit=1000)
    finally:
        engine.dispose()
    assert len(ticks) == sum(expected.values())
    assert {record.outcome for record in ticks} == {RunOutcome.SUCCEEDED}
    retrain = [record for record in ticks if record.job == "retrain"]
    # Each run reads its own copy of the spec, in a directory of its own.
    assert all(f"/{spec.name}\n" in record.log and "trained " in record.log for record in retrain)
    # The winner of each tick is the replica whose runner ran it.
    winners = {(job, tick): holder for job, tick, holder in executions.runs}
    assert all(winners[(record.job, record.tick)] == record.holder for record in ticks)


def test_an_expired_unfinished_lease_is_taken_over_once(alerting_engine: Engine, clock: ManualClock) -> None:
    leases = SqlLeaseStore(alerting_engine, clock=clock)
    tick = START
    assert leases.try_acquire("retrain", tick, "a", ttl_s=600)
    assert not leases.try_acquire("retrain", tick, "b", ttl_s=600)
    clock.advance(601)
    # "a" died mid-run: once its lease expired, exactly one other replica takes the tick.
    assert leases.try_acquire("retrain", tick, "b", ttl_s=600)
    assert not leases.try_acquire("retrain", tick, "c", ttl_s=600)
    assert not leases.complete("retrain", tick, "a", RunOutcome.SUCCEEDED, "late")
    assert leases.complete("retrain", tick, "b", RunOutcome.FAILED, "boom")
    clock.advance(3600)
    assert not leases.try_acquire("retrain", tick, "c", ttl_s=600)
    [record] = leases.ticks("retrain")
    assert (record.holder, record.outcome, record.log) == ("b", RunOutcome.FAILED, "boom")


def test_the_runs_of_a_builtin_job_are_kept_for_their_history_period_and_a_user_jobs_for_good(
    alerting_engine: Engine, clock: ManualClock
) -> None:
    leases = SqlLeaseStore(alerting_engine, clock=clock, builtin_history_s=3600)
    for _ in range(3 * 60):
        tick = clock.advance(60)
        for job in ("@evaluate", "alerts"):
            assert leases.try_acquire(job, tick, "a", ttl_s=600)
            assert leases.complete(job, tick, "a", RunOutcome.SUCCEEDED, "")
    # A built-in tick still running is no history yet: only finished runs are pruned.
    assert leases.try_acquire("@evaluate", START, "a", ttl_s=600)
    clock.advance(60)
    assert leases.try_acquire("@evaluate", clock(), "a", ttl_s=600)
    assert leases.complete("@evaluate", clock(), "a", RunOutcome.SUCCEEDED, "")
    kept = [record.tick for record in leases.ticks("@evaluate", limit=1000)]
    # Three hours of one run a minute, then the hour (both ends included) before the last completion.
    assert kept[:-1] == [clock() - timedelta(minutes=m) for m in range(61)] and kept[-1] == START
    assert len(leases.ticks("alerts", limit=1000)) == 3 * 60


def test_after_downtime_only_the_latest_tick_runs_and_a_stale_one_is_skipped(
    alerting_engine: Engine, clock: ManualClock
) -> None:
    executions = Executions()
    job = Job.parse("alerts", cron="*/5 * * * *", evaluate=True)
    run = executions.runner("a")
    scheduler = Scheduler(
        [job], SqlLeaseStore(alerting_engine, clock=clock), {JobKind.EVALUATE: run}, holder="a", clock=clock,
        misfire_grace_s=120,
    )  # fmt: skip
    clock.set(START + timedelta(minutes=31))  # ticks 10:00 … 10:30 were missed; 10:30 is within the grace
    assert [r.tick for r in scheduler.run_due()] == [START + timedelta(minutes=30)]
    assert scheduler.run_due() == []
    clock.set(START + timedelta(minutes=38))  # 10:35 is three minutes late: skipped
    assert scheduler.run_due() == []
    assert scheduler.next_tick(clock()) == START + timedelta(minutes=40)


def test_a_runner_that_raises_is_a_failed_run_whose_log_keeps_the_traceback_from_viewers(
    alerting_engine: Engine, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(job: Job, tick: datetime) -> RunResult:
        raise RuntimeError("artifact store unreachable at http://10.0.0.7:9000/?secret=s3cret")

    leases = SqlLeaseStore(alerting_engine, clock=clock)
    scheduler = Scheduler(
        [Job.parse("gc", cron="@hourly", gc=True)], leases, {JobKind.GC: broken}, holder="a", clock=clock
    )
    [run] = scheduler.run_due()
    # Viewers read run logs: one line, no traceback, nothing of the message; the control plane's log has it all.
    assert run.outcome is RunOutcome.FAILED
    assert run.log == "unexpected RuntimeError; the control plane's log has the details"
    assert "s3cret" in caplog.text and "Traceback" in caplog.text
    assert leases.ticks("gc")[0].outcome is RunOutcome.FAILED


def test_a_job_without_a_runner_is_refused(alerting_engine: Engine) -> None:
    with pytest.raises(ValueError, match="no runner for"):
        Scheduler([Job.parse("gc", cron="@hourly", gc=True)], SqlLeaseStore(alerting_engine), {}, holder="a")


def test_run_forever_runs_each_tick_once_on_worker_threads(alerting_engine: Engine) -> None:
    clock = ManualClock(START + timedelta(seconds=30))
    seen: list[datetime] = []
    ran = threading.Semaphore(0)

    def record(job: Job, tick: datetime) -> RunResult:
        seen.append(tick)
        ran.release()
        return RunResult(ok=True)

    scheduler = Scheduler(
        [Job.parse("alerts", cron="* * * * *", evaluate=True)],
        SqlLeaseStore(alerting_engine, clock=clock), {JobKind.EVALUATE: record}, holder="a", clock=clock,
    )  # fmt: skip
    stop = threading.Event()
    loop = threading.Thread(target=scheduler.run_forever, args=(stop,), kwargs={"poll_s": 0.01})
    loop.start()
    try:
        for minute in range(1, 4):
            assert ran.acquire(timeout=30)
            clock.set(START + timedelta(minutes=minute, seconds=1))
        assert ran.acquire(timeout=30)
    finally:
        stop.set()
        loop.join(timeout=30)
    assert seen == [START + timedelta(minutes=m) for m in range(4)]
