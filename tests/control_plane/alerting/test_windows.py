"""Each rule is judged on its window, in the control plane's own parts: roll-ups stored in the registry (as the
metrics receiver stores them), read through ``RegistryMetrics``, states and history in SQL, a webhook on loopback.

No traffic is no error rate: an ``error_rate`` alert that fired on failing requests resolves once its window and the
lag have passed without any, and says "no data"; it does not stay firing for as long as nobody calls the model."""

from __future__ import annotations

from pathlib import Path

from contract.entities import DriftRule, Rollup
from control_plane.alerting import AlertEngine, AlertRule, Evaluator, Notifier, Phase, RetryPolicy, SqlAlertStore
from control_plane.artifacts import open_artifact_store
from control_plane.service._metrics_source import RegistryMetrics
from control_plane.store import SqlStore

from .conftest import ManualClock, WebhookReceiver, loopback_webhooks, minute


def test_an_error_rate_alert_resolves_when_traffic_stops(
    alerting_url: str, webhook: WebhookReceiver, clock: ManualClock, tmp_path: Path
) -> None:
    registry = SqlStore(alerting_url)
    artifacts = open_artifact_store(str(tmp_path / "artifacts"))
    try:
        alerts = SqlAlertStore(registry.engine, clock=clock)
        notifier = Notifier(webhook=loopback_webhooks(), retry=RetryPolicy(attempts=1), clock=clock)
        engine = AlertEngine(
            Evaluator(RegistryMetrics(registry, artifacts, DriftRule()), lag_s=120), alerts, notifier, clock=clock
        )
        rule = AlertRule.parse("failing", model="fraud", when="error_rate > 5% for 1m", notify=f"webhook:{webhook.url}")
        # Five minutes of traffic with one request in five failing, then none at all for a quarter of an hour.
        for n in range(20):
            if n < 5:
                registry.add_rollups([Rollup("fraud", "3", minute(n), 80, {"INTERNAL": 20}, None)])
            clock.set(minute(n + 1.5))
            engine.evaluate(rule, ["3"])
        posts = [(post["state"], post["at"], post["detail"]) for post in webhook.posts]
        assert [(state, at) for state, at, _ in posts] == [
            ("firing", minute(1.5).isoformat()),
            # Minute 4 ended at 10:05; with the rule's minute and two minutes of lag, 10:08 still counts it.
            ("resolved", minute(8.5).isoformat()),
        ]
        assert posts[1][2] == "no data: no request in the last 3m (1m and 2m of lag)"
        history = alerts.history("failing", limit=10)
        assert [event.event.phase for event in history] == [Phase.RESOLVED, Phase.FIRING]
        assert alerts.states("failing")[next(iter(alerts.states("failing")))].phase is Phase.RESOLVED
    finally:
        registry.close()
