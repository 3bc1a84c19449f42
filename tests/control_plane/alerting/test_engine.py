"""Rules evaluated end to end: roll-ups → state machine → SQL states and history → a real webhook receiver."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine

from contract.entities import AuditEntry
from contract.errors import ErrorCode
from control_plane.alerting import (
    AlertChanged,
    AlertEngine,
    AlertKey,
    AlertRule,
    AlertState,
    DeliveryOutcome,
    Evaluator,
    Notifier,
    Phase,
    RetryPolicy,
    SqlAlertStore,
    acknowledge,
    advance,
    silence,
)
from control_plane.alerting import Evaluation as Eval
from control_plane.alerting import Outcome as Out
from control_plane.store import SqlStore

from .conftest import ManualClock, Roll, WebhookReceiver, loopback_webhooks, minute, open_engine


@pytest.fixture
def roll() -> Roll:
    return Roll()


def engine_for(store: SqlAlertStore, roll: Roll, clock: ManualClock, sleeps: list[float] | None = None) -> AlertEngine:
    retry = RetryPolicy(attempts=3, base_delay_s=0.25)
    notifier = Notifier(
        webhook=loopback_webhooks(), retry=retry, sleep=(sleeps if sleeps is not None else []).append, clock=clock
    )
    return AlertEngine(Evaluator(roll, lag_s=120), store, notifier, clock=clock)


def test_an_incident_posts_once_when_it_fires_and_once_when_it_resolves(
    alerting_engine: Engine, roll: Roll, webhook: WebhookReceiver, clock: ManualClock
) -> None:
    rule = AlertRule.parse("slow", model="fraud@production", when="p99_ms > 50 for 2m", notify=f"webhook:{webhook.url}")
    store = SqlAlertStore(alerting_engine, clock=clock)
    engine = engine_for(store, roll, clock)
    for n in range(20):
        slow = 5 <= n < 12
        roll.add(n, [0.004] * 95 + [0.200 if slow else 0.004] * 5)
        clock.set(minute(n + 1.5))
        engine.evaluate(rule, ["3"])
    assert [(post["state"], post["at"], post["started_at"]) for post in webhook.posts] == [
        ("firing", minute(7.5).isoformat(), minute(5).isoformat()),
        ("resolved", minute(13.5).isoformat(), minute(5).isoformat()),
    ]
    assert webhook.posts[0]["version"] == "3" and webhook.posts[0]["alias"] == "production"
    history = store.history("slow")
    assert [(e.event.phase, e.delivery and e.delivery.outcome) for e in history] == [
        (Phase.RESOLVED, DeliveryOutcome.DELIVERED),
        (Phase.FIRING, DeliveryOutcome.DELIVERED),
    ]
    assert "s3cret" not in history[0].channel
    assert store.load(AlertKey("slow", "fraud", "3")).phase is Phase.RESOLVED
    assert store.undelivered() == []


def test_a_failed_delivery_is_recorded_with_its_attempts_and_error(
    alerting_engine: Engine, roll: Roll, webhook: WebhookReceiver, clock: ManualClock
) -> None:
    rule = AlertRule.parse("down", model="fraud", when="not_ready", notify=f"webhook:{webhook.url}")
    store = SqlAlertStore(alerting_engine, clock=clock)
    sleeps: list[float] = []
    for _ in range(3):
        webhook.statuses.put(502)
    roll.is_ready = False
    [stored] = engine_for(store, roll, clock, sleeps).evaluate(rule, ["1"], at=minute(0))
    assert stored.delivery is not None
    assert (stored.delivery.outcome, stored.delivery.attempts) == (DeliveryOutcome.FAILED, 3)
    assert stored.delivery.error.startswith("HTTP 502")
    assert sleeps == [0.25, 0.5]
    [recorded] = store.history("down")
    assert recorded.delivery == stored.delivery


def test_a_silenced_alert_is_recorded_as_suppressed_and_posts_nothing(
    alerting_engine: Engine, roll: Roll, webhook: WebhookReceiver, clock: ManualClock
) -> None:
    rule = AlertRule.parse("down", model="fraud", when="not_ready", notify=f"webhook:{webhook.url}")
    store = SqlAlertStore(alerting_engine, clock=clock)
    key = AlertKey("down", "fraud", "1")
    store.save(key, silence(store.load(key), until=minute(60)))
    engine = engine_for(store, roll, clock)
    roll.is_ready = False
    engine.evaluate(rule, ["1"], at=minute(1))
    roll.is_ready = True
    engine.evaluate(rule, ["1"], at=minute(2))
    assert webhook.posts == []
    assert [e.delivery and e.delivery.outcome for e in store.history()] == [DeliveryOutcome.SUPPRESSED] * 2


def test_a_notification_committed_but_never_sent_is_sent_by_the_next_pass(
    alerting_engine: Engine, roll: Roll, webhook: WebhookReceiver, clock: ManualClock
) -> None:
    rule = AlertRule.parse("down", model="fraud", when="not_ready", notify=f"webhook:{webhook.url}")
    store = SqlAlertStore(alerting_engine, clock=clock)
    key = AlertKey("down", "fraud", "1")
    # The state change and its event committed, then the process died before sending.
    state, event = advance(AlertState(), Eval(Out.HOLDS, minute(0)), for_s=0)
    store.save(key, state, event, channel="webhook:http://127.0.0.1/…")
    assert [stored.key for stored in store.undelivered()] == [key]
    engine = engine_for(store, roll, clock)
    [sent] = engine.deliver_pending({"down": rule})
    assert sent.delivery is not None and sent.delivery.outcome is DeliveryOutcome.DELIVERED
    assert [post["state"] for post in webhook.posts] == ["firing"]
    assert store.undelivered() == []
    assert engine.deliver_pending({"down": rule}) == []


def test_states_are_listed_by_rule_and_phase_and_forgotten_with_their_rule(
    alerting_engine: Engine, clock: ManualClock
) -> None:
    store = SqlAlertStore(alerting_engine, clock=clock)
    firing, _ = advance(AlertState(), Eval(Out.HOLDS, minute(0)), for_s=0)
    firing = acknowledge(firing, by="ana", at=minute(1))
    store.save(AlertKey("down", "fraud", "1"), firing)
    store.save(AlertKey("down", "fraud", "2"), AlertState())
    store.save(AlertKey("slow", "fraud", "1"), firing)
    assert set(store.states(phase=Phase.FIRING)) == {AlertKey("down", "fraud", "1"), AlertKey("slow", "fraud", "1")}
    assert store.states("down")[AlertKey("down", "fraud", "1")] == firing
    # A save replaces the state rather than adding a row.
    store.save(AlertKey("down", "fraud", "1"), AlertState(phase=Phase.RESOLVED, changed_at=minute(2)))
    assert store.load(AlertKey("down", "fraud", "1")).phase is Phase.RESOLVED
    store.forget_rule("down")
    assert set(store.states()) == {AlertKey("slow", "fraud", "1")}
    assert store.load(AlertKey("down", "fraud", "1")) == AlertState()


def test_an_alias_that_moves_resolves_the_alert_of_the_version_it_left_once(
    alerting_engine: Engine, roll: Roll, webhook: WebhookReceiver, clock: ManualClock
) -> None:
    rule = AlertRule.parse("down", model="fraud@production", when="not_ready", notify=f"webhook:{webhook.url}")
    store = SqlAlertStore(alerting_engine, clock=clock)
    engine = engine_for(store, roll, clock)
    roll.is_ready = False
    engine.evaluate(rule, ["3"], at=minute(0))
    # production now points to version 4, which is ready: nothing would evaluate version 3 again.
    roll.is_ready = True
    [resolved] = engine.evaluate(rule, ["4"], at=minute(1))
    assert resolved.key == AlertKey("down", "fraud", "3") and resolved.event.phase is Phase.RESOLVED
    assert resolved.event.detail == "no longer watched: fraud@production is now version 4"
    assert engine.evaluate(rule, ["4"], at=minute(2)) == []
    assert [(post["state"], post["version"]) for post in webhook.posts] == [("firing", "3"), ("resolved", "3")]
    assert {key.version: state.phase for key, state in store.states("down").items()} == {
        "3": Phase.RESOLVED,
        "4": Phase.INACTIVE,
    }


def test_a_rule_on_a_whole_model_keeps_firing_on_a_version_the_servers_stop_reporting(
    alerting_engine: Engine, roll: Roll, webhook: WebhookReceiver, clock: ManualClock
) -> None:
    rule = AlertRule.parse("down", model="fraud", when="not_ready", notify=f"webhook:{webhook.url}")
    store = SqlAlertStore(alerting_engine, clock=clock)
    engine = engine_for(store, roll, clock)
    roll.is_ready = False
    engine.evaluate(rule, ["3"], at=minute(0))
    roll.is_ready = True
    assert engine.evaluate(rule, ["4"], at=minute(1)) == []
    assert [post["state"] for post in webhook.posts] == ["firing"]
    assert store.load(AlertKey("down", "fraud", "3")).phase is Phase.FIRING


def _acknowledgements(registry: SqlStore) -> list[AuditEntry]:
    return registry.list_audit(
        since=None, actor=None, action="AcknowledgeAlert", target_prefix="alert/", page_size=10, page_token=""
    ).items


def test_an_acknowledgement_is_stored_with_its_audit_entry(alerting_url: str, clock: ManualClock) -> None:
    engine = open_engine(alerting_url)
    registry = SqlStore(alerting_url)
    try:
        store = SqlAlertStore(engine, clock=clock)
        key = AlertKey("slow", "fraud", "3")
        firing, _ = advance(AlertState(), Eval(Out.HOLDS, minute(0)), for_s=0)
        store.save(key, firing)
        acknowledged = acknowledge(firing, by="ana", at=minute(1))
        started = datetime.now(UTC)
        store.acknowledge(key, store.read(key), acknowledged, actor="ana")
        ended = datetime.now(UTC)
        assert store.load(key) == acknowledged
        [entry] = _acknowledgements(registry)
    finally:
        registry.close()
        engine.dispose()
    # Stamped by the registry's audit log, like every entry, not by the alert store's (here manual) clock.
    assert started <= entry.at <= ended
    assert (entry.actor, entry.target) == ("ana", "alert/slow")
    assert entry.before is not None and entry.after is not None
    assert (entry.before["version"], entry.before["acknowledged_by"]) == ("3", None)
    assert entry.after == {
        "model": "fraud",
        "version": "3",
        "phase": "firing",
        "acknowledged_by": "ana",
        "acknowledged_at": minute(1).isoformat(),
    }


def test_an_acknowledgement_of_an_alert_that_resolved_since_it_was_read_writes_nothing(
    alerting_url: str, roll: Roll, webhook: WebhookReceiver, clock: ManualClock
) -> None:
    rule = AlertRule.parse("down", model="fraud", when="not_ready", notify=f"webhook:{webhook.url}")
    key = AlertKey("down", "fraud", "1")
    # The API's store and the evaluator's, on one database, as two replicas (or two threads) hold them.
    api_engine, evaluator_engine = open_engine(alerting_url), open_engine(alerting_url)
    registry = SqlStore(alerting_url)
    try:
        api = SqlAlertStore(api_engine, clock=clock)
        engine = engine_for(SqlAlertStore(evaluator_engine, clock=clock), roll, clock)
        roll.is_ready = False
        engine.evaluate(rule, ["1"], at=minute(0))
        read = api.read(key)
        assert read.state.phase is Phase.FIRING
        roll.is_ready = True
        engine.evaluate(rule, ["1"], at=minute(1))
        # The user acknowledges what they read: the firing alert, resolved since.
        with pytest.raises(AlertChanged) as changed:
            api.acknowledge(key, read, acknowledge(read.state, by="ana", at=minute(1)), actor="ana")
        assert changed.value.code is ErrorCode.FAILED_PRECONDITION
        assert api.load(key).phase is Phase.RESOLVED and api.load(key).acknowledged_by is None
        assert _acknowledgements(registry) == []
        engine.evaluate(rule, ["1"], at=minute(2))
    finally:
        registry.close()
        api_engine.dispose()
        evaluator_engine.dispose()
    assert [post["state"] for post in webhook.posts] == ["firing", "resolved"]


class AcknowledgedWhileEvaluating(Roll):
    """Readiness whose next read lets a user acknowledge the alert first, through another store: the evaluator has
    read the alert's state by then and not yet written it."""

    def __init__(self, api: SqlAlertStore, key: AlertKey) -> None:
        super().__init__()
        self.api = api
        self.key = key
        self.armed = False

    def ready(self, model: str, version: str) -> bool | None:
        if self.armed:
            self.armed = False
            read = self.api.read(self.key)
            self.api.acknowledge(self.key, read, acknowledge(read.state, by="ana", at=minute(1)), actor="ana")
        return super().ready(model, version)


def test_an_acknowledgement_made_during_an_evaluation_is_kept_and_stops_the_repeat(
    alerting_url: str, webhook: WebhookReceiver, clock: ManualClock
) -> None:
    rule = AlertRule.parse("down", model="fraud", when="not_ready", notify=f"webhook:{webhook.url}")
    key = AlertKey("down", "fraud", "1")
    api_engine, evaluator_engine = open_engine(alerting_url), open_engine(alerting_url)
    try:
        source = AcknowledgedWhileEvaluating(SqlAlertStore(api_engine, clock=clock), key)
        store = SqlAlertStore(evaluator_engine, clock=clock)
        sleeps: list[float] = []
        notifier = Notifier(
            webhook=loopback_webhooks(), retry=RetryPolicy(attempts=1), sleep=sleeps.append, clock=clock
        )
        engine = AlertEngine(Evaluator(source, lag_s=120), store, notifier, repeat_s=60, clock=clock)
        source.is_ready = False
        engine.evaluate(rule, ["1"], at=minute(0))
        source.armed = True
        # Due for a repeat, but acknowledged between the pass's read and its write.
        assert engine.evaluate(rule, ["1"], at=minute(2)) == []
        state = store.load(key)
    finally:
        api_engine.dispose()
        evaluator_engine.dispose()
    assert (state.phase, state.acknowledged_by, state.evaluated_at) == (Phase.FIRING, "ana", minute(2))
    assert [post["state"] for post in webhook.posts] == ["firing"]


def test_a_silence_written_while_the_alert_resolves_keeps_the_resolve(
    alerting_url: str, roll: Roll, webhook: WebhookReceiver, clock: ManualClock
) -> None:
    rule = AlertRule.parse("down", model="fraud", when="not_ready", notify=f"webhook:{webhook.url}")
    key = AlertKey("down", "fraud", "1")
    api_engine, evaluator_engine = open_engine(alerting_url), open_engine(alerting_url)
    try:
        engine = engine_for(SqlAlertStore(evaluator_engine, clock=clock), roll, clock)
        roll.is_ready = False
        engine.evaluate(rule, ["1"], at=minute(0))
        roll.is_ready = True

        passes = [minute(1)]

        def resolving_first() -> datetime:
            # The API's store asks the time after it read the alert and before it writes: the evaluator's pass that
            # resolves the alert lands right there, once.
            while passes:
                engine.evaluate(rule, ["1"], at=passes.pop())
            return clock()

        api = SqlAlertStore(api_engine, clock=resolving_first)
        api.silence("down", minute(60))
        state = api.load(key)
    finally:
        api_engine.dispose()
        evaluator_engine.dispose()
    assert (state.phase, state.silenced_until) == (Phase.RESOLVED, minute(60))
    assert [post["state"] for post in webhook.posts] == ["firing", "resolved"]


def test_a_silence_written_while_the_rule_is_deleted_leaves_no_state_behind(
    alerting_url: str, clock: ManualClock
) -> None:
    key = AlertKey("down", "fraud", "1")
    api_engine, other_engine = open_engine(alerting_url), open_engine(alerting_url)
    try:
        other = SqlAlertStore(other_engine, clock=clock)
        firing, _ = advance(AlertState(), Eval(Out.HOLDS, minute(0)), for_s=0)
        other.save(key, firing)
        deletions = ["down"]

        def deleting_first() -> datetime:
            while deletions:
                other.forget_rule(deletions.pop())
            return clock()

        SqlAlertStore(api_engine, clock=deleting_first).silence("down", minute(60))
        assert other.states() == {}
    finally:
        api_engine.dispose()
        other_engine.dispose()


def test_a_second_first_write_of_a_new_alert_is_refused(alerting_engine: Engine, clock: ManualClock) -> None:
    # Two writers read the alert before it existed; the first to write creates it, the second learns it changed
    # (on PostgreSQL too, whose driver does not count the rows an ON CONFLICT DO NOTHING skipped).
    store = SqlAlertStore(alerting_engine, clock=clock)
    key = AlertKey("down", "fraud", "1")
    first, second = store.read(key), store.read(key)
    assert first.stored is None and second.stored is None
    store.save(key, silence(first.state, until=minute(10)), expected=first)
    with pytest.raises(AlertChanged):
        store.save(key, silence(second.state, until=minute(20)), expected=second)
    assert store.load(key).silenced_until == minute(10)
