"""A viewer's pages hold no webhook secret: the alerts page lists the rule's channel redacted, and the audit page shows
each change of the rule with the redacted channel and a fingerprint that changes with the URL."""

from __future__ import annotations

import hashlib

from playwright.sync_api import BrowserContext

from .conftest import MODEL, Dashboard

SECRETS = ("pass-s3cret", "path-s3cret", "query-s3cret")
FIRST = "https://ops:pass-s3cret@hooks.example.com/T0/path-s3cret?token=query-s3cret"
SECOND = "https://ops:pass-s3cret@hooks.example.com/T0/path-s3cret?token=query-s3cret-rotated"
SHOWN = "webhook:https://hooks.example.com/…"


def fingerprint(url: str) -> str:
    return hashlib.sha256(f"webhook:{url}".encode()).hexdigest()[:12]


def test_a_viewer_sees_no_webhook_secret_but_sees_the_url_change(viewer: BrowserContext, dashboard: Dashboard) -> None:
    page = viewer.new_page()
    # A latency no request reaches: the rule never fires, so nothing is sent to hooks.example.com.
    rule = {"model": f"{MODEL}@production", "when": "p99_ms > 600000 for 10m"}
    with dashboard.admin() as admin:
        admin.run(admin.api.create_alert_rule("paged", notify=f"webhook:{FIRST}", **rule))
        page.goto(f"{dashboard.url}/alerts")
        alerts = page.content()
        assert "paged" in alerts and SHOWN in alerts
        # The token rotated: the rule is made again with the new URL, and removed when the test ends.
        admin.run(admin.api.delete_alert_rule("paged"))
        admin.run(admin.api.create_alert_rule("paged", notify=f"webhook:{SECOND}", **rule))
        admin.run(admin.api.delete_alert_rule("paged"))
    page.goto(f"{dashboard.url}/audit?target=alert/paged")
    audit = page.content()  # with the collapsed before / after states
    assert page.locator("#audit tbody tr").count() == 4
    for text in (alerts, audit):
        assert not any(secret in text for secret in SECRETS)
    assert "webhook:https://hooks.example.com/" in audit  # the state's JSON writes "…" as \u2026
    assert audit.count(fingerprint(FIRST)) == 2 and audit.count(fingerprint(SECOND)) == 2
