"""Scheduled jobs as the control plane runs them: the runners of ``evaluate``, ``train``, ``import`` and ``gc`` jobs,
the built-in evaluation every ``evaluate_interval_s``, and a run on demand. Blocking code: it runs on the scheduler's
threads, never on the event loop."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from contract.entities import AlertRuleRecord, JobRecord
from contract.errors import ConduitError, ErrorCode
from contract.tokens import hash_token, new_token
from control_plane.alerting import (
    AlertChanged,
    AlertEngine,
    AlertKey,
    AlertRule,
    CronSchedule,
    Job,
    JobKind,
    JobRun,
    Runner,
    RunOutcome,
    RunResult,
    Scheduler,
    SqlAlertStore,
    SqlLeaseStore,
    failure_line,
    parse_channel,
    parse_condition,
    silence,
)
from control_plane.artifacts import ArtifactStore
from control_plane.store import AbstractStore

__all__ = ["BUILTIN_EVALUATE", "JobRunners", "TrainProcess", "rule_of"]

log = logging.getLogger("conduit.jobs")
Clock = Callable[[], datetime]
TrainProcess = Callable[[Job, datetime, str], RunResult]
"""Runs a train (or import) job's spec in a process of its own that calls the control plane with the given token."""
# A run's token outlives the run's wall-clock limit by this much at most, should the run's end never delete it.
TOKEN_MARGIN = timedelta(minutes=5)

BUILTIN_EVALUATE = "@evaluate"
"""The lease name of the built-in evaluation; ``@`` keeps it apart from every job name."""


def rule_of(record: AlertRuleRecord, channel: str) -> AlertRule:
    """The stored rule as the alerting library evaluates it, with its full ``channel`` (the record's is redacted)."""
    return AlertRule(record.name, record.model, record.alias, parse_condition(record.condition), parse_channel(channel))


class JobRunners:
    """Runs jobs for the scheduler, on demand, and the built-in evaluation; holds the scheduler's job set.

    Args:
        store: the registry (rules, jobs, versions, artifact references, roll-ups).
        artifacts: where ``gc`` deletes unreferenced artifacts.
        engine: evaluates and notifies alert rules.
        alerts: the alert states and history ``engine`` keeps.
        leases: the ticks leased across replicas.
        train: runs a train job's spec with a token of the job's creator, made for that run and deleted after it.
        imports: runs an import job's spec the same way; None: import jobs fail, saying so.
        train_timeout_s: the longest a train run lasts; its token expires some minutes later at the latest.
        spec_dir: where train jobs' specs are written for the trainer.
        holder: this replica's name in the leases.
        gc_grace_s: see ``AlertingSettings.gc_grace_s``.
        rollup_retention: ``gc`` also deletes roll-ups older than this.
        prediction_log_retention: ``gc`` also deletes prediction logs whose latest row is older than this (their
            files in the same run when ``gc_grace_s`` is 0, otherwise once they have waited that long).
        lease_ttl_s, misfire_grace_s: the scheduler's.
    """

    def __init__(
        self,
        store: AbstractStore,
        artifacts: ArtifactStore,
        engine: AlertEngine,
        alerts: SqlAlertStore,
        leases: SqlLeaseStore,
        *,
        train: TrainProcess,
        train_timeout_s: float,
        spec_dir: Path,
        holder: str,
        gc_grace_s: float,
        rollup_retention: timedelta,
        lease_ttl_s: float,
        misfire_grace_s: float,
        prediction_log_retention: timedelta = timedelta(days=30),
        clock: Clock = lambda: datetime.now(UTC),
        imports: TrainProcess | None = None,
    ) -> None:
        self._store = store
        self._artifacts = artifacts
        self._engine = engine
        self.alerts = alerts
        self.leases = leases
        self._train = train
        self._imports = imports
        self._token_ttl = timedelta(seconds=train_timeout_s) + TOKEN_MARGIN
        self._spec_dir = spec_dir
        self._holder = holder
        self._gc_grace = timedelta(seconds=gc_grace_s)
        self._retention = rollup_retention
        self._prediction_log_retention = prediction_log_retention
        self._ttl_s = lease_ttl_s
        self._clock = clock
        self._unreferenced: dict[str, datetime] = {}
        self.scheduler = Scheduler(
            [], leases, self.runners(), holder=holder, clock=clock, lease_ttl_s=lease_ttl_s,
            misfire_grace_s=misfire_grace_s,
        )  # fmt: skip

    def runners(self) -> dict[JobKind, Runner]:
        return {
            JobKind.EVALUATE: self.evaluate, JobKind.TRAIN: self.train, JobKind.GC: self.gc,
            JobKind.IMPORT: self.import_,
        }  # fmt: skip

    def job_of(self, record: JobRecord) -> Job:
        """The job of a stored record; a train or import job's spec is written to ``spec_dir`` for its process."""
        spec = None
        if record.spec is not None:
            self._spec_dir.mkdir(parents=True, exist_ok=True)
            spec = self._spec_dir / f"{record.name}.{'json' if record.kind == JobKind.IMPORT.value else 'toml'}"
            if not spec.exists() or spec.read_text() != record.spec:
                spec.write_text(record.spec)
        return Job(record.name, CronSchedule.parse(record.cron), JobKind(record.kind), spec, record.created_by)

    def reload(self) -> None:
        """Take the jobs from the store (after a change here or on another replica)."""
        self.scheduler.set_jobs([self.job_of(record) for record in self._store.list_jobs()])

    # -- runners ------------------------------------------------------------------------------------------------

    def evaluate(self, job: Job | None = None, tick: datetime | None = None) -> RunResult:
        """Evaluate every rule on the versions it watches, after sending what an earlier pass left unsent."""
        # Channels after rules: a rule created in between has no channel read yet, and waits for the next pass.
        listed = self._store.list_alert_rules()
        channels = self._store.alert_rule_channels()
        records = {record.name: record for record in listed if record.enabled and record.name in channels}
        rules = {name: rule_of(record, channels[name]) for name, record in records.items()}
        lines = []
        for stored in self._engine.deliver_pending(rules):
            lines.append(
                f"{stored.key.rule} {stored.key.model}:{stored.key.version}: sent a held {stored.event.phase.value}"
            )
        ok = True
        for rule in rules.values():
            try:
                versions = self._versions(rule)
                self._carry_silence(records[rule.name], versions)
                for stored in self._engine.evaluate(rule, versions, at=tick):
                    outcome = stored.delivery.outcome.value if stored.delivery else "unsent"
                    lines.append(
                        f"{rule.name} {rule.model}:{stored.key.version}: {stored.event.phase.value} ({outcome})"
                    )
            except Exception as exc:
                # One broken rule must not keep the others from being evaluated.
                ok = False
                log.exception("alert rule %s could not be evaluated", rule.name)
                lines.append(f"{rule.name}: {failure_line(exc)}")
        lines.append(f"evaluated {len(rules)} rule(s)")
        return RunResult(ok=ok, log="\n".join(lines))

    def train(self, job: Job, tick: datetime) -> RunResult:
        """Run a train job as the user who created it: with a token of that user made for this run, which stops
        working when the run ends (or, should that never be recorded, soon after the run's wall-clock limit)."""
        return self._as_creator(job, tick, self._train)

    def import_(self, job: Job, tick: datetime) -> RunResult:
        """Run an import job as the user who created it, as ``train`` runs a train job."""
        if self._imports is None:
            return RunResult(ok=False, log=f"job {job.name!r}: this control plane runs no import jobs\n")
        return self._as_creator(job, tick, self._imports)

    def _as_creator(self, job: Job, tick: datetime, process: TrainProcess) -> RunResult:
        creator = job.created_by
        if creator is None:
            return RunResult(ok=False, log=f"job {job.name!r} has no creator to run as\n")
        token = new_token()
        digest = hash_token(token)
        try:
            user = self._store.add_job_token(creator, digest, job=job.name, expires_at=self._clock() + self._token_ttl)
        except ConduitError as exc:
            if exc.code is ErrorCode.FAILED_PRECONDITION:
                reason = f"its creator {creator!r} is disabled; create the job again as an enabled user"
            elif exc.code is ErrorCode.NOT_FOUND:
                reason = f"its creator {creator!r} does not exist"
            else:
                reason = exc.message
            return RunResult(ok=False, log=f"job {job.name!r} cannot run as its creator: {reason}\n")
        try:
            result = process(job, tick, token)
        finally:
            try:
                self._store.revoke_job_token(digest)
            except Exception:
                # The token still expires; the run's outcome must not be lost to a store that failed just now.
                log.exception("job %s: the token of its run could not be deleted (it expires on its own)", job.name)
        return RunResult(result.ok, f"running as {user.name!r} ({user.role.value})\n{result.log}")

    def gc(self, job: Job | None = None, tick: datetime | None = None) -> RunResult:
        """Delete prediction logs older than their retention, then artifacts seen unreferenced for ``gc_grace_s``
        (those logs' files among them), and roll-ups older than the retention."""
        now = self._clock()
        # First, so that the files of the logs deleted now count as unreferenced in this very run.
        logs = len(self._store.prune_prediction_logs(now - self._prediction_log_retention))
        referenced = self._store.artifact_digests()
        unreferenced = set(self._artifacts.digests()) - referenced
        self._unreferenced = {digest: self._unreferenced.get(digest, now) for digest in unreferenced}
        due = [digest for digest, since in self._unreferenced.items() if now - since >= self._gc_grace]
        deleted = 0
        if due:
            # Checked again right before deleting, once for the whole batch (the query reads every table that holds
            # digests): a version may have been registered on one of them meanwhile.
            still = self._store.artifact_digests()
            for digest in due:
                if digest not in still:
                    self._artifacts.delete(digest)
                    del self._unreferenced[digest]
                    deleted += 1
        pruned = self._store.prune_rollups(now - self._retention)
        waiting = len(self._unreferenced)
        return RunResult(
            ok=True,
            log=f"deleted {logs} prediction log(s) older than {self._prediction_log_retention}; "
            f"deleted {deleted} unreferenced artifact(s), {waiting} waiting for the grace period; "
            f"deleted {pruned} roll-up(s) older than {self._retention}",
        )

    def _carry_silence(self, record: AlertRuleRecord, versions: list[str]) -> None:
        """A silenced rule silences the alerts of versions it started watching after the silence was set."""
        for version in versions:
            key = AlertKey(record.name, record.model, version)
            read = self.alerts.read(key)
            if read.state.silenced_until == record.silenced_until:
                continue
            try:
                self.alerts.save(key, silence(read.state, until=record.silenced_until), expected=read)
            except AlertChanged:
                # Acknowledged or silenced meanwhile: the next evaluation carries the silence onto that state.
                log.info("alert %s changed while its rule's silence was carried; next time", key)

    def _versions(self, rule: AlertRule) -> list[str]:
        if rule.alias is not None:
            try:
                return [str(self._store.get_version(rule.model, alias=rule.alias).version)]
            except ConduitError as exc:
                if exc.code is ErrorCode.NOT_FOUND:
                    return []
                raise
        # A rule on a whole model watches the versions the servers report serving.
        served = {
            str(loaded.version)
            for server in self._store.list_servers(None)
            for loaded in server.models
            if loaded.model == rule.model
        }
        return sorted(served, key=int)

    # -- out of schedule ----------------------------------------------------------------------------------------

    def run_now(self, name: str) -> JobRun:
        """Run job ``name`` at once, recorded with its runs (its tick is the moment it starts).

        Raises:
            ConduitError: NOT_FOUND for an unknown job.
        """
        records = {record.name: record for record in self._store.list_jobs()}
        if name not in records:
            raise ConduitError(ErrorCode.NOT_FOUND, f"job {name!r} does not exist")
        job = self.job_of(records[name])
        return self._leased(job.name, self._clock(), lambda tick: self.runners()[job.kind](job, tick))

    def run_builtin_evaluation(self, stop: threading.Event, interval_s: float) -> None:
        """Evaluate every rule each ``interval_s`` (once per interval across replicas) and pick up job changes,
        until ``stop`` is set."""
        step = timedelta(seconds=interval_s)
        epoch = datetime(1970, 1, 1, tzinfo=UTC)
        while not stop.is_set():
            now = self._clock()
            tick = epoch + ((now - epoch) // step) * step
            try:
                self.reload()
                self._leased(BUILTIN_EVALUATE, tick, lambda at: self.evaluate(None, None), only_if_won=True)
            except Exception:
                log.exception("the built-in alert evaluation failed")
            stop.wait(max((tick + step - self._clock()).total_seconds(), 0.01))

    def _leased(
        self, name: str, tick: datetime, run: Callable[[datetime], RunResult], *, only_if_won: bool = False
    ) -> JobRun:
        started = self._clock()
        if not self.leases.try_acquire(name, tick, self._holder, self._ttl_s):
            if only_if_won:
                return JobRun(
                    name, tick, self._holder, RunOutcome.SUCCEEDED, "run by another replica", started, started
                )
            raise ConduitError(ErrorCode.ALREADY_EXISTS, f"job {name!r} is already running at {tick.isoformat()}")
        try:
            result = run(tick)
        except Exception as exc:
            log.exception("job %s: the run of %s failed", name, tick.isoformat())
            result = RunResult(ok=False, log=failure_line(exc))
        outcome = RunOutcome.SUCCEEDED if result.ok else RunOutcome.FAILED
        self.leases.complete(name, tick, self._holder, outcome, result.log)
        return JobRun(name, tick, self._holder, outcome, result.log, started, self._clock())
