"""Alerting and scheduled jobs of the control plane, as a library with no transport and no clock of its own.

- Rules: ``AlertRule.parse`` reads ``conduit alerts add`` arguments; conditions (``parse_condition``) and channels
  (``parse_channel``) print back to their canonical text; each condition's ``window_s`` (``describe_window``) is the
  monitoring data one evaluation judges.
- States: ``advance`` is the pure per-alert state machine (pending → firing → resolved, silence, acknowledge).
- Evaluation: ``Evaluator`` reads the monitoring roll-ups through the ``MetricsSource`` protocol.
- Notification: ``Notifier`` sends on webhook, email and log channels with retries, and reports each ``Delivery``;
  webhooks and the SMTP server reach only what ``contract.outbound``'s policy allows (``AlertingSettings``'
  ``webhook_allow`` and ``smtp_allow``).
- Persistence: ``SqlAlertStore`` and ``SqlLeaseStore`` on the tables of ``_tables`` (``metadata``), which the
  registry's migrations create; a state is written back only as it was read (``Revision``; else ``AlertChanged``).
  ``AlertEngine`` ties a pass of a rule together.
- Scheduling: ``Job.parse`` reads ``conduit jobs add`` arguments; ``Scheduler`` runs each tick once across replicas;
  ``TrainRunner`` runs training specs in a confined subprocess (``RunLimits``), and import specs with
  ``DEFAULT_IMPORT_COMMAND`` under ``ImportSettings``' outbound policy (``CONDUIT_IMPORT_ALLOW``).
"""

from control_plane.alerting._cron import CronSchedule
from control_plane.alerting._delivery import Delivery, DeliveryError, DeliveryOutcome, RetryPolicy
from control_plane.alerting._email import EmailSender
from control_plane.alerting._engine import AlertEngine
from control_plane.alerting._evaluate import DriftScores, Evaluator, MetricsSource
from control_plane.alerting._expressions import (
    DRIFT_WINDOW_S,
    Channel,
    Condition,
    DriftAbove,
    DriftScope,
    Email,
    ErrorRateAbove,
    Log,
    NoTraffic,
    NotReady,
    P99Above,
    Webhook,
    describe_window,
    format_duration,
    parse_channel,
    parse_condition,
    parse_duration,
)
from control_plane.alerting._history import AlertChanged, Revision, SqlAlertStore, StoredEvent
from control_plane.alerting._imports import DEFAULT_IMPORT_COMMAND, ImportSettings, import_argv, import_environment
from control_plane.alerting._jobs import Job, JobKind
from control_plane.alerting._leases import SqlLeaseStore, TickRecord
from control_plane.alerting._notify import LogSender, Notifier
from control_plane.alerting._payload import Notification
from control_plane.alerting._rules import AlertRule, parse_model_target
from control_plane.alerting._runs import JobRun, RunOutcome, RunResult, failure_line
from control_plane.alerting._scheduler import LeaseStore, Runner, Scheduler
from control_plane.alerting._settings import AlertingSettings
from control_plane.alerting._state import (
    AlertEvent,
    AlertKey,
    AlertState,
    Evaluation,
    Outcome,
    Phase,
    acknowledge,
    advance,
    silence,
)
from control_plane.alerting._tables import alert_events, alert_states, metadata, scheduler_runs
from control_plane.alerting._train import DEFAULT_TRAIN_COMMAND, BoundedLog, RunLimits, TrainRunner
from control_plane.alerting._webhook import WebhookSender

__all__ = [
    "DEFAULT_IMPORT_COMMAND",
    "DEFAULT_TRAIN_COMMAND",
    "DRIFT_WINDOW_S",
    "AlertChanged",
    "AlertEngine",
    "AlertEvent",
    "AlertKey",
    "AlertRule",
    "AlertState",
    "AlertingSettings",
    "BoundedLog",
    "Channel",
    "Condition",
    "CronSchedule",
    "Delivery",
    "DeliveryError",
    "DeliveryOutcome",
    "DriftAbove",
    "DriftScope",
    "DriftScores",
    "Email",
    "EmailSender",
    "ErrorRateAbove",
    "Evaluation",
    "Evaluator",
    "ImportSettings",
    "Job",
    "JobKind",
    "JobRun",
    "LeaseStore",
    "Log",
    "LogSender",
    "MetricsSource",
    "NoTraffic",
    "NotReady",
    "Notification",
    "Notifier",
    "Outcome",
    "P99Above",
    "Phase",
    "RetryPolicy",
    "Revision",
    "RunLimits",
    "RunOutcome",
    "RunResult",
    "Runner",
    "Scheduler",
    "SqlAlertStore",
    "SqlLeaseStore",
    "StoredEvent",
    "TickRecord",
    "TrainRunner",
    "Webhook",
    "WebhookSender",
    "acknowledge",
    "advance",
    "alert_events",
    "alert_states",
    "describe_window",
    "failure_line",
    "format_duration",
    "import_argv",
    "import_environment",
    "metadata",
    "parse_channel",
    "parse_condition",
    "parse_duration",
    "parse_model_target",
    "scheduler_runs",
    "silence",
]
