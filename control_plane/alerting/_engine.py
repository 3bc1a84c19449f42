"""``AlertEngine``: one evaluation pass of a rule over its versions: evaluate, advance, store, then notify."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from functools import partial

from control_plane.alerting._delivery import Delivery, DeliveryOutcome
from control_plane.alerting._evaluate import Evaluator
from control_plane.alerting._history import AlertChanged, SqlAlertStore, StoredEvent
from control_plane.alerting._notify import Notifier
from control_plane.alerting._payload import Notification
from control_plane.alerting._rules import AlertRule
from control_plane.alerting._state import AlertKey, Evaluation, Outcome, Phase, advance
from control_plane.alerting._time import Clock, utcnow

__all__ = ["AlertEngine"]

_log = logging.getLogger("conduit.alerts")

# Tries of one alert's read-advance-write when a user's change lands in between; each conflict is a user's action,
# so a handful in one pass means something keeps writing, and the next pass will see the alert again.
_TRIES = 5


class AlertEngine:
    """Evaluates rules and notifies their changes, with states and history in ``store``.

    Run it from the scheduler's evaluate job, which the leases give to one replica per tick: two replicas never
    advance the same alert at once. A user may still acknowledge or silence an alert during a pass: each write is a
    compare-and-set on the state the pass read, and on a conflict the pass reads the alert again and advances that
    (its event is written only with the state that won, so nothing is notified twice).

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

        A rule on an alias watches the version the alias points to. When the alias moves, the alerts still pending
        or firing on the versions it left are cleared: a firing one resolves (notified once, like any resolve), since
        what it warned about is no longer what the alias serves, and nothing would ever evaluate it again. A rule on
        a whole model keeps its alerts when a version drops out of the servers' reports: a server that restarts or
        stops reporting is no recovery.

        Args:
            watched_since: per version, since when it is served (``no_traffic`` counts no silence before).
        """
        at = at or self._clock()
        versions = list(versions)
        out = self._left_behind(rule, versions, at) if rule.alias is not None else []
        for version in versions:
            key = AlertKey(rule.name, rule.model, version)
            since = (watched_since or {}).get(version)
            evaluate = partial(self._evaluator.evaluate, rule.condition, rule.model, version, at, watched_since=since)
            stored = self._advance(rule, key, evaluate)
            if stored is not None:
                out.append(self._deliver(rule, stored))
        return out

    def _advance(self, rule: AlertRule, key: AlertKey, evaluate: Callable[[], Evaluation]) -> StoredEvent | None:
        """Read the alert, evaluate, advance and write it back unless it changed in between; then again."""
        for _ in range(_TRIES):
            read = self._store.read(key)
            evaluation = evaluate()
            state, event = advance(read.state, evaluation, for_s=rule.condition.for_s, repeat_s=self._repeat_s)
            try:
                return self._store.save(key, state, event, channel=rule.channel.redacted, expected=read)
            except AlertChanged:
                continue
        _log.warning(
            "alert %s on %s:%s kept changing during its evaluation; left to the next", key.rule, key.model, key.version
        )
        return None

    def _left_behind(self, rule: AlertRule, watched: list[str], at: datetime) -> list[StoredEvent]:
        """Clear the active alerts of ``rule`` on versions its alias no longer points to."""
        moved = f"{rule.target} is now version {', '.join(watched)}" if watched else f"{rule.target} is gone"
        out = []
        cleared = Evaluation(Outcome.CLEAR, at, detail=f"no longer watched: {moved}")
        for key, state in self._store.states(rule.name).items():
            if key.model != rule.model or key.version in watched or state.phase not in (Phase.PENDING, Phase.FIRING):
                continue
            stored = self._advance(rule, key, lambda: cleared)
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
