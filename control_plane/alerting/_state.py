"""The life of one alert, per (rule, model, version): a pure state machine driven by evaluations.

::

    inactive ──holds──▶ pending ──held for the whole `for` window──▶ firing ──clear──▶ resolved
       ▲                  │ clear / no data                            ▲                 │ holds
       └──────────────────┘                                            └── (via pending) ┘

``advance`` takes the current state and one evaluation and returns the next state and at most one event. Events
come only from a change (firing, resolved), never from an evaluation that changes nothing, so a rule evaluated every
minute for an hour of trouble notifies twice: when it fires and when it resolves.

Silence and acknowledgement, and what they notify:

- **Silenced** (until a time): phases are tracked and events recorded as usual, but an event is not notified while
  the silence lasts. A resolve notifies only if its firing was notified: the receivers hear nothing about an episode
  they were never told of. A firing that was notified and resolves during a silence does notify its resolve, since
  closing what a receiver was told is never noise. An alert still firing when its silence ends is notified once then
  (an event flagged ``repeat``), because its receivers have not heard of it.
- **Acknowledged** (by a user, only while firing): stops repeat notifications (``repeat_s``) and the one that would
  follow a silence; cleared when the alert resolves, so the next episode is news again.
- **No data** (nothing to judge by: no server reports the version's readiness): a pending alert drops back to
  inactive (its window was not held throughout); a firing one stays firing, since an absence of data is not a
  recovery (the ``no_traffic`` rule watches absence). A window without requests or rows is not "no data" here: it
  has no latency, no error rate and no drift, and the evaluator calls it clear (see ``_evaluate``).

Times come only from the evaluations and the calls, never from a clock read here, so the same inputs always give the
same outputs. ``AlertState.to_dict``/``from_dict`` give the JSON-safe form the wiring persists.
"""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from contract.errors import ConduitError, ErrorCode
from control_plane.alerting._time import as_utc

__all__ = [
    "AlertEvent",
    "AlertKey",
    "AlertState",
    "Evaluation",
    "Outcome",
    "Phase",
    "acknowledge",
    "advance",
    "silence",
]


class Phase(enum.Enum):
    INACTIVE = "inactive"
    PENDING = "pending"
    FIRING = "firing"
    RESOLVED = "resolved"


class Outcome(enum.Enum):
    """What one evaluation of a condition found."""

    HOLDS = "holds"
    CLEAR = "clear"
    NO_DATA = "no_data"


@dataclass(frozen=True, slots=True)
class AlertKey:
    """One alert: a rule applied to one version of a model (versions as the servers label them)."""

    rule: str
    model: str
    version: str


@dataclass(frozen=True, slots=True)
class Evaluation:
    """The result of evaluating a condition at ``at``.

    With HOLDS, the data shows the condition holding from ``since`` through ``through`` (both at or before ``at``;
    None means ``at``). The evaluator reads per-minute history, so a condition that has held for ten minutes can
    fire on its first evaluation, and a window that has not arrived yet is not counted as held. ``value`` is the
    measured quantity in the condition's unit, when there is one; ``detail`` says it in words.
    """

    outcome: Outcome
    at: datetime
    value: float | None = None
    since: datetime | None = None
    through: datetime | None = None
    detail: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "at", as_utc(self.at, "Evaluation.at"))
        for name in ("since", "through"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, min(as_utc(value, f"Evaluation.{name}"), self.at))


@dataclass(frozen=True, slots=True)
class AlertState:
    """Where one alert stands; immutable, so a step is a new value the wiring can store or drop."""

    phase: Phase = Phase.INACTIVE
    since: datetime | None = None
    """Pending: when the condition started to hold. Firing and resolved: when the episode started to hold."""
    changed_at: datetime | None = None
    """When the phase last changed."""
    evaluated_at: datetime | None = None
    value: float | None = None
    """The value of the last evaluation that had one."""
    notified: bool = False
    """The receivers were told that the current (or last) episode fired."""
    notified_at: datetime | None = None
    acknowledged_by: str | None = None
    acknowledged_at: datetime | None = None
    silenced_until: datetime | None = None

    def silenced(self, at: datetime) -> bool:
        return self.silenced_until is not None and at < self.silenced_until

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict (enum values and ISO-8601 times), read back by ``from_dict``."""
        out: dict[str, Any] = {}
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if isinstance(value, datetime):
                value = value.isoformat()
            elif isinstance(value, Phase):
                value = value.value
            out[field.name] = value
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AlertState:
        """The state ``to_dict`` wrote; keys it does not know are an error, missing ones take their defaults.

        Raises:
            ValueError: the dict was not written by ``to_dict``.
        """
        names = {field.name for field in dataclasses.fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise ValueError(f"unknown alert state fields: {sorted(unknown)}")
        values: dict[str, Any] = {}
        for name, raw in data.items():
            value = raw
            if name == "phase":
                value = Phase(raw)
            elif name.endswith(("_at", "_until")) or name == "since":
                value = None if raw is None else as_utc(datetime.fromisoformat(raw), name)
            values[name] = value
        return cls(**values)


@dataclass(frozen=True, slots=True)
class AlertEvent:
    """A change worth recording: the alert fired or resolved.

    ``notify`` False means the event is recorded in the history but no channel is told (silenced, or a resolve of a
    firing nobody heard of). ``repeat`` marks a firing notified again without a change: after a silence ended, or
    every ``repeat_s`` while unacknowledged.
    """

    phase: Phase
    at: datetime
    started_at: datetime
    value: float | None
    notify: bool
    repeat: bool = False
    acknowledged_by: str | None = None
    silenced_until: datetime | None = None
    detail: str = ""
    """The evaluation's words for what it measured."""


def _fire(state: AlertState, ev: Evaluation, start: datetime, *, repeat: bool) -> tuple[AlertState, AlertEvent]:
    notify = not state.silenced(ev.at)
    new = dataclasses.replace(
        state,
        phase=Phase.FIRING,
        since=start,
        changed_at=state.changed_at if repeat else ev.at,
        notified=state.notified or notify,
        notified_at=ev.at if notify else state.notified_at,
    )
    event = AlertEvent(
        Phase.FIRING, ev.at, start, ev.value, notify, repeat, new.acknowledged_by, new.silenced_until, ev.detail
    )
    return new, event


def _holds(
    state: AlertState, ev: Evaluation, for_s: float, repeat_s: float | None
) -> tuple[AlertState, AlertEvent | None]:
    at = ev.at
    if state.phase is Phase.FIRING:
        if state.acknowledged_by is not None or state.silenced(at):
            return state, None
        if not state.notified:
            # The firing happened during a silence that has now ended: its receivers have not heard of it.
            assert state.since is not None
            return _fire(state, ev, state.since, repeat=True)
        if (
            repeat_s is not None
            and state.notified_at is not None
            and at - state.notified_at >= timedelta(seconds=repeat_s)
        ):
            assert state.since is not None
            return _fire(state, ev, state.since, repeat=True)
        return state, None
    start = ev.since or at
    if state.phase is Phase.PENDING and state.since is not None:
        start = min(start, state.since)
    elif state.changed_at is not None:
        # Late data must not stretch an episode back over a change this alert has already made.
        start = max(start, state.changed_at)
    if (ev.through or at) - start >= timedelta(seconds=for_s):
        fresh = dataclasses.replace(state, notified=False, notified_at=None)
        return _fire(fresh, ev, start, repeat=False)
    if state.phase is Phase.PENDING:
        return dataclasses.replace(state, since=start), None
    return dataclasses.replace(state, phase=Phase.PENDING, since=start, changed_at=at), None


def advance(
    state: AlertState, evaluation: Evaluation, *, for_s: float, repeat_s: float | None = None
) -> tuple[AlertState, AlertEvent | None]:
    """The state after ``evaluation`` and the event it causes, if any.

    Args:
        state: the alert's current state (``AlertState()`` for a new one).
        evaluation: the condition's evaluation; evaluations must come in time order.
        for_s: how long the condition must hold before the alert fires (the condition's ``for_s``).
        repeat_s: notify a firing, unacknowledged alert again after this many seconds; None: never.
    """
    if state.evaluated_at is not None and evaluation.at < state.evaluated_at:
        raise ValueError(f"evaluation at {evaluation.at} is older than the last one, at {state.evaluated_at}")
    if state.silenced_until is not None and not state.silenced(evaluation.at):
        state = dataclasses.replace(state, silenced_until=None)
    value = evaluation.value if evaluation.value is not None else state.value
    state = dataclasses.replace(state, evaluated_at=evaluation.at, value=value)
    if evaluation.outcome is Outcome.HOLDS:
        return _holds(state, evaluation, for_s, repeat_s)
    if state.phase is Phase.PENDING:
        return dataclasses.replace(state, phase=Phase.INACTIVE, since=None, changed_at=evaluation.at), None
    if state.phase is Phase.FIRING and evaluation.outcome is Outcome.CLEAR:
        assert state.since is not None
        # Notify a resolve only when the firing was notified; see the module's docstring.
        notify = state.notified
        new = dataclasses.replace(
            state,
            phase=Phase.RESOLVED,
            changed_at=evaluation.at,
            notified_at=evaluation.at if notify else state.notified_at,
            acknowledged_by=None,
            acknowledged_at=None,
        )
        event = AlertEvent(
            Phase.RESOLVED, evaluation.at, state.since, evaluation.value, notify, False, state.acknowledged_by,
            state.silenced_until, evaluation.detail,
        )  # fmt: skip
        return new, event
    return state, None


def acknowledge(state: AlertState, *, by: str, at: datetime) -> AlertState:
    """``state`` acknowledged by user ``by``: no more repeat notifications for this episode.

    Raises:
        ConduitError: FAILED_PRECONDITION when the alert is not firing.
    """
    if state.phase is not Phase.FIRING:
        raise ConduitError(
            ErrorCode.FAILED_PRECONDITION, f"only a firing alert can be acknowledged; this one is {state.phase.value}"
        )
    return dataclasses.replace(state, acknowledged_by=by, acknowledged_at=as_utc(at, "at"))


def silence(state: AlertState, *, until: datetime | None) -> AlertState:
    """``state`` silenced until ``until`` (None lifts a silence)."""
    return dataclasses.replace(state, silenced_until=None if until is None else as_utc(until, "until"))
