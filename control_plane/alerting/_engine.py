"""``AlertEngine``: one evaluation pass of a rule over its versions: evaluate, advance, store, then notify."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from datetime import datetime

from control_plane.alerting._delivery import Delivery, DeliveryOutcome
from control_plane.alerting._evaluate import Evaluator
from control_plane.alerting._history import SqlAlertStore, StoredEvent
from control_plane.alerting._notify import Notifier
from control_plane.alerting._payload import Notification
from control_plane.alerting._rules import AlertRule
from control_plane.alerting._state import AlertKey, advance
from control_plane.alerting._time import Clock, utcnow

__all__ = ["AlertEngine"]

_log = logging.getLogger("conduit.alerts")


class AlertEngine:
    """Evaluates rules and notifies their changes, with states and history in ``store``.

    Run it from the scheduler's evaluate job, which the leases give to one replica per tick: two replicas never
    advance the same alert at once.

    Args:
        evaluator: reads the monitoring roll-ups.
        store: alert states and history.
        notifier: sends on the rules' channels.
        repeat_s: notify an unacknowledged firing alert again after this long; None: once per change.
        clock: the time of each pass.
    """

    def __init__(
        self,
        evaluator: Evaluator,
        store: SqlAlertStore,
        notifier: Notifier,
        *,
        repeat_s: float | None = None,
        clock: Clock = utcnow,
    ) -> None:
        self._evaluator = evaluator
        self._store = store
        self._notifier = notifier
        self._repeat_s = repeat_s
        self._clock = clock

    def evaluate(
        self,
        rule: AlertRule,
        versions: Iterable[str],
        *,
        at: datetime | None = None,
        watched_since: Mapping[str, datetime] | None = None,
    ) -> list[StoredEvent]:
        """Evaluate ``rule`` on each of ``versions`` (the wiring resolves the rule's alias to them) and notify what
        changed; the events, with their deliveries.

        Args:
            watched_since: per version, since when it is served (``no_traffic`` counts no silence before).
        """
        at = at or self._clock()
        out = []
        for version in versions:
            key = AlertKey(rule.name, rule.model, version)
            since = (watched_since or {}).get(version)
            evaluation = self._evaluator.evaluate(rule.condition, rule.model, version, at, watched_since=since)
            state, event = advance(
                self._store.load(key), evaluation, for_s=rule.condition.for_s, repeat_s=self._repeat_s
            )
            stored = self._store.save(key, state, event, channel=rule.channel.redacted)
            if stored is not None:
                out.append(self._deliver(rule, stored))
        return out

    def deliver_pending(self, rules: Mapping[str, AlertRule]) -> list[StoredEvent]:
        """Send the notifications committed but never sent (the process stopped in between); an event whose rule
        is gone is recorded as suppressed."""
        out = []
        for stored in self._store.undelivered():
            rule = rules.get(stored.key.rule)
            if rule is None:
                self._store.record_delivery(
                    stored.id, Delivery(stored.channel, DeliveryOutcome.SUPPRESSED, 0, self._clock(), "rule deleted")
                )
                continue
            out.append(self._deliver(rule, stored))
        return out

    def _deliver(self, rule: AlertRule, stored: StoredEvent) -> StoredEvent:
        if stored.delivery is not None:
            return stored
        delivery = self._notifier.notify(rule.channel, Notification.of(rule, stored.key, stored.event))
        self._store.record_delivery(stored.id, delivery)
        return StoredEvent(stored.id, stored.key, stored.event, delivery.channel, delivery)
