"""Email channel: a plain-text message over SMTP (smtplib), one attempt per call (the ``Notifier`` retries)."""

from __future__ import annotations

import logging
import smtplib
import socket
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from contract.outbound import REFUSED, Address, OutboundPolicy, Refused
from control_plane.alerting._delivery import DeliveryError
from control_plane.alerting._payload import Notification
from control_plane.alerting._settings import AlertingSettings

__all__ = ["EmailSender"]

_log = logging.getLogger("conduit.alerts")


class _Pinned(smtplib.SMTP):
    """SMTP connected to one address checked beforehand, not to whatever the host name resolves to by then; the name
    stays the one STARTTLS sends as SNI and checks the certificate against."""

    def __init__(self, address: Address, host: str, port: int, *, timeout: float) -> None:
        self._address = str(address)
        super().__init__(host, port, timeout=timeout)

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        return socket.create_connection((self._address, port), timeout, self.source_address)


class _PinnedSSL(smtplib.SMTP_SSL):
    """SMTPS to one address checked beforehand, TLS verified against the host name."""

    def __init__(self, address: Address, host: str, port: int, *, timeout: float, context: ssl.SSLContext) -> None:
        self._address = str(address)
        super().__init__(host, port, timeout=timeout, context=context)

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        plain = socket.create_connection((self._address, port), timeout, self.source_address)
        return self.context.wrap_socket(plain, server_hostname=host)


def _smtp_error(exc: smtplib.SMTPException) -> DeliveryError:
    # SMTP's own rule: 4xx replies are transient, 5xx permanent. A dropped or refused connection is transient too.
    code = getattr(exc, "smtp_code", None)
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in exc.recipients.values()]
        retryable = all(400 <= c < 500 for c in codes)
        return DeliveryError(f"recipients refused: {exc.recipients}", retryable=retryable)
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        return DeliveryError(f"SMTP server disconnected: {exc}", retryable=True)
    if isinstance(exc, smtplib.SMTPResponseException):
        message = exc.smtp_error.decode(errors="replace") if isinstance(exc.smtp_error, bytes) else str(exc.smtp_error)
        return DeliveryError(f"SMTP {exc.smtp_code} {message}", retryable=code is not None and 400 <= code < 500)
    return DeliveryError(f"SMTP: {exc}", retryable=False)


class EmailSender:
    """Sends notifications through the SMTP server of ``settings`` (host, port, STARTTLS or TLS, login), when its
    address is one ``settings.smtp_policy()`` allows (a public one, unless ``smtp_allow`` says otherwise).

    Args:
        policy: overrides ``settings.smtp_policy()`` (tests pass one with their own resolver).
        tls: how the server's certificate is verified; the system's trusted authorities by default.
    """

    def __init__(
        self, settings: AlertingSettings, *, policy: OutboundPolicy | None = None, tls: ssl.SSLContext | None = None
    ) -> None:
        if settings.smtp_host is None:
            raise ValueError("EmailSender needs settings.smtp_host")
        self._settings = settings
        self._host = settings.smtp_host
        self._policy = policy or settings.smtp_policy()
        self._tls = tls or ssl.create_default_context()

    def message(self, address: str, notification: Notification) -> EmailMessage:
        """The message sent to ``address``."""
        message = EmailMessage()
        message["From"] = self._settings.smtp_from
        message["To"] = address
        message["Subject"] = f"[Conduit] {notification.summary}"
        message["Date"] = formatdate(localtime=False)
        message["Message-ID"] = make_msgid(domain="conduit")
        message.set_content(notification.to_text())
        return message

    def send(self, address: str, notification: Notification) -> None:
        """One SMTP conversation delivering the notification to ``address``, with the server at an address the policy
        allows (resolved once, each address checked, then tried in turn).

        Raises:
            DeliveryError: retryable for connection failures and 4xx replies; final for 5xx, TLS/login failures and a
                server address the policy refuses (``REFUSED``; the reason is logged).
        """
        settings = self._settings
        message = self.message(address, notification)
        try:
            addresses = self._policy.resolve(self._host, settings.smtp_port)
        except Refused as exc:
            _log.warning("SMTP server %s refused: %s", self._host, exc.reason)
            raise DeliveryError(REFUSED, retryable=False) from None
        try:
            smtp = self._connect(addresses)
            with smtp:
                if settings.smtp_starttls:
                    smtp.starttls(context=self._tls)
                if settings.smtp_username is not None and settings.smtp_password is not None:
                    smtp.login(settings.smtp_username, settings.smtp_password.get_secret_value())
                smtp.send_message(message, from_addr=settings.smtp_from, to_addrs=[address])
        except (smtplib.SMTPAuthenticationError, smtplib.SMTPNotSupportedError, ssl.SSLError) as exc:
            raise DeliveryError(f"{type(exc).__name__}: {exc}", retryable=False) from exc
        except smtplib.SMTPException as exc:
            raise _smtp_error(exc) from exc
        except OSError as exc:
            raise DeliveryError(
                f"cannot reach SMTP server {self._host}:{settings.smtp_port}: {exc}", retryable=True
            ) from exc

    def _connect(self, addresses: list[Address]) -> smtplib.SMTP:
        settings = self._settings
        failure: OSError | None = None
        for address in addresses:
            try:
                if settings.smtp_ssl:
                    return _PinnedSSL(
                        address, self._host, settings.smtp_port, timeout=settings.smtp_timeout_s, context=self._tls
                    )
                return _Pinned(address, self._host, settings.smtp_port, timeout=settings.smtp_timeout_s)
            except ssl.SSLError:
                raise
            except OSError as exc:
                failure = exc  # the next address may answer
        assert failure is not None
        raise failure
