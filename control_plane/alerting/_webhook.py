"""Webhook channel: the notification as a JSON POST, one attempt per call (the ``Notifier`` retries)."""

from __future__ import annotations

import json

import urllib3
from urllib3.exceptions import HTTPError, LocationValueError, SSLError

from control_plane.alerting._delivery import DeliveryError
from control_plane.alerting._payload import Notification

__all__ = ["WebhookSender"]

USER_AGENT = "conduit-alerts/1"
# Worth another try: the receiver is failing or asks us to slow down. Other 4xx mean the request itself is wrong.
_RETRYABLE_STATUS = frozenset({429})


class WebhookSender:
    """POSTs notifications with urllib3: a pooled, well-tested client, with its own retries and redirects off so
    that every attempt is ours to count and a redirect cannot send alert data elsewhere."""

    def __init__(self, *, timeout_s: float = 10.0, pool: urllib3.PoolManager | None = None) -> None:
        self._timeout = urllib3.Timeout(total=timeout_s)
        self._pool = pool or urllib3.PoolManager(num_pools=8, maxsize=2)

    def send(self, url: str, notification: Notification) -> None:
        """One POST of ``notification.to_json()`` to ``url``.

        Raises:
            DeliveryError: retryable for connection errors, timeouts, HTTP 5xx and 429; final for other statuses.
        """
        body = json.dumps(notification.to_json()).encode()
        headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT}
        try:
            response = self._pool.request(
                "POST", url, body=body, headers=headers, timeout=self._timeout, retries=False, redirect=False
            )
        except (LocationValueError, SSLError) as exc:
            raise DeliveryError(f"{type(exc).__name__}: {exc}", retryable=False) from exc
        except HTTPError as exc:
            raise DeliveryError(f"{type(exc).__name__}: {exc}", retryable=True) from exc
        status = response.status
        if 200 <= status < 300:
            return
        reason = f"HTTP {status} {response.reason or ''}".rstrip()
        raise DeliveryError(reason, retryable=status >= 500 or status in _RETRYABLE_STATUS)

    def close(self) -> None:
        self._pool.clear()
