"""The ``Notifier``: routes a notification to its channel, retries what may succeed later, and says how it went."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from control_plane.alerting._delivery import Delivery, DeliveryError, DeliveryOutcome, RetryPolicy
from control_plane.alerting._email import EmailSender
from control_plane.alerting._expressions import Channel, Email, Log, Webhook
from control_plane.alerting._payload import Notification
from control_plane.alerting._time import Clock, utcnow
from control_plane.alerting._webhook import WebhookSender

__all__ = ["LOGGER", "LogSender", "Notifier"]

LOGGER = "conduit.alerts"


class LogSender:
    """Writes a notification as one record on logger ``conduit.alerts``: WARNING when firing, INFO when resolved.
    The record's ``conduit_alert`` attribute holds the webhook's JSON body, for structured log handlers."""

    def __init__(self, logger: logging.Logger | None = None) -> None:
        self._logger = logger or logging.getLogger(LOGGER)

    def send(self, notification: Notification) -> None:
        level = logging.WARNING if notification.state == "firing" else logging.INFO
        self._logger.log(level, "%s", notification.summary, extra={"conduit_alert": notification.to_json()})


class Notifier:
    """Delivers notifications on their channels.

    Args:
        webhook: sends ``webhook:`` channels.
        email: sends ``email:`` channels; None when no SMTP server is configured (those deliveries fail, saying so).
        log: writes ``log`` channels.
        retry: how often and how patiently a retryable failure is tried again (the log channel is tried once).
        sleep: waits between tries (tests pass a recorder).
        clock: stamps each delivery.
    """

    def __init__(
        self,
        *,
        webhook: WebhookSender | None = None,
        email: EmailSender | None = None,
        log: LogSender | None = None,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Clock = utcnow,
    ) -> None:
        self._webhook = webhook or WebhookSender()
        self._email = email
        self._log = log or LogSender()
        self._retry = retry or RetryPolicy()
        self._sleep = sleep
        self._clock = clock

    def notify(self, channel: Channel, notification: Notification) -> Delivery:
        """Send ``notification`` on ``channel``; never raises for a delivery failure, it is in the result."""
        if isinstance(channel, Log):
            self._log.send(notification)
            return Delivery(channel.redacted, DeliveryOutcome.DELIVERED, 1, self._clock())
        if isinstance(channel, Email) and self._email is None:
            return Delivery(channel.redacted, DeliveryOutcome.FAILED, 0, self._clock(), "no SMTP server is configured")
        return self._with_retries(channel, notification)

    def _attempt(self, channel: Webhook | Email, notification: Notification) -> None:
        if isinstance(channel, Webhook):
            self._webhook.send(channel.url, notification)
        else:
            assert self._email is not None
            self._email.send(channel.address, notification)

    def _with_retries(self, channel: Webhook | Email, notification: Notification) -> Delivery:
        attempts = 0
        while True:
            attempts += 1
            try:
                self._attempt(channel, notification)
            except DeliveryError as exc:
                if not exc.retryable or attempts >= self._retry.attempts:
                    logging.getLogger(LOGGER).warning(
                        "%s: delivery to %s failed after %d attempt(s): %s",
                        notification.rule,
                        channel.redacted,
                        attempts,
                        exc,
                    )
                    return Delivery(channel.redacted, DeliveryOutcome.FAILED, attempts, self._clock(), exc.message)
                self._sleep(self._retry.delay_s(attempts))
            else:
                return Delivery(channel.redacted, DeliveryOutcome.DELIVERED, attempts, self._clock())
