"""Notification channels against real receivers on loopback: an HTTP server and an SMTP server."""

from __future__ import annotations

import logging
import socket
from datetime import timedelta

import pytest

from control_plane.alerting import (
    AlertEvent,
    AlertingSettings,
    AlertKey,
    AlertRule,
    DeliveryOutcome,
    Email,
    EmailSender,
    Log,
    Notification,
    Notifier,
    Phase,
    RetryPolicy,
    Webhook,
    WebhookSender,
)

from .conftest import ALLOW_LOOPBACK, START, SmtpServer, WebhookReceiver, loopback_webhooks

RULE = AlertRule.parse("slow", model="fraud@production", when="p99_ms > 50 for 2m", notify="log")
FIRING = Notification.of(
    RULE,
    AlertKey("slow", "fraud", "3"),
    AlertEvent(Phase.FIRING, START + timedelta(minutes=2), START, 72.5, True, detail="p99_ms 72.5 ms"),
)


def notifier(
    sleeps: list[float] | None = None,
    *,
    attempts: int = 4,
    email: EmailSender | None = None,
    webhook: WebhookSender | None = None,
) -> Notifier:
    """A notifier whose webhooks may reach the receivers on 127.0.0.1 unless ``webhook`` says otherwise."""
    waits = sleeps if sleeps is not None else []
    return Notifier(
        webhook=webhook or loopback_webhooks(),
        email=email,
        retry=RetryPolicy(attempts, base_delay_s=0.5, max_delay_s=1.5),
        sleep=waits.append,
    )


def test_a_webhook_receives_the_notification_as_json(webhook: WebhookReceiver) -> None:
    delivery = notifier().notify(Webhook(webhook.url), FIRING)
    assert (delivery.outcome, delivery.attempts, delivery.error) == (DeliveryOutcome.DELIVERED, 1, "")
    assert delivery.channel == f"webhook:http://127.0.0.1:{webhook.port}/…"
    assert webhook.posts == [
        {
            "rule": "slow", "model": "fraud", "alias": "production", "version": "3", "state": "firing",
            "condition": "p99_ms > 50 for 2m", "metric": "p99_ms", "value": 72.5, "threshold": 50.0,
            "detail": "p99_ms 72.5 ms", "started_at": "2026-03-02T10:00:00+00:00", "at": "2026-03-02T10:02:00+00:00",
            "repeat": False, "acknowledged_by": None, "silenced_until": None,
        }
    ]  # fmt: skip
    assert webhook.headers[0]["Content-Type"] == "application/json"


def test_a_webhook_failing_with_500_is_retried_with_backoff_until_it_succeeds(webhook: WebhookReceiver) -> None:
    for status in (500, 503, 502):
        webhook.statuses.put(status)
    sleeps: list[float] = []
    delivery = notifier(sleeps).notify(Webhook(webhook.url), FIRING)
    assert (delivery.outcome, delivery.attempts) == (DeliveryOutcome.DELIVERED, 4)
    assert len(webhook.posts) == 4 and webhook.posts[0] == webhook.posts[-1]
    assert sleeps == [0.5, 1.0, 1.5]


def test_a_webhook_answering_400_is_not_retried(webhook: WebhookReceiver) -> None:
    webhook.statuses.put(400)
    sleeps: list[float] = []
    delivery = notifier(sleeps).notify(Webhook(webhook.url), FIRING)
    assert (delivery.outcome, delivery.attempts, delivery.error) == (DeliveryOutcome.FAILED, 1, "HTTP 400 Bad Request")
    assert len(webhook.posts) == 1 and sleeps == []


def test_a_webhook_failing_every_time_fails_after_the_last_attempt(webhook: WebhookReceiver) -> None:
    for _ in range(3):
        webhook.statuses.put(503)
    delivery = notifier(attempts=3).notify(Webhook(webhook.url), FIRING)
    assert (delivery.outcome, delivery.attempts) == (DeliveryOutcome.FAILED, 3)
    assert delivery.error.startswith("HTTP 503")
    assert len(webhook.posts) == 3


def test_an_unreachable_webhook_is_retried_then_fails_with_the_connection_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    # Nothing listens on the port once the socket is closed: every attempt is refused.
    delivery = notifier(attempts=2).notify(Webhook(f"http://127.0.0.1:{port}/hook"), FIRING)
    assert (delivery.outcome, delivery.attempts) == (DeliveryOutcome.FAILED, 2)
    assert delivery.error == "cannot connect: Connection refused"


def smtp_settings(smtp: SmtpServer) -> AlertingSettings:
    return AlertingSettings(
        smtp_host=smtp.host, smtp_port=smtp.port, smtp_from="conduit@example.com", smtp_allow=ALLOW_LOOPBACK.smtp_allow
    )


def test_an_email_reaches_a_real_smtp_server(smtp: SmtpServer) -> None:
    delivery = notifier(email=EmailSender(smtp_settings(smtp))).notify(Email("oncall@example.com"), FIRING)
    assert (delivery.outcome, delivery.attempts, delivery.channel) == (
        DeliveryOutcome.DELIVERED, 1, "email:oncall@example.com",
    )  # fmt: skip
    [(envelope, message)] = smtp.messages
    assert (envelope.mail_from, envelope.rcpt_tos) == ("conduit@example.com", ["oncall@example.com"])
    assert message["Subject"] == (
        "[Conduit] [FIRING] slow on fraud@production version 3: p99_ms > 50 for 2m (p99_ms 72.5 ms)"
    )
    assert "started_at: 2026-03-02T10:00:00+00:00" in message.get_content()


def test_smtp_4xx_is_retried_and_5xx_is_not(smtp: SmtpServer) -> None:
    smtp.refuse_with.append("451 Try again later")
    sleeps: list[float] = []
    sender = EmailSender(smtp_settings(smtp))
    delivery = notifier(sleeps, email=sender).notify(Email("oncall@example.com"), FIRING)
    assert (delivery.outcome, delivery.attempts, len(smtp.messages), sleeps) == (DeliveryOutcome.DELIVERED, 2, 1, [0.5])

    smtp.refuse_with.append("554 No thanks")
    delivery = notifier(email=sender).notify(Email("oncall@example.com"), FIRING)
    assert (delivery.outcome, delivery.attempts) == (DeliveryOutcome.FAILED, 1)
    assert delivery.error == "SMTP 554 No thanks"
    assert len(smtp.messages) == 1


def test_email_without_an_smtp_server_fails_and_says_why() -> None:
    delivery = notifier().notify(Email("oncall@example.com"), FIRING)
    assert (delivery.outcome, delivery.attempts, delivery.error) == (
        DeliveryOutcome.FAILED, 0, "no SMTP server is configured",
    )  # fmt: skip


def test_the_log_channel_writes_one_record(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="conduit.alerts"):
        delivery = notifier().notify(Log(), FIRING)
    assert delivery.outcome is DeliveryOutcome.DELIVERED
    [record] = caplog.records
    assert record.levelno == logging.WARNING
    assert record.getMessage() == FIRING.summary
    assert record.conduit_alert["state"] == "firing"


def test_settings_refuse_contradictions() -> None:
    with pytest.raises(ValueError, match="not both"):
        AlertingSettings(smtp_host="mail", smtp_ssl=True, smtp_starttls=True)
    with pytest.raises(ValueError, match="smtp_username and smtp_password"):
        AlertingSettings(smtp_host="mail", smtp_username="conduit")
    with pytest.raises(ValueError, match="below lease_ttl_s"):
        AlertingSettings(train_timeout_s=7200, lease_ttl_s=3600)
