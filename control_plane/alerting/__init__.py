"""Alerting of the control plane, as a library with no transport and no clock of its own.

- Rules: ``AlertRule.parse`` reads ``conduit alerts add`` arguments; conditions (``parse_condition``) and channels
  (``parse_channel``) print back to their canonical text.
- States: ``advance`` is the pure per-alert state machine (pending → firing → resolved, silence, acknowledge).
- Evaluation: ``Evaluator`` reads the monitoring roll-ups through the ``MetricsSource`` protocol.
- Notification: ``Notifier`` sends on webhook, email and log channels with retries, and reports each ``Delivery``.
"""

from control_plane.alerting._delivery import Delivery, DeliveryError, DeliveryOutcome, RetryPolicy
from control_plane.alerting._email import EmailSender
from control_plane.alerting._evaluate import (
    DriftScores,
    Evaluator,
    LatencyHistogram,
    MetricsSource,
    WindowStats,
    quantile,
)
from control_plane.alerting._expressions import (
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
    format_duration,
    parse_channel,
    parse_condition,
    parse_duration,
)
from control_plane.alerting._notify import LogSender, Notifier
from control_plane.alerting._payload import Notification
from control_plane.alerting._rules import AlertRule, parse_model_target
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
from control_plane.alerting._webhook import WebhookSender

__all__ = [
    "AlertEvent",
    "AlertKey",
    "AlertRule",
    "AlertState",
    "AlertingSettings",
    "Channel",
    "Condition",
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
    "LatencyHistogram",
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
    "Webhook",
    "WebhookSender",
    "WindowStats",
    "acknowledge",
    "advance",
    "format_duration",
    "parse_channel",
    "parse_condition",
    "parse_duration",
    "parse_model_target",
    "quantile",
    "silence",
]
