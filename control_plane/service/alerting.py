"""Alert rules, their alerts and history, and scheduled jobs: the API calls, validated with the alerting library's
parsers before anything is stored."""

from __future__ import annotations

import asyncio
import dataclasses
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlsplit

from contract.entities import AlertRuleRecord, ImportSpec, JobRecord
from contract.errors import ConduitError, ErrorCode
from contract.outbound import OutboundPolicy, Refused
from control_plane.alerting import (
    AlertKey,
    AlertRule,
    AlertState,
    ImportSettings,
    Job,
    JobRun,
    Phase,
    SqlAlertStore,
    SqlLeaseStore,
    StoredEvent,
    TickRecord,
    Webhook,
    acknowledge,
    describe_window,
    parse_condition,
)
from control_plane.service.jobs import JobRunners
from control_plane.store import AbstractStore, check_name

__all__ = ["Alert", "AlertingService"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MAX_LIMIT = 1000


@dataclass(frozen=True, slots=True)
class Alert:
    """The current state of one rule on one model version."""

    key: AlertKey
    state: AlertState


def _order(key: AlertKey) -> tuple[str, str, int, str]:
    return key.rule, key.model, int(key.version) if key.version.isdigit() else -1, key.version


def _windowed(record: AlertRuleRecord) -> AlertRuleRecord:
    """``record`` with its condition's window, which listings show (the store keeps only the condition)."""
    return dataclasses.replace(record, window=describe_window(parse_condition(record.condition)))


def _limit(limit: int) -> int:
    if limit < 0:
        raise ConduitError(ErrorCode.INVALID_ARGUMENT, f"limit must not be negative, not {limit}")
    return min(limit or 100, MAX_LIMIT)


class AlertingService:
    """Args:
    store: the registry, which keeps rules and jobs (audited).
    alerts: alert states and events.
    leases: job runs.
    runners: reloads the scheduler's jobs and runs a job on demand.
    webhook_policy: where webhooks may go; a rule whose webhook is refused whatever DNS says (a literal address,
        ``localhost``) is refused when created.
    imports: what import jobs may reach and which variables their headers may name; checked when a job is created.
    clock: the time acknowledgements are stamped with.
    """

    def __init__(
        self,
        store: AbstractStore,
        alerts: SqlAlertStore,
        leases: SqlLeaseStore,
        runners: JobRunners,
        *,
        webhook_policy: OutboundPolicy | None = None,
        imports: ImportSettings | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._store = store
        self._alerts = alerts
        self._leases = leases
        self._runners = runners
        self._webhook_policy = webhook_policy or OutboundPolicy()
        self._imports = imports or ImportSettings(allow=(), env=())
        self._clock = clock

    # -- rules --------------------------------------------------------------------------------------------------

    async def create_rule(self, name: str, *, model: str, when: str, notify: str, actor: str) -> AlertRuleRecord:
        """Raises INVALID_ARGUMENT naming the argument at fault (a webhook to an address the outbound policy refuses
        among them), NOT_FOUND for a model or alias the registry does not have, ALREADY_EXISTS. The channel is stored
        in full apart from the rule, which keeps it redacted."""
        rule = AlertRule.parse(name, model=model, when=when, notify=notify)
        if isinstance(rule.channel, Webhook):
            # Only what needs no DNS: the address a name resolves to is checked at each delivery, where it counts.
            try:
                self._webhook_policy.check_host(rule.channel.host)
            except Refused as exc:
                raise ConduitError(
                    ErrorCode.INVALID_ARGUMENT,
                    f"webhook {rule.channel.redacted.removeprefix('webhook:')}: {exc.reason}, where outbound requests "
                    "are refused (the control plane's CONDUIT_ALERTS_WEBHOOK_ALLOW can allow it)",
                ) from None
        await asyncio.to_thread(self._check_target, rule)
        record = AlertRuleRecord(
            rule.name, rule.model, rule.alias, str(rule.condition), rule.channel.redacted, _EPOCH, actor
        )
        created = await asyncio.to_thread(self._store.create_alert_rule, record, channel=str(rule.channel), actor=actor)
        return _windowed(created)

    def _check_target(self, rule: AlertRule) -> None:
        """NOT_FOUND unless the rule's model, and its alias if it names one, exist: a misspelt name would watch
        nothing, silently, for ever."""
        model = self._store.get_model(rule.model)
        if rule.alias is not None and rule.alias not in model.aliases:
            known = ", ".join(sorted(model.aliases)) or "none"
            raise ConduitError(
                ErrorCode.NOT_FOUND, f"model {rule.model!r} has no alias {rule.alias!r} (its aliases: {known})"
            )

    async def list_rules(self) -> list[AlertRuleRecord]:
        return [_windowed(record) for record in await asyncio.to_thread(self._store.list_alert_rules)]

    async def delete_rule(self, name: str, *, actor: str) -> AlertRuleRecord:
        """Remove the rule and its alerts' states (its history stays). Raises NOT_FOUND."""
        deleted = await asyncio.to_thread(self._store.delete_alert_rule, name, actor=actor)
        await asyncio.to_thread(self._alerts.forget_rule, name)
        return _windowed(deleted)

    async def silence(self, name: str, until: datetime | None, *, actor: str) -> AlertRuleRecord:
        """Hold the rule's notifications until ``until`` (None: lift the silence). Raises NOT_FOUND."""
        record = await asyncio.to_thread(self._store.silence_alert_rule, name, until, actor=actor)
        await asyncio.to_thread(self._alerts.silence, name, until)
        return _windowed(record)

    # -- alerts -------------------------------------------------------------------------------------------------

    async def list_alerts(self, rule: str | None) -> list[Alert]:
        states = await asyncio.to_thread(self._alerts.states, rule)
        return [Alert(key, state) for key, state in sorted(states.items(), key=lambda item: _order(item[0]))]

    async def history(self, rule: str | None, *, limit: int) -> list[StoredEvent]:
        return await asyncio.to_thread(self._alerts.history, rule, limit=_limit(limit))

    async def acknowledge(self, rule: str, model: str, version: str | None, *, actor: str) -> list[Alert]:
        """Acknowledge the firing alerts of ``rule`` on ``model`` (one version, or all): no repeat notifications for
        this episode; each is audited. Raises NOT_FOUND when none is firing there, FAILED_PRECONDITION for one version
        not firing."""
        revisions = await asyncio.to_thread(self._alerts.revisions, rule)
        chosen = {
            key: revision
            for key, revision in revisions.items()
            if key.model == model and (version is None or key.version == version)
        }
        if version is None:
            chosen = {key: revision for key, revision in chosen.items() if revision.state.phase is Phase.FIRING}
        if not chosen:
            target = model if version is None else f"{model}:{version}"
            raise ConduitError(ErrorCode.NOT_FOUND, f"alert rule {rule!r} has no firing alert on {target}")
        out = []
        for key, revision in sorted(chosen.items(), key=lambda item: _order(item[0])):
            acknowledged = acknowledge(revision.state, by=actor, at=self._clock())
            # Written only if the alert is still as read: an alert that resolved in between must not come back as
            # firing (AlertChanged, FAILED_PRECONDITION: the user sees it changed and looks again).
            await asyncio.to_thread(self._alerts.acknowledge, key, revision, acknowledged, actor=actor)
            out.append(Alert(key, acknowledged))
        return out

    # -- jobs ---------------------------------------------------------------------------------------------------

    async def create_job(self, name: str, *, cron: str, kind: str, spec: str, actor: str) -> JobRecord:
        """Raises INVALID_ARGUMENT naming the argument at fault (a train spec must be TOML, an import spec an
        ``ImportSpec``'s JSON with a data set name, secrets only as ``env:VAR``), ALREADY_EXISTS."""
        if kind not in ("evaluate", "train", "gc", "import"):
            raise ConduitError(
                ErrorCode.INVALID_ARGUMENT, f"job kind must be evaluate, train, import or gc, not {kind!r}"
            )
        # The spec travels as text; the file name is only for the parser, which checks the rest of the job.
        train = f"{name}.toml" if kind == "train" else None
        imports = f"{name}.json" if kind == "import" else None
        job = Job.parse(name, cron=cron, train=train, imports=imports, evaluate=kind == "evaluate", gc=kind == "gc")
        if kind == "import":
            self._check_import(name, spec)
        elif kind == "train":
            try:
                tomllib.loads(spec)
            except tomllib.TOMLDecodeError as exc:
                raise ConduitError(ErrorCode.INVALID_ARGUMENT, f"job {name!r}: the training spec: {exc}") from None
        elif spec:
            raise ConduitError(ErrorCode.INVALID_ARGUMENT, f"job {name!r}: only a train or import job has a spec")
        stored = spec if kind in ("train", "import") else None
        record = JobRecord(job.name, str(job.schedule), kind, stored, _EPOCH, actor)
        created = await asyncio.to_thread(self._store.create_job, record, actor=actor)
        await asyncio.to_thread(self._runners.reload)
        return created

    def _check_import(self, name: str, spec: str) -> None:
        imported = ImportSpec.from_json(spec)
        check_name("data set", imported.name)
        self._imports.check(imported, name)
        if imported.scheme != "s3":
            try:
                self._imports.policy().check_host(urlsplit(imported.url).hostname or "")
            except Refused as exc:
                raise ConduitError(
                    ErrorCode.INVALID_ARGUMENT,
                    f"job {name!r}: {imported.source}: {exc.reason}, where outbound requests are refused (the control "
                    "plane's CONDUIT_IMPORT_ALLOW can allow it)",
                ) from None

    async def list_jobs(self) -> list[JobRecord]:
        return await asyncio.to_thread(self._store.list_jobs)

    async def delete_job(self, name: str, *, actor: str) -> JobRecord:
        """Raises NOT_FOUND; the job's runs stay listed."""
        deleted = await asyncio.to_thread(self._store.delete_job, name, actor=actor)
        await asyncio.to_thread(self._runners.reload)
        return deleted

    async def list_runs(self, job: str | None, *, limit: int) -> list[TickRecord]:
        return await asyncio.to_thread(self._leases.ticks, job, limit=_limit(limit))

    async def run_job(self, name: str) -> JobRun:
        """Run the job now and wait for it. Raises NOT_FOUND."""
        return await asyncio.to_thread(self._runners.run_now, name)
