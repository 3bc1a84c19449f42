"""The alert state machine: one event per change, never per evaluation; silence, acknowledgement and no data."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime, timedelta

import pytest

from contract.errors import ConduitError, ErrorCode
from control_plane.alerting import (
    AlertEvent,
    AlertState,
    Evaluation,
    Outcome,
    Phase,
    acknowledge,
    advance,
    silence,
)

from .conftest import START

HOLDS, CLEAR, NO_DATA = Outcome.HOLDS, Outcome.CLEAR, Outcome.NO_DATA


def at(seconds: float) -> datetime:
    return START + timedelta(seconds=seconds)


class Alert:
    """Drives one alert through evaluations every ``step`` seconds, keeping every event."""

    def __init__(self, for_s: float, repeat_s: float | None = None) -> None:
        self.state = AlertState()
        self.for_s = for_s
        self.repeat_s = repeat_s
        self.events: list[AlertEvent] = []
        self.phases: list[Phase] = []

    def feed(self, outcomes: Iterable[tuple[float, Outcome]]) -> None:
        for seconds, outcome in outcomes:
            self.state, event = advance(
                self.state, Evaluation(outcome, at(seconds), value=seconds), for_s=self.for_s, repeat_s=self.repeat_s
            )
            self.phases.append(self.state.phase)
            if event is not None:
                self.events.append(event)

    def notified(self) -> list[tuple[Phase, float]]:
        return [(e.phase, (e.at - START).total_seconds()) for e in self.events if e.notify]


def every(step: float, start: float, stop: float, outcome: Outcome) -> list[tuple[float, Outcome]]:
    return [(start + i * step, outcome) for i in range(int((stop - start) / step))]


def test_pending_then_firing_then_resolved_with_one_event_per_change() -> None:
    alert = Alert(for_s=120)
    alert.feed(every(30, 0, 600, HOLDS) + every(30, 600, 900, CLEAR))
    # Twenty evaluations of trouble and ten of recovery: two events.
    assert [(e.phase, e.at, e.started_at, e.notify) for e in alert.events] == [
        (Phase.FIRING, at(120), at(0), True),
        (Phase.RESOLVED, at(600), at(0), True),
    ]
    assert alert.phases[:5] == [Phase.PENDING] * 4 + [Phase.FIRING]
    assert alert.phases[-1] is Phase.RESOLVED
    assert alert.events[0].value == 120


def test_a_condition_without_a_window_fires_on_the_first_evaluation() -> None:
    alert = Alert(for_s=0)
    alert.feed([(0, CLEAR), (60, HOLDS), (120, HOLDS), (180, CLEAR), (240, CLEAR)])
    assert alert.notified() == [(Phase.FIRING, 60), (Phase.RESOLVED, 180)]


def test_flapping_inside_the_window_never_fires_and_flapping_outside_notifies_each_change() -> None:
    alert = Alert(for_s=120)
    alert.feed([(t, HOLDS if (t // 60) % 2 == 0 else CLEAR) for t in range(0, 1200, 60)])
    assert alert.events == []
    assert set(alert.phases) == {Phase.PENDING, Phase.INACTIVE}

    alert = Alert(for_s=0)
    alert.feed([(t, HOLDS if (t // 60) % 2 == 0 else CLEAR) for t in range(0, 360, 60)])
    assert alert.notified() == [
        (Phase.FIRING, 0), (Phase.RESOLVED, 60), (Phase.FIRING, 120), (Phase.RESOLVED, 180),
        (Phase.FIRING, 240), (Phase.RESOLVED, 300),
    ]  # fmt: skip


def test_history_from_the_data_fires_at_once_but_data_not_yet_arrived_does_not_count() -> None:
    # The evaluator saw the condition hold in every window of the last five minutes.
    state, event = advance(AlertState(), Evaluation(HOLDS, at(600), since=at(300), through=at(600)), for_s=120)
    assert event is not None and event.phase is Phase.FIRING and event.started_at == at(300)

    # Held from 10:00 to 10:01 by the data, evaluated at 10:02: one minute held, not two.
    state, event = advance(AlertState(), Evaluation(HOLDS, at(120), since=at(0), through=at(60)), for_s=120)
    assert event is None and state.phase is Phase.PENDING and state.since == at(0)
    state, event = advance(state, Evaluation(HOLDS, at(180), since=at(60), through=at(120)), for_s=120)
    assert event is not None and event.started_at == at(0)


def test_late_data_does_not_stretch_an_episode_over_an_earlier_resolve() -> None:
    alert = Alert(for_s=0)
    alert.feed([(0, HOLDS), (60, CLEAR)])
    alert.state, event = advance(alert.state, Evaluation(HOLDS, at(120), since=at(0)), for_s=120)
    assert event is None and alert.state.phase is Phase.PENDING and alert.state.since == at(60)


def test_no_data_drops_a_pending_alert_and_keeps_a_firing_one() -> None:
    alert = Alert(for_s=120)
    alert.feed([(0, HOLDS), (60, NO_DATA), (120, HOLDS), (180, HOLDS)])
    assert alert.phases == [Phase.PENDING, Phase.INACTIVE, Phase.PENDING, Phase.PENDING]
    alert.feed([(240, HOLDS), (300, NO_DATA), (360, NO_DATA), (420, HOLDS), (480, CLEAR)])
    assert alert.notified() == [(Phase.FIRING, 240), (Phase.RESOLVED, 480)]
    assert alert.phases[-4:-1] == [Phase.FIRING] * 3


def test_a_silenced_firing_is_recorded_unnotified_and_so_is_its_resolve() -> None:
    alert = Alert(for_s=0)
    alert.state = silence(alert.state, until=at(600))
    alert.feed([(0, HOLDS), (60, HOLDS), (120, CLEAR)])
    assert [(e.phase, e.notify) for e in alert.events] == [(Phase.FIRING, False), (Phase.RESOLVED, False)]
    assert alert.events[0].silenced_until == at(600)


def test_a_resolve_after_a_silence_ended_notifies_nothing_nobody_was_told_of() -> None:
    alert = Alert(for_s=0)
    alert.state = silence(alert.state, until=at(90))
    alert.feed([(0, HOLDS), (60, CLEAR), (120, CLEAR)])
    assert alert.notified() == []
    assert alert.state.silenced_until is None


def test_an_alert_still_firing_when_its_silence_ends_is_notified_once() -> None:
    alert = Alert(for_s=0)
    alert.state = silence(alert.state, until=at(150))
    alert.feed([*every(60, 0, 600, HOLDS), (600, CLEAR)])
    assert alert.notified() == [(Phase.FIRING, 180), (Phase.RESOLVED, 600)]
    assert [e.repeat for e in alert.events] == [False, True, False]
    assert alert.events[1].started_at == at(0)


def test_a_notified_firing_resolving_during_a_silence_notifies_its_resolve() -> None:
    alert = Alert(for_s=0)
    alert.feed([(0, HOLDS)])
    alert.state = silence(alert.state, until=at(3600))
    alert.feed([(60, HOLDS), (120, CLEAR), (180, HOLDS)])
    assert alert.notified() == [(Phase.FIRING, 0), (Phase.RESOLVED, 120)]
    assert [(e.phase, e.notify) for e in alert.events][-1] == (Phase.FIRING, False)


def test_repeats_stop_once_acknowledged_and_the_acknowledgement_ends_with_the_episode() -> None:
    alert = Alert(for_s=0, repeat_s=300)
    alert.feed(every(60, 0, 660, HOLDS))
    assert alert.notified() == [(Phase.FIRING, 0), (Phase.FIRING, 300), (Phase.FIRING, 600)]
    alert.state = acknowledge(alert.state, by="ana", at=at(630))
    alert.feed([*every(60, 660, 1500, HOLDS), (1500, CLEAR)])
    assert alert.notified()[3:] == [(Phase.RESOLVED, 1500)]
    assert alert.events[-1].acknowledged_by == "ana"
    assert alert.state.acknowledged_by is None
    alert.feed([(1560, HOLDS)])
    assert alert.notified()[-1] == (Phase.FIRING, 1560)


def test_without_a_repeat_interval_a_long_firing_notifies_once() -> None:
    alert = Alert(for_s=60)
    alert.feed(every(60, 0, 6 * 3600, HOLDS))
    assert alert.notified() == [(Phase.FIRING, 60)]


def test_only_a_firing_alert_can_be_acknowledged() -> None:
    with pytest.raises(ConduitError) as caught:
        acknowledge(AlertState(), by="ana", at=at(0))
    assert caught.value.code is ErrorCode.FAILED_PRECONDITION


def test_evaluations_must_come_in_time_order_and_with_zones() -> None:
    state, _ = advance(AlertState(), Evaluation(HOLDS, at(60)), for_s=60)
    with pytest.raises(ValueError, match="older than the last one"):
        advance(state, Evaluation(HOLDS, at(0)), for_s=60)
    with pytest.raises(ValueError, match="timezone-aware"):
        Evaluation(HOLDS, datetime(2026, 3, 2, 10, 0))


def test_states_survive_a_json_round_trip_in_every_phase() -> None:
    alert = Alert(for_s=60)
    alert.state = silence(alert.state, until=at(10_000))
    seen = set()
    for seconds, outcome in [(0, HOLDS), (60, HOLDS), (120, CLEAR), (180, CLEAR)]:
        alert.feed([(seconds, outcome)])
        if alert.state.phase is Phase.FIRING:
            alert.state = acknowledge(alert.state, by="ana", at=at(seconds))
        stored = json.loads(json.dumps(alert.state.to_dict()))
        assert AlertState.from_dict(stored) == alert.state
        seen.add(alert.state.phase)
    assert seen == {Phase.PENDING, Phase.FIRING, Phase.RESOLVED}
    assert AlertState.from_dict({}) == AlertState()
    with pytest.raises(ValueError, match="unknown alert state fields"):
        AlertState.from_dict({"colour": "red"})
