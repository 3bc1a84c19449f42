"""Conditions evaluated against the monitoring roll-ups, read through the small ``MetricsSource`` protocol.

What evaluation needs from monitoring (the contract with the roll-ups and drift):

- ``list_rollups``: the per-minute ``Rollup`` entities of a model version whose minute starts in ``[since, until)``,
  oldest first, as ``AbstractStore.list_rollups`` returns them: ``requests`` answered OK, ``errors`` by status name,
  and ``latency``, the OK requests' duration histogram with its explicit bounds in seconds (min and max when the
  servers sent them). A minute without a row is a minute without requests (or without data).
- ``drift``: the population stability index of each input feature against the training baseline's bins, over the
  rows received in ``[since, until]``, how many rows that was, and which features monitoring's verdict calls drifted;
  None when nothing was received. A feature whose verdict is not drift (no significant shift, or too few rows for a
  verdict) never fires a rule, whatever its PSI.
- ``ready``: whether the servers report the version ready (None: no server reports it).

Versions are strings, as the servers label their metrics. Each condition is judged on its window
(``Condition.window_s``) plus ``lag_s``, the time its data takes to arrive. A window with nothing in it (no request,
no row) holds no latency, no error rate and no drift: the condition is clear, and a firing alert resolves, saying
"no data" (an alert on absence is ``no_traffic``'s job). A per-window condition (``p99_ms``, ``error_rate``) is
judged on the minutes that have ended; a rule with a ``for`` window is also judged on the minute still filling, so
that a short window (``for 10s``) is not rounded up to a whole minute: when what the minute holds so far is above the
threshold, the condition holds from that evaluation on (never from the minute's start, which would credit it with
time nobody saw), and it fires once consecutive evaluations have held for the window. The filling minute never clears
a condition, though: a few fast requests at the start of a minute are no recovery, so a resolve waits for the minute
to end. A rule without a ``for`` window waits for ended minutes either way, so one slow request cannot fire it.
Nor can it fire a rule with one: the filling minute is judged only once it holds ``filling_min_requests`` answered
requests, since with little traffic its p99 (or error rate) is that of one or two requests. Ended minutes are judged
whatever their count.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from contract.entities import Rollup
from control_plane.alerting._expressions import (
    Condition,
    DriftAbove,
    DriftScope,
    ErrorRateAbove,
    NoTraffic,
    NotReady,
    P99Above,
    format_duration,
)
from control_plane.alerting._state import Evaluation, Outcome
from control_plane.monitoring import quantile

__all__ = ["FILLING_MIN_REQUESTS", "DriftScores", "Evaluator", "MetricsSource"]

MINUTE = timedelta(minutes=1)
FILLING_MIN_REQUESTS = 20
"""The default of ``Evaluator``'s ``filling_min_requests`` (and of ``CONDUIT_ALERTS_FILLING_MIN_REQUESTS``)."""


@dataclass(frozen=True, slots=True)
class DriftScores:
    """Per-feature PSI over a period, the number of rows it was computed from, and the features whose monitoring
    verdict is drift (None: the source gives no verdicts, and PSI alone decides)."""

    rows: int
    psi: Mapping[str, float]
    drifted: frozenset[str] | None = None


class MetricsSource(Protocol):
    """The monitoring roll-ups, as alert evaluation reads them."""

    def list_rollups(self, model: str, version: str, since: datetime, until: datetime) -> Sequence[Rollup]:
        """The roll-ups of ``model``/``version`` whose minute starts in ``[since, until)``, oldest first."""
        ...

    def drift(self, model: str, version: str, since: datetime, until: datetime) -> DriftScores | None:
        """PSI per feature over the rows received in ``[since, until]``; None when none was."""
        ...

    def ready(self, model: str, version: str) -> bool | None:
        """Whether the servers report the version ready; None when no server reports it."""
        ...


def _p99_ms(rollup: Rollup) -> float | None:
    if rollup.latency is None:
        return None
    seconds = quantile(rollup.latency, 0.99)
    return None if seconds is None else seconds * 1000


def _answered(rollup: Rollup) -> int:
    return rollup.requests + sum(rollup.errors.values())


def _error_rate(rollup: Rollup) -> float | None:
    answered = _answered(rollup)
    return sum(rollup.errors.values()) / answered if answered else None


def _end(rollup: Rollup) -> datetime:
    return rollup.minute + MINUTE


def _shown(condition: P99Above | ErrorRateAbove, value: float) -> str:
    shown = f"{value:.4g} ms" if isinstance(condition, P99Above) else f"{value:.4%}"
    return f"{condition.metric} {shown}"


class Evaluator:
    """Evaluates conditions at a given time against one ``MetricsSource``.

    Args:
        source: the roll-ups.
        lag_s: how late a window may arrive after it ends (the servers' export interval plus the roll-up's own
            delay); the newest data counts as current within this lag.
        filling_min_requests: the answered requests the minute still filling must hold before a ``for`` window
            judges it.
    """

    def __init__(
        self,
        source: MetricsSource,
        *,
        lag_s: float = 120.0,
        filling_min_requests: int = FILLING_MIN_REQUESTS,
    ) -> None:
        self._source = source
        self._lag = timedelta(seconds=lag_s)
        self._filling_min_requests = filling_min_requests

    def evaluate(
        self, condition: Condition, model: str, version: str, at: datetime, *, watched_since: datetime | None = None
    ) -> Evaluation:
        """Whether ``condition`` holds for ``model``/``version`` at ``at``.

        Args:
            watched_since: when the version started to be served, if known: ``no_traffic`` counts no silence
                before it.
        """
        if isinstance(condition, P99Above | ErrorRateAbove):
            return self._per_window(condition, model, version, at)
        if isinstance(condition, NoTraffic):
            return self._no_traffic(condition, model, version, at, watched_since)
        if isinstance(condition, DriftAbove):
            return self._drift(condition, model, version, at)
        return self._ready(condition, model, version, at)

    def _windows(self, model: str, version: str, at: datetime, for_s: float) -> list[Rollup]:
        """The minutes that ended in ``[at - for_s - lag, at]``, oldest first."""
        return [r for r in self._recent(model, version, at, for_s) if _end(r) <= at]

    def _recent(self, model: str, version: str, at: datetime, window_s: float) -> list[Rollup]:
        """The minutes that ended in ``[at - window_s - lag, at]`` and the one still filling at ``at``, oldest
        first."""
        since = at - timedelta(seconds=window_s) - self._lag - MINUTE
        rollups = self._source.list_rollups(model, version, since, at)
        return sorted((r for r in rollups if since + MINUTE <= _end(r) and r.minute <= at), key=lambda r: r.minute)

    def _per_window(self, condition: P99Above | ErrorRateAbove, model: str, version: str, at: datetime) -> Evaluation:
        measure = _p99_ms if isinstance(condition, P99Above) else _error_rate
        threshold = condition.threshold
        # Windows without a value (no request) neither break nor extend a run: the condition is judged on data.
        recent = [(w, v) for w in self._recent(model, version, at, condition.window_s) if (v := measure(w)) is not None]
        measured = [(w, v) for w, v in recent if _end(w) <= at]
        filling = None
        if recent and _end(recent[-1][0]) > at and condition.for_s > 0:
            # With little traffic so far, the minute's p99 (or error rate) is that of a request or two.
            enough = _answered(recent[-1][0]) >= self._filling_min_requests
            filling = recent[-1] if enough else None
        if filling is not None and filling[1] > threshold:
            # Seen holding now; a run of ended minutes right before it extends the episode back.
            since, value = at, filling[1]
            for window, earlier in reversed(measured):
                if not earlier > threshold:
                    break
                since = window.minute
            return Evaluation(Outcome.HOLDS, at, value, since=since, through=at, detail=_shown(condition, value))
        if not measured:
            # No traffic, no latency or error rate: nothing is wrong, and an alert that fired on traffic since gone
            # must end (left firing, it would stay so for as long as nobody calls the model).
            return Evaluation(Outcome.CLEAR, at, detail=f"no data: no request in the last {self._span(condition)}")
        newest, value = measured[-1]
        if not value > threshold:
            return Evaluation(Outcome.CLEAR, at, value, detail=_shown(condition, value))
        since = newest.minute
        for window, earlier in reversed(measured[:-1]):
            if not earlier > threshold:
                break
            since = window.minute
        return Evaluation(Outcome.HOLDS, at, value, since=since, through=_end(newest), detail=_shown(condition, value))

    def _no_traffic(
        self, condition: NoTraffic, model: str, version: str, at: datetime, watched_since: datetime | None
    ) -> Evaluation:
        busy = [r for r in self._windows(model, version, at, condition.for_s) if _answered(r) > 0]
        if busy and _end(busy[-1]) >= at - self._lag:
            return Evaluation(Outcome.CLEAR, at, 0.0, detail="requests are arriving")
        # The last traffic we know of; with none in the whole range, the silence is at least that long.
        quiet_since = _end(busy[-1]) if busy else at - timedelta(seconds=condition.for_s) - self._lag
        if watched_since is not None:
            quiet_since = max(quiet_since, watched_since)
        quiet_s = (at - quiet_since).total_seconds()
        return Evaluation(
            Outcome.HOLDS, at, quiet_s, since=quiet_since, detail=f"no request for {quiet_s:.0f} s or more"
        )

    def _span(self, condition: Condition) -> str:
        """The data a condition's evaluation read, in words: its window and the lag."""
        lag_s = int(self._lag.total_seconds())
        window = format_duration(condition.window_s)
        return f"{format_duration(condition.window_s + lag_s)} ({window} and {format_duration(lag_s)} of lag)"

    def _drift(self, condition: DriftAbove, model: str, version: str, at: datetime) -> Evaluation:
        since = at - timedelta(seconds=condition.window_s) - self._lag
        scores = self._source.drift(model, version, since, at)
        psi = {name: value for name, value in (scores.psi if scores else {}).items() if math.isfinite(value)}
        if scores is None or scores.rows == 0 or not psi:
            # No rows, or too few for monitoring to give any feature a verdict: no drift. Like a per-window condition
            # without requests, a firing alert resolves.
            detail = f"no data: too few rows for a verdict in the last {self._span(condition)}"
            return Evaluation(Outcome.CLEAR, at, detail=detail)
        # A feature counts when its PSI is above the rule's threshold and monitoring's verdict agrees that it drifted
        # (significant, on enough rows): a few rows give any PSI, and are no drift.
        verdicts = scores.drifted
        counted = {
            name: value
            for name, value in psi.items()
            if value > condition.threshold and (verdicts is None or name in verdicts)
        }
        drifted = sorted(counted)
        if condition.scope is DriftScope.ANY:
            holds = bool(counted)
            value = max(counted.values()) if counted else max(psi.values())
        else:
            holds = len(counted) == len(psi)
            value = min(psi.values())
        detail = f"{len(drifted)} of {len(psi)} features drifted above PSI {condition.threshold}"
        detail += f" over {format_duration(condition.window_s)} ({scores.rows} rows)"
        if drifted:
            detail += ": " + ", ".join(drifted[:10]) + (", …" if len(drifted) > 10 else "")
        return Evaluation(Outcome.HOLDS if holds else Outcome.CLEAR, at, value, detail=detail)

    def _ready(self, condition: NotReady, model: str, version: str, at: datetime) -> Evaluation:
        ready = self._source.ready(model, version)
        if ready is None:
            return Evaluation(Outcome.NO_DATA, at, detail="no server reports this version")
        if ready:
            return Evaluation(Outcome.CLEAR, at, detail="ready")
        return Evaluation(Outcome.HOLDS, at, detail="not ready")
