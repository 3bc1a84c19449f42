"""``conduit alerts …`` and ``conduit jobs …``: alert rules on served models and jobs the control plane runs on a
cron schedule.

Uses the control plane's connection flags (see ``_cli_control``).
"""

from __future__ import annotations

import argparse
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

from google.protobuf.timestamp_pb2 import Timestamp

from clients._cli_control import SubParsers, command_parser, emit, table
from clients.control_plane import ControlPlaneClient
from control_plane.protocol import control_plane_pb2 as cp

__all__ = ["add_alert_commands"]

_DURATION = re.compile(r"^(\d+)([smhd])$")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def _duration(text: str) -> timedelta:
    """``30m``, ``1h``, ``2d``…"""
    match = _DURATION.match(text)
    if not match or int(match[1]) == 0:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a duration like 30m, 1h or 2d")
    return timedelta(seconds=int(match[1]) * _SECONDS[match[2]])


def _when(value: Timestamp) -> str:
    return value.ToDatetime(tzinfo=UTC).strftime("%Y-%m-%d %H:%M:%S")


def _rules_text(rules: list[cp.AlertRule]) -> str:
    now = datetime.now(UTC)
    rows = []
    for rule in rules:
        target = f"{rule.model}@{rule.alias}" if rule.alias else rule.model
        silenced = rule.HasField("silenced_until") and rule.silenced_until.ToDatetime(tzinfo=UTC) > now
        rows.append([rule.name, target, rule.condition, rule.channel, _when(rule.silenced_until) if silenced else "-"])
    return table(("RULE", "MODEL", "WHEN", "NOTIFY", "SILENCED UNTIL"), rows)


def _alerts_text(alerts: list[cp.Alert]) -> str:
    rows = [
        [
            a.rule, f"{a.model}:{a.version}", a.phase, _when(a.since) if a.HasField("since") else "-",
            f"{a.value:.4g}" if a.HasField("value") else "-", "yes" if a.acknowledged else "no",
        ]
        for a in alerts
    ]  # fmt: skip
    return table(("RULE", "VERSION", "STATE", "SINCE (UTC)", "VALUE", "ACKED"), rows)


def _history_text(events: list[cp.AlertEvent]) -> str:
    rows = [
        [
            _when(e.at), e.rule, f"{e.model}:{e.version}", e.phase, f"{e.value:.4g}" if e.HasField("value") else "-",
            e.channel, e.delivery or "pending", e.attempts, e.error or "-",
        ]
        for e in events
    ]  # fmt: skip
    return table(("AT (UTC)", "RULE", "VERSION", "EVENT", "VALUE", "CHANNEL", "DELIVERY", "TRIES", "ERROR"), rows)


def _jobs_text(jobs: list[cp.Job]) -> str:
    rows = [[j.name, j.cron, j.kind, j.created_by, _when(j.created_at)] for j in jobs]
    return table(("JOB", "CRON", "KIND", "CREATED BY", "CREATED (UTC)"), rows)


def _runs_text(runs: list[cp.JobRun], *, logs: bool) -> str:
    rows = [
        [
            r.job, _when(r.tick), r.holder, r.outcome or "running",
            _when(r.finished_at) if r.HasField("finished_at") else "-",
        ]
        for r in runs
    ]  # fmt: skip
    text = table(("JOB", "TICK (UTC)", "RUN BY", "OUTCOME", "FINISHED (UTC)"), rows)
    if logs:
        for run in runs:
            text += f"\n\n--- {run.job} {_when(run.tick)} ---\n{run.log.rstrip()}"
    return text


# -- alerts ---------------------------------------------------------------------------------------------------


def _alerts_add(client: ControlPlaneClient, args: argparse.Namespace) -> None:
    rule = client.create_alert_rule(args.rule, model=args.model, when=args.when, notify=args.notify)
    emit(args, rule, lambda: _rules_text([rule]))


def _alerts_list(client: ControlPlaneClient, args: argparse.Namespace) -> None:
    rules = client.list_alert_rules()
    alerts = client.list_alerts()
    emit(args, rules, lambda: _rules_text(rules) + ("\n\n" + _alerts_text(alerts) if alerts else ""))


def _alerts_history(client: ControlPlaneClient, args: argparse.Namespace) -> None:
    events = client.alert_history(args.rule or "", limit=args.limit)
    emit(args, events, lambda: _history_text(events))


def _alerts_silence(client: ControlPlaneClient, args: argparse.Namespace) -> None:
    until = None if args.lift else datetime.now(UTC) + args.duration
    rule = client.silence_alert(args.rule, until)
    emit(args, rule, lambda: _rules_text([rule]))


def _alerts_ack(client: ControlPlaneClient, args: argparse.Namespace) -> None:
    alert = client.acknowledge_alert(args.rule, args.model, args.version or "")
    emit(args, alert, lambda: _alerts_text([alert]))


def _alerts_remove(client: ControlPlaneClient, args: argparse.Namespace) -> None:
    rule = client.delete_alert_rule(args.rule)
    emit(args, rule, lambda: f"removed alert rule {rule.name}")


# -- jobs -----------------------------------------------------------------------------------------------------


def _jobs_add(client: ControlPlaneClient, args: argparse.Namespace) -> None:
    if args.train is not None:
        # The control plane runs the trainer in its own home: the spec travels as text, not as a path here.
        job = client.create_job(args.name, cron=args.cron, kind="train", spec=Path(args.train).read_text())
    else:
        job = client.create_job(args.name, cron=args.cron, kind="evaluate" if args.evaluate else "gc")
    emit(args, job, lambda: _jobs_text([job]))


def _jobs_list(client: ControlPlaneClient, args: argparse.Namespace) -> None:
    jobs = client.list_jobs()
    emit(args, jobs, lambda: _jobs_text(jobs))


def _jobs_history(client: ControlPlaneClient, args: argparse.Namespace) -> None:
    runs = client.job_runs(args.name, limit=args.limit)
    emit(args, runs, lambda: _runs_text(runs, logs=args.logs))


def _jobs_run(client: ControlPlaneClient, args: argparse.Namespace) -> None:
    run = client.run_job(args.name)
    emit(args, run, lambda: _runs_text([run], logs=True))


def _jobs_remove(client: ControlPlaneClient, args: argparse.Namespace) -> None:
    job = client.delete_job(args.name)
    emit(args, job, lambda: f"removed job {job.name}")


def add_alert_commands(sub: SubParsers) -> None:
    """Add ``alerts`` and ``jobs`` to the ``conduit`` parser."""
    alerts = sub.add_parser("alerts", help="alert rules on served models, their alerts and notifications")
    actions = alerts.add_subparsers(dest="action", required=True)
    p = command_parser(actions, "add", _alerts_add, "add a rule: when the condition holds, notify the channel")
    p.add_argument("rule", metavar="RULE")
    p.add_argument("--model", required=True, metavar="NAME[@ALIAS]", help="the model (every version) or an alias")
    p.add_argument(
        "--when", required=True, metavar="EXPR",
        help="p99_ms > 50 for 2m, error_rate > 1%% for 1m, drift > 0.2, drift(all) > 0.2, no_traffic for 5m, not_ready",
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

    jobs = sub.add_parser("jobs", help="jobs the control plane runs on a cron schedule: train, evaluate, gc")
    actions = jobs.add_subparsers(dest="action", required=True)
    p = command_parser(actions, "add", _jobs_add, "add a job run once per cron tick across control planes")
    p.add_argument("name", metavar="NAME")
    p.add_argument("--cron", required=True, metavar="EXPR", help='five fields, e.g. "*/5 * * * *"')
    group = p.add_mutually_exclusive_group(required=True)
    group.add_argument("--train", type=Path, metavar="SPEC.toml", help="train and register with this spec")
    group.add_argument("--evaluate", action="store_true", help="evaluate every alert rule")
    group.add_argument("--gc", action="store_true", help="delete unreferenced artifacts and old roll-ups")
    command_parser(actions, "list", _jobs_list, "the jobs", listing=True)
    p = command_parser(actions, "history", _jobs_history, "a job's runs, newest first", listing=True)
    p.add_argument("name", metavar="NAME")
    p.add_argument("--limit", type=int, default=0, help="at most this many (default 100)")
    p.add_argument("--logs", action="store_true", help="print each run's log")
    p = command_parser(actions, "run", _jobs_run, "run a job now and print its log")
    p.add_argument("name", metavar="NAME")
    p = command_parser(actions, "remove", _jobs_remove, "remove a job (its runs stay listed)")
    p.add_argument("name", metavar="NAME")
