"""The scheduler: runs each job once per cron tick across every control-plane replica.

Every replica runs the same scheduler over the same jobs. At a tick each replica asks the ``LeaseStore`` for the
(job, tick) lease; the store lets exactly one win, and the others skip that tick. The winner runs the job and records
its outcome and log with the lease. A replica that dies mid-run leaves its lease to expire after ``lease_ttl_s``;
then another replica may take the tick over, so keep runs shorter than the TTL (train runs have a timeout for this).
Ticks of one job do not overlap on one replica; across replicas a run longer than the cron period can overlap the
next tick's run, so give slow jobs a period longer than their run.

Only the latest tick of a job is considered: a control plane that was down for an hour runs a missed */5 job once,
not twelve times, and not at all when the tick is older than ``misfire_grace_s``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Protocol

from control_plane.alerting._jobs import Job, JobKind
from control_plane.alerting._runs import JobRun, RunOutcome, RunResult, failure_line
from control_plane.alerting._time import Clock, utcnow

__all__ = ["LeaseStore", "Runner", "Scheduler"]

_log = logging.getLogger("conduit.scheduler")
Runner = Callable[[Job, datetime], RunResult]
"""Runs one tick of a job; raising counts as a failed run with the traceback as its log."""


class LeaseStore(Protocol):
    """Where replicas agree on who runs a tick."""

    def try_acquire(self, job: str, tick: datetime, holder: str, ttl_s: float) -> bool:
        """Take the (job, tick) lease for ``holder``: True for exactly one caller per tick, unless the winner's lease
        expired unfinished, when one later caller may take it over."""
        ...

    def complete(self, job: str, tick: datetime, holder: str, outcome: RunOutcome, log: str) -> bool:
        """Record the outcome of a run; False when ``holder`` no longer holds the lease (it was taken over)."""
        ...


class Scheduler:
    """Runs ``jobs`` on their schedules with ``runners`` (one per job kind), leasing each tick in ``leases``.

    Args:
        holder: this replica's name in the leases (host and process, say).
        clock: the time; tests inject theirs.
        lease_ttl_s: how long a lease protects a run (see the module's docstring).
        misfire_grace_s: a tick later than this is skipped.
        max_workers: jobs run at the same time by ``run_forever``.
    """

    def __init__(
        self,
        jobs: Iterable[Job],
        leases: LeaseStore,
        runners: Mapping[JobKind, Runner],
        *,
        holder: str,
        clock: Clock = utcnow,
        lease_ttl_s: float = 3600.0,
        misfire_grace_s: float = 300.0,
        max_workers: int = 4,
    ) -> None:
        self._leases = leases
        self._runners = dict(runners)
        self._holder = holder
        self._clock = clock
        self._ttl_s = lease_ttl_s
        self._grace = timedelta(seconds=misfire_grace_s)
        self._max_workers = max_workers
        self._lock = threading.Lock()
        self._tried: dict[str, datetime] = {}
        self._running: set[str] = set()
        self.set_jobs(jobs)

    def set_jobs(self, jobs: Iterable[Job]) -> None:
        """Replace the job set (after jobs were added or removed); ticks already tried stay tried."""
        jobs = list(jobs)
        missing = {job.kind for job in jobs} - set(self._runners)
        if missing:
            raise ValueError(f"no runner for {sorted(kind.value for kind in missing)} jobs")
        with self._lock:
            self._jobs = {job.name: job for job in jobs}

    def due(self, at: datetime) -> list[tuple[Job, datetime]]:
        """The jobs whose latest tick at or before ``at`` is within the grace and not yet tried here."""
        with self._lock:
            jobs = list(self._jobs.values())
            tried = dict(self._tried)
        due = []
        for job in jobs:
            tick = job.schedule.latest(at)
            if at - tick <= self._grace and (job.name not in tried or tried[job.name] < tick):
                due.append((job, tick))
        return due

    def next_tick(self, after: datetime) -> datetime | None:
        """The earliest tick of any job strictly after ``after``; None without jobs."""
        with self._lock:
            jobs = list(self._jobs.values())
        return min((job.schedule.next_after(after) for job in jobs), default=None)

    def run_due(self, at: datetime | None = None) -> list[JobRun]:
        """Run, one after the other in this thread, every due job whose tick this replica wins; their records."""
        at = at or self._clock()
        runs = []
        for job, tick in self.due(at):
            run = self._run_tick(job, tick)
            if run is not None:
                runs.append(run)
        return runs

    def run_forever(self, stop: threading.Event, *, poll_s: float = 30.0) -> None:
        """Run due jobs until ``stop`` is set, each on a worker thread so a long training run delays no other job.

        Wakes at the next tick, or after ``poll_s`` at most, to pick up clock jumps and ``set_jobs`` changes.
        """
        with ThreadPoolExecutor(self._max_workers, thread_name_prefix="conduit-job") as pool:
            while not stop.is_set():
                now = self._clock()
                for job, tick in self.due(now):
                    with self._lock:
                        if job.name in self._running:
                            continue
                        self._running.add(job.name)
                    pool.submit(self._run_and_release, job, tick)
                upcoming = self.next_tick(now)
                wait_s = poll_s if upcoming is None else min(poll_s, (upcoming - now).total_seconds())
                stop.wait(max(wait_s, 0.01))

    def _run_and_release(self, job: Job, tick: datetime) -> None:
        try:
            self._run_tick(job, tick)
        except Exception:
            _log.exception("job %s: the tick of %s could not be run", job.name, tick.isoformat())
        finally:
            with self._lock:
                self._running.discard(job.name)

    def _run_tick(self, job: Job, tick: datetime) -> JobRun | None:
        with self._lock:
            before = self._tried.get(job.name)
            self._tried[job.name] = tick if before is None else max(before, tick)
        try:
            acquired = self._leases.try_acquire(job.name, tick, self._holder, self._ttl_s)
        except Exception:
            # The lease store is unreachable: leave the tick untried so that the next wake-up asks again.
            with self._lock:
                if before is None:
                    self._tried.pop(job.name, None)
                else:
                    self._tried[job.name] = before
            raise
        if not acquired:
            return None
        started = self._clock()
        _log.info("job %s: running the tick of %s", job.name, tick.isoformat())
        try:
            result = self._runners[job.kind](job, tick)
        except Exception as exc:
            _log.exception("job %s: the tick of %s failed", job.name, tick.isoformat())
            result = RunResult(ok=False, log=failure_line(exc))
        outcome = RunOutcome.SUCCEEDED if result.ok else RunOutcome.FAILED
        if not self._leases.complete(job.name, tick, self._holder, outcome, result.log):
            _log.warning("job %s: the tick of %s was taken over before it finished here", job.name, tick.isoformat())
        finished = self._clock()
        _log.log(
            logging.INFO if result.ok else logging.WARNING, "job %s: %s in %.1f s", job.name, outcome.value,
            (finished - started).total_seconds(),
        )  # fmt: skip
        return JobRun(job.name, tick, self._holder, outcome, result.log, started, finished)
