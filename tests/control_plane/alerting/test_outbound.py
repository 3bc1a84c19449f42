"""Webhooks and mail under the outbound policy, against real receivers on loopback: destinations that are not public
are refused by default with one outcome whatever the reason (the reason goes to the log alone), the allow-list opens
them, redirects are not followed, and the mail relay is held to the same rule."""

from __future__ import annotations

import logging

import pytest
from pydantic import ValidationError

from contract.outbound import REFUSED, OutboundPolicy
from control_plane.alerting import (
    AlertingSettings,
    DeliveryOutcome,
    Email,
    EmailSender,
    Notifier,
    RetryPolicy,
    Webhook,
    WebhookSender,
)
from control_plane.app import main
from tests.contract.test_outbound_policy import table

from .conftest import SmtpServer, WebhookReceiver
from .test_notify import FIRING

SECRET_PATH = "/hooks/T0/path-s3cret?token=query-s3cret"


def notifier(webhook: WebhookSender | None = None, email: EmailSender | None = None) -> Notifier:
    # Three tries with no wait: a refusal must not be retried, a connection error would be.
    return Notifier(webhook=webhook, email=email, retry=RetryPolicy(3, base_delay_s=0), sleep=lambda _: None)


def test_webhooks_that_are_not_public_are_refused_by_default_with_one_outcome(
    webhook: WebhookReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    system = WebhookSender()  # the default policy and the system's resolver
    # Names this machine cannot resolve, answered as an internal DNS server would.
    internal = WebhookSender(policy=OutboundPolicy(resolver=table({"intranet.test": ["10.1.2.3"]})))
    cases = [
        (system, webhook.url, "127.0.0.1 is a loopback address"),
        (system, f"http://10.0.0.1:9{SECRET_PATH}", "10.0.0.1 is a private address"),
        (system, f"http://169.254.169.254{SECRET_PATH}", "169.254.169.254 is a cloud metadata address"),
        (system, webhook.at("localhost"), "localhost resolves to 127.0.0.1, a loopback address"),
        (system, f"http://user:pass-s3cret@[::1]:9{SECRET_PATH}", "::1 is a loopback address"),
        (internal, f"https://intranet.test{SECRET_PATH}", "intranet.test resolves to 10.1.2.3, a private address"),
        (internal, f"https://gone.test{SECRET_PATH}", "gone.test does not resolve"),
    ]
    with caplog.at_level(logging.INFO):
        deliveries = [notifier(sender).notify(Webhook(url), FIRING) for sender, url, _ in cases]
    # The same outcome for every reason, on the first attempt: nothing to tell a listening port from a closed
    # one, an existing internal name from a missing one.
    assert {(d.outcome, d.attempts, d.error) for d in deliveries} == {(DeliveryOutcome.FAILED, 1, REFUSED)}
    assert webhook.posts == []
    logged = caplog.text
    for _, _, reason in cases:
        assert reason in logged
    assert "s3cret" not in logged and all("s3cret" not in d.channel for d in deliveries)


def test_the_allow_list_lets_webhooks_reach_receivers_on_premises(webhook: WebhookReceiver) -> None:
    by_network = WebhookSender(policy=AlertingSettings(webhook_allow="127.0.0.1/32").webhook_policy())
    assert notifier(by_network).notify(Webhook(webhook.url), FIRING).outcome is DeliveryOutcome.DELIVERED
    assert notifier(by_network).notify(Webhook(webhook.at("localhost")), FIRING).outcome is DeliveryOutcome.DELIVERED
    # A name on the list is trusted whatever it resolves to; the address it resolves to is not allowed by it.
    by_name = WebhookSender(policy=AlertingSettings(webhook_allow="localhost").webhook_policy())
    assert notifier(by_name).notify(Webhook(webhook.at("localhost")), FIRING).outcome is DeliveryOutcome.DELIVERED
    refused = notifier(by_name).notify(Webhook(webhook.url), FIRING)
    assert (refused.outcome, refused.error) == (DeliveryOutcome.FAILED, REFUSED)
    assert len(webhook.posts) == 3
    hosts = [header["Host"].removesuffix(f":{webhook.port}") for header in webhook.headers]
    assert hosts == ["127.0.0.1", "localhost", "localhost"]


def test_a_redirect_to_a_forbidden_address_is_not_followed(
    webhook: WebhookReceiver, other_webhook: WebhookReceiver
) -> None:
    # The receiver is allowed by name; it answers with a redirect to 127.0.0.1, which is not allowed.
    webhook.location = other_webhook.url
    for status in (302, 307, 308):
        webhook.statuses.put(status)
    sender = WebhookSender(policy=OutboundPolicy("localhost"))
    deliveries = [notifier(sender).notify(Webhook(webhook.at("localhost")), FIRING) for _ in range(3)]
    assert [(d.outcome, d.attempts, d.error) for d in deliveries] == [
        (DeliveryOutcome.FAILED, 1, "HTTP 302 Found"),
        (DeliveryOutcome.FAILED, 1, "HTTP 307 Temporary Redirect"),
        (DeliveryOutcome.FAILED, 1, "HTTP 308 Permanent Redirect"),
    ]
    assert len(webhook.posts) == 3 and other_webhook.posts == []


def test_a_mail_relay_on_a_forbidden_address_is_refused(smtp: SmtpServer, caplog: pytest.LogCaptureFixture) -> None:
    # A literal address or localhost is refused when the settings are read: every mail would fail.
    for host in ("127.0.0.1", "localhost", "169.254.169.254"):
        with pytest.raises(ValidationError, match="CONDUIT_ALERTS_SMTP_ALLOW"):
            AlertingSettings(smtp_host=host, smtp_port=smtp.port)
    # A name is judged by what it resolves to, at each mail: mail.test resolves only through the test's table.
    settings = AlertingSettings(smtp_host="mail.test", smtp_port=smtp.port, smtp_from="conduit@example.com")
    names = table({"mail.test": ["127.0.0.1"]})
    refusing = EmailSender(settings, policy=OutboundPolicy(resolver=names))
    with caplog.at_level(logging.WARNING, logger="conduit.alerts"):
        delivery = notifier(email=refusing).notify(Email("oncall@example.com"), FIRING)
    assert (delivery.outcome, delivery.attempts, delivery.error) == (DeliveryOutcome.FAILED, 1, REFUSED)
    assert "mail.test resolves to 127.0.0.1, a loopback address" in caplog.text
    assert smtp.messages == []
    # Allowed, the mail goes to the address that was checked (no other resolver knows mail.test).
    allowing = EmailSender(settings, policy=OutboundPolicy("127.0.0.1", resolver=names))
    delivered = notifier(email=allowing).notify(Email("oncall@example.com"), FIRING)
    assert delivered.outcome is DeliveryOutcome.DELIVERED and len(smtp.messages) == 1
    allowed = AlertingSettings(smtp_host="localhost", smtp_port=smtp.port, smtp_allow="127.0.0.1/32")
    assert notifier(email=EmailSender(allowed)).notify(Email("oncall@example.com"), FIRING).attempts == 1
    assert len(smtp.messages) == 2


def test_allow_lists_are_read_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CONDUIT_ALERTS_WEBHOOK_ALLOW", "127.0.0.1/32, Alerts.Corp.Example, fd00::/8")
    monkeypatch.setenv("CONDUIT_ALERTS_SMTP_ALLOW", "10.0.0.25")
    settings = AlertingSettings()
    assert settings.webhook_allow == ("127.0.0.1/32", "alerts.corp.example", "fd00::/8")
    assert settings.smtp_allow == ("10.0.0.25/32",)
    assert AlertingSettings(webhook_allow=["10.0.0.0/8"]).webhook_policy().allow == ("10.0.0.0/8",)
    # A bad entry stops the control plane with one line naming the variable.
    monkeypatch.setenv("CONDUIT_ALERTS_WEBHOOK_ALLOW", "127.0.0.1/32, 10.0.0.1/8")
    assert main({}) == 2
    assert capsys.readouterr().err.splitlines() == [
        "conduit control-plane: CONDUIT_ALERTS_WEBHOOK_ALLOW: '10.0.0.1/8' has host bits set: write 10.0.0.0/8 for "
        "the network, or the address alone"
    ]
