"""Webhook channel: the notification as a JSON POST, one attempt per call (the ``Notifier`` retries)."""

from __future__ import annotations

import json
import logging
import ssl

from urllib3.exceptions import HTTPError, NewConnectionError, ProtocolError, SSLError, TimeoutError

from contract.outbound import REFUSED, OutboundPolicy, Refused, redacted_url, request
from control_plane.alerting._delivery import DeliveryError
from control_plane.alerting._payload import Notification

__all__ = ["WebhookSender"]

_log = logging.getLogger("conduit.alerts")

USER_AGENT = "conduit-alerts/1"
# Worth another try: the receiver is failing or asks us to slow down. Other 4xx mean the request itself is wrong.
_RETRYABLE_STATUS = frozenset({429})
# The receiver's reason phrase is kept with the delivery; a phrase is a few words, not a page.
_MAX_REASON = 100


def _connection_error(exc: HTTPError) -> DeliveryError:
    """The error of a failed attempt, in words of our own: urllib3's messages may quote the request's URL, and the
    outcome is shown to every viewer of the alert's history."""
    cause = exc.__cause__ or exc.__context__
    detail = cause.strerror if isinstance(cause, OSError) and cause.strerror else type(cause or exc).__name__
    if isinstance(exc, SSLError):
        return DeliveryError(f"TLS failed: {cause or 'handshake'}", retryable=False)
    # First: urllib3 makes NewConnectionError a kind of ConnectTimeoutError.
    if isinstance(exc, NewConnectionError):
        return DeliveryError(f"cannot connect: {detail}", retryable=True)
    if isinstance(exc, TimeoutError):
        return DeliveryError("timed out", retryable=True)
    if isinstance(exc, ProtocolError):
        return DeliveryError(f"connection dropped: {detail}", retryable=True)
    return DeliveryError(f"request failed: {type(exc).__name__}", retryable=True)


class WebhookSender:
    """POSTs notifications to the destinations ``policy`` allows (public ones only, by default).

    Each attempt resolves the URL's host once, checks every address and connects to a checked one; a redirect is not
    followed (it could send alert data, or the control plane's requests, anywhere) and counts as a failure.
    A refused destination fails with ``REFUSED``, whatever the reason, which goes to the log alone.

    Args:
        policy: where webhooks may go.
        timeout_s: seconds one POST may take, connecting included.
        tls: how https receivers are verified; the system's trusted authorities by default.
    """

    def __init__(
        self, *, policy: OutboundPolicy | None = None, timeout_s: float = 10.0, tls: ssl.SSLContext | None = None
    ) -> None:
        self._policy = policy or OutboundPolicy()
        self._timeout_s = timeout_s
        self._tls = tls

    def send(self, url: str, notification: Notification) -> None:
        """One POST of ``notification.to_json()`` to ``url``.

        Raises:
            DeliveryError: retryable for connection errors, timeouts, HTTP 5xx and 429; final for a refused
                destination, TLS failures and other statuses (redirects included).
        """
        body = json.dumps(notification.to_json()).encode()
        headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT}
        try:
            with request(
                self._policy, "POST", url, body=body, headers=headers, timeout_s=self._timeout_s, tls=self._tls
            ) as response:
                status, reason = response.status, response.reason
        except Refused as exc:
            _log.warning("webhook to %s refused: %s", redacted_url(url), exc.reason)
            raise DeliveryError(REFUSED, retryable=False) from None
        except HTTPError as exc:
            raise _connection_error(exc) from None
        if 200 <= status < 300:
            return
        text = f"HTTP {status} {(reason or '')[:_MAX_REASON]}".rstrip()
        raise DeliveryError(text, retryable=status >= 500 or status in _RETRYABLE_STATUS)
