"""Conditions evaluated against roll-ups: an in-memory ``MetricsSource`` holding per-minute windows."""

from __future__ import annotations

import math
from datetime import timedelta

import pytest

from control_plane.alerting import (
    AlertingSettings,
    AlertState,
    DriftScores,
    Evaluator,
    Outcome,
    Phase,
    advance,
    parse_condition,
)

from .conftest import Roll, minute


def test_p99_holds_since_the_first_slow_minute_of_the_run() -> None:
    roll = Roll()
    roll.add(0, [0.080] * 100)  # slow, but a fast minute follows and breaks the run
    roll.add(1, [0.004] * 100)
    for n in (2, 3, 4):
        roll.add(n, [0.004] * 90 + [0.080] * 10)
    evaluation = Evaluator(roll).evaluate(parse_condition("p99_ms > 50 for 2m"), "fraud", "1", minute(5.5))
    assert evaluation.outcome is Outcome.HOLDS
    assert (evaluation.since, evaluation.through) == (minute(2), minute(5))
    assert evaluation.value is not None and 50 < evaluation.value <= 100
    # The run is three minutes long, so the alert fires on its very first evaluation.
    state, event = advance(AlertState(), evaluation, for_s=120)
    assert event is not None and state.phase is Phase.FIRING


def test_p99_is_clear_when_the_newest_minute_is_fast_or_its_window_holds_no_request() -> None:
    roll = Roll()
    roll.add(0, [0.080] * 100)
    roll.add(1, [0.002] * 100)
    evaluator = Evaluator(roll, lag_s=120)
    evaluation = evaluator.evaluate(parse_condition("p99_ms > 50"), "fraud", "1", minute(2.5))
    assert evaluation.outcome is Outcome.CLEAR and evaluation.value == pytest.approx(2.0)
    # The newest window ended five minutes before, out of the rule's minute and the lag: no request, no latency.
    late = evaluator.evaluate(parse_condition("p99_ms > 50"), "fraud", "1", minute(7))
    assert (late.outcome, late.value) == (Outcome.CLEAR, None)
    assert late.detail == "no data: no request in the last 3m (1m and 2m of lag)"
    assert Evaluator(Roll()).evaluate(parse_condition("p99_ms > 50"), "m", "1", minute(1)).outcome is Outcome.CLEAR


def test_a_firing_error_rate_resolves_once_its_window_and_the_lag_pass_without_requests() -> None:
    roll = Roll()
    for n in range(5):
        roll.add(n, [0.004] * 80, errors=20)  # 20% of the requests fail, then traffic stops after minute 4
    evaluator = Evaluator(roll, lag_s=120)
    state, phases = AlertState(), []
    for half_minutes in range(2, 60):
        at = minute(half_minutes / 2)
        state, event = advance(
            state, evaluator.evaluate(parse_condition("error_rate > 5% for 1m"), "fraud", "1", at), for_s=60
        )
        if event is not None:
            phases.append((event.phase, at, event.detail))
    # Minute 4 ends at 10:05; the rule's one-minute window and the two minutes of lag have passed at 10:08.
    assert [(phase, at) for phase, at, _ in phases] == [(Phase.FIRING, minute(1)), (Phase.RESOLVED, minute(8.5))]
    assert phases[1][2].startswith("no data: no request in the last 3m")
    assert state.phase is Phase.RESOLVED


def test_a_longer_for_window_waits_that_much_longer_before_no_request_resolves_it() -> None:
    roll = Roll()
    for n in range(10):
        roll.add(n, [0.004] * 80, errors=20)
    condition = parse_condition("error_rate > 5% for 5m")
    evaluator = Evaluator(roll, lag_s=120)
    assert evaluator.evaluate(condition, "fraud", "1", minute(16.5)).outcome is Outcome.HOLDS
    assert evaluator.evaluate(condition, "fraud", "1", minute(17.5)).outcome is Outcome.CLEAR


def test_a_short_for_window_is_judged_on_the_minute_still_filling_from_the_first_evaluation_that_sees_it() -> None:
    roll = Roll()
    roll.add(0, [0.004] * 100)
    roll.add(1, [0.080] * 20)  # minute 1 is still filling
    evaluator = Evaluator(roll)
    condition = parse_condition("p99_ms > 50 for 10s")
    first = evaluator.evaluate(condition, "fraud", "1", minute(1.25))
    assert first.outcome is Outcome.HOLDS and (first.since, first.through) == (minute(1.25), minute(1.25))
    state, event = advance(AlertState(), first, for_s=10)
    assert event is None and state.phase is Phase.PENDING
    later = minute(1.25) + timedelta(seconds=10)
    state, event = advance(state, evaluator.evaluate(condition, "fraud", "1", later), for_s=10)
    assert event is not None and event.phase is Phase.FIRING and event.started_at == minute(1.25)
    # Without a window, one filling minute's few requests decide nothing: the ended minute 0 was fast.
    assert evaluator.evaluate(parse_condition("p99_ms > 50"), "fraud", "1", minute(1.25)).outcome is Outcome.CLEAR


def test_a_filling_minute_extends_a_run_of_slow_minutes_but_never_clears_one() -> None:
    roll = Roll()
    roll.add(0, [0.080] * 100)
    roll.add(1, [0.080] * 20)
    condition = parse_condition("p99_ms > 50 for 10s")
    slow = Evaluator(roll).evaluate(condition, "fraud", "1", minute(1.5))
    assert slow.outcome is Outcome.HOLDS and (slow.since, slow.through) == (minute(0), minute(1.5))
    roll.rollups[1:] = []
    roll.add(1, [0.002] * 20)
    # The fast start of minute 1 is no recovery yet: minute 0, which ended slow, still decides.
    fast = Evaluator(roll).evaluate(condition, "fraud", "1", minute(1.5))
    assert fast.outcome is Outcome.HOLDS and (fast.since, fast.through) == (minute(0), minute(1))


def test_the_filling_minute_is_judged_only_once_it_holds_enough_requests(monkeypatch: pytest.MonkeyPatch) -> None:
    roll = Roll()
    roll.add(0, [0.004] * 100)
    roll.add(1, [0.300])  # low traffic: one slow request so far in minute 1
    condition = parse_condition("p99_ms > 50 for 10s")
    evaluator = Evaluator(roll)
    state = AlertState()
    for seconds in range(5, 60, 5):
        evaluation = evaluator.evaluate(condition, "fraud", "1", minute(1) + timedelta(seconds=seconds))
        # Judged on the ended minute 0, which was fast.
        assert evaluation.outcome is Outcome.CLEAR
        state, event = advance(state, evaluation, for_s=10)
        assert event is None
    assert state.phase is Phase.INACTIVE
    roll.rollups[1:] = []
    roll.add(1, [0.300] * 19, errors=0)
    assert evaluator.evaluate(condition, "fraud", "1", minute(1.5)).outcome is Outcome.CLEAR
    roll.rollups[1:] = []
    roll.add(1, [0.300] * 19, errors=1)  # failed requests count: twenty were answered
    assert evaluator.evaluate(condition, "fraud", "1", minute(1.5)).outcome is Outcome.HOLDS
    # The same holds for error_rate: one failed request out of one is no 100 % error rate yet.
    roll.rollups[1:] = []
    roll.add(1, [], errors=1)
    errors = parse_condition("error_rate > 50% for 10s")
    assert evaluator.evaluate(errors, "fraud", "1", minute(1.5)).outcome is Outcome.CLEAR
    assert Evaluator(roll, filling_min_requests=1).evaluate(errors, "fraud", "1", minute(1.5)).outcome is Outcome.HOLDS
    monkeypatch.setenv("CONDUIT_ALERTS_FILLING_MIN_REQUESTS", "5")
    assert AlertingSettings().filling_min_requests == 5
    assert AlertingSettings.model_fields["filling_min_requests"].default == 20


def test_a_p99_above_the_histogram_bounds_is_estimated_up_to_the_observed_maximum() -> None:
    roll = Roll()
    roll.add(0, [0.004] * 90 + [5.0] * 10)
    evaluation = Evaluator(roll).evaluate(parse_condition("p99_ms > 2000"), "fraud", "1", minute(1))
    assert evaluation.outcome is Outcome.HOLDS
    assert evaluation.value is not None and 2000 < evaluation.value <= 5000


def test_error_rate_counts_failed_over_all_requests() -> None:
    roll = Roll()
    roll.add(0, [0.001] * 99, errors=1)
    roll.add(1, [0.001] * 95, errors=5)
    evaluator = Evaluator(roll)
    evaluation = evaluator.evaluate(parse_condition("error_rate > 1% for 1m"), "fraud", "1", minute(2))
    assert evaluation.outcome is Outcome.HOLDS and evaluation.value == pytest.approx(0.05)
    assert evaluation.since == minute(1)
    assert evaluator.evaluate(parse_condition("error_rate > 5%"), "fraud", "1", minute(2)).outcome is Outcome.CLEAR


def test_no_traffic_counts_from_the_last_busy_minute() -> None:
    roll = Roll()
    roll.add(0, [0.001] * 10)
    evaluator = Evaluator(roll, lag_s=120)
    condition = parse_condition("no_traffic for 5m")
    assert evaluator.evaluate(condition, "fraud", "1", minute(2)).outcome is Outcome.CLEAR
    quiet = evaluator.evaluate(condition, "fraud", "1", minute(4))
    assert (quiet.outcome, quiet.since, quiet.value) == (Outcome.HOLDS, minute(1), 180.0)
    state, event = advance(AlertState(), quiet, for_s=condition.for_s)
    assert event is None and state.phase is Phase.PENDING
    state, event = advance(state, evaluator.evaluate(condition, "fraud", "1", minute(6)), for_s=condition.for_s)
    assert event is not None and event.phase is Phase.FIRING and event.started_at == minute(1)


def test_no_traffic_on_a_silent_version_holds_for_the_whole_range_or_since_it_was_deployed() -> None:
    evaluator = Evaluator(Roll(), lag_s=60)
    condition = parse_condition("no_traffic for 5m")
    assert evaluator.evaluate(condition, "fraud", "1", minute(60)).since == minute(54)
    deployed = evaluator.evaluate(condition, "fraud", "1", minute(60), watched_since=minute(58))
    assert deployed.since == minute(58) and deployed.value == 120.0


def test_drift_on_any_or_all_features() -> None:
    roll = Roll()
    roll.scores = DriftScores(rows=500, psi={"amount": 0.31, "age": 0.05, "country": 0.22, "noise": math.nan})
    evaluator = Evaluator(roll)
    any_ = evaluator.evaluate(parse_condition("drift > 0.2"), "fraud", "1", minute(0))
    assert (any_.outcome, any_.value) == (Outcome.HOLDS, 0.31)
    assert any_.detail == "2 of 3 features drifted above PSI 0.2 over 10m (500 rows): amount, country"
    all_ = evaluator.evaluate(parse_condition("drift(all) > 0.2"), "fraud", "1", minute(0))
    assert (all_.outcome, all_.value) == (Outcome.CLEAR, 0.05)
    roll.scores = DriftScores(rows=0, psi={})
    empty = evaluator.evaluate(parse_condition("drift > 0.2"), "fraud", "1", minute(0))
    expected = "no data: too few rows for a verdict in the last 12m (10m and 2m of lag)"
    assert (empty.outcome, empty.detail) == (Outcome.CLEAR, expected)


def test_drift_is_measured_over_the_rules_window() -> None:
    roll = Roll()
    roll.scores = DriftScores(rows=500, psi={"amount": 0.05})
    evaluator = Evaluator(roll, lag_s=60)
    evaluator.evaluate(parse_condition("drift > 0.2"), "fraud", "1", minute(100))
    evaluator.evaluate(parse_condition("drift > 0.2 over 30m"), "fraud", "1", minute(100))
    assert roll.drift_asked == [(minute(89), minute(100)), (minute(69), minute(100))]


def test_a_feature_whose_verdict_is_not_drift_never_fires_a_drift_rule() -> None:
    roll = Roll()
    # "age" has a PSI far above the threshold, from too few rows (or no significant shift): no verdict of drift.
    roll.scores = DriftScores(rows=40, psi={"amount": 0.25, "age": 3.2}, drifted=frozenset({"amount"}))
    evaluator = Evaluator(roll)
    any_ = evaluator.evaluate(parse_condition("drift > 0.2"), "fraud", "1", minute(0))
    assert (any_.outcome, any_.value) == (Outcome.HOLDS, 0.25) and any_.detail.endswith(": amount")
    assert evaluator.evaluate(parse_condition("drift(all) > 0.2"), "fraud", "1", minute(0)).outcome is Outcome.CLEAR
    roll.scores = DriftScores(rows=40, psi={"amount": 0.25, "age": 3.2}, drifted=frozenset())
    quiet = evaluator.evaluate(parse_condition("drift > 0.2"), "fraud", "1", minute(0))
    assert quiet.outcome is Outcome.CLEAR and quiet.detail.startswith("0 of 2 features drifted")


def test_readiness() -> None:
    roll = Roll()
    evaluator = Evaluator(roll)
    condition = parse_condition("not_ready")
    outcomes = []
    for ready in (None, True, False):
        roll.is_ready = ready
        outcomes.append(evaluator.evaluate(condition, "fraud", "1", minute(0)).outcome)
    assert outcomes == [Outcome.NO_DATA, Outcome.CLEAR, Outcome.HOLDS]


def test_a_latency_incident_evaluated_every_minute_fires_once_and_resolves_once() -> None:
    roll = Roll()
    evaluator = Evaluator(roll, lag_s=120)
    condition = parse_condition("p99_ms > 50 for 2m")
    state, events = AlertState(), []
    for n in range(20):
        slow = 5 <= n < 12
        roll.add(n, [0.004] * 95 + [0.200 if slow else 0.004] * 5)
        # The window of minute n arrives at n+1 and is evaluated half a minute later.
        state, event = advance(state, evaluator.evaluate(condition, "fraud", "1", minute(n + 1.5)), for_s=120)
        events += [(event.phase, event.at, event.started_at)] if event else []
    assert events == [(Phase.FIRING, minute(7.5), minute(5)), (Phase.RESOLVED, minute(13.5), minute(5))]
