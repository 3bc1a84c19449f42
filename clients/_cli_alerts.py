"""``conduit alerts …`` and ``conduit jobs …``: alert rules on served models and jobs the control plane runs on a
cron schedule.

Uses the control plane's connection flags (see ``_cli_control``).
"""

from __future__ import annotations

import argparse
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

from clients._cli_control import SubParsers, command_parser
from clients._cli_import import add_import_options, import_spec
from clients._cli_output import emit, table, when
from contract import wire
from contract.client import SyncControlPlaneClient
from contract.entities import AlertEvent, AlertRuleRecord, AlertStatus, JobRecord, JobRun
from contract.errors import ConduitError, ErrorCode

__all__ = ["add_alert_commands"]

_DURATION = re.compile(r"^(\d+)([smhd])$")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def _duration(text: str) -> timedelta:
    """``30m``, ``1h``, ``2d``…"""
    match = _DURATION.match(text)
    if not match or int(match[1]) == 0:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a duration like 30m, 1h or 2d")
    return timedelta(seconds=int(match[1]) * _SECONDS[match[2]])


def _rules_text(rules: list[AlertRuleRecord]) -> str:
    now = datetime.now(UTC)
    rows = []
    for rule in rules:
        target = f"{rule.model}@{rule.alias}" if rule.alias else rule.model
        until = rule.silenced_until if rule.silenced_until is not None and rule.silenced_until > now else None
        rows.append([rule.name, target, rule.condition, rule.window or "-", rule.channel, when(until)])
    return table(("RULE", "MODEL", "WHEN", "WINDOW", "NOTIFY", "SILENCED UNTIL"), rows)


def _value(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def _alerts_text(alerts: list[AlertStatus]) -> str:
    rows = [
        [
            a.rule, f"{a.model}:{a.version}", a.phase, when(a.since), _value(a.value),
            "yes" if a.acknowledged else "no",
        ]
        for a in alerts
    ]  # fmt: skip
    return table(("RULE", "VERSION", "STATE", "SINCE (UTC)", "VALUE", "ACKED"), rows)


def _history_text(events: list[AlertEvent]) -> str:
    rows = [
        [
            when(e.at), e.rule, f"{e.model}:{e.version}", e.phase, _value(e.value),
            e.channel, e.delivery or "pending", e.attempts, e.error or "-", e.detail or "-",
        ]
        for e in events
    ]  # fmt: skip
    # DETAIL last: it is the longest, and says why (a resolve for lack of traffic reads "no data: …").
    headers = ("AT (UTC)", "RULE", "VERSION", "EVENT", "VALUE", "CHANNEL", "DELIVERY", "TRIES", "ERROR", "DETAIL")
    return table(headers, rows)


def _jobs_text(jobs: list[JobRecord]) -> str:
    rows = [[j.name, j.cron, j.kind, j.created_by, when(j.created_at)] for j in jobs]
    return table(("JOB", "CRON", "KIND", "CREATED BY", "CREATED (UTC)"), rows)


def _runs_text(runs: list[JobRun], *, logs: bool) -> str:
    rows = [[r.job, when(r.tick), r.holder, r.outcome or "running", when(r.finished_at)] for r in runs]
    text = table(("JOB", "TICK (UTC)", "RUN BY", "OUTCOME", "FINISHED (UTC)"), rows)
    if logs:
        for run in runs:
            text += f"\n\n--- {run.job} {when(run.tick)} ---\n{run.log.rstrip()}"
    return text


# -- alerts ---------------------------------------------------------------------------------------------------


def _alerts_add(client: SyncControlPlaneClient, args: argparse.Namespace) -> None:
    rule = client.run(client.api.create_alert_rule(args.rule, model=args.model, when=args.when, notify=args.notify))
    emit(args, wire.alert_rule(rule), lambda: _rules_text([rule]))


def _alerts_list(client: SyncControlPlaneClient, args: argparse.Namespace) -> None:
    rules = client.run(client.api.list_alert_rules())
    alerts = client.run(client.api.list_alerts())
    emit(
        args,
        [wire.alert_rule(r) for r in rules],
        lambda: _rules_text(rules) + ("\n\n" + _alerts_text(alerts) if alerts else ""),
    )


def _alerts_history(client: SyncControlPlaneClient, args: argparse.Namespace) -> None:
    events = client.run(client.api.alert_history(args.rule or "", limit=args.limit))
    emit(args, [wire.alert_event(e) for e in events], lambda: _history_text(events))


def _alerts_silence(client: SyncControlPlaneClient, args: argparse.Namespace) -> None:
    until = None if args.lift else datetime.now(UTC) + args.duration
    rule = client.run(client.api.silence_alert(args.rule, until))
    emit(args, wire.alert_rule(rule), lambda: _rules_text([rule]))


def _alerts_ack(client: SyncControlPlaneClient, args: argparse.Namespace) -> None:
    alert = client.run(client.api.acknowledge_alert(args.rule, args.model, args.version or ""))
    emit(args, wire.alert(alert), lambda: _alerts_text([alert]))


def _alerts_remove(client: SyncControlPlaneClient, args: argparse.Namespace) -> None:
    rule = client.run(client.api.delete_alert_rule(args.rule))
    emit(args, wire.alert_rule(rule), lambda: f"removed alert rule {rule.name}")


# -- jobs -----------------------------------------------------------------------------------------------------


def _jobs_add(client: SyncControlPlaneClient, args: argparse.Namespace) -> None:
    if args.import_url is not None:
        if not args.dataset:
            raise ConduitError(
                ErrorCode.INVALID_ARGUMENT, "--import needs --name DATASET, the data set it imports into"
            )
        # Only the spec travels: header values written env:VAR stay references, read by the control plane per run.
        spec = import_spec(
            args.import_url, args, name=args.dataset, target=args.target or "", description=args.description
        )
        job = client.run(client.api.create_job(args.name, cron=args.cron, kind="import", spec=spec.to_json()))
    elif args.dataset or args.records or args.next or args.header or args.format:
        raise ConduitError(
            ErrorCode.INVALID_ARGUMENT, "--name, --records, --next, --header, --format: only with --import"
        )
    elif args.train is not None:
        # The control plane runs the trainer in its own home: the spec travels as text, not as a path here.
        job = client.run(
            client.api.create_job(args.name, cron=args.cron, kind="train", spec=Path(args.train).read_text())
        )
    else:
        job = client.run(client.api.create_job(args.name, cron=args.cron, kind="evaluate" if args.evaluate else "gc"))
    emit(args, wire.job(job), lambda: _jobs_text([job]))


def _jobs_list(client: SyncControlPlaneClient, args: argparse.Namespace) -> None:
    jobs = client.run(client.api.list_jobs())
    emit(args, [wire.job(j) for j in jobs], lambda: _jobs_text(jobs))


def _jobs_history(client: SyncControlPlaneClient, args: argparse.Namespace) -> None:
    runs = client.run(client.api.job_runs(args.name, limit=args.limit))
    emit(args, [wire.job_run(r) for r in runs], lambda: _runs_text(runs, logs=args.logs))


def _jobs_run(client: SyncControlPlaneClient, args: argparse.Namespace) -> None:
    run = client.run(client.api.run_job(args.name))
    emit(args, wire.job_run(run), lambda: _runs_text([run], logs=True))


def _jobs_remove(client: SyncControlPlaneClient, args: argparse.Namespace) -> None:
    job = client.run(client.api.delete_job(args.name))
    emit(args, wire.job(job), lambda: f"removed job {job.name}")


def add_alert_commands(sub: SubParsers) -> None:
    """Add ``alerts`` and ``jobs`` to the ``conduit`` parser."""
    alerts = sub.add_parser("alerts", help="alert rules on served models, their alerts and notifications")
    actions = alerts.add_subparsers(dest="action", required=True)
    p = command_parser(actions, "add", _alerts_add, "add a rule: when the condition holds, notify the channel")
    p.add_argument("rule", metavar="RULE")
    p.add_argument("--model", required=True, metavar="NAME[@ALIAS]", help="the model (every version) or an alias")
    p.add_argument(
        "--when", required=True, metavar="EXPR",
        help="p99_ms > 50 for 2m, error_rate > 1%% for 1m, drift > 0.2 [over 10m], drift(all) > 0.2, "
        "no_traffic for 5m, not_ready",
    )  # fmt: skip
    p.add_argument("--notify", required=True, metavar="CHANNEL", help="webhook:URL, email:ADDRESS or log")
    command_parser(actions, "list", _alerts_list, "the rules, then each alert's current state", listing=True)
    p = command_parser(actions, "history", _alerts_history, "firings and resolves, newest first", listing=True)
    p.add_argument("rule", nargs="?", metavar="RULE", help="one rule's (default: all)")
    p.add_argument("--limit", type=int, default=0, help="at most this many (default 100)")
    p = command_parser(actions, "silence", _alerts_silence, "hold a rule's notifications for a while")
    p.add_argument("rule", metavar="RULE")
    group = p.add_mutually_exclusive_group(required=True)
    group.add_argument("--for", dest="duration", type=_duration, metavar="DURATION", help="30m, 1h, 2d…")
    group.add_argument("--lift", action="store_true", help="end the silence now")
    p = command_parser(actions, "ack", _alerts_ack, "acknowledge a firing alert: no repeat notifications")
    p.add_argument("rule", metavar="RULE")
    p.add_argument("--model", required=True, metavar="NAME")
    p.add_argument("--version", metavar="V", help="one version (default: every firing one)")
    p = command_parser(actions, "remove", _alerts_remove, "remove a rule and its alerts (their history stays)")
    p.add_argument("rule", metavar="RULE")

    jobs = sub.add_parser("jobs", help="jobs the control plane runs on a cron schedule: train, import, evaluate, gc")
    actions = jobs.add_subparsers(dest="action", required=True)
    p = command_parser(actions, "add", _jobs_add, "add a job run once per cron tick across control planes")
    p.add_argument("name", metavar="NAME")
    p.add_argument("--cron", required=True, metavar="EXPR", help='five fields, e.g. "*/5 * * * *"')
    group = p.add_mutually_exclusive_group(required=True)
    group.add_argument("--train", type=Path, metavar="SPEC.toml", help="train and register with this spec")
    group.add_argument(
        "--import", dest="import_url", metavar="URL",
        help="import a data set from an http(s):// or s3:// URL (a new version only when the data changed)",
    )  # fmt: skip
    group.add_argument("--evaluate", action="store_true", help="evaluate every alert rule")
    group.add_argument("--gc", action="store_true", help="delete unreferenced artifacts and old roll-ups")
    p.add_argument("--name", dest="dataset", metavar="DATASET", help="--import: the data set imported into")
    p.add_argument("--target", help="--import: the column models will predict")
    p.add_argument("--description", default="", help="--import: free text stored with each new version")
    add_import_options(p, outbound=False)
    command_parser(actions, "list", _jobs_list, "the jobs", listing=True)
    p = command_parser(actions, "history", _jobs_history, "a job's runs, newest first", listing=True)
    p.add_argument("name", metavar="NAME")
    p.add_argument("--limit", type=int, default=0, help="at most this many (default 100)")
    p.add_argument("--logs", action="store_true", help="print each run's log")
    p = command_parser(actions, "run", _jobs_run, "run a job now and print its log")
    p.add_argument("name", metavar="NAME")
    p = command_parser(actions, "remove", _jobs_remove, "remove a job (its runs stay listed)")
    p.add_argument("name", metavar="NAME")
